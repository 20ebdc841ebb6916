"""Whole networks <-> `.dsz` files: encode, decode, inspect (DeepSZ section 3.5).

A `.dsz` holds the caffemodel's skeleton (every layer and blob shape, no values), the selected
weight blobs in DeepSZ form (lossy data array + lossless index array) and every other blob
losslessly, so `decode` rebuilds a complete caffemodel from the `.dsz` alone.

A `.dsz` may come from anyone: decode and inspect check everything it declares first, with one
function (format/validate.py), and decode checks each layer's nonzeros against its header.
"""
import math
import warnings
from pathlib import Path

import numpy as np

from .. import atomic
from ..digest import sha256_file
from .._version import __version__
from ..caffe import wire
from ..codecs import check_error_bound, get_lossy
from ..codecs.base import decompress_all
from ..codecs.lossless import (compress_lossless, decompress_lossless, index_codec_version,
                               index_job)
from ..errors import CaffeIOError, ConfigError, ContainerError
from . import container
from .layer import DENSE_WARNING_DENSITY, encode_layer, rebuild_layer
from .skeleton import canonical, describe, layer_types, select_layers
from .validate import check_table, validate

# Layer types whose weights DeepSZ's sparse form suits; others (BatchNorm, Scale...) are refused
# unless forced: their few, dense values come out larger (0.8x measured on a Scale layer).
WEIGHT_LAYER_TYPES = ("Convolution", "InnerProduct")


def resolve_bounds(types: dict, error_bounds: dict | None, eb_all: float | None,
                   layers: list | None, force: bool = False) -> dict[str, float]:
    """{layer: eb} for every layer to compress: `layers` (default: every InnerProduct) plus any
    layer named in `error_bounds`; each needs a bound from `error_bounds` or `eb_all`, and must
    be a Convolution or InnerProduct layer unless `force`."""
    error_bounds = dict(error_bounds or {})
    selected = select_layers(types, layers)
    select_layers(types, list(error_bounds))  # unknown names in --eb are errors too
    selected += [name for name in error_bounds if name not in selected]
    unusual = [name for name in selected if types[name] not in WEIGHT_LAYER_TYPES]
    if unusual and not force:
        raise ConfigError(f"layer(s) {', '.join(f'{n} ({types[n]})' for n in unusual)} are not "
                          "Convolution or InnerProduct: their dense values come out larger in "
                          "DeepSZ's sparse form; give --force-layers (API: force=True) to compress "
                          "them anyway")
    missing = [name for name in selected if name not in error_bounds and eb_all is None]
    if missing:
        raise ConfigError(f"no error bound for layer(s) {', '.join(missing)}: "
                          f"give --eb {missing[0]}=VALUE or --eb-all VALUE")
    return {name: check_error_bound(error_bounds.get(name, eb_all), f"error bound for layer '{name}'")
            for name in selected}


