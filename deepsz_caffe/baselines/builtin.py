"""The built-in compared methods, each through the plug-in interface of baselines/method.py.

- deepsz / deepsz-best / deepsz-max: DeepSZ's own per-layer streams (lossy data array, lossless index array,
  the usually empty list of kept weights at gap 255; shape and codec names) at the error bounds
  its measured run chose (results/<net>/summary.json, summary-best.json, summary-max.json),
  scaled by the target; scale 1 is that run, the method's operating point.
- deep-compression: k-means codebook + Huffman-coded codes and relative-index gaps (our
  implementation of Han et al., no centroid fine-tuning); the target is its parameters.
- weightless: Bloomier filter (our implementation of Reagen et al., no retraining).
- nncodec: Fraunhofer's NNCodec (MPEG NNR, DeepCABAC) on the dense pruned layers, zeros included
  (its significance coding sees them), run in .venv-nncodec; the target is its qp.
- nncodec-sparse: NNCodec on DeepSZ's data arrays (nonzeros and fillers only, 1-D) with DeepSZ's
  lossless index streams beside them: NNCodec as the lossy coder inside DeepSZ's layout.
"""
import json
import struct
import tempfile

import numpy as np

from deepsz_caffe import sparse
from deepsz_caffe.baselines import deep_compression as dc
from deepsz_caffe.baselines import weightless as wl
from deepsz_caffe.baselines._framing import Reader, seal, shape_header
from deepsz_caffe.baselines.method import Context, LayerwiseMethod, Method, pack_layers, unpack_layers
from deepsz_caffe.errors import CodecError, ConfigError

NNCODEC_MISSING = "NNCodec environment .venv-nncodec not built (make nncodec)"


class _ModuleMethod(LayerwiseMethod):
    """A baseline module (encode, to_bytes, from_bytes, decode) with its parameters as target."""
    module = None
    default: dict = {}

    def encode_layer(self, weights, target):
        return self.module.to_bytes(self.module.encode(np.asarray(weights, np.float32), **target))

    def decode_layer(self, blob):
        return self.module.decode(self.module.from_bytes(blob))


class DeepCompression(_ModuleMethod):
    name, label, knob = "deep-compression", "Deep Compression", "codebook bits"
    module = dc
    default = {"bits": 5, "index_bits": 5}   # Han et al.'s fc setting, DeepSZ's Table 4

    def sweep(self):
        return [{"bits": b, "index_bits": 5} for b in range(2, 9)]


class Weightless(_ModuleMethod):
    name, label, knob = "weightless", "Weightless", "cell bits"
    module = wl
    default = {"t_bits": 6, "value_bits": 3, "k": 3, "seed": 0}

    def sweep(self):  # false positives 2**(3 - t): 25% down to 0.01%
        return [{"t_bits": t, "value_bits": 3, "k": 3, "seed": 0} for t in range(5, 17)]


_DSZ_MAGIC = b"DSZL"


