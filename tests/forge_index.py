"""Index-stream forgeries with valid CRCs: truncations, flips, streams of another length or
layer, gap arrays that break the sparse form, and fields forged in the zstd frame header, the
zlib header, the blosc header, the ctx header, ctx's bitmap words and ctx's grouped layout
(head, section sizes, pcodec runs)."""
import struct
import zlib

import numpy as np

from forge import Forgery

TARGET = 1  # ip2: every index codec's stream gets the generic forgeries
SEED = 20190602
CTX_HEAD = struct.Struct("<BII")      # version (1 bitmap, 2 grouped), payload CRC, gaps CRC
GROUPED_HEAD = struct.Struct("<QQBB")  # bitmap length, row length, row split, column split


def _put(g, i: int, blob: bytes, header=None) -> bytes:
    return g.image(header, **{f"{g.layer(i)['name']}__index": blob})


def _index(g, i: int) -> bytes:
    return g.sections[f"{g.layer(i)['name']}/index"]


def _encode(codec: str, gaps: np.ndarray, row_length: int) -> bytes | None:
    """A genuine stream of `gaps`, or None where the codec cannot code them (ctx: a gap of 0)."""
    from deepsz_caffe.codecs.lossless import compress_index
    from deepsz_caffe.errors import CodecError

    try:
        return compress_index(gaps.astype(np.uint8).tobytes(), codec, row_length=row_length)[1]
    except CodecError:
        return None


