"""Everything a .dsz header declares, checked before any of it is believed: decode and inspect
both call `validate`, so they refuse exactly the same files.

A CRC catches accidents, not forgeries, so the header is checked against itself, its sections
and the skeleton it carries: every field's JSON type and range (ints are ints, not bools, floats
or strings; numbers finite), names unique, the section table accounting for every section and
nothing else, derived fields recomputed (density, dense/CSR/raw bytes, stream lengths), and the
header's layers, blobs, types and shapes equal to the skeleton's, which must carry no values and
name the same network. Sizes are checked before anything is allocated: a shape must be the
skeleton's, entry counts fit their shape, the skeleton is bounded, and the whole model fits what
Caffe can read (wire.MAX_CAFFEMODEL_BYTES). What stays unchecked is what only decoding shows (the
streams' content, checked by the codecs) and what nothing can show: a forged file that is
consistent throughout decodes to whatever weights it holds (README: untrusted files).
"""
import math
import re

from ..caffe import wire
from ..codecs import LOSSY_CODECS
from ..codecs.lossless import ALL_INDEX_CODECS, decompress_lossless
from ..errors import CaffeIOError, ContainerError, DeepSZError
from ..sparse import CSR_BYTES_PER_ENTRY
from . import skeleton as skel

FORMAT_NAME = "deepsz-caffe"
MAX_SKELETON_BYTES = 16 << 20  # a net's structure without its weights (LeNet's: 364 bytes)
MAX_BLOB_AXES = 32             # Caffe's kMaxBlobAxes
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _count(v) -> bool:
    return type(v) is int and v >= 0


def _name(v) -> bool:
    return type(v) is str and v != ""


def _shape(v) -> bool:
    return type(v) is list and len(v) <= MAX_BLOB_AXES and all(_count(d) for d in v)


TOP = {"format": lambda v: v == FORMAT_NAME, "created_by": lambda v: type(v) is str,
       "network": lambda v: type(v) is str,
       "source_sha256": lambda v: type(v) is str and bool(_SHA256.fullmatch(v)),
       "skeleton_bytes": _count, "layers": lambda v: type(v) is list, "blobs": lambda v: type(v) is list}
LAYER = {"name": _name, "type": _name, "shape": _shape, "nnz": _count, "n_entries": _count,
         "density": lambda v: type(v) is float and 0.0 <= v <= 1.0,
         "error_bound": lambda v: type(v) is float and math.isfinite(v) and v > 0,
         "lossy_codec": lambda v: type(v) is str and v in LOSSY_CODECS,
         "index_codec": lambda v: type(v) is str and v in ALL_INDEX_CODECS,
         "dense_bytes": _count, "csr_bytes": _count, "data_bytes": _count, "index_bytes": _count}
KEPT = {"gap255_kept": _count, "gap255_kept_bytes": _count}  # both, or neither in older files
BLOB = {"name": _name, "layer": _name, "type": _name, "index": _count, "shape": _shape,
        "raw_bytes": _count, "stored_bytes": _count}


def validate(header: dict, sections: dict[str, bytes], source: str = "<dsz>") -> bytes:
    """The skeleton's bytes once header, sections and skeleton agree; ContainerError naming the
    first disagreement otherwise. `header` is the container's (without its section table)."""
    check_table(header, {name: len(data) for name, data in sections.items()}, source)
    try:
        skeleton = decompress_lossless(sections["skeleton"], header["skeleton_bytes"])
    except DeepSZError as e:
        raise ContainerError(f"{source}: skeleton section: {e}") from None
    _agree(header, skeleton, source)
    try:
        skel.check_parses(skeleton)
    except CaffeIOError as e:
        raise ContainerError(f"{source}: skeleton is not a Caffe net ({e})") from None
    return skeleton


