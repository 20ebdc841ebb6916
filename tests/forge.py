"""Forger of hostile `.dsz` files (issue 12): re-serialise a container with chosen header fields
and section payloads and RECOMPUTED CRCs, and build a reproducible corpus of forged variants of
genuine files encoded here.

A CRC catches accidents, not forgeries: anyone can recompute it. Every file written here passes
the container's CRC checks (and the codec frames' own CRCs where a payload is forged), so it
exercises what lies behind them. The generators live in forge_header.py, forge_payload.py and
forge_index.py; this module holds the container format, the genuine inputs and the corpus.

No forged file may crash, hang, print a traceback or exit 0 without output. Beyond that, each
says what `deepsz decode` and `deepsz inspect` must do (Forgery.decode / .inspect): "reject" where
the defect can be seen by checking what the header, skeleton, section table and stream headers
declare against each other (counts, sizes, shapes, types, versions, magic numbers, checksums),
"safe" where it cannot: changed entropy-coded bytes may decode to other weights (a CRC is not
authentication). `inspect` reads the header only, so it must reject what the header alone shows
(a wrong JSON type, a non-finite or negative number, a missing key, duplicates, deep nesting).
Forgeries no decoder can tell from a genuine file at all (another positive error bound, another
network name) are not generated.
"""
import copy
import dataclasses
import hashlib
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")

MAGIC = b"DSZ\x89"
FORMAT_VERSION = 1
PREAMBLE = struct.Struct("<4sHHII")  # magic, version, flags, header length, header CRC32
FRAME = struct.Struct("<BQI")        # lossy codec frame: mode, n values, payload CRC32
ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "prototxt" / "lenet300" / "deploy.prototxt"
KEPT = {"ip1": 0.08, "ip2": 0.09, "ip3": 0.26}      # the paper's LeNet-300-100 densities
BOUNDS = {"ip1": 0.02, "ip2": 0.01, "ip3": 0.005}   # distinct, so swapped values differ
# genuine file name -> (lossy codec, index codec): every lossy backend and every index codec;
# "ctx" writes its grouped mode for ip1 and its bitmap mode for ip2 and ip3
GENUINE = {"sz2-zstd": ("sz2", "zstd"), "sz3-gzip": ("sz3", "gzip"),
           "zfp-blosc": ("zfp", "blosc"), "quant-ctx": ("quant", "ctx"),
           "zquant-zstd": ("zquant", "zstd")}
DELETE = object()  # sentinel for `with_value`: remove the key


# ---- the container format, without any validation ----------------------------------------

def parse(src) -> tuple[dict, dict[str, bytes]]:
    """(header without its "sections" table, {name: payload}) of a .dsz path or image."""
    buf = src if isinstance(src, (bytes, bytearray)) else Path(src).read_bytes()
    magic, _version, _flags, head_len, _crc = PREAMBLE.unpack_from(buf)
    if magic != MAGIC:
        raise ValueError(f"not a .dsz image (magic {magic!r})")
    end = PREAMBLE.size + head_len
    header = json.loads(buf[PREAMBLE.size:end])
    sections, pos = {}, end
    for s in header.pop("sections"):
        sections[s["name"]] = bytes(buf[pos:pos + s["length"]])
        pos += s["length"]
    return header, sections


