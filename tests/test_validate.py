"""cli/validate.py: every command's arguments are checked once, before the command runs (the
hostile cases in tests/hostile_commands.py run the same through the real CLI)."""

import os

import pytest

from deepsz_caffe import cli
from deepsz_caffe.caffe.phase import check_gpus
from deepsz_caffe.cli import method, validate
from deepsz_caffe.errors import CaffeIOError, ConfigError


def test_a_refused_argument_stops_the_command_before_it_starts(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(method, "cmd_assess", lambda a: pytest.fail("the command ran"))
    work = tmp_path / "work"
    rc = cli.main(
        ["assess", "--model", "m", "--weights", "w", "--expected-loss", "nan", "--work-dir", str(work)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == ["deepsz: error: --expected-loss must be a finite number >= 0, got nan"]
    assert not work.exists()


def test_values_are_checked_before_files(tmp_path):
    """A cheap refusal first: the missing weights are not even looked at."""
    args = cli.build_parser().parse_args(
        ["test", "--model", "nope", "--weights", "nope", "--iterations", "0"]
    )
    with pytest.raises(ConfigError, match="--iterations"):
        validate.check(args)
    args = cli.build_parser().parse_args(["test", "--model", "nope", "--weights", "nope"])
    with pytest.raises(ConfigError, match="cannot read weights nope"):
        validate.check(args)


def test_input_files_must_be_regular(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, why in (
        (fifo, "not a regular file"),
        ("/dev/zero", "not a regular file"),
        (tmp_path, "Is a directory"),
    ):
        args = cli.build_parser().parse_args(["optimize", str(path), "--expected-loss", "0.2"])
        with pytest.raises(ConfigError, match=why):
            validate.check(args)


def test_usable_dir(tmp_path):
    assert validate.usable_dir(tmp_path / "new" / "deeper", "--work-dir") == tmp_path / "new" / "deeper"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        validate.usable_dir(tmp_path / "file" / "sub", "--work-dir")
    with pytest.raises(ConfigError, match="empty"):
        validate.usable_dir(" ", "--figures")
    assert not (tmp_path / "new").exists()  # checked, not created


def test_a_gpu_that_does_not_exist_is_refused_in_a_child_process():
    """Caffe abort()s on an unknown device (a CPU-only build on any): this process survives."""
    with pytest.raises(CaffeIOError, match="GPU id.s. 4096 not usable here"):
        check_gpus([4096])
    with pytest.raises(ConfigError, match=">= 0"):
        check_gpus([-1])