def _generic(g, i: int):
    """Any codec: truncations, appended bytes, flips, and genuine streams of wrong gap arrays."""
    blob, meta = _index(g, i), g.layer(i)
    codec, n, row = meta["index_codec"], meta["n_entries"], meta["shape"][-1]
    where = f"{g.name}/index/{codec}"
    for cut in sorted({0, 1, 4, len(blob) // 2, len(blob) - 1}):
        yield Forgery(f"{where}/cut-{cut}", _put(g, i, blob[:cut]))
    yield Forgery(f"{where}/append-zeros", _put(g, i, blob + bytes(16)))
    rng = np.random.default_rng(SEED + i)
    for pos in sorted(rng.choice(len(blob) * 8, size=3, replace=False)):
        flipped = bytearray(blob)
        flipped[pos // 8] ^= 1 << (pos % 8)
        # blosc keeps no checksum: a flipped bit may decode to other gaps, safely
        yield Forgery(f"{where}/flip-bit-{pos}", _put(g, i, bytes(flipped)),
                      "safe" if codec == "blosc" else "reject")
    j = (i + 1) % len(g.header["layers"])
    yield Forgery(f"{where}/stream-of-{g.layer(j)['name']}", _put(g, i, _index(g, j)))
    ones = np.ones(n + 1, np.uint8)
    for what, gaps in (("n-1", ones[:n - 1]), ("n+1", ones), ("n/2", ones[:n // 2]),
                       ("overrun", np.full(n, 200, np.uint8)), ("zero-gap", np.r_[ones[:n - 1], 0])):
        stream = _encode(codec, gaps, row)
        if stream is not None:
            yield Forgery(f"{where}/gaps-{what}", _put(g, i, stream))


def _zstd(g, i: int):
    """Frame header: magic, descriptor (FCS size, single segment, checksum flag), content size."""
    blob = _index(g, i)
    fhd = blob[4]
    fcs_size = {0: 1 if fhd & 0x20 else 0, 1: 2, 2: 4, 3: 8}[fhd >> 6]
    at = 5 + (0 if fhd & 0x20 else 1) + (0, 1, 2, 4)[fhd & 3]
    if fcs_size == 2:
        declared = struct.unpack_from("<H", blob, at)[0] + 256
        for what, v in (("+1", declared + 1), ("-1", declared - 1)):
            forged = blob[:at] + struct.pack("<H", v - 256) + blob[at + 2:]
            yield Forgery(f"{g.name}/index/zstd/content-size{what}", _put(g, i, forged))
    no_checksum = blob[:4] + bytes([fhd & ~4]) + blob[5:]
    yield Forgery(f"{g.name}/index/zstd/no-checksum-flag", _put(g, i, no_checksum))
    yield Forgery(f"{g.name}/index/zstd/checksum", _put(g, i, blob[:-4] + bytes(4)))
    yield Forgery(f"{g.name}/index/zstd/magic", _put(g, i, b"\x29" + blob[1:]))


def _gzip(g, i: int):
    blob = _index(g, i)
    yield Forgery(f"{g.name}/index/gzip/method", _put(g, i, b"\x7f" + blob[1:]))
    yield Forgery(f"{g.name}/index/gzip/needs-dictionary", _put(g, i, bytes([blob[0], 0xBB]) + blob[2:]))
    yield Forgery(f"{g.name}/index/gzip/adler32", _put(g, i, blob[:-4] + bytes(4)))
    n = g.layer(i)["n_entries"]
    bomb = zlib.compress(b"\x01" * (64 << 20), 9)  # 64 MiB of gap 1 in 64 KiB
    yield Forgery(f"{g.name}/index/gzip/bomb-64MiB", _put(g, i, bomb))
    yield Forgery(f"{g.name}/index/gzip/raw-deflate", _put(g, i, zlib.compress(b"\x01" * n)[2:-4]))


def _blosc(g, i: int):
    """Header: version, versionlz, flags, typesize, nbytes, blocksize, cbytes (u32), block starts."""
    blob = _index(g, i)

    def field(offset: int, raw: bytes):
        return blob[:offset] + raw + blob[offset + len(raw):]

    u32 = struct.Struct("<I").pack
    for what, offset, raw in (
            ("version-0", 0, b"\0"), ("version-255", 0, b"\xff"), ("versionlz-255", 1, b"\xff"),
            ("flags-ff", 2, b"\xff"), ("flags-memcpyed", 2, bytes([blob[2] | 2])), ("typesize-0", 3, b"\0"),
            ("typesize-255", 3, b"\xff"), ("blocksize-0", 8, u32(0)), ("blocksize-1", 8, u32(1)),
            ("blocksize-2^31-1", 8, u32(2 ** 31 - 1)), ("cbytes-0", 12, u32(0)),
            ("cbytes+1", 12, u32(len(blob) + 1)), ("cbytes-2^31-1", 12, u32(2 ** 31 - 1)),
            ("bstart-2^31-1", 16, u32(2 ** 31 - 1)), ("bstart-end", 16, u32(len(blob))),
            ("bstart-neg", 16, b"\xff\xff\xff\xff"), ("bstart-0", 16, u32(0))):
        # typesize, versionlz and flags only steer (un)shuffling: other gaps at worst
        expect = "safe" if what.startswith(("typesize", "versionlz", "flags")) else "reject"
        yield Forgery(f"{g.name}/index/blosc/{what}", _put(g, i, field(offset, raw)), expect)


def _ctx(version: int, payload: bytes, gaps_crc: int) -> bytes:
    return CTX_HEAD.pack(version, zlib.crc32(payload), gaps_crc) + payload


def _ctx_bitmap(g, i: int):
    version, _crc, gaps_crc = CTX_HEAD.unpack_from(_index(g, i))
    payload = _index(g, i)[CTX_HEAD.size:]
    where = f"{g.name}/index/ctx-bitmap"
    for v in (0, 2, 3, 255):
        yield Forgery(f"{where}/version-{v}", _put(g, i, _ctx(v, payload, gaps_crc)))
    yield Forgery(f"{where}/gaps-crc", _put(g, i, _ctx(version, payload, gaps_crc ^ 1)))
    rng = np.random.default_rng(SEED)
    for k in range(3):
        noise = rng.integers(0, 2 ** 32, len(payload) // 4, dtype=np.uint32).astype("<u4").tobytes()
        yield Forgery(f"{where}/random-words-{k}", _put(g, i, _ctx(version, noise, gaps_crc)))
    for words in (1, 2, len(payload) // 8):
        yield Forgery(f"{where}/words-{words}", _put(g, i, _ctx(version, payload[:4 * words], gaps_crc)))
    yield Forgery(f"{where}/misaligned", _put(g, i, _ctx(version, payload + b"\0", gaps_crc)))
    yield Forgery(f"{where}/all-ones", _put(g, i, _ctx(version, b"\xff" * len(payload), gaps_crc)))


def _grouped_sections(payload: bytes) -> list[tuple[int, int]]:
    """(offset, size) of every length-prefixed section after the head."""
    out, pos = [], GROUPED_HEAD.size
    while pos + 4 <= len(payload):
        (size,) = struct.unpack_from("<I", payload, pos)
        out.append((pos, size))
        pos += 4 + size
    return out


def _ctx_grouped(g, i: int):
    version, _crc, gaps_crc = CTX_HEAD.unpack_from(_index(g, i))
    payload = _index(g, i)[CTX_HEAD.size:]
    length, row, rs, cs = GROUPED_HEAD.unpack_from(payload)
    n = g.layer(i)["n_entries"]
    where = f"{g.name}/index/ctx-grouped"

    def put(what, body, expect="reject"):
        return Forgery(f"{where}/{what}", _put(g, i, _ctx(2, body, gaps_crc)), expect)

    def head(**kw):
        f = {"length": length, "row": row, "rs": rs, "cs": cs, **kw}
        return GROUPED_HEAD.pack(f["length"], f["row"], f["rs"], f["cs"]) + payload[GROUPED_HEAD.size:]

    for v in (0, 1, n - 1, 255 * n + 1, 2 ** 63, 2 ** 64 - 1):
        yield put(f"length-{v}", head(length=v))
    for v in (0, length + 1, 2 ** 32):
        yield put(f"row-length-{v}", head(row=v))
    # an unsplit stream is one block in flat order: its row length changes nothing decoded
    yield put("row-length-1", head(row=1), "reject" if rs or cs else "safe")
    for what, kw in (("row-split-3", {"rs": 3}), ("row-split-255", {"rs": 255}),
                     ("col-split-other", {"cs": 8 if cs != 8 else 4}), ("splits-0-0", {"rs": 0, "cs": 0}),
                     ("row-split-other", {"rs": 1 if rs != 1 else 2})):
        yield put(what, head(**kw))
    sections = _grouped_sections(payload)
    first, size = sections[0]
    for what, v in (("0", 0), ("2^32-1", 2 ** 32 - 1), ("+1", size + 1)):
        yield put(f"section-size-{what}", payload[:first] + struct.pack("<I", v) + payload[first + 4:])
    runs = next((o, s) for o, s in reversed(sections) if s > 8)  # a pcodec block of runs
    for off in (0, 1, 2, 4, 8):
        p = bytearray(payload)
        p[runs[0] + 4 + off] ^= 0xFF
        yield put(f"pcodec-flip-{off}", bytes(p))
    yield put("trailing-bytes", payload + bytes(4))
    yield put("truncated-section", payload[:-1])


def _ctx_modes(g) -> dict[int, int]:
    """{ctx version byte (1 bitmap, 2 grouped): first layer whose index stream uses it}."""
    modes = {}
    for i, meta in enumerate(g.header["layers"]):
        if meta["index_codec"] == "ctx":
            modes.setdefault(_index(g, i)[0], i)
    return modes


def generate(genuine: dict):
    codec_forgeries = {"zstd": _zstd, "gzip": _gzip, "blosc": _blosc}
    for g in genuine.values():
        yield from _generic(g, TARGET)
        codec = g.layer(TARGET)["index_codec"]
        if codec in codec_forgeries:
            yield from codec_forgeries[codec](g, TARGET)
        modes = _ctx_modes(g)
        if 1 in modes:
            yield from _ctx_bitmap(g, modes[1])
        if 2 in modes:
            yield from _ctx_grouped(g, modes[2])