def encode(weights, output, *, error_bounds: dict | None = None, eb_all: float | None = None,
           layers: list | None = None, lossy="sz2", lossless: str = "best", force: bool = False) -> dict:
    """Compress a `.caffemodel` into a `.dsz`; return the header written (see `inspect`).

    `lossy`: a codec name, several (each layer keeps its smallest stream), or {layer: name}.
    `force`: compress selected layers of other types than Convolution and InnerProduct too."""
    for name, eb in (error_bounds or {}).items():  # refused before any file is read
        check_error_bound(eb, f"error bound for layer '{name}'")
    if eb_all is not None:
        check_error_bound(eb_all, "--eb-all")
    atomic.check_output(output, [weights])
    values, skeleton = wire.read_caffemodel(weights)
    _names_unique(skeleton, weights)
    network, skeleton = canonical(skeleton, weights)  # small: the net without its blob values
    types = layer_types(skeleton)
    bounds = resolve_bounds(types, error_bounds, eb_all, layers, force)
    header = {"format": "deepsz-caffe", "created_by": f"deepsz-caffe {__version__}",
              "network": network, "source_sha256": sha256_file(weights),
              "layers": [], "blobs": []}
    sections = {"skeleton": compress_lossless(skeleton)}
    header["skeleton_bytes"] = len(skeleton)
    dense = {}
    for layer, arrays in values.items():
        for i, arr in enumerate(arrays):
            if i == 0 and layer in bounds:
                enc = encode_layer(arr, bounds[layer], lossy[layer] if isinstance(lossy, dict) else lossy,
                                   lossless)
                if enc.meta["density"] > DENSE_WARNING_DENSITY:
                    dense[layer] = enc.meta["density"]
                header["layers"].append({"name": layer, "type": types[layer], **enc.meta})
                sections[f"{layer}/data"], sections[f"{layer}/index"] = enc.data, enc.index
                if enc.gap255_kept:  # only when a kept weight sits at gap 255 (see format.layer)
                    sections[f"{layer}/gap255_kept"] = enc.gap255_kept
            else:
                raw = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
                key = f"{layer}/{i}"
                sections[key] = compress_lossless(raw)
                header["blobs"].append({"name": key, "layer": layer, "type": types[layer],
                                        "index": i, "shape": list(arr.shape), "raw_bytes": len(raw),
                                        "stored_bytes": len(sections[key])})
    header["codec_versions"] = codec_versions(header["layers"])
    if dense:
        warnings.warn(dense_summary(dense, len(bounds)), stacklevel=2)
    container.write(output, header, sections)
    return header


def dense_summary(dense: dict[str, float], selected: int, shown: int = 6) -> str:
    """One line for every selected layer too dense to gain from the sparse form (a net with 54
    unpruned layers gets one warning, not 54)."""
    names = ", ".join(f"{name} {d:.0%}" for name, d in list(dense.items())[:shown])
    more = f" and {len(dense) - shown} more" if len(dense) > shown else ""
    return (f"{len(dense)} of {selected} selected layer(s) over {DENSE_WARNING_DENSITY:.0%} dense "
            f"(not pruned?): {names}{more}; their sparse form is larger than the dense one")


def _names_unique(skeleton: bytes, weights) -> None:
    """A .dsz keys blobs by layer name: two weighted layers of one name would swap weights."""
    names = [layer.name for layer in describe(skeleton)[1] if layer.shapes]
    twice = sorted({n for n in names if names.count(n) > 1}, key=str)
    if twice:
        raise CaffeIOError(f"{weights}: several layers with weights are named {twice[0]!r}; a .dsz "
                           "(and Caffe's weight loading) tells layers apart by name")


def codec_versions(layers: list[dict]) -> dict[str, str]:
    """{codec: library version} of every codec the layers use, plus zstd for the other blobs."""
    lossy = sorted({m["lossy_codec"] for m in layers})
    index = sorted({m["index_codec"] for m in layers} | {"zstd"})
    return {**{c: get_lossy(c).library_version() for c in lossy},
            **{c: index_codec_version(c) for c in index}}


def decode(dsz, output, *, expect_sha256: str | None = None) -> Path:
    """Rebuild a complete `.caffemodel` from a `.dsz`. `expect_sha256`: the .dsz file's sha256
    (as `inspect` prints it); the file is read once, and the bytes hashed are those decoded."""
    atomic.check_output(output, [dsz])
    f = container.read_file(dsz, expect_sha256, check=_table_check(dsz))
    skeleton, header, sections = validate(f.header, f.sections, str(dsz)), f.header, f.sections
    try:
        values: dict[str, dict] = {}
        for blob in header["blobs"]:
            raw = decompress_lossless(sections[blob["name"]], blob["raw_bytes"])
            arr = np.frombuffer(raw, dtype=np.float32).reshape(blob["shape"])
            values.setdefault(blob["layer"], {})[blob["index"]] = arr
        # every data and index stream at once: one sandboxed child process for the file
        layers = header["layers"]
        decoded = decompress_all([(get_lossy(m["lossy_codec"]), sections[f"{m['name']}/data"],
                                   m["n_entries"]) for m in layers],
                                 extra=[index_job(sections[f"{m['name']}/index"], m["index_codec"],
                                                  m["n_entries"], math.prod(m["shape"])) for m in layers])
        for meta, entries, gaps in zip(layers, decoded[:len(layers)], decoded[len(layers):]):
            name = meta["name"]
            if entries.size and not (np.isfinite(entries.min()) and np.isfinite(entries.max())):
                raise ContainerError(f"{dsz}: layer '{name}' decodes to NaN or infinite weights, which "
                                     "encode never stores (corrupt or forged)")
            _check_nonzeros(meta, gaps, dsz)
            values.setdefault(name, {})[0] = rebuild_layer(meta, entries, gaps,
                                                           sections.get(f"{name}/gap255_kept"))
    except (KeyError, TypeError, ValueError) as e:  # validate() should leave none: a last line
        raise ContainerError(f"{dsz}: header and sections do not agree ({e!r})") from None
    ordered = {layer: [blobs[i] for i in sorted(blobs)] for layer, blobs in values.items()}
    return wire.write_caffemodel(skeleton, ordered, output)