def check_table(header: dict, lengths: dict[str, int], source: str = "<dsz>") -> None:
    """Everything the header and the section table ({name: length}) declare, checked before any
    section is read (container.read_file calls it): a refused file costs O(header) memory,
    whatever its size, and every section is bounded by the size it decodes to."""
    _fields(header, TOP, "header", source)
    for i, meta in enumerate(header["layers"]):
        _layer_fields(meta, i, source)
    for i, blob in enumerate(header["blobs"]):
        _fields(blob, BLOB, f"blob entry {i}", source)
    for what, names in (("layer", [m["name"] for m in header["layers"]]),
                        ("blob", [b["name"] for b in header["blobs"]])):
        if len(set(names)) != len(names):
            raise ContainerError(f"{source}: header lists {what} '{_twice(names)}' twice")
    _codec_versions(header, source)
    _section_table(header, lengths, source)
    for meta in header["layers"]:
        _layer_sizes(meta, lengths, source)
    for blob in header["blobs"]:
        _blob_sizes(blob, lengths, source)
    total = sum(m["dense_bytes"] for m in header["layers"]) + sum(b["raw_bytes"] for b in header["blobs"])
    if total > wire.MAX_CAFFEMODEL_BYTES:
        raise ContainerError(f"{source}: declares {total} bytes of weights, more than a caffemodel "
                             f"can hold ({wire.MAX_CAFFEMODEL_BYTES})")
    if header["skeleton_bytes"] > MAX_SKELETON_BYTES:
        raise ContainerError(f"{source}: declares a skeleton of {header['skeleton_bytes']} bytes, over "
                             f"the {MAX_SKELETON_BYTES}-byte limit (corrupt or forged)")
    _stream_bound("skeleton", lengths["skeleton"], _zstd_bound(header["skeleton_bytes"]), source)


def _zstd_bound(raw: int) -> int:
    """The most bytes zstd takes for `raw` bytes (its ZSTD_compressBound, with margin)."""
    return raw + raw // 128 + (1 << 16)


def _stream_bound(name: str, length: int, bound: int, source: str) -> None:
    if length > bound:
        raise ContainerError(f"{source}: section '{name}' holds {length} bytes, more than any "
                             f"encoder writes for what it decodes to ({bound}; corrupt or forged)")


def _fields(entry, spec: dict, what: str, source: str) -> None:
    if type(entry) is not dict:
        raise ContainerError(f"{source}: {what} is a JSON {type(entry).__name__}, not an object")
    for key, ok in spec.items():
        if key not in entry:
            raise ContainerError(f"{source}: {what} has no '{key}'")
        if not ok(entry[key]):
            raise ContainerError(f"{source}: {what} field '{key}' is invalid: {_clip(entry[key])}")


def _codec_versions(header: dict, source: str) -> None:
    """codec_versions names exactly the codecs the layers use plus zstd (older files: sz2_version)."""
    versions = header.get("codec_versions")
    if versions is None and type(header.get("sz2_version")) is str and "codec_versions" not in header:
        return
    if type(versions) is not dict or not all(type(v) is str for v in versions.values()):
        raise ContainerError(f"{source}: header field 'codec_versions' is invalid: {_clip(versions)}")
    layers = [m for m in header["layers"] if type(m) is dict]
    used = {m.get("lossy_codec") for m in layers} | {m.get("index_codec") for m in layers} | {"zstd"}
    if set(versions) != used:
        raise ContainerError(f"{source}: codec_versions names {sorted(versions)}, the layers use "
                             f"{sorted(map(str, used))}")


def _layer_fields(meta, i: int, source: str) -> None:
    _fields(meta, LAYER, f"layer entry {i}", source)
    present = set(KEPT) & set(meta)
    if present and present != set(KEPT):
        raise ContainerError(f"{source}: layer '{meta['name']}' has only one of {' and '.join(KEPT)}")
    _fields(meta, {k: v for k, v in KEPT.items() if k in meta}, f"layer '{meta['name']}'", source)
    if "zeroed" in meta:  # kept weights within the bound of 0, stored as pruned (zquant)
        _fields(meta, {"zeroed": lambda v: _count(v) and v > 0}, f"layer '{meta['name']}'", source)


def _layer_sizes(meta: dict, lengths: dict, source: str) -> None:
    """Derived fields recomputed; counts within the shape; streams within what their codecs write."""
    name, size, n = meta["name"], math.prod(meta["shape"]), meta["n_entries"]
    kept, kept_bytes = meta.get("gap255_kept", 0), meta.get("gap255_kept_bytes", 0)
    derived = {"dense_bytes": 4 * size, "csr_bytes": CSR_BYTES_PER_ENTRY * n,
               "density": meta["nnz"] / max(1, size), "data_bytes": lengths[f"{name}/data"],
               "index_bytes": lengths[f"{name}/index"]}
    if "gap255_kept" in meta:
        derived["gap255_kept_bytes"] = lengths.get(f"{name}/gap255_kept", 0)
    for key, value in derived.items():
        if meta[key] != value:
            raise ContainerError(f"{source}: layer '{name}': {key} is {meta[key]}, its shape and "
                                 f"streams say {value}")
    if not meta["nnz"] <= n <= size or meta["nnz"] + meta.get("zeroed", 0) > size or \
            kept > meta["nnz"] or (kept > 0) != (kept_bytes > 0):
        raise ContainerError(f"{source}: layer '{name}': nnz {meta['nnz']}, entries {n} and "
                             f"{kept} kept at gap 255 do not fit its shape {meta['shape']}")
    # Lossy streams: quant never exceeds raw storage by more than 10 bytes, SZ 2, SZ3 and ZFP
    # stay below it plus their headers (measured); index streams below the raw gaps plus
    # headers; a kept list is at most 5 bytes a varint. Twice that plus 64 KiB is a bound no
    # genuine stream reaches, so the sections read for a layer are O(its size).
    _stream_bound(f"{name}/data", meta["data_bytes"], 8 * n + (1 << 16), source)
    _stream_bound(f"{name}/index", meta["index_bytes"], 2 * n + (1 << 16), source)
    _stream_bound(f"{name}/gap255_kept", kept_bytes, 5 * kept, source)


