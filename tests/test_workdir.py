"""deepsz/workdir.py: one run per work dir, readers refused while a run holds it, and a refused
run leaves no directory behind (resumable assessments stay)."""
import pytest

from deepsz_caffe.deepsz.workdir import locked, reading
from deepsz_caffe.errors import ConfigError


def test_a_failed_run_removes_the_work_dir_it_created_and_nothing_else(tmp_path):
    """Refusals inside the lock leave nothing behind; resumable work and the user's dirs stay."""
    nested = tmp_path / "a" / "b" / "work"
    with pytest.raises(ConfigError):
        with locked(nested):
            raise ConfigError("refused inside the lock")
    assert not (tmp_path / "a").exists()

    cached = tmp_path / "cached"
    with pytest.raises(ConfigError):
        with locked(cached):
            (cached / "assess-k").mkdir()
            (cached / "assess-k" / "ip1.sz2.json").write_text("{}")
            raise ConfigError("failed after an hour of assessment")
    assert (cached / "assess-k" / "ip1.sz2.json").is_file()

    mine = tmp_path / "mine"
    mine.mkdir()
    with pytest.raises(ConfigError):
        with locked(mine):
            raise ConfigError("refused")
    assert mine.is_dir()
    with locked(tmp_path / "ok") as work:
        pass
    assert work.is_dir()


def test_readers_wait_for_no_one_but_are_refused_while_a_run_holds_the_dir(tmp_path):
    with reading(tmp_path):  # no .lock: not a work dir, nothing is created
        pass
    assert not (tmp_path / ".lock").exists()
    with locked(tmp_path / "w") as work:
        with pytest.raises(ConfigError, match="in use by another deepsz run"):
            with reading(work):
                pass
    with reading(work):
        pass
