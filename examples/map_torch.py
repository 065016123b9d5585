#!/usr/bin/python3
"""map_torch.py - a PyTorch model that dcrun's MLP cannot run, for `dcrun map`

The model: Linear, LayerNorm, GELU (exact erf form), a residual block and
a LayerNorm head -- `dcrun infer` refuses it (LayerNorm), `dcrun map`
runs it as any program.  The weights come from torch.manual_seed(SEED),
so every process builds the same model.

    map_torch.py make --rows N --out X.npy [--width 64]   an input
    map_torch.py worker                                  a persistent
        `dcrun map` worker: lines "IN.npy OUT.npy" on stdin, "done" out
    map_torch.py single --input X.npy --output Y.npy [--chunk-rows R]
        the same model in one process (the reference); with R, in slices
        of R rows as `dcrun map --chunk-rows R` cuts them, so CPU results
        are the same bytes (other batch sizes round differently in the
        last bits of float32)

    dcrun map -H localhost:3 --input X.npy --output Y.npy -- \\
        /usr/bin/python3 examples/map_torch.py worker

Threads: MAP_TORCH_THREADS (else torch's default).
"""
import argparse
import os
import sys

# the thread count of every BLAS torch may use, before it loads: OpenBLAS
# sizes its pool from the CPUs it may run on, and the split of the rows
# between threads changes the last bits of float32 results
if os.environ.get("MAP_TORCH_THREADS"):
    for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_v] = os.environ["MAP_TORCH_THREADS"]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

SEED = 1234


class Block(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.down = nn.Linear(hidden, width)

    def forward(self, x):
        return x + self.down(self.act(self.up(self.norm(x))))


def model(width=64, hidden=256, out=16):
    torch.manual_seed(SEED)
    m = nn.Sequential(
        nn.Linear(width, width),
        Block(width, hidden),
        Block(width, hidden),
        nn.LayerNorm(width),
        nn.Linear(width, out),
    )
    m.eval()
    return m


def threads():
    t = os.environ.get("MAP_TORCH_THREADS")
    if t:
        torch.set_num_threads(int(t))


def run(m, x):
    with torch.inference_mode():
        return m(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def worker():
    threads()
    m = None
    for line in sys.stdin:
        i, o = line.split()
        x = np.load(i)
        if m is None:
            m = model(width=x.shape[1])
        np.save(o, run(m, x))
        print("done", flush=True)


def single(inp, out, chunk_rows):
    threads()
    x = np.load(inp)
    m = model(width=x.shape[1])
    step = chunk_rows or len(x) or 1
    ys = [run(m, x[i : i + step]) for i in range(0, len(x), step)]
    np.save(out, np.concatenate(ys) if ys else run(m, x))


def make(rows, width, out):
    rng = np.random.default_rng(7)
    np.save(out, rng.standard_normal((rows, width), dtype=np.float32))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--rows", type=int, required=True)
    mk.add_argument("--width", type=int, default=64)
    mk.add_argument("--out", required=True)
    sub.add_parser("worker")
    s = sub.add_parser("single")
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--chunk-rows", type=int, default=0)
    a = p.parse_args()
    if a.cmd == "make":
        make(a.rows, a.width, a.out)
    elif a.cmd == "worker":
        worker()
    else:
        single(a.input, a.output, a.chunk_rows)


if __name__ == "__main__":
    main()
