"""Lossy codecs (real SZ2/SZ3/ZFP libraries) and lossless index codecs."""

import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from helpers import gap_bytes, max_error, pruned

from deepsz_caffe.codecs import LOSSY_CODECS, compress_bounded, get_lossy
from deepsz_caffe.codecs.base import RAW_MAX
from deepsz_caffe.codecs import sz2
from deepsz_caffe.codecs.lossless import (
    PAPER_INDEX_CODECS,
    compress_index,
    compress_lossless,
    decompress_index,
    decompress_lossless,
)
from deepsz_caffe.codecs.zfp import ZFPCodec
from deepsz_caffe.errors import ConfigError, BoundViolation, CodecError

BOUNDS = (1e-4, 1e-3, 1e-2, 1e-1)
HEADER = 13  # mode u8 + n u64 + crc u32
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sz2_codec():
    return get_lossy("sz2")


def test_sz2_version():
    assert sz2.sz2_version() == "2.1.12.4"


@pytest.mark.parametrize("eb", BOUNDS)
def test_sz2_bound_small_sizes(sz2_codec, eb):
    for n in range(0, 22):
        x = pruned(n, seed=n)
        blob = compress_bounded(sz2_codec, x, eb)
        y = sz2_codec.decompress(blob, n)
        assert y.dtype == np.float32 and y.shape == (n,)
        assert max_error(x, y) <= eb
        if n <= RAW_MAX:
            assert blob[0] == 0 and len(blob) == HEADER + 4 * n
            assert np.array_equal(x, y)
        else:
            assert blob[0] == sz2_codec.mode_id


@pytest.mark.parametrize("eb", BOUNDS)
@pytest.mark.parametrize("n", [1000, 100_000, 1_000_000])
def test_sz2_bound_large(sz2_codec, n, eb):
    x = pruned(n, seed=n)
    blob = compress_bounded(sz2_codec, x, eb)
    assert max_error(x, sz2_codec.decompress(blob, n)) <= eb
    assert len(blob) < x.nbytes


def test_sz2_constant_and_zero_data(sz2_codec):
    for x in (np.zeros(1000, np.float32), np.full(1000, 0.25, np.float32)):
        assert max_error(x, sz2_codec.decompress(compress_bounded(sz2_codec, x, 1e-3), 1000)) <= 1e-3


@pytest.fixture(scope="module")
def sz2_blob(sz2_codec):
    return compress_bounded(sz2_codec, pruned(5000), 1e-3)


_REFUSE_ALL = """
import pickle, sys
from deepsz_caffe.codecs import get_lossy
from deepsz_caffe.errors import CodecError
codec = get_lossy("sz2")
accepted = []
for i, (blob, n) in enumerate(pickle.load(sys.stdin.buffer)):
    try:
        codec.decompress(blob, n)
        accepted.append(i)
    except CodecError:
        pass
print("accepted", accepted)
"""


def assert_sz2_refuses(cases):
    """Decode each (blob, n) in a child: SZ calls exit(0) on bad input, which would end
    pytest itself with status 0, so only the child's final line proves every case was refused."""
    run = subprocess.run(
        [sys.executable, "-c", _REFUSE_ALL], input=pickle.dumps(cases), cwd=REPO,
        capture_output=True, timeout=120,
    )
    assert run.returncode == 0 and run.stdout.strip() == b"accepted []", run


def test_sz2_refuses_every_corrupted_byte_and_truncation(sz2_blob):
    flipped = []
    for pos in range(len(sz2_blob)):
        bad = bytearray(sz2_blob)
        bad[pos] ^= 0x5A
        flipped.append((bytes(bad), 5000))
    truncated = [(sz2_blob[:length], 5000) for length in range(len(sz2_blob))]
    assert_sz2_refuses(flipped + truncated)


