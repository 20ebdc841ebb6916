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


def _image(head: bytes, sections: dict) -> bytes:
    """A .dsz image with this exact header text (CRC right), as a forger would write it."""
    import zlib

    pre = struct.pack("<4sHHII", container.MAGIC, container.FORMAT_VERSION, 0, len(head), zlib.crc32(head))
    return pre + head + b"".join(sections.values())


def _table(sections: dict) -> str:
    import json
    import zlib

    return json.dumps([{"name": n, "length": len(b), "crc32": zlib.crc32(b)} for n, b in sections.items()])


@pytest.mark.parametrize("body, message", [
    ('{"a": 1, "a": 2, "sections": TABLE}', "duplicate key 'a'"),
    ('{"a": NaN, "sections": TABLE}', "NaN is not a JSON number"),
    ('{"a": -Infinity, "sections": TABLE}', "-Infinity is not a JSON number"),
    ('{"a": ' + "[" * 100_000 + "]" * 100_000 + ', "sections": TABLE}', "nested too deeply"),
    ('[TABLE]', "a JSON list, not an object"),
    ('{"a": 1}', "no section table"),
    ('{"a": "@", "sections": TABLE}', "not UTF-8"),  # @: bytes that are not UTF-8
])
def test_header_must_be_strict_json(body, message):
    head = body.replace("TABLE", _table(SECTIONS)).encode().replace(b"@", b"\xff\xfe")
    with pytest.raises(ContainerError, match=message):
        container.unpack(_image(head, SECTIONS))


@pytest.mark.parametrize("encoding, message", [("utf-8-sig", "byte-order mark"), ("utf-16", "not UTF-8"),
                                               ("utf-16-le", "not valid JSON"), ("utf-32", "not UTF-8"),
                                               ("utf-32-be", "not valid JSON")])
def test_header_is_utf8_without_bom(encoding, message):
    """json.loads would take each of these (it detects UTF-16/32 and skips a BOM): a .dsz
    header is UTF-8 JSON and nothing else."""
    head = ('{"a": 1, "sections": TABLE}'.replace("TABLE", _table(SECTIONS))).encode(encoding)
    with pytest.raises(ContainerError, match=message):
        container.unpack(_image(head, SECTIONS))


@pytest.mark.parametrize("key, value", [("length", "256"), ("length", 256.0), ("length", True),
                                        ("crc32", "1"), ("crc32", 2 ** 32), ("crc32", -1),
                                        ("name", 7), ("extra", 1)])
def test_section_table_types_are_not_coerced(key, value):
    import json

    table = json.loads(_table(SECTIONS))
    table[1][key] = value
    head = json.dumps({"sections": table}).encode()
    with pytest.raises(ContainerError, match="malformed section table entry"):
        container.unpack(_image(head, SECTIONS))


def test_a_section_named_twice_is_refused():
    import json

    table = json.loads(_table(SECTIONS))
    table[2]["name"] = table[1]["name"]
    with pytest.raises(ContainerError, match="names a section twice"):
        container.unpack(_image(json.dumps({"sections": table}).encode(), SECTIONS))


def test_a_huge_file_is_judged_by_its_table_before_it_is_read(tmp_path):
    """A genuine image followed by 2 GiB of hole: refused from the header, nothing else read."""
    import resource

    path = tmp_path / "big.dsz"
    with open(path, "wb") as f:
        f.write(container.pack({"network": "n"}, SECTIONS))
        f.truncate(2 << 30)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ContainerError, match="has trailing bytes"):
        container.read(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10  # KiB: < 64 MiB


def test_header_size_is_bounded():
    head = b'{"sections": [], "x": "' + b"a" * container.MAX_HEADER_BYTES + b'"}'
    with pytest.raises(ContainerError, match="over the"):
        container.unpack(_image(head, {}))


def test_sha256_is_reported_and_can_be_required(tmp_path):
    import hashlib

    path = container.write(tmp_path / "m.dsz", {"network": "n"}, SECTIONS)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert container.read_file(path).sha256 is None  # not computed unless asked for
    f = container.read_file(path, sha256=True)
    assert f.sha256 == digest and f.size == path.stat().st_size and f.sections == SECTIONS
    assert container.read_file(path, expect_sha256=digest.upper()).header == {"network": "n"}
    with pytest.raises(ContainerError, match="not the expected"):
        container.read_file(path, expect_sha256="0" * 64)
    with pytest.raises(ContainerError, match="64 hex digits"):
        container.read_file(path, expect_sha256="abc")


def test_the_sha256_is_checked_before_parsing(tmp_path):
    path = tmp_path / "junk.dsz"
    path.write_bytes(b"not a dsz at all")
    with pytest.raises(ContainerError, match="not the expected"):  # not "bad magic"
        container.read_file(path, expect_sha256="0" * 64)


@pytest.mark.parametrize("kind", ["fifo", "directory", "dev-zero"])
def test_inputs_that_are_not_files(tmp_path, kind):
    import os

    path = {"fifo": tmp_path / "fifo", "directory": tmp_path, "dev-zero": "/dev/zero"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(ContainerError, match="not a regular file|Is a directory"):
        container.read(path)


def test_sections_are_read_only_after_the_check(tmp_path, monkeypatch):
    """A refused file costs O(header): `check` sees the header and the table's lengths before a
    single section byte is read (issue 23: a 2.2 GB file was read twice over first)."""
    path = tmp_path / "huge.dsz"
    image = container.pack({"network": "n"}, SECTIONS)
    header, _ = container.unpack(image)
    table = [{"name": n, "length": len(b), "crc32": __import__("zlib").crc32(b)} for n, b in SECTIONS.items()]
    table.append({"name": "unreferenced", "length": 1 << 30, "crc32": 0})
    head = __import__("json").dumps({"network": "n", "sections": table}).encode()
    with open(path, "wb") as f:
        f.write(_image(head, SECTIONS))
        f.truncate(f.tell() + (1 << 30))  # a hole: no disk used
    reads = []
    real = container._read
    monkeypatch.setattr(container, "_read", lambda f, n, src: reads.append(n) or real(f, n, src))
    seen = {}

    def check(header, lengths):
        seen.update(lengths)
        if "unreferenced" in lengths:
            raise ContainerError("not referred to")

    with pytest.raises(ContainerError, match="not referred to"):
        container.read_file(path, check=check)
    assert seen["unreferenced"] == 1 << 30
    assert max(reads) < 4096  # the header only


def test_the_bytes_hashed_are_the_bytes_parsed(tmp_path):
    """--expect-sha256 against a file rewritten while it is read (here: between its header and
    its sections, by the check callback): refused, never the other file's sections."""
    path = tmp_path / "m.dsz"
    genuine = container.pack({"network": "n"}, SECTIONS)
    other = container.pack({"network": "n"}, {**SECTIONS, "ip1/data": bytes(256)})
    path.write_bytes(genuine)
    expect = __import__("hashlib").sha256(genuine).hexdigest()
    assert container.read_file(path, expect).sections == SECTIONS

    def rewrite(header, lengths):
        with open(path, "r+b") as f:
            f.write(other)

    with pytest.raises(ContainerError, match="changed while|not the expected"):
        container.read_file(path, expect, check=rewrite)


def test_a_file_that_grows_while_read_is_refused(tmp_path):
    path = tmp_path / "m.dsz"
    path.write_bytes(container.pack({"network": "n"}, SECTIONS))

    def grow(header, lengths):
        with open(path, "ab") as f:
            f.write(b"more")

    with pytest.raises(ContainerError, match="changed while"):
        container.read_file(path, check=grow)