class DeepSZPaper(LayerwiseMethod):
    name, label, knob = "deepsz", "DeepSZ (paper preset)", "error-bound scale"
    runs = ("summary.json", "compress.json")   # deepsz reproduce; deepsz compress --work-dir
    # 4 scales per octave from 1/4 to 4: the density of NNCodec's qp sweep (step 2**(qp/4)), so
    # that "smallest file within budget" has as many chances for DeepSZ as for NNCodec
    scales = tuple(round(2 ** (k / 4), 4) for k in range(-8, 9))

    def setup(self, context: Context) -> None:
        from deepsz_caffe.paper import values

        root = context.results / context.net if context.results else None
        path = next((root / n for n in self.runs if root and (root / n).is_file()), None)
        if path is not None:
            run = json.loads(path.read_text())
            self.bounds, self.lossy = run["error_bounds"], run["lossy"]
            self.lossless = run["lossless"]
            self.source = f"the bounds and coders of its measured run ({path}"
            if {"fc_compressed_bytes", "actual_loss"} <= set(run):
                self.source += (f": {run['fc_compressed_bytes']:,} B of data + index streams, "
                                f"measured loss {run['actual_loss']:+.2f}")
            self.source += ")"
            return
        where = f"{root}/{' or '.join(self.runs)}" if root else "(no results directory)"
        if context.net not in values.paper_values()["error_bounds"]["nets"]:
            raise ConfigError(f"{self.name}: no measured run at {where} to take bounds from: run "
                              f"deepsz reproduce, or deepsz compress --work-dir {root or 'DIR'}, first")
        self.bounds = values.error_bounds(context.net)
        self.lossy = dict.fromkeys(self.bounds, "sz2")
        self.lossless = "best"
        self.source = f"the paper's bounds (no measured run at {where})"

    def sweep(self):
        return list(self.scales)

    def operating_point(self):
        return 1.0

    def describe(self, target) -> str:
        return ", ".join(f"{n} {eb * target:.3g}" for n, eb in self.bounds.items())

    def error_bounds(self, target) -> dict[str, float]:
        """Each layer's absolute error bound at `target` (the harness checks it on decode)."""
        return {n: eb * float(target) for n, eb in self.bounds.items()}

    def stream_bytes(self, layers, target, blob) -> dict[str, dict]:
        """Per layer: bytes of positions (index stream), levels (data stream) and side
        information (its frame: shape, counts, codec names, the kept-at-gap-255 list)."""
        from deepsz_caffe.baselines.method import unpack_layers

        out = {}
        for name, frame in unpack_layers(blob).items():
            r = Reader(frame, _DSZ_MAGIC, self.name)
            r.shape(r.unpack("B")[0])
            r.unpack("Q")
            lossy = [r.take(r.unpack("B")[0]).decode("ascii", "replace") for _ in range(2)][0]
            _, length = r.unpack("II")
            r.take(length)
            data = len(r.take(r.unpack("I")[0]))
            index = len(r.buf) - r.at
            out[name] = {"positions": index, "levels": data, "side": len(frame) - data - index,
                         "lossy": lossy}
        return out

    def encode(self, layers, target) -> bytes:
        from deepsz_caffe.format.layer import encode_layer

        missing = sorted(set(layers) - set(self.bounds))
        if missing:
            raise ConfigError(f"{self.name}: no error bound for layer(s) {missing} ({self.source})")
        streams = {}
        for name, w in layers.items():
            enc = encode_layer(w, self.bounds[name] * float(target), self.lossy[name], self.lossless)
            m = enc.meta
            head = struct.pack("<Q", m["n_entries"]) + b"".join(
                struct.pack("<B", len(s)) + s.encode() for s in (m["lossy_codec"], m["index_codec"]))
            kept = struct.pack("<II", m["gap255_kept"], len(enc.gap255_kept)) + enc.gap255_kept
            streams[name] = seal(_DSZ_MAGIC, shape_header(m["shape"]) + head + kept
                                 + struct.pack("<I", len(enc.data)) + enc.data + enc.index)
        return pack_layers(streams)

    def decode_layer(self, blob):
        from deepsz_caffe.format.layer import decode_layer

        r = Reader(blob, _DSZ_MAGIC, self.name)
        shape = r.shape(r.unpack("B")[0])
        (n_entries,) = r.unpack("Q")
        lossy, index = (r.take(r.unpack("B")[0]).decode("ascii", "replace") for _ in range(2))
        count, length = r.unpack("II")
        kept = r.take(length)
        data = r.take(r.unpack("I")[0])
        meta = {"shape": shape, "n_entries": n_entries, "lossy_codec": lossy, "index_codec": index,
                "gap255_kept": count}
        return decode_layer(meta, data, r.take(len(r.buf) - r.at), kept)