def test_sz2_refuses_forged_frames(sz2_codec, sz2_blob):
    def frame(n, payload):
        return struct.pack("<BQI", sz2_codec.mode_id, n, zlib.crc32(payload)) + payload

    payload = sz2_blob[HEADER:]
    other_version = b"\x02\x00\x00\x00" + payload[4:]
    with pytest.raises(CodecError, match="written by SZ 2.0.0.0"):
        sz2_codec.decompress(frame(5000, other_version), 5000)
    assert_sz2_refuses([
        (frame(5, payload), 5),  # SZ mishandles n <= 20: such frames must be raw
        (frame(5000, payload[:4]), 5000),  # version bytes and no stream
        (frame(5000, other_version), 5000),
        (sz2_blob, 4999),
        (sz2_blob, 5001),
        (sz2_blob, 0),
    ])


def test_missing_sz2_library_is_a_codec_error(tmp_path):
    code = (
        "from deepsz_caffe.codecs import get_lossy\n"
        "from deepsz_caffe.errors import CodecError\n"
        "try:\n"
        "    get_lossy('sz2')\n"
        "except CodecError as e:\n"
        "    print(e)\n"
    )
    env = {"DEEPSZ_SZ_LIB": str(tmp_path / "libSZ.so"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert "hdf5plugin" in run.stdout and "DEEPSZ_SZ_LIB" in run.stdout, run


_THREAD_STRESS = """
import threading
import numpy as np
from deepsz_caffe.codecs import get_lossy
codec = get_lossy("sz2")
inputs = [np.random.default_rng(s).normal(0, 0.02, 50_000).astype(np.float32) for s in range(16)]
expected = [codec.decompress(codec.compress(x, 1e-3), x.size) for x in inputs]
wrong = []
def work(i):
    for _ in range(10):
        if not np.array_equal(codec.decompress(codec.compress(inputs[i], 1e-3), 50_000), expected[i]):
            wrong.append(i)
threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("wrong", len(wrong))
"""


def test_sz2_lock_serialises_threads():
    """Unlocked, this stress segfaulted about 1 run in 10; run apart so a crash is a clean failure."""
    run = subprocess.run(
        [sys.executable, "-c", _THREAD_STRESS], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and run.stdout.strip() == "wrong 0", run


@pytest.mark.parametrize("name", ["sz3", "zfp"])
@pytest.mark.parametrize("eb", BOUNDS)
def test_other_codecs_bound(name, eb):
    codec = get_lossy(name)
    for n in (0, 1, RAW_MAX, RAW_MAX + 1, 1000, 200_000):
        x = pruned(n, seed=n)
        blob = compress_bounded(codec, x, eb)
        assert blob[0] == (0 if n <= RAW_MAX else codec.mode_id)
        assert max_error(x, codec.decompress(blob, n)) <= eb


def test_zfp_values_below_tolerance_keep_the_bound():
    """A ZFP block found by search where zfpy with tolerance = eb overshoots to 1.12 eb."""
    block = [-9.946576756192371e-05, -0.0038768730591982603, -0.002797727007418871, -0.0036899964325129986]
    x = np.array(block * 6, dtype=np.float32)
    codec = get_lossy("zfp")
    assert max_error(x, codec.decompress(compress_bounded(codec, x, 1e-2), x.size)) <= 1e-2


def test_bound_violation_is_raised():
    class LooseZFP(ZFPCodec):
        def _encode(self, data, error_bound):
            return super()._encode(data, 16 * error_bound)

    with pytest.raises(BoundViolation, match="100000 values"):
        compress_bounded(LooseZFP(), pruned(100_000), 1e-3)


@pytest.mark.parametrize("name", ["sz3", "zfp"])  # sz2: in a child process above
def test_wrong_n_and_corruption_refused(name):
    codec = get_lossy(name)
    blob = compress_bounded(codec, pruned(3000), 1e-3)
    for n in (0, 2999, 3001):
        with pytest.raises(CodecError, match="expected"):
            codec.decompress(blob, n)
    bad = bytearray(blob)
    bad[-1] ^= 1
    with pytest.raises(CodecError, match="checksum"):
        codec.decompress(bytes(bad), 3000)


def test_streams_of_one_codec_are_refused_by_another():
    blob = compress_bounded(get_lossy("sz2"), pruned(3000), 1e-3)
    for name in ("sz3", "zfp"):  # not into sz2: a stray stream could make SZ exit(0)
        with pytest.raises(CodecError, match="mode"):
            get_lossy(name).decompress(blob, 3000)


@pytest.mark.parametrize("eb", [0, 0.0, -1e-3, float("nan"), float("inf"), -float("inf")])
def test_invalid_error_bound(sz2_codec, eb):
    with pytest.raises(ConfigError, match="error bound"):
        compress_bounded(sz2_codec, pruned(100), eb)


@pytest.mark.parametrize(
    "data",
    [
        np.array([0.1, np.nan] * 20, dtype=np.float32),
        np.array([0.1, np.inf] * 20, dtype=np.float32),
        np.zeros(100, dtype=np.float64),
        np.zeros((10, 10), dtype=np.float32),
    ],
)
def test_invalid_data(sz2_codec, data):
    with pytest.raises(CodecError):
        compress_bounded(sz2_codec, data, 1e-3)


def test_unknown_lossy_codec():
    with pytest.raises(CodecError, match=", ".join(LOSSY_CODECS)):
        get_lossy("sz4")


def test_missing_package_names_pip_requirement(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysz", None)  # makes `import pysz` fail
    monkeypatch.delitem(sys.modules, "deepsz_caffe.codecs.sz3", raising=False)
    with pytest.raises(CodecError, match="pip install pysz"):
        get_lossy("sz3")


# ---- lossless index codecs ----

@pytest.mark.parametrize("codec", PAPER_INDEX_CODECS + ("best",))
@pytest.mark.parametrize(
    "raw",
    [b"", b"\x01", gap_bytes(), gap_bytes(keep=0.01), np.random.default_rng(1).bytes(5000)],
    ids=["empty", "one", "gaps8", "gaps1", "random"],
)
def test_index_round_trip(codec, raw):
    used, blob = compress_index(raw, codec)
    assert used in PAPER_INDEX_CODECS and (codec == "best" or used == codec)
    assert decompress_index(blob, used, len(raw)) == raw


def test_best_picks_the_smallest():
    raw = gap_bytes()
    sizes = {name: len(compress_index(raw, name)[1]) for name in PAPER_INDEX_CODECS}
    used, blob = compress_index(raw, "best")
    assert len(blob) == min(sizes.values()) and sizes[used] == len(blob)


def test_unknown_index_codec():
    with pytest.raises(CodecError, match="gzip, zstd, blosc"):
        compress_index(b"abc", "lzma")
    with pytest.raises(CodecError, match="unknown"):
        decompress_index(b"abc", "best", 3)


@pytest.mark.parametrize("codec", PAPER_INDEX_CODECS)
def test_index_wrong_size_and_truncation(codec):
    raw = gap_bytes(20_000)
    _, blob = compress_index(raw, codec)
    for size in (0, len(raw) - 1, len(raw) + 1):
        with pytest.raises(CodecError):
            decompress_index(blob, codec, size)
    for length in range(0, len(blob), 97):
        with pytest.raises(CodecError):
            decompress_index(blob[:length], codec, len(raw))


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_index_corruption_detected_by_checksummed_codecs(codec):
    raw = gap_bytes(20_000)
    _, blob = compress_index(raw, codec)
    for pos in range(0, len(blob), 13):
        bad = bytearray(blob)
        bad[pos] ^= 0x5A
        with pytest.raises(CodecError):
            decompress_index(bytes(bad), codec, len(raw))


def test_blosc_header_corruption_detected():
    raw = gap_bytes(20_000)
    _, blob = compress_index(raw, "blosc")
    bad = bytearray(blob)
    bad[0:16] = bytes(16)
    with pytest.raises(CodecError):
        decompress_index(bytes(bad), "blosc", len(raw))


def test_lossless_helpers():
    raw = np.arange(10_000, dtype=np.float32).tobytes()
    blob = compress_lossless(raw)
    assert len(blob) < len(raw)
    assert decompress_lossless(blob, len(raw)) == raw
    with pytest.raises(CodecError):
        decompress_lossless(blob[:-3], len(raw))


def test_sz2_streams_are_reproducible_across_processes():
    """SZ 2 leaves bytes uninitialised; with M_PERTURB set around compress, fresh processes
    write identical streams (so assessment sizes do not depend on which worker ran them)."""
    import subprocess
    import sys

    code = ("import hashlib, numpy as np; from deepsz_caffe.codecs import get_lossy; "
            "x = np.random.default_rng(0).normal(0, 0.02, 80000).astype(np.float32); "
            "junk = [np.empty(n) for n in range(1, 5000, 7)]; "
            "print(hashlib.sha256(get_lossy('sz2').compress(x, 0.01)).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout for _ in range(3)}
    assert len(digests) == 1


# ---- untrusted streams: what a stream declares is checked before any C code sees it ----------

def _data(kind: str, n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    x = {"normal": lambda: rng.normal(0, 0.05, n), "constant": lambda: np.full(n, 0.3),
         "zeros": lambda: np.zeros(n), "huge": lambda: rng.normal(0, 1, n) * 1e30,
         "outliers": lambda: np.where(rng.random(n) < 0.01, 1e6, rng.normal(0, 0.01, n))}[kind]()
    return x.astype(np.float32)


@pytest.mark.parametrize("name", LOSSY_CODECS)
@pytest.mark.parametrize("kind", ["normal", "constant", "zeros", "huge", "outliers"])
def test_genuine_streams_pass_the_untrusted_checks(name, kind):
    """Every mode a backend writes (SZ 2: predicted, constant, lossless) decodes untrusted, in the
    child process, to exactly what the trusted path gives."""
    codec = get_lossy(name)
    for n in (RAW_MAX + 1, 1000, 30_000):
        for eb in (0.5, 1e-3, 1e-7):
            try:
                blob = compress_bounded(codec, _data(kind, n), eb)
            except BoundViolation:  # ZFP on values of 1e30: no stream to decode
                continue
            assert np.array_equal(codec.decompress(blob, n), codec.decompress(blob, n, trusted=True))


@pytest.mark.parametrize("name", LOSSY_CODECS)
def test_raw_frames_only_for_small_arrays(name):
    codec = get_lossy(name)
    payload = np.zeros(RAW_MAX + 1, np.float32).tobytes()
    blob = struct.pack("<BQI", 0, RAW_MAX + 1, zlib.crc32(payload)) + payload
    with pytest.raises(CodecError, match="21 values stored raw; only up to 20 ever are"):
        codec.decompress(blob, RAW_MAX + 1)


def _reframe(codec, blob: bytes, payload: bytes) -> bytes:
    return struct.pack("<BQI", codec.mode_id, struct.unpack_from("<Q", blob, 1)[0],
                       zlib.crc32(payload)) + payload


def _sz2_flat(sz2_codec, n=30_000, eb=1e-3):
    import zstandard

    blob = compress_bounded(sz2_codec, _data("normal", n), eb)
    payload = blob[HEADER:]
    return blob, payload[:4], zstandard.ZstdDecompressor().decompress(payload[4:])


@pytest.mark.parametrize("offset, raw, message", [
    (32, struct.pack(">Q", 29_999), "holds 29999 values, expected 30000"),
    (32, struct.pack(">Q", 2 ** 63), "holds 9223372036854775808 values"),
    (0, bytes([2, 1, 11]), "written by SZ 2.1.11"),
    (3, b"\x48", "stream flags 0x48"),
    (44, struct.pack(">I", 2 ** 31 - 1), "header is inconsistent"),
    (53, struct.pack(">d", float("nan")), "header is inconsistent"),
    (61, struct.pack(">Q", 2 ** 62), "header is inconsistent"),
    (77, struct.pack(">Q", 2 ** 62), "header is inconsistent"),
])
def test_sz2_stream_header_is_checked(sz2_codec, offset, raw, message):
    """SZ 2 ignores the count it stores (a stream of n +- 1 values decoded silently) and crashes
    on forged sizes: both are read here first, from the zstd-compressed flat bytes."""
    import zstandard

    blob, version, flat = _sz2_flat(sz2_codec)
    forged = flat[:offset] + raw + flat[offset + len(raw):]
    bad = _reframe(sz2_codec, blob, version + zstandard.ZstdCompressor().compress(forged))
    with pytest.raises(CodecError, match=message):
        sz2_codec.decompress(bad, 30_000)


def test_sz2_stream_that_is_not_zstd_is_refused(sz2_codec):
    """Uncompressed flat bytes made SZ 2 free our buffer (a double free): refused unless SZ
    itself would read them raw (40 or 44 bytes: constant data)."""
    blob, version, flat = _sz2_flat(sz2_codec)
    with pytest.raises(CodecError, match="not zstd-compressed"):
        sz2_codec.decompress(_reframe(sz2_codec, blob, version + flat), 30_000)
    with pytest.raises(CodecError, match="declares"):  # a flat size no stream of n values has
        import zstandard

        bomb = zstandard.ZstdCompressor().compress(flat + bytes(16 * 30_000 + sz2._TREE_MAX))
        sz2_codec.decompress(_reframe(sz2_codec, blob, version + bomb), 30_000)


def test_sz3_stream_header_is_checked():
    codec = get_lossy("sz3")
    blob = compress_bounded(codec, _data("normal", 30_000), 1e-3)
    payload = blob[HEADER:]
    for forged, message in ((b"\0\0\0\0" + payload[4:], "magic/version"),
                            (payload[:8] + struct.pack("<Q", len(payload)) + payload[16:], "impossible"),
                            (payload[:16] + struct.pack("<Q", 10 ** 9) + payload[24:], "impossible"),
                            (payload[:-3], "configuration is missing or malformed")):
        with pytest.raises(CodecError, match=message):
            codec.decompress(_reframe(codec, blob, forged), 30_000)
    other = compress_bounded(codec, _data("normal", 29_999), 1e-3)[HEADER:]
    with pytest.raises(CodecError, match="holds 29999 values"):
        codec.decompress(_reframe(codec, blob, other), 30_000)


def test_zfp_stream_header_is_checked():
    codec = get_lossy("zfp")
    blob = compress_bounded(codec, _data("normal", 30_000), 1e-3)
    payload = blob[HEADER:]
    bits = int.from_bytes(payload[:12], "little")
    nx_field = ((1 << 48) - 1) << 36  # nx - 1, bits 36-83
    huge_nx = ((bits & ~nx_field) | ((2 ** 48 - 2) << 36)).to_bytes(12, "little") + payload[12:]
    for forged, message in ((b"x" + payload[1:], "not that of zfpy"),
                            (huge_nx, "holds 281474976710655 values")):
        with pytest.raises(CodecError, match=message):
            codec.decompress(_reframe(codec, blob, forged), 30_000)


def test_lossless_streams_account_for_every_byte():
    import zstandard

    raw = gap_bytes(20_000)
    zstd = compress_index(raw, "zstd")[1]
    gzip = compress_index(raw, "gzip")[1]
    blosc = compress_index(raw, "blosc")[1]
    no_checksum = zstandard.ZstdCompressor(write_checksum=False).compress(raw)
    for codec, blob, message in (("zstd", zstd + bytes(4), "unused data"),
                                 ("zstd", no_checksum, "no checksum"),
                                 ("gzip", gzip + bytes(4), "4 bytes after the end"),
                                 ("blosc", blosc + bytes(4), "declares")):
        with pytest.raises(CodecError, match=message):
            decompress_index(blob, codec, len(raw))
