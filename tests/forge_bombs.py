"""Decompression bombs of the index coders and quant tables, and sections larger than what they
decode to (issue 23), all with valid CRCs; category "bomb".

ctx: a genuine coding (this repository's own encoders) of a mask that is consistent in itself,
n entries 255 positions apart, so 255 x n positions: the most the entry count allows, far more
than the layer has. Coded as one row (work arrays per position), as the most rows the bitmap
mode takes (work per row), and in the grouped mode (one row; one row per entry). quant: a table
of far more slots than values (the encoder never writes more than 4 per value), valid
otherwise. Oversized: a section padded to 8 MiB with the header's byte counts and every CRC
kept consistent, so only the size gives it away."""
import struct
import zlib

import numpy as np

from forge import Forgery, frame, unframe, with_value

from deepsz_caffe.varint import encode as _leb128

PAD = 8 << 20


def _ctx_stream(version: int, payload: bytes, gaps: np.ndarray) -> bytes:
    return struct.pack("<BII", version, zlib.crc32(payload), zlib.crc32(gaps.tobytes())) + payload


def _ctx_bombs(g):
    from deepsz_caffe.codecs.index import context, grouped

    i = max(range(len(g.header["layers"])), key=lambda k: g.layer(k)["n_entries"])
    meta = g.layer(i)
    n = meta["n_entries"]
    mask = np.zeros(255 * n, np.uint8)
    mask[254::255] = 1
    gaps = np.full(n, 255, np.uint8)
    where = f"{g.name}/bomb/ctx-{meta['name']}"
    streams = {
        "bitmap-one-row": (1, context._bitmap_encode(mask, mask.size, n)),
        "bitmap-most-rows": (1, context._bitmap_encode(mask, -(-mask.size // context._MAX_ROWS), n)),
        "grouped-one-row": (2, grouped.encode(mask, mask.size)),
        "grouped-row-per-entry": (2, grouped.encode(mask, 255)),
    }
    for what, (version, payload) in streams.items():
        yield Forgery(f"{where}/{what}-255x{n}",
                      g.image(**{f"{meta['name']}__index": _ctx_stream(version, payload, gaps)}))


def _quant_bombs(g):
    """A one-symbol stream (no coded words) whose table has `slots` slots, all values at lo."""
    i = 1
    meta = g.layer(i)
    mode, n, payload = unframe(g.sections[f"{meta['name']}/data"])
    step = payload[:8]
    for slots in (4 * n + 1, 2_000_000):
        table = _leb128([slots, 0, n] + [0] * (slots - 1))  # zigzag(lo) = 0, all n values in slot 0
        yield Forgery(f"{g.name}/bomb/quant-table-{slots}-slots",
                      g.image(**{f"{meta['name']}__data": frame(mode, n, step + table)}))


def _oversized(g):
    where = f"{g.name}/bomb/oversized"
    meta = g.layer(1)
    mode, n, payload = unframe(g.sections[f"{meta['name']}/data"])
    yield Forgery(f"{where}/{meta['name']}-data-8MiB",
                  g.image(**{f"{meta['name']}__data": frame(mode, n, payload + bytes(PAD))}))
    index = g.sections[f"{meta['name']}/index"]
    yield Forgery(f"{where}/{meta['name']}-index-8MiB",
                  g.image(**{f"{meta['name']}__index": index + bytes(PAD)}))
    blob = g.header["blobs"][0]
    yield Forgery(f"{where}/{blob['name']}-8MiB",
                  g.image(**{blob["name"].replace("/", "__"): g.sections[blob["name"]] + bytes(PAD)}))
    header = with_value(g.header, ("skeleton_bytes",), g.header["skeleton_bytes"])
    yield Forgery(f"{where}/skeleton-8MiB", g.image(header, skeleton=g.sections["skeleton"] + bytes(PAD)))


def generate(genuine: dict):
    for g in genuine.values():
        if any(m["index_codec"] == "ctx" for m in g.header["layers"]):
            yield from _ctx_bombs(g)
        if g.lossy == "quant":
            yield from _quant_bombs(g)
    yield from _oversized(next(iter(genuine.values())))