def _table_check(dsz):
    """validate.check_table for container.read_file: the header and section table are checked
    before any section is read."""
    return lambda header, lengths: check_table(header, lengths, str(dsz))


def _check_nonzeros(meta: dict, gaps: np.ndarray, dsz) -> None:
    """The header's nnz is what the decoded mask will hold: every entry but the fillers, which
    are the gap-255 entries not listed as kept (files with the exact mask: gap255_kept)."""
    if "gap255_kept" not in meta:
        return
    nnz = gaps.size - (int(np.count_nonzero(gaps == 255)) - meta["gap255_kept"])
    if nnz != meta["nnz"]:
        raise ContainerError(f"{dsz}: layer '{meta['name']}' decodes to {nnz} nonzero weights, "
                             f"its header says {meta['nnz']}")


def _legacy_versions(header: dict) -> dict:
    """Files written before codec_versions recorded only SZ 2's version."""
    return {"sz2": header["sz2_version"]} if header.get("sz2_version") else {}


def inspect(dsz) -> dict:
    """Per-layer sizes and the paper's ratios, from the header, once it is validated exactly as
    `decode` validates it; and the file's sha256 (for `decode --expect-sha256`).

    "selected_*" keys cover the compressed layers whatever their type; the "fc_*" keys are the
    same numbers under their older names (the paper compresses fc layers only)."""
    f = container.read_file(dsz, sha256=True, check=_table_check(dsz))
    validate(f.header, f.sections, str(dsz))
    header = f.header
    rows, compressed = [], {m["name"] for m in header["layers"]}
    for m in header["layers"]:
        size = m["data_bytes"] + m["index_bytes"]
        rows.append({**m, "compressed_bytes": size, "ratio": m["dense_bytes"] / max(1, size)})
    weights = sum(r["dense_bytes"] for r in rows)
    stored = sum(r["compressed_bytes"] for r in rows)
    biases = [b for b in header["blobs"] if b["layer"] in compressed]
    bias_raw = sum(b["raw_bytes"] for b in biases)
    bias_stored = sum(b["stored_bytes"] for b in biases)
    return {
        "network": header["network"], "source_sha256": header["source_sha256"], "sha256": f.sha256,
        "codec_versions": header.get("codec_versions", _legacy_versions(header)),
        "layers": rows,
        "selected_weight_bytes": weights, "selected_compressed_bytes": stored,
        "ratio": weights / max(1, stored),  # the paper's ratio: selected weight blobs only
        "selected_bias_bytes": bias_raw, "selected_bias_stored_bytes": bias_stored,
        "fc_weight_bytes": weights, "fc_compressed_bytes": stored,
        "fc_bias_bytes": bias_raw, "fc_bias_stored_bytes": bias_stored,
        "ratio_with_biases": (weights + bias_raw) / max(1, stored + bias_stored),
        "other_blob_bytes": sum(b["raw_bytes"] for b in header["blobs"]) - bias_raw,
        "file_bytes": f.size,
    }
