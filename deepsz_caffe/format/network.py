"""Whole networks <-> `.dsz` files: encode, decode, inspect (DeepSZ section 3.5).

A `.dsz` holds the caffemodel's skeleton (every layer and blob shape, no values), the selected
weight blobs in DeepSZ form (lossy data array + lossless index array) and every other blob
losslessly, so `decode` rebuilds a complete caffemodel from the `.dsz` alone.
"""
import warnings
from pathlib import Path

import numpy as np

from .._version import __version__
from ..caffe import io as caffe_io
from ..caffe import wire
from ..codecs import check_error_bound, get_lossy
from ..codecs.lossless import compress_lossless, decompress_lossless, index_codec_version
from ..errors import ConfigError, ContainerError
from . import container
from .layer import DENSE_WARNING_DENSITY, decode_layer, encode_layer


def resolve_bounds(types: dict, error_bounds: dict | None, eb_all: float | None,
                   layers: list | None) -> dict[str, float]:
    """{layer: eb} for every layer to compress: `layers` (default: every InnerProduct) plus any
    layer named in `error_bounds`; each needs a bound from `error_bounds` or `eb_all`."""
    error_bounds = dict(error_bounds or {})
    selected = caffe_io.select_layers(types, layers)
    caffe_io.select_layers(types, list(error_bounds))  # unknown names in --eb are errors too
    selected += [name for name in error_bounds if name not in selected]
    missing = [name for name in selected if name not in error_bounds and eb_all is None]
    if missing:
        raise ConfigError(f"no error bound for layer(s) {', '.join(missing)}: "
                          f"give --eb {missing[0]}=VALUE or --eb-all VALUE")
    return {name: check_error_bound(error_bounds.get(name, eb_all), f"error bound for layer '{name}'")
            for name in selected}


def encode(weights, output, *, error_bounds: dict | None = None, eb_all: float | None = None,
           layers: list | None = None, lossy="sz2", lossless: str = "best") -> dict:
    """Compress a `.caffemodel` into a `.dsz`; return the header written (see `inspect`).

    `lossy`: a codec name, several (each layer keeps its smallest stream), or {layer: name}."""
    for name, eb in (error_bounds or {}).items():  # refused before any file is read
        check_error_bound(eb, f"error bound for layer '{name}'")
    if eb_all is not None:
        check_error_bound(eb_all, "--eb-all")
    values, skeleton = wire.read_caffemodel(weights)
    net = caffe_io.parse_net(skeleton, weights)  # small: the net without its blob values
    types = caffe_io.layer_types(net)
    bounds = resolve_bounds(types, error_bounds, eb_all, layers)
    header = {"format": "deepsz-caffe", "created_by": f"deepsz-caffe {__version__}",
              "network": net.name, "source_sha256": caffe_io.sha256_file(weights),
              "layers": [], "blobs": []}
    skeleton = net.SerializeToString()  # protobuf's own order, whatever the input's
    sections = {"skeleton": compress_lossless(skeleton)}
    header["skeleton_bytes"] = len(skeleton)
    for layer, arrays in values.items():
        for i, arr in enumerate(arrays):
            if i == 0 and layer in bounds:
                enc = encode_layer(arr, bounds[layer], lossy[layer] if isinstance(lossy, dict) else lossy,
                                   lossless)
                if enc.meta["density"] > DENSE_WARNING_DENSITY:
                    warnings.warn(f"layer '{layer}' is {enc.meta['density']:.0%} dense (not pruned?): "
                                  "its sparse form is larger than the dense one", stacklevel=2)
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
    container.write(output, header, sections)
    return header


def codec_versions(layers: list[dict]) -> dict[str, str]:
    """{codec: library version} of every codec the layers use, plus zstd for the other blobs."""
    lossy = sorted({m["lossy_codec"] for m in layers})
    index = sorted({m["index_codec"] for m in layers} | {"zstd"})
    return {**{c: get_lossy(c).library_version() for c in lossy},
            **{c: index_codec_version(c) for c in index}}


def decode(dsz, output) -> Path:
    """Rebuild a complete `.caffemodel` from a `.dsz`."""
    header, sections = container.read(dsz)
    try:
        skeleton = decompress_lossless(sections["skeleton"], int(header["skeleton_bytes"]))
        values: dict[str, list] = {}
        for blob in header["blobs"]:
            raw = decompress_lossless(sections[blob["name"]], int(blob["raw_bytes"]))
            arr = np.frombuffer(raw, dtype=np.float32).reshape(blob["shape"])
            values.setdefault(blob["layer"], {})[int(blob["index"])] = arr
        for meta in header["layers"]:
            name = meta["name"]
            values.setdefault(name, {})[0] = decode_layer(meta, sections[f"{name}/data"],
                                                          sections[f"{name}/index"],
                                                          sections.get(f"{name}/gap255_kept"))
    except (KeyError, TypeError, ValueError) as e:
        raise ContainerError(f"{dsz}: header and sections do not agree ({e!r})") from None
    ordered = {layer: [blobs[i] for i in sorted(blobs)] for layer, blobs in values.items()}
    return wire.write_caffemodel(skeleton, ordered, output)


def _legacy_versions(header: dict) -> dict:
    """Files written before codec_versions recorded only SZ 2's version."""
    return {"sz2": header["sz2_version"]} if header.get("sz2_version") else {}


def inspect(dsz) -> dict:
    """Per-layer sizes and the paper's ratios, computed from the header alone."""
    header, _ = container.read(dsz)
    rows, compressed = [], {m["name"] for m in header["layers"]}
    for m in header["layers"]:
        size = m["data_bytes"] + m["index_bytes"]
        rows.append({**m, "compressed_bytes": size, "ratio": m["dense_bytes"] / max(1, size)})
    fc_bytes = sum(r["dense_bytes"] for r in rows)
    fc_compressed = sum(r["compressed_bytes"] for r in rows)
    biases = [b for b in header["blobs"] if b["layer"] in compressed]
    bias_raw = sum(b["raw_bytes"] for b in biases)
    bias_stored = sum(b["stored_bytes"] for b in biases)
    return {
        "network": header.get("network", ""), "source_sha256": header.get("source_sha256"),
        "codec_versions": header.get("codec_versions", _legacy_versions(header)),
        "layers": rows,
        "fc_weight_bytes": fc_bytes, "fc_compressed_bytes": fc_compressed,
        "ratio": fc_bytes / max(1, fc_compressed),  # the paper's ratio: fc weights only
        "fc_bias_bytes": bias_raw, "fc_bias_stored_bytes": bias_stored,
        "ratio_with_biases": (fc_bytes + bias_raw) / max(1, fc_compressed + bias_stored),
        "other_blob_bytes": sum(b["raw_bytes"] for b in header["blobs"]) - bias_raw,
        "file_bytes": Path(dsz).stat().st_size,
    }