class DeepSZBest(DeepSZPaper):
    name, label = "deepsz-best", "DeepSZ (best preset)"
    runs = ("summary-best.json", "compress-best.json")


class DeepSZMax(DeepSZPaper):
    """The max preset: also zquant, which codes the kept weights within the bound of 0 as pruned."""
    name, label = "deepsz-max", "DeepSZ (max preset)"
    runs = ("summary-max.json", "compress-max.json")


class NNCodec(Method):
    """NNCodec on the dense pruned layers, NNCodec's defaults (dependent quantisation on) but one
    qp for every layer; the stored file is the NNR bitstream itself."""
    name, label, knob = "nncodec", "NNCodec (dense layers)", "qp"
    qps = range(-8, -33, -1)   # step 1/4 down to 1/256 (4 qps per octave)
    dq = True

    def unavailable(self):
        from deepsz_caffe.baselines.nncodec import nncodec_python

        try:
            nncodec_python()
        except CodecError:
            return NNCODEC_MISSING
        return None

    def sweep(self):
        return list(self.qps)

    def _encode(self, arrays: dict, qp) -> bytes:
        from deepsz_caffe.baselines.nncodec import nncodec_round_trip

        with tempfile.TemporaryDirectory(prefix="deepsz-nncodec-") as work:
            r = nncodec_round_trip(arrays, int(qp), work, dq=self.dq)
        self.version = f"nncodec {r.version}"
        self.codec_seconds = {"encode": r.seconds["encode"]}
        return r.bitstream

    def _decode(self, bitstream: bytes) -> dict[str, np.ndarray]:
        from deepsz_caffe.baselines.nncodec import nncodec_decode

        with tempfile.TemporaryDirectory(prefix="deepsz-nncodec-") as work:
            r = nncodec_decode(bitstream, work)
        self.codec_seconds = {"decode": r.seconds["decode"]}
        return r.decoded

    def encode(self, layers, target) -> bytes:
        return self._encode(layers, target)

    def decode(self, blob):
        return self._decode(blob)


_NNSP_MAGIC, _NNSP_LAYER = b"NNSP", b"NNSL"


class NNCodecSparse(NNCodec):
    """NNCodec codes only the data arrays; positions are DeepSZ's lossless index streams."""
    name, label = "nncodec-sparse", "NNCodec (data arrays) + DeepSZ index"
    lossless = "best"

    def encode(self, layers, target) -> bytes:
        from deepsz_caffe.format.layer import index_stream

        sps = {n: sparse.to_sparse(np.asarray(w, np.float32)) for n, w in layers.items()}
        bitstream = self._encode({n: sp.data for n, sp in sps.items()}, target)
        streams = {}
        for name, sp in sps.items():
            codec, index = index_stream(sp, self.lossless)
            streams[name] = seal(_NNSP_LAYER, shape_header(sp.shape) + struct.pack(
                "<QB", sp.n_entries, len(codec)) + codec.encode() + index)
        return seal(_NNSP_MAGIC, struct.pack("<I", len(bitstream)) + bitstream + pack_layers(streams))

    def decode(self, blob):
        from deepsz_caffe.codecs.lossless import decompress_index

        r = Reader(blob, _NNSP_MAGIC, self.name)
        values = self._decode(r.take(r.unpack("I")[0]))
        out = {}
        for name, frame in unpack_layers(r.take(len(r.buf) - r.at)).items():
            f = Reader(frame, _NNSP_LAYER, self.name)
            shape = f.shape(f.unpack("B")[0])
            n_entries, length = f.unpack("QB")
            codec = f.take(length).decode("ascii", "replace")
            gaps = decompress_index(f.take(len(f.buf) - f.at), codec, n_entries)
            if name not in values or values[name].shape != (n_entries,):
                raise CodecError(f"{self.name}: no data array of {n_entries} entries for {name!r}")
            out[name] = sparse.to_dense(values[name], np.frombuffer(gaps, np.uint8), shape)
        return out
