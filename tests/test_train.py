"""deepsz_caffe.caffe.train and the solver/net path logic of caffe.prototxt: a copied solver finds
its net beside itself, runtime copies (sources, seed, iterations, no snapshots, no test nets) go
to the work dir, and bad setups are refused with one line before Caffe could abort."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepsz_caffe.caffe.prototxt import (read_prototxt, read_solver, set_data_sources,
                                         solver_net_path, tuned_solver)
from deepsz_caffe.errors import CaffeIOError
from helpers import OWN_NET, OWN_SOLVER, own_net

ROOT = Path(__file__).resolve().parents[1]


def _deepsz(*args, cwd):
    env = {**os.environ, "GLOG_minloglevel": "2"}
    return subprocess.run([sys.executable, "-m", "deepsz_caffe.cli", *map(str, args)], cwd=cwd,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)


def _solver(tmp_path, net_line='net: "train_test.prototxt"\n'):
    d = tmp_path / "user"
    d.mkdir(exist_ok=True)
    text = OWN_SOLVER.format(max_iter=7).replace('net: "train_test.prototxt"\n', net_line)
    (d / "solver.prototxt").write_text(text)
    (d / "train_test.prototxt").write_text(OWN_NET.format(train="tr", test="te", classes=10))
    return d / "solver.prototxt"


def test_net_path_is_relative_to_the_solver_then_the_cwd(tmp_path, monkeypatch):
    solver = _solver(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert solver_net_path(solver, read_solver(solver)) == solver.parent / "train_test.prototxt"
    # Caffe's own rule (the current directory) still works for a solver written for `caffe train`.
    (elsewhere / "other.prototxt").write_text("name: 'x'")
    solver = _solver(tmp_path, 'net: "other.prototxt"\n')
    assert solver_net_path(solver, read_solver(solver)) == Path("other.prototxt")
    absolute = _solver(tmp_path, f'net: "{elsewhere / "other.prototxt"}"\n')
    assert solver_net_path(absolute, read_solver(absolute)) == elsewhere / "other.prototxt"


def test_net_found_nowhere_or_missing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    solver = _solver(tmp_path, 'net: "nets/missing.prototxt"\n')
    with pytest.raises(CaffeIOError, match=r"neither beside the solver \(.*user/nets/missing"
                                           r".*nor in the current directory"):
        solver_net_path(solver, read_solver(solver))
    solver = _solver(tmp_path, 'net: "/no/such/net.prototxt"\n')
    with pytest.raises(CaffeIOError, match="no such file"):
        solver_net_path(solver, read_solver(solver))
    solver = _solver(tmp_path, 'train_net: "train_test.prototxt"\n')
    with pytest.raises(CaffeIOError, match="no `net:` line"):
        solver_net_path(solver, read_solver(solver))


def test_tuned_solver_writes_only_into_its_work_dir(tmp_path):
    solver = _solver(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p.name for p in solver.parent.iterdir())
    tuned = tuned_solver(solver, work / "s.prototxt", seed=5, lr_scale=0.5, iterations=11,
                         sources={"TRAIN": tmp_path / "a_lmdb", "TEST": tmp_path / "b_lmdb"})
    assert sorted(p.name for p in solver.parent.iterdir()) == before
    assert sorted(p.name for p in work.iterdir()) == ["s.prototxt", "train_test.run.prototxt"]
    p = read_solver(tuned)
    assert (p.max_iter, p.random_seed, p.base_lr) == (11, 5, pytest.approx(0.005))
    # The user's `snapshot: 100` into "snapshots/own" is off; nothing may land beside their files.
    assert p.snapshot == 0 and not p.snapshot_after_train
    assert Path(p.snapshot_prefix).parent == work.resolve()
    assert not p.test_iter  # no test nets inside the solver: deepsz measures one TEST phase itself
    net = read_prototxt(p.net)
    assert Path(p.net) == (work / "train_test.run.prototxt").resolve()
    assert [lay.data_param.source for lay in net.layer if lay.type == "Data"] == [
        str((tmp_path / "a_lmdb").resolve()), str((tmp_path / "b_lmdb").resolve())]
    # Without sources the user's own net is used as is, by absolute path.
    p = read_solver(tuned_solver(solver, work / "t.prototxt"))
    assert p.net == str((solver.parent / "train_test.prototxt").resolve())


def test_a_source_for_a_phase_without_data_layer_is_refused(tmp_path):
    net = read_prototxt(_solver(tmp_path).parent / "train_test.prototxt")
    del net.layer[0]  # the TRAIN Data layer
    with pytest.raises(CaffeIOError, match="no TRAIN Data layer"):
        set_data_sources(net, {"TRAIN": "x"})


def test_train_refuses_a_missing_lmdb_naming_the_layer_and_the_flag(tmp_path):
    solver = _solver(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    r = _deepsz("train", "--solver", solver, "-o", tmp_path / "t.caffemodel", cwd=cwd)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "TRAIN Data layer 'data'" in r.stderr and "--train-lmdb" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not list(cwd.iterdir()) and not (tmp_path / "t.caffemodel").exists()


def test_labels_beyond_the_classes_are_refused(tmp_path):
    """Labels 0..9 into 3 outputs: release Caffe would train on corrupted memory (loss nan, then
    'double free'); the child probe refuses it in one line."""
    paths = own_net(tmp_path, classes=3, train=200, test=100)
    r = _deepsz("train", "--solver", paths["net"] / "solver.prototxt", "-o",
                tmp_path / "t.caffemodel", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "Caffe cannot train" in r.stderr and "layer 'loss' scores 3 classes" in r.stderr


def test_weights_that_do_not_fit_are_a_caffe_check_failure_in_one_line(tmp_path):
    import caffe

    paths = own_net(tmp_path, classes=10, train=200, test=100)
    weights = tmp_path / "ten.caffemodel"
    caffe.Net(str(paths["net"] / "train_test.prototxt"), caffe.TEST).save(str(weights))
    net = paths["net"] / "train_test.prototxt"
    net.write_text(net.read_text().replace("num_output: 64", "num_output: 32"))
    r = _deepsz("train", "--solver", paths["net"] / "solver.prototxt", "--weights", weights,
                "-o", tmp_path / "t.caffemodel", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"Caffe cannot train {paths['net'] / 'solver.prototxt'} from {weights}" in r.stderr
    assert "Check failed" in r.stderr or "shape mismatch" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_prune_defaults_to_max_iter_and_overrides_sources(tmp_path):
    """A copied net whose sources point nowhere, fixed with --train-lmdb/--test-lmdb; `prune`
    retrains for the solver's max_iter and prints the pruned top-1."""
    paths = own_net(tmp_path, max_iter=20, train=300, test=200)
    net = paths["net"] / "train_test.prototxt"
    net.write_text(OWN_NET.format(train="data/mine/train", test="data/mine/test", classes=10))
    lmdbs = ["--train-lmdb", paths["data"] / "train_lmdb", "--test-lmdb", paths["data"] / "test_lmdb"]
    solver, work = paths["net"] / "solver.prototxt", tmp_path / "work"
    r = _deepsz("train", "--solver", solver, *lmdbs, "--iterations", 30, "-o",
                tmp_path / "t.caffemodel", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "30 iterations" in r.stdout and "test top-1" in r.stdout
    r = _deepsz("prune", "--solver", solver, "--weights", tmp_path / "t.caffemodel", *lmdbs,
                "--kept", "ip1=0.1", "--work-dir", work, "-o", tmp_path / "p.caffemodel", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "kept ip1=10.00% after 20 masked iterations" in r.stdout and "test top-1" in r.stdout
    assert sorted(p.name for p in work.iterdir()) == ["solver.run.prototxt", "train_test.run.prototxt"]
    r = _deepsz("test", "--model", net, "--weights", tmp_path / "p.caffemodel", "--test-lmdb",
                paths["data"] / "test_lmdb", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "top-1" in r.stdout and "200 images" in r.stdout
