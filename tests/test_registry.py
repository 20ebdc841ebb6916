"""The one registry shape of lossy coders, index coders and comparison methods."""
import pytest

from deepsz_caffe.baselines.method import METHODS, Method
from deepsz_caffe.codecs import LOSSY, LOSSY_CODECS
from deepsz_caffe.codecs.lossless import ALL_INDEX_CODECS, INDEX, PAPER_INDEX_CODECS, compress_index
from deepsz_caffe.errors import CodecError, ConfigError
from deepsz_caffe.registry import Registry


def test_the_three_registries_share_one_shape():
    assert LOSSY_CODECS == LOSSY.ids() == ("sz2", "sz3", "zfp", "quant", "zquant")
    assert ALL_INDEX_CODECS == INDEX.ids() == ("gzip", "zstd", "blosc", "ctx")
    assert PAPER_INDEX_CODECS == INDEX.ids("paper") == ("gzip", "zstd", "blosc")
    assert METHODS.ids() == ("deepsz", "deepsz-best", "deepsz-max", "deep-compression", "weightless",
                             "nncodec", "nncodec-sparse")
    for registry in (LOSSY, INDEX, METHODS):
        for id in registry.ids():
            entry = registry.entry(id)
            assert entry.id == id and ":" in entry.target
    assert LOSSY.version("zfp").startswith("zfpy ") and INDEX.version("gzip").startswith("zlib ")
    assert issubclass(METHODS.load("weightless"), Method) and METHODS.version("weightless") == ""


def test_registering_a_coder_is_one_call(tmp_path, monkeypatch):
    (tmp_path / "mycoder.py").write_text(
        "class Tiny:\n"
        "    def encode(self, raw, row_length=0): return bytes(raw)\n"
        "    def decode(self, blob, size): return bytes(blob)\n"
        "    def library_version(self): return 'tiny 1'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    index = Registry("index codec", CodecError)
    index.register("tiny", "mycoder:Tiny", "tiny-package")
    assert index.ids() == ("tiny",) and index.version("tiny") == "tiny 1"
    assert index.create("tiny").decode(index.create("tiny").encode(b"abc"), 3) == b"abc"
    with pytest.raises(ValueError, match="registered already"):
        index.register("tiny", "mycoder:Tiny")
    with pytest.raises(ValueError, match="module:Class"):
        index.register("other", "mycoder.Tiny")


def test_unknown_ids_and_missing_packages_are_one_clear_error():
    registry = Registry("lossy codec", CodecError)
    registry.register("gone", "no_such_package_xyz.codec:Codec", "no-such-package==1.0")
    with pytest.raises(CodecError, match=r"unknown lossy codec 'nope'; valid: gone"):
        registry.create("nope")
    with pytest.raises(CodecError, match=r"lossy codec 'gone' needs a missing package: "
                                         r"pip install no-such-package==1\.0"):
        registry.create("gone")
    with pytest.raises(ConfigError, match="unknown method"):
        METHODS.entry("deep_compression")  # one id per method


def test_every_index_coder_takes_the_row_length_alike():
    """No coder is a special case: "best-all" calls each the same way."""
    raw = bytes([1, 3, 2, 7] * 300)
    used, blob = compress_index(raw, "best-all", row_length=40)
    assert used in ALL_INDEX_CODECS
    for name in ALL_INDEX_CODECS:
        coder = INDEX.create(name)
        assert coder.decode(coder.encode(raw, 40), len(raw)) == raw
