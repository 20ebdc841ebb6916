"""Shared fixtures: small real Caffe runs on genuine MNIST subsets (trained once per session), and
the golden files' source net."""
import hashlib
import importlib.util
import json
import os
from pathlib import Path

import pytest

from deepsz_caffe.paper.values import kept_fractions

os.environ.setdefault("GLOG_minloglevel", "2")


GOLDEN = Path(__file__).parent / "data" / "golden"


@pytest.fixture(scope="session")
def golden_source(tmp_path_factory) -> Path:
    """The golden files' source net, rebuilt from make_golden.py's fixed seed (generated data, not
    committed) and checked to be the very bytes the golden files were written from."""
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    path = tmp_path_factory.mktemp("golden") / manifest["source"]["file"]
    path.write_bytes(make_golden.tiny_net())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest["source"]["sha256"]
    return path


@pytest.fixture(scope="session")
def mnist_small(tmp_path_factory):
    """LMDBs of the first 6000 training and 1000 test images."""
    from deepsz_caffe.caffe import lmdb as lmdb_io
    from deepsz_caffe.paper import mnist

    d = tmp_path_factory.mktemp("mnist")
    (xtr, ytr), (xte, yte) = mnist.load()["train"], mnist.load()["test"]
    return {"TRAIN": lmdb_io.write(d / "train", xtr[:6000], ytr[:6000]),
            "TEST": lmdb_io.write(d / "test", xte[:1000], yte[:1000])}


def _train(tmp_path_factory, mnist_small, net, iterations, kept, retrain_iterations):
    from deepsz_caffe.deepsz.prune import prune
    from deepsz_caffe.paper.values import PROTOTXT
    from deepsz_caffe.caffe.prototxt import runtime_files
    from deepsz_caffe.caffe.train import run_solver

    d = tmp_path_factory.mktemp(net)
    solver, model = runtime_files(PROTOTXT / net / "solver.prototxt", d / "proto", mnist_small)
    s, _ = run_solver(solver, iterations=iterations, seed=3)
    trained = d / "trained.caffemodel"
    s.net.save(str(trained))
    pruned = d / "pruned.caffemodel"
    masks, stats = prune(solver, trained, kept, pruned, iterations=retrain_iterations, seed=3)
    return {"dir": d, "model": model, "trained": trained, "pruned": pruned, "masks": masks,
            "stats": stats, "test_db": mnist_small["TEST"]}


@pytest.fixture(scope="session")
def lenet300(tmp_path_factory, mnist_small):
    """LeNet-300-100 trained briefly, pruned to the paper's 8/9/26% with masked retraining."""
    return _train(tmp_path_factory, mnist_small, "lenet300", 1500, kept_fractions("lenet300"), 600)


@pytest.fixture(scope="session")
def lenet5(tmp_path_factory, mnist_small):
    """LeNet-5 trained briefly, pruned to the paper's 8/19%."""
    return _train(tmp_path_factory, mnist_small, "lenet5", 300, kept_fractions("lenet5"), 100)


def _check_figure(path) -> None:
    """A PNG that Pillow reads and that is not blank; a complete PDF."""
    from PIL import Image

    if path.suffix == ".png":
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert min(im.size) >= 200 and len(im.convert("L").getcolors(256)) > 10, path
    elif path.suffix == ".pdf":
        data = path.read_bytes()
        assert data.startswith(b"%PDF-") and b"%%EOF" in data[-32:], path


@pytest.fixture
def render_check(tmp_path):
    """Render an experiment from fabricated data saved as its results JSON; check that exactly
    `expected` files appear, each a readable non-blank figure or a Markdown table, written
    atomically and deterministically (a second render gives the same text); return the Markdown."""
    from experiments import common

    def check(module, data: dict, expected: list[str]) -> str:
        name = module.__name__.rsplit(".", 1)[1]
        path = common.save_json(common.data_path(name, tmp_path / "results"), data)
        figures = tmp_path / "figures"
        written = module.render(common.load_json(path), figures)
        assert sorted(p.name for p in written) == sorted(expected)
        for out in expected:
            _check_figure(figures / out)
        assert not list(figures.glob(".*.tmp"))  # atomic writes leave no temp files behind
        text = (figures / f"{name}.md").read_text()
        assert "\n|" in text and "---" in text  # a Markdown table
        module.render(common.load_json(path), tmp_path / "again")
        assert (tmp_path / "again" / f"{name}.md").read_text() == text
        if any(e.get("synthetic") for e in data.get("nets", {}).values()):
            assert "synthetic" in text.lower()
        return text

    return check