def _blob_sizes(blob: dict, lengths: dict, source: str) -> None:
    name = blob["name"]
    if name != f"{blob['layer']}/{blob['index']}":
        raise ContainerError(f"{source}: blob '{name}' is not named '<layer>/<index>' by its entry")
    if blob["raw_bytes"] != 4 * math.prod(blob["shape"]):
        raise ContainerError(f"{source}: blob '{name}': raw_bytes {blob['raw_bytes']} for shape "
                             f"{blob['shape']}")
    if blob["stored_bytes"] != lengths[name]:
        raise ContainerError(f"{source}: blob '{name}': stored_bytes {blob['stored_bytes']}, its "
                             f"section holds {lengths[name]}")
    _stream_bound(name, blob["stored_bytes"], _zstd_bound(blob["raw_bytes"]), source)


def _section_table(header: dict, sections, source: str) -> None:
    """The sections are exactly those the header refers to."""
    expected = {"skeleton"} | {b["name"] for b in header["blobs"]}
    for m in header["layers"]:
        expected |= {f"{m['name']}/data", f"{m['name']}/index"}
        if m.get("gap255_kept"):
            expected.add(f"{m['name']}/gap255_kept")
    missing, extra = sorted(expected - set(sections)), sorted(set(sections) - expected)
    if missing or extra:
        raise ContainerError(f"{source}: sections and header disagree (missing: {missing[:3] or '-'}; "
                             f"not referred to: {extra[:3] or '-'})")


def _agree(header: dict, skeleton: bytes, source: str) -> None:
    """Header and skeleton describe the same net: name, layers, blob indices, types, shapes."""
    try:
        network, layers = skel.describe(skeleton)
    except CaffeIOError as e:
        raise ContainerError(f"{source}: skeleton is not a Caffe net ({e})") from None
    if network != header["network"]:
        raise ContainerError(f"{source}: skeleton names network {_clip(network)}, the header "
                             f"{_clip(header['network'])}")
    weighted = [layer for layer in layers if layer.shapes]
    if not weighted:
        raise ContainerError(f"{source}: skeleton holds no layer with weights")
    names = [layer.name for layer in weighted]
    if len(set(names)) != len(names):
        raise ContainerError(f"{source}: skeleton has two layers named {_clip(_twice(names))}")
    if any(layer.carries_values for layer in weighted):
        raise ContainerError(f"{source}: skeleton carries blob values (a skeleton has shapes only)")
    expected = {(layer.name, i): (layer.type, shape) for layer in weighted
                for i, shape in enumerate(layer.shapes)}
    declared = {(m["name"], 0): (m["type"], tuple(m["shape"])) for m in header["layers"]}
    for b in header["blobs"]:
        key = (b["layer"], b["index"])
        if key in declared:
            raise ContainerError(f"{source}: blob {b['index']} of layer '{b['layer']}' is listed twice")
        declared[key] = (b["type"], tuple(b["shape"]))
    if set(declared) != set(expected):
        odd = sorted(set(declared) ^ set(expected), key=str)[0]
        where = "header" if odd in declared else "skeleton"
        raise ContainerError(f"{source}: only the {where} has blob {odd[1]} of layer {_clip(odd[0])}")
    for key, (layer_type, shape) in expected.items():
        if declared[key] != (skel.type_name(layer_type), shape):
            raise ContainerError(f"{source}: blob {key[1]} of layer '{key[0]}' is {declared[key][0]} "
                                 f"{list(declared[key][1])} in the header, {skel.type_name(layer_type)} "
                                 f"{list(shape)} in the skeleton")


def _twice(names: list) -> str:
    seen = set()
    return next(n for n in names if n in seen or seen.add(n))


def _clip(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."
