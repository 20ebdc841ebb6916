"""Golden .dsz files (tests/data/golden, written by make_golden.py there): every codec pair and
every older header layout decodes, on every run, to the bytes it decoded to when it was written,
within its error bound of the source weights and with the source's exact pruning mask."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from deepsz_caffe.caffe import wire
from deepsz_caffe.errors import DeepSZError
from deepsz_caffe.format import network

GOLDEN = Path(__file__).parent / "data" / "golden"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
FILES = MANIFEST["files"]


def test_the_manifest_covers_every_file_and_every_codec_pair(golden_source):
    assert sorted(p.name for p in GOLDEN.glob("*.dsz")) == sorted(e["file"] for e in FILES.values())
    pairs = {(e["lossy"], e["index"]) for e in FILES.values()}
    assert {(lossy, index) for lossy in ("sz2", "sz3", "zfp", "quant")
            for index in ("zstd", "gzip", "blosc", "ctx")} <= pairs
    assert hashlib.sha256(golden_source.read_bytes()).hexdigest() == MANIFEST["source"]["sha256"]
    assert all(p.stat().st_size < 8_000 for p in GOLDEN.glob("*.dsz"))  # a few kB each


@pytest.mark.parametrize("name", sorted(n for n, e in FILES.items() if "decoded_sha256" in e))
def test_golden_file_decodes_to_its_recorded_bytes(name, tmp_path, golden_source):
    entry = FILES[name]
    out = network.decode(GOLDEN / entry["file"], tmp_path / "decoded.caffemodel")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == entry["decoded_sha256"]
    got, _ = wire.read_caffemodel(out)
    want, _ = wire.read_caffemodel(golden_source)
    assert list(got) == list(want) == ["ip1", "ip2"]
    for layer in want:
        w, g = want[layer][0], got[layer][0]
        assert np.array_equal(w != 0, g != 0), layer          # the pruning mask, exactly
        assert np.abs(w - g).max() <= MANIFEST["source"]["error_bound"] * (1 + 1e-6), layer
        assert np.array_equal(want[layer][1], got[layer][1])  # biases are lossless
    assert network.inspect(GOLDEN / entry["file"])["ratio"] > 1


@pytest.mark.parametrize("name", sorted(n for n, e in FILES.items() if "refused" in e))
def test_a_layout_no_longer_read_is_refused_with_one_clear_error(name, tmp_path):
    path = GOLDEN / FILES[name]["file"]
    with pytest.raises(DeepSZError) as e:
        network.decode(path, tmp_path / "decoded.caffemodel")
    assert str(e.value).replace(str(path), "<file>") == FILES[name]["refused"] and "\n" not in str(e.value)
    assert not (tmp_path / "decoded.caffemodel").exists()
