"""LEB128 varints (7 bits a byte, low group first, high bit = more follows), as protobuf writes
them and as the .dsz format stores its small integer tables. Pure; the one encoder and decoder."""
from collections.abc import Iterable

import numpy as np


class VarintError(ValueError):
    """The bytes do not hold the varint(s) asked for; callers word it for their format."""


def encode(values: Iterable[int]) -> bytes:
    """The varints of non-negative ints, concatenated."""
    out = bytearray()
    for v in values:
        while v >= 0x80:
            out.append(v & 0x7F | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


def encode_one(value: int) -> bytes:
    return encode((value,))


def decode(buf, pos: int, end: int | None = None, max_bytes: int = 10) -> tuple[int, int]:
    """(value, next position) of the varint at `pos`, at most `max_bytes` long and ending
    before `end` (default: the end of `buf`)."""
    end = len(buf) if end is None else end
    value = shift = 0
    for i in range(pos, min(pos + max_bytes, end)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    raise VarintError("truncated varint" if end - pos < max_bytes
                      else f"varint longer than {max_bytes} bytes")


def decode_many(buf, pos: int, count: int, max_bytes: int = 10) -> tuple[list[int], int]:
    """`count` consecutive varints from `pos`: (values, next position)."""
    values = []
    for _ in range(count):
        value, pos = decode(buf, pos, max_bytes=max_bytes)
        values.append(value)
    return values, pos


def decode_array(blob, count: int, max_bytes: int) -> np.ndarray:
    """Exactly `count` varints of at most `max_bytes` filling all of `blob`, decoded by numpy
    (no Python per value), as int64."""
    b = np.frombuffer(blob, dtype=np.uint8)
    ends = np.flatnonzero(b < 0x80)  # the last byte of each varint
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    if count < 0 or len(ends) != count or (b.size and ends[-1] != b.size - 1) or \
            np.any(ends - starts >= max_bytes):
        raise VarintError(f"{len(ends)} varints in {b.size} bytes, not {count} of at most {max_bytes}")
    if not count:
        return np.zeros(0, dtype=np.int64)
    shift = 7 * (np.arange(b.size) - np.repeat(starts, ends - starts + 1))
    return np.add.reduceat((b & 0x7F).astype(np.int64) << shift, starts)
