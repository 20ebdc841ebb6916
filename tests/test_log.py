"""deepsz_caffe.log: the library is silent unless configured, an API user captures its lines with
ordinary logging, and the CLI's --quiet/--verbose switch lines and bars together."""
import logging

import pytest

from deepsz_caffe import log
from deepsz_caffe.cli import main
from deepsz_caffe.deepsz import assess, pipeline


@pytest.fixture
def bare_logger():
    """The logger as an API user finds it (an earlier CLI call in this process configured it)."""
    saved = log.logger.handlers[:], log.logger.level
    log.logger.handlers = [h for h in saved[0] if not isinstance(h, log.TqdmHandler)]
    log.logger.setLevel(logging.NOTSET)
    yield log.logger
    log.logger.handlers, _ = saved
    log.logger.setLevel(saved[1])


def test_an_api_user_hears_nothing_unless_they_ask(bare_logger, capsys, caplog):
    pipeline.stage("assess", 1.25, "3 layers")
    assess.log("ip1 (sz2): 4 tests in 1.0 s")
    assert capsys.readouterr().err == "" and not log.showing_progress()
    with log.progress(total=3, desc="silent bar") as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""

    caplog.set_level(logging.INFO, logger="deepsz_caffe")
    pipeline.stage("assess", 1.25, "3 layers")
    assess.log("ip1 (sz2): 4 tests in 1.0 s")
    assert caplog.messages == ["[compress] assess: 1.2 s (3 layers)", "[assess] ip1 (sz2): 4 tests in 1.0 s"]
    assert [r.name for r in caplog.records] == ["deepsz_caffe.compress", "deepsz_caffe.assess"]


def test_configure_writes_through_tqdm_to_stderr_and_replaces_itself(bare_logger, capsys):
    log.configure()
    log.configure(logging.INFO)  # a second call does not double every line
    pipeline.stage("write", 0.5)
    assert capsys.readouterr().err == "[compress] write: 0.5 s\n"
    assert sum(isinstance(h, log.TqdmHandler) for h in bare_logger.handlers) == 1
    assert log.handed_down() == logging.INFO
    log.inherit(logging.WARNING)  # what a spawned worker runs: the parent's level
    pipeline.stage("write", 0.5)
    assert capsys.readouterr().err == "" and not log.showing_progress()


def _synth(tmp_path, *flags):
    return main([*flags, "synth-lmdb", "--images", "3", "--size", "8", "--classes", "2",
                 "-o", str(tmp_path / f"lmdb{len(flags)}{''.join(flags)}")])


@pytest.mark.parametrize("flags, shown", [((), True), (("-q",), False), (("--quiet",), False),
                                          (("-v",), True)])
def test_cli_quiet_hides_the_bars_and_verbose_keeps_them(tmp_path, capsys, flags, shown):
    assert _synth(tmp_path, *flags) == 0
    assert ("synth lmdb" in capsys.readouterr().err) is shown
    assert log.logger.getEffectiveLevel() == {(): logging.INFO, ("-v",): logging.DEBUG}.get(
        flags, logging.WARNING)


def test_cli_flags_go_after_the_command_too_and_exclude_each_other(tmp_path, capsys):
    assert main(["synth-lmdb", "--images", "3", "--size", "8", "-o", str(tmp_path / "a"), "--quiet"]) == 0
    assert "synth lmdb" not in capsys.readouterr().err
    assert main(["-q", "synth-lmdb", "--images", "3", "--size", "8", "-o", str(tmp_path / "b"), "-v"]) == 1
    assert capsys.readouterr().err.strip() == "deepsz: error: --quiet and --verbose exclude each other"
