"""Lossy-stream forgeries with valid CRCs (container and codec frame): frames claiming another
count or mode, truncated and bit-flipped payloads, genuine streams of another length, layer or
codec, and fields forged at their offsets in the SZ2, ZFP, SZ3 and quant stream headers.

"lying" frames claim the count the header expects, so the stream reaches the backend's decoder;
"honest" frames keep the stream's own count, which the framing must refuse. What a stream header
declares (counts, versions, magic numbers, sizes) must be checked ("reject"); changed coded bytes
and coding parameters may decode to other weights, safely ("safe")."""
import struct

import numpy as np
import zstandard

from deepsz_caffe.varint import encode_one as _leb128

from forge import Forgery, frame, unframe

TARGET = 1  # the layer (ip2) whose stream gets every forgery; n-variants go to every layer
SEED = 20190601


def _codec(name: str):
    from deepsz_caffe.codecs import get_lossy

    return get_lossy(name)


def _put(g, i: int, blob: bytes) -> bytes:
    return g.image(**{f"{g.layer(i)['name']}__data": blob})


def _values(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.05, n).astype(np.float32)


def _zstd(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(raw)


def _unzstd(blob: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(blob, max_output_size=1 << 26)


def _frame_forgeries(g, i: int):
    """The common frame: counts, modes, RAW storage, truncation."""
    from deepsz_caffe.codecs import LOSSY_CODECS

    mode, n, payload = unframe(g.sections[f"{g.layer(i)['name']}/data"])
    for what, (m, count, body) in {
        "n+1": (mode, n + 1, payload), "n-1": (mode, n - 1, payload), "n=2^63": (mode, 2 ** 63, payload),
        "raw-mode": (0, n, payload), "raw-of-4n-bytes": (0, n, _values(n, SEED).tobytes()),
        "raw-nan": (0, n, np.full(n, np.nan, np.float32).tobytes()), "mode-99": (99, n, payload),
        **{f"mode-of-{c}": (_codec(c).mode_id, n, payload) for c in LOSSY_CODECS if c != g.lossy},
    }.items():
        yield Forgery(f"{g.name}/payload/frame/{what}", _put(g, i, frame(m, count, body)))
    blob = g.sections[f"{g.layer(i)['name']}/data"]
    for cut in (0, 1, 12):
        yield Forgery(f"{g.name}/payload/frame/cut-{cut}", _put(g, i, blob[:cut]))


def _generic_payload(g, i: int):
    """Truncations, appended bytes and seeded bit flips, frame CRC recomputed."""
    mode, n, payload = unframe(g.sections[f"{g.layer(i)['name']}/data"])
    for cut in sorted({1, 4, 8, 16, 32, len(payload) // 2, len(payload) - 1}):
        yield Forgery(f"{g.name}/payload/cut-{cut}", _put(g, i, frame(mode, n, payload[:cut])), "safe")
    yield Forgery(f"{g.name}/payload/append-zeros", _put(g, i, frame(mode, n, payload + bytes(16))), "safe")
    rng = np.random.default_rng(SEED + i)
    for pos in sorted(rng.choice(len(payload) * 8, size=6, replace=False)):
        flipped = bytearray(payload)
        flipped[pos // 8] ^= 1 << (pos % 8)
        yield Forgery(f"{g.name}/payload/flip-bit-{pos}", _put(g, i, frame(mode, n, bytes(flipped))), "safe")


def _length_forgeries(g):
    """Genuine streams of n-1, n+1, n/2 and 100n values, and of another layer, under each layer."""
    codec = _codec(g.lossy)
    layers = g.header["layers"]
    for i, meta in enumerate(layers):
        mode, n, _ = unframe(g.sections[f"{meta['name']}/data"])
        for what, count in (("n-1", n - 1), ("n+1", n + 1), ("n/2", n // 2), ("100n", 100 * n)):
            _m, _c, body = unframe(codec.compress(_values(count, SEED + count), meta["error_bound"]))
            where = f"{g.name}/payload/{meta['name']}/stream-{what}"
            yield Forgery(f"{where}/lying", _put(g, i, frame(mode, n, body)))
            if i == TARGET:
                yield Forgery(f"{where}/honest",
                              _put(g, i, frame(mode, count, body)))
        other = layers[(i + 1) % len(layers)]
        _m, _c, body = unframe(g.sections[f"{other['name']}/data"])
        yield Forgery(f"{g.name}/payload/{meta['name']}/stream-of-{other['name']}/lying",
                      _put(g, i, frame(mode, n, body)))


def _foreign_forgeries(g, i: int):
    """Another backend's genuine stream of the right length, framed as this backend's."""
    from deepsz_caffe.codecs import LOSSY_CODECS

    mode, n, _ = unframe(g.sections[f"{g.layer(i)['name']}/data"])
    for other in LOSSY_CODECS:
        if other != g.lossy:
            _m, _c, body = unframe(_codec(other).compress(_values(n, SEED), g.layer(i)["error_bound"]))
            # quant has no magic number: another stream may parse as one (and decode to garbage)
            yield Forgery(f"{g.name}/payload/foreign-{other}", _put(g, i, frame(mode, n, body)),
                          "safe" if g.lossy in ("quant", "zquant") else "reject")


def _sz2_fields(g, i: int):
    """SZ 2: the 4 library version bytes we prepend, then a zstd frame of SZ's flat bytes, whose
    fields (big endian) we forge at their offsets: version 0-2, flags 3, data length 32-39,
    quantisation intervals 40-47, median 48, reqLength 52, realPrecision 53-60, sizes 61-92."""
    mode, n, payload = unframe(g.sections[f"{g.layer(i)['name']}/data"])
    version, inner = payload[:4], _unzstd(payload[4:])

    def put(what, flat: bytes, prefix: bytes = version, pack=True):
        body = prefix + (_zstd(flat) if pack else flat)
        checkable = what.startswith(("prefix-", "version-", "length-"))
        return Forgery(f"{g.name}/payload/sz2/{what}", _put(g, i, frame(mode, n, body)),
                       "reject" if checkable else "safe")

    def at(offset: int, raw: bytes) -> bytes:
        return inner[:offset] + raw + inner[offset + len(raw):]

    yield put("prefix-version-0.0.0.0", inner, bytes(4))
    for v in ((2, 1, 11), (1, 4, 13), (0, 0, 0), (255, 255, 255)):
        yield put(f"version-{'.'.join(map(str, v))}", at(0, bytes(v)))
    for bit in range(8):
        yield put(f"flags-bit-{bit}", at(3, bytes([inner[3] ^ (1 << bit)])))
    for what, count in (("n-1", n - 1), ("n+1", n + 1), ("0", 0), ("n/2", n // 2), ("100n", 100 * n),
                        ("2^32+n", 2 ** 32 + n), ("2^63-1", 2 ** 63 - 1)):
        yield put(f"length-{what}", at(32, struct.pack(">Q", count)))
    for off, name in ((40, "max-intervals"), (44, "intervals")):
        for v in (0, 1, 2 ** 31 - 1):
            yield put(f"{name}-{v}", at(off, struct.pack(">I", v)))
    yield put("median-nan", at(48, struct.pack(">f", float("nan"))))
    for v in (0, 64, 255):
        yield put(f"reqlength-{v}", at(52, bytes([v])))
    for v in (0.0, -1.0, float("nan"), float("inf")):
        yield put(f"precision-{v}", at(53, struct.pack(">d", v)))
    for off in range(61, 93, 8):
        yield put(f"size-at-{off}-huge", at(off, struct.pack(">Q", 2 ** 62)))
    for cut in (16, 64, len(inner) // 2):
        yield put(f"flat-cut-{cut}", inner[:cut])
    yield put("flat-not-zstd", inner, pack=False)


def _bits(data: bytes, start: int, width: int, value: int) -> bytes:
    """ZFP writes its header LSB first into 64-bit little-endian words: the whole stream read as
    one little-endian integer numbers its bits in write order."""
    x = int.from_bytes(data, "little")
    mask = ((1 << width) - 1) << start
    return ((x & ~mask) | ((value << start) & mask)).to_bytes(len(data), "little")


def _zfp_fields(g, i: int):
    """ZFP header: magic 'zfp' + codec version (bits 0-31), scalar type (32-33), dims (34-35),
    nx - 1 (36-83), mode (84-95; 0xfff announces a 64-bit mode)."""
    mode, n, payload = unframe(g.sections[f"{g.layer(i)['name']}/data"])

    def put(what, body):
        checkable = not what.startswith(("mode-", "cut-"))
        return Forgery(f"{g.name}/payload/zfp/{what}", _put(g, i, frame(mode, n, body)),
                       "reject" if checkable else "safe")

    yield put("magic", b"x" + payload[1:])
    for v in (4, 6, 255):
        yield put(f"codec-version-{v}", _bits(payload, 24, 8, v))
    for v in (0, 1, 3):
        yield put(f"type-{v}", _bits(payload, 32, 2, v))
    for v in (1, 2, 3):
        yield put(f"dims-{v + 1}", _bits(payload, 34, 2, v))
    for what, v in (("n", n), ("n-2", n - 2), ("0", 0), ("100n", 100 * n - 1), ("2^40", 2 ** 40),
                    ("2^48-1", 2 ** 48 - 1)):
        yield put(f"nx-{what}", _bits(payload, 36, 48, v))
    for v in (0, 0x800, 0xFFF, 0x7FF):
        yield put(f"mode-{v:#x}", _bits(payload, 84, 12, v))
    for cut in (8, 12, 16):
        yield put(f"cut-{cut}", payload[:cut])


def _sz3_fields(g, i: int):
    """SZ3 (pysz): magic 0-3, version 4-7, two u64 sizes 8-23, then a zstd frame whose flat
    bytes start with n (u64) and the configuration."""
    mode, n, payload = unframe(g.sections[f"{g.layer(i)['name']}/data"])
    head, inner = payload[:24], _unzstd(payload[24:])

    def put(what, h=head, flat=inner):
        checkable = not what.startswith(("config-", "flat-"))
        return Forgery(f"{g.name}/payload/sz3/{what}", _put(g, i, frame(mode, n, h + _zstd(flat))),
                       "reject" if checkable else "safe")

    yield put("magic", h=b"\0\0\0\0" + head[4:])
    yield put("version", h=head[:4] + b"\xff" * 4 + head[8:])
    for off in (8, 16):
        for v in (0, 1, 2 ** 40, 2 ** 64 - 1):
            yield put(f"size-at-{off}-{v}", h=head[:off] + struct.pack("<Q", v) + head[off + 8:])
    for what, v in (("n-1", n - 1), ("n+1", n + 1), ("0", 0), ("100n", 100 * n), ("2^40", 2 ** 40)):
        yield put(f"n-{what}", flat=struct.pack("<Q", v) + inner[8:])
    for off in range(8, 64, 4):
        yield put(f"config-flip-{off}", flat=inner[:off] + bytes([inner[off] ^ 0xFF]) + inner[off + 1:])
    yield put("flat-cut-half", flat=inner[:len(inner) // 2])


def _zquant_fields(g, i: int):
    """zquant: version byte, value count (LEB128), then quant's fields."""
    mode, n, payload = unframe(g.sections[f"{g.layer(i)['name']}/data"])
    start = 1 + len(_leb128(n))

    def put(what, body):
        return Forgery(f"{g.name}/payload/zquant/{what}", _put(g, i, frame(mode, n, body)))

    for v in (0, 2, 255):
        yield put(f"version-{v}", bytes([v]) + payload[1:])
    for v in (n - 1, n + 1, 2 ** 63):
        yield put(f"count-{v}", payload[:1] + _leb128(v) + payload[start:])
    yield put("count-unterminated", payload[:1] + b"\xff" * 10)
    yield from _quant_fields(g, i, start)


def _quant_fields(g, i: int, start: int = 0):
    """quant: step (f64 = 2 eb), table (LEB128: K, zigzag lo, K counts), escapes, range-coded words."""
    mode, n, whole = unframe(g.sections[f"{g.layer(i)['name']}/data"])
    prefix, payload = whole[:start], whole[start:]
    (step,) = struct.unpack_from("<d", payload)

    def put(what, body, expect="reject"):
        return Forgery(f"{g.name}/payload/{g.lossy}/{what}", _put(g, i, frame(mode, n, prefix + body)),
                       expect)

    for v in (float("nan"), 0.0, -step, float("inf")):
        yield put(f"step-{v:g}", struct.pack("<d", v) + payload[8:])
    for v in (1e-300, 1e300, 2 * step):  # finite and positive: other weights, not a bad stream
        yield put(f"step-{v:g}", struct.pack("<d", v) + payload[8:], "safe")
    table_end = 8 + (next(k for k, b in enumerate(payload[8:]) if b < 0x80) + 1)  # K's last byte
    for v in (0, 2 ** 40, 2 ** 63):
        yield put(f"slots-{v}", payload[:8] + _leb128(v) + payload[table_end:])
    k = 4 * max(1, (len(payload) - table_end) // 8)  # the tail: mostly range-coded words
    noise = np.random.default_rng(SEED).integers(0, 256, k, np.uint8).tobytes()
    yield put("tail-random", payload[:-k] + noise, "safe")
    yield put("tail-dropped-word", payload[:-4], "safe")
    yield put("tail-odd-byte", payload + b"\0")


_FIELDS = {"sz2": _sz2_fields, "zfp": _zfp_fields, "sz3": _sz3_fields, "quant": _quant_fields,
           "zquant": _zquant_fields}


def generate(genuine: dict):
    for g in genuine.values():
        yield from _frame_forgeries(g, TARGET)
        yield from _generic_payload(g, TARGET)
        yield from _length_forgeries(g)
        yield from _foreign_forgeries(g, TARGET)
        yield from _FIELDS.get(g.lossy, lambda *_: ())(g, TARGET)