def crcs_check_out(buf: bytes) -> bool:
    """Whether the header CRC and every section CRC of an image match (what a CRC-only reader
    verifies), whatever the header says otherwise."""
    _magic, _version, _flags, head_len, head_crc = PREAMBLE.unpack_from(buf)
    head = buf[PREAMBLE.size:PREAMBLE.size + head_len]
    if zlib.crc32(head) != head_crc:
        return False
    try:
        table = json.loads(head)["sections"]
        pos = PREAMBLE.size + head_len
        for s in table:
            if zlib.crc32(buf[pos:pos + int(s["length"])]) != int(s["crc32"]):
                return False
            pos += int(s["length"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return True  # no table to check: the header itself is the forgery
    return True


def section_table(sections: dict[str, bytes]) -> list[dict]:
    return [{"name": n, "length": len(b), "crc32": zlib.crc32(b)} for n, b in sections.items()]


def header_text(header: dict, sections: dict[str, bytes], table: list | None = None) -> bytes:
    """The JSON header as the encoder writes it, with a section table (recomputed by default)."""
    table = section_table(sections) if table is None else table
    return json.dumps({**header, "sections": table}, sort_keys=True).encode("utf-8")


def serialize(header, sections: dict[str, bytes], *, table: list | None = None) -> bytes:
    """A .dsz image whose CRCs all check out. `header` is a dict (the section table is added) or
    the complete JSON text as bytes (used verbatim: deep nesting, duplicate keys)."""
    head = header if isinstance(header, bytes) else header_text(header, sections, table)
    pre = PREAMBLE.pack(MAGIC, FORMAT_VERSION, 0, len(head), zlib.crc32(head))
    return b"".join([pre, head, *sections.values()])


def frame(mode: int, n: int, payload: bytes) -> bytes:
    """A lossy stream frame claiming `n` values, its CRC recomputed."""
    return FRAME.pack(mode, n, zlib.crc32(payload)) + payload


def unframe(blob: bytes) -> tuple[int, int, bytes]:
    mode, n, _crc = FRAME.unpack_from(blob)
    return mode, n, blob[FRAME.size:]


def with_value(obj, path: tuple, value):
    """Deep copy of `obj` with the item at `path` replaced (or removed, for DELETE)."""
    out = copy.deepcopy(obj)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def nested_json(depth: int) -> str:
    """JSON text of `depth` nested lists: json.dumps itself would overflow the stack."""
    return "[" * depth + "]" * depth


# ---- genuine inputs -------------------------------------------------------------------------

def build_caffemodel(path, seed: int = 12) -> Path:
    """LeNet-300-100 (prototxt/lenet300/deploy.prototxt) with random weights pruned to KEPT."""
    import caffe

    caffe.set_mode_cpu()
    net = caffe.Net(str(DEPLOY), caffe.TEST)
    rng = np.random.default_rng(seed)
    for name, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            values = rng.normal(0.0, 0.05, blob.data.shape)
            if i == 0 and name in KEPT:
                values *= rng.random(blob.data.shape) < KEPT[name]
            blob.data[...] = values
    net.save(str(path))
    return Path(path)


@dataclass
class Genuine:
    """One genuine .dsz: what the forgers start from."""
    name: str
    path: Path
    lossy: str
    index: str
    header: dict = field(init=False)
    sections: dict = field(init=False)

    def __post_init__(self):
        self.header, self.sections = parse(self.path)

    def layer(self, i: int) -> dict:
        return self.header["layers"][i]

    def image(self, header=None, **replace: bytes) -> bytes:
        """The file with `header` and/or sections replaced (keyword: section name with '/' as '__').
        The header's byte counts of a replaced section (data_bytes, index_bytes, stored_bytes) are
        set to its new length, as a forger would set them: the forgery then reaches the decoder
        instead of failing the header's own arithmetic."""
        sections = dict(self.sections)
        header = copy.deepcopy(self.header if header is None else header)
        for key, payload in replace.items():
            name = key.replace("__", "/")
            sections[name] = payload
            _recount(header, name, len(payload))
        return serialize(header, sections)


def _recount(header: dict, section: str, length: int) -> None:
    layer, _, part = section.rpartition("/")
    for meta in header.get("layers", []):
        if meta.get("name") == layer and f"{part}_bytes" in meta:
            meta[f"{part}_bytes"] = length
    for blob in header.get("blobs", []):
        if blob.get("name") == section:
            blob["stored_bytes"] = length


def encode_genuine(directory) -> tuple[Path, dict[str, Genuine]]:
    """The caffemodel and one genuine .dsz per GENUINE entry, under `directory`."""
    from deepsz_caffe.format import network as dsz

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = build_caffemodel(directory / "lenet300.caffemodel")
    out = {}
    for name, (lossy, index) in GENUINE.items():
        path = directory / f"{name}.dsz"
        dsz.encode(model, path, error_bounds=BOUNDS, lossy=lossy, lossless=index)
        out[name] = Genuine(name, path, lossy, index)
    return model, out


# ---- the corpus -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Forgery:
    """One forged file. `decode`/`inspect`: "reject" (the command must refuse it: exit 1, one
    line) or "safe" (it may also succeed, e.g. entropy-coded bytes changed into other valid
    ones, but must not crash, hang, print a traceback or exit 0 without output)."""
    id: str          # "<genuine>/<category>/<what>": stable across runs, one test id each
    data: bytes
    decode: str = "reject"
    inspect: str = "safe"

    @property
    def category(self) -> str:
        return self.id.split("/")[1]

    @property
    def source(self) -> str:
        return self.id.split("/")[0]


def forgeries(genuine: dict[str, Genuine], model):
    """Every forgery of every genuine file; duplicates (by content) and no-ops dropped, ids made
    unique in generation order (so they are stable)."""
    import forge_bombs
    import forge_header
    import forge_index
    import forge_payload
    import forge_skeleton

    seen = {hashlib.sha256(g.path.read_bytes()).digest() for g in genuine.values()}
    ids: dict[str, int] = {}
    generators = [m.generate(genuine) for m in (forge_header, forge_payload, forge_index, forge_bombs)]
    generators.append(forge_skeleton.generate(genuine, Path(model).read_bytes()))
    for generator in generators:
        for f in generator:
            digest = hashlib.sha256(f.data).digest()
            if digest in seen:
                continue
            seen.add(digest)
            ids[f.id] = ids.get(f.id, 0) + 1
            yield f if ids[f.id] == 1 else dataclasses.replace(f, id=f"{f.id}#{ids[f.id]}")


def write_atomic(path, data: bytes) -> Path:
    """Write via a temp file and rename (permissions from the umask, as open() gives them)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def file_name(forgery_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+#-]", "_", forgery_id.replace("/", "__")) + ".dsz"


def write_corpus(directory) -> dict:
    """Genuine files, forged files and a manifest, under `directory`; returns the manifest."""
    directory = Path(directory)
    model, genuine = encode_genuine(directory / "genuine")
    (directory / "forged").mkdir(parents=True, exist_ok=True)
    files = []
    for f in forgeries(genuine, model):
        path = write_atomic(directory / "forged" / file_name(f.id), f.data)
        files.append({"id": f.id, "path": str(path), "source": f.source, "category": f.category,
                      "decode": f.decode, "inspect": f.inspect})
    manifest = {"model": str(model), "files": files,
                "genuine": {name: str(g.path) for name, g in genuine.items()}}
    write_atomic(directory / "manifest.json", json.dumps(manifest, indent=1).encode())
    return manifest
