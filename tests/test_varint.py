"""The one LEB128 varint, against hand-made bytes and protobuf's own varints."""
import numpy as np
import pytest

from deepsz_caffe import varint


@pytest.mark.parametrize("value, raw", [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"),
                                        (300, b"\xac\x02"), (2**64 - 1, b"\xff" * 9 + b"\x01")])
def test_encode_and_decode_known_bytes(value, raw):
    assert varint.encode_one(value) == raw
    assert varint.decode(raw + b"tail", 0) == (value, len(raw))


def test_matches_protobufs_varints():
    from google.protobuf.internal import encoder

    for value in (0, 5, 127, 128, 16383, 16384, 2**31, 2**63 + 7):
        assert varint.encode_one(value) == encoder._VarintBytes(value)


def test_truncated_and_overlong_varints_are_refused():
    with pytest.raises(varint.VarintError, match="truncated"):
        varint.decode(b"\x80\x80", 0)
    with pytest.raises(varint.VarintError, match="longer than 10 bytes"):
        varint.decode(b"\x80" * 11 + b"\x01", 0)
    with pytest.raises(varint.VarintError, match="longer than 2 bytes"):
        varint.decode(b"\x80\x80\x01", 0, max_bytes=2)


def test_many_and_array_decoders_agree():
    values = [0, 1, 127, 128, 5000, 2**20, 2**34]
    blob = varint.encode(values)
    assert varint.decode_many(blob, 0, len(values)) == (values, len(blob))
    assert varint.decode_array(blob, len(values), max_bytes=10).tolist() == values
    assert varint.decode_array(b"", 0, max_bytes=5).dtype == np.int64
    with pytest.raises(varint.VarintError):
        varint.decode_array(blob, len(values) + 1, max_bytes=10)   # fewer than asked
    with pytest.raises(varint.VarintError):
        varint.decode_array(blob[:-1], len(values) - 1, max_bytes=10)  # ends mid-varint
    with pytest.raises(varint.VarintError):
        varint.decode_array(varint.encode([2**35]), 1, max_bytes=5)   # too long for the format
