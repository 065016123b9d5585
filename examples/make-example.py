#!/usr/bin/python3
"""make-example.py - write a small MLP, a batch and targets for dcrun.

Needs only NumPy (Debian's python3-numpy; run with /usr/bin/python3).

  model.safetensors  nn.Sequential(Linear, ReLU, Linear, ReLU, Linear) as
                     safetensors.torch.save_file(model.state_dict(), ...)
                     writes it: tensors 0.weight, 0.bias, 2.weight, ...
  X.npy              inputs, float32 [rows, in]
  T.npy              regression targets, float32 [rows, out] (--loss mse)
  labels.npy         class labels, int64 [rows] (--loss xent)

The targets come from a fixed random "teacher" network, so training the
model on them lowers the loss.  Everything is seeded: the same arguments
give the same bytes.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def to_bf16_bytes(a):
    """float32 -> bfloat16, round to nearest even, as torch does."""
    u = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    nan = np.isnan(a)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
    r[nan] = ((u[nan] >> 16) | 0x40).astype("<u2")
    return r.tobytes()


def tensor_bytes(a, dtype):
    if dtype == "F32":
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dtype == "F16":
        return np.ascontiguousarray(a, dtype="<f2").tobytes()
    if dtype == "BF16":
        return to_bf16_bytes(a)
    raise ValueError(dtype)


def save_safetensors(path, tensors, dtype="F32", metadata=None):
    """The file safetensors.torch.save_file writes: an 8-byte little-endian
    header length, compact JSON (__metadata__ first, tensors sorted by name
    when they share a dtype), padded with spaces to 8 bytes, then the data
    in the same order."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name in sorted(tensors):
        b = tensor_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def act(name, z):
    if name == "relu":
        return np.maximum(z, 0)
    if name == "gelu":
        return 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi)
                                      * (z + 0.044715 * z ** 3)))
    if name == "tanh":
        return np.tanh(z)
    return z


def forward(layers, x, activation):
    """The MLP as dcrun computes it, in float64."""
    h = x.astype(np.float64)
    for i, (w, b) in enumerate(layers):
        h = h @ w.astype(np.float64).T + b.astype(np.float64)
        if i + 1 < len(layers):
            h = act(activation, h)
    return h


def linear_init(rng, fan_in, fan_out):
    """nn.Linear's default: uniform in +-1/sqrt(fan_in)."""
    bound = 1.0 / np.sqrt(fan_in)
    w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
    b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
    return w, b


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="example", help="output folder")
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--sizes", default="16,64,64,4",
                   help="widths: inputs, hidden..., outputs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--activation", default=None,
                   choices=["relu", "gelu", "tanh", "none"],
                   help="store __metadata__ activation (default: none "
                        "stored, which means relu)")
    p.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    p.add_argument("--prefix", default="",
                   help="tensor name prefix, e.g. 'layers.'")
    a = p.parse_args()

    sizes = [int(s) for s in a.sizes.split(",")]
    if len(sizes) < 2 or min(sizes) < 1:
        sys.exit("make-example.py: --sizes needs at least two widths")
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)

    layers = [linear_init(rng, sizes[i], sizes[i + 1])
              for i in range(len(sizes) - 1)]
    tensors = {}
    for i, (w, b) in enumerate(layers):
        tensors["%s%d.weight" % (a.prefix, 2 * i)] = w
        tensors["%s%d.bias" % (a.prefix, 2 * i)] = b
    meta = {"activation": a.activation} if a.activation else None
    save_safetensors(os.path.join(a.out, "model.safetensors"), tensors,
                     a.dtype, meta)

    x = rng.standard_normal((a.rows, sizes[0])).astype(np.float32)
    teacher = [linear_init(rng, sizes[i], sizes[i + 1])
               for i in range(len(sizes) - 1)]
    t = forward([(3 * w, b) for w, b in teacher], x, "tanh")
    np.save(os.path.join(a.out, "X.npy"), x)
    np.save(os.path.join(a.out, "T.npy"), t.astype(np.float32))
    np.save(os.path.join(a.out, "labels.npy"),
            np.argmax(t, axis=1).astype(np.int64))
    print("wrote %s/model.safetensors (%s), %s/X.npy %s, %s/T.npy, "
          "%s/labels.npy" % (a.out, " -> ".join(map(str, sizes)), a.out,
                              x.shape, a.out, a.out))


if __name__ == "__main__":
    main()
