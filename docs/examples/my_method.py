"""A complete `deepsz compare` plug-in (tests/test_compare.py runs it through the harness):
`PYTHONPATH=docs/examples deepsz compare --net lenet300 --method my_method:Toy`."""
import io

import numpy as np

from deepsz_caffe.baselines.method import Method


class Toy(Method):
    name, knob = "toy", "bits"            # id in tables/JSON; what a target means

    def sweep(self):                      # the targets of its rate-vs-accuracy curve
        return [2, 4, 8]

    def encode(self, layers, bits):       # {layer: float32 array} -> the whole file, as bytes
        levels, arrays = (1 << (bits - 1)) - 1, {}
        for name, w in layers.items():
            scale = float(np.abs(w).max()) or 1.0
            arrays[name] = np.round(w / scale * levels).astype(np.int8)
            arrays[name + "/scale"] = np.float32(scale / levels)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    def decode(self, blob):               # bytes -> {layer: array}, same names and shapes
        z = np.load(io.BytesIO(blob))
        return {n: z[n] * z[n + "/scale"] for n in z.files if not n.endswith("/scale")}
