"""np_infer.py MODEL X Y: NumPy's side of the inference benchmarks.

The same steps as `dcrun infer` on a relu MLP saved as nn.Sequential
(safetensors, F32): read the model and X.npy, forward, np.save Y."""
import json
import struct
import sys

import numpy as np

model, xf, yf = sys.argv[1:4]
raw = open(model, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
hdr.pop("__metadata__", None)


def tensor(k):
    a, b = hdr[k]["data_offsets"]
    return np.frombuffer(raw, "<f4", (b - a) // 4, 8 + n + a).reshape(
        hdr[k]["shape"])


layers = sorted({int(k.split(".")[0]) for k in hdr})
h = np.load(xf)
for i, l in enumerate(layers):
    h = h @ tensor("%d.weight" % l).T
    h += tensor("%d.bias" % l)
    if i + 1 < len(layers):
        np.maximum(h, 0, out=h)
np.save(yf, h)
