"""The .dsz container: exact round trip, and every corruption is caught by our own checks."""
import struct

import pytest

from deepsz_caffe.format import container
from deepsz_caffe.errors import ContainerError

SECTIONS = {"skeleton": b"\x01\x02" * 50, "ip1/data": bytes(range(256)), "ip1/index": b"", "x": b"z"}


def test_round_trip(tmp_path):
    path = container.write(tmp_path / "m.dsz", {"network": "n", "layers": [{"a": 1}]}, SECTIONS)
    header, sections = container.read(path)
    assert header == {"network": "n", "layers": [{"a": 1}]}
    assert sections == SECTIONS and list(sections) == list(SECTIONS)


def test_every_single_byte_corruption_is_detected():
    buf = container.pack({"network": "n"}, SECTIONS)
    for pos in range(len(buf)):
        bad = bytearray(buf)
        bad[pos] ^= 0x5A
        with pytest.raises(ContainerError):
            container.unpack(bytes(bad))


def test_every_truncation_and_extension_is_detected():
    buf = container.pack({"network": "n"}, SECTIONS)
    for cut in range(len(buf)):
        with pytest.raises(ContainerError):
            container.unpack(buf[:cut])
    with pytest.raises(ContainerError, match="trailing"):
        container.unpack(buf + b"\0")


def test_wrong_version_and_magic_are_named():
    buf = bytearray(container.pack({}, {}))
    struct.pack_into("<H", buf, 4, container.FORMAT_VERSION + 1)
    with pytest.raises(ContainerError, match="version"):
        container.unpack(bytes(buf))
    with pytest.raises(ContainerError, match="not a .dsz"):
        container.unpack(b"PK\x03\x04" + bytes(40))


def test_write_is_atomic_and_checks_directory(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        container.write(tmp_path / "missing" / "m.dsz", {}, SECTIONS)
    path = tmp_path / "m.dsz"
    container.write(path, {}, SECTIONS)
    assert [p.name for p in tmp_path.iterdir()] == ["m.dsz"]  # no temp files left behind


def test_missing_file_is_a_container_error(tmp_path):
    with pytest.raises(ContainerError, match="cannot read"):
        container.read(tmp_path / "nope.dsz")
