#!/bin/sh
# bench/gemm-cpu.sh [SIZE] [THREADS] [ITERS]
# `dcrun bench gemm --device cpu` against NumPy's matmul (Debian's
# python3-numpy, /usr/bin/python3) on SIZE^3 float32 with the same thread
# count; prints GFLOP/s of both and the ratio dcrun / NumPy.
# DCRUN: the binary (default: build/cli/dcrun, else dcrun on PATH).
set -eu
size=${1:-2048}
threads=${2:-$(nproc)}
iters=${3:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
dcrun=${DCRUN:-}
if [ -z "$dcrun" ]; then
    if [ -x "$here/build/cli/dcrun" ]; then dcrun=$here/build/cli/dcrun
    else dcrun=$(command -v dcrun) || { echo "gemm-cpu: no dcrun (set DCRUN)" >&2; exit 2; }
    fi
fi
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null \
    || { echo "gemm-cpu: $py has no numpy (apt-get install python3-numpy)" >&2; exit 2; }

# same thread count for both: dcrun --threads, NumPy's OpenBLAS by env
d=$(OPENBLAS_NUM_THREADS=$threads "$dcrun" bench gemm --device cpu \
        --m "$size" --threads "$threads" --iters "$iters" --json)
dg=$(printf '%s' "$d" | "$py" -c 'import json,sys; j=json.load(sys.stdin); print("%.1f %.1f" % (j["gemm_tflops"]*1e3, j["linear_fwd_tflops"]*1e3))')

ng=$(OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads "$py" - "$size" "$iters" <<'PY'
import sys, time
import numpy as np
n, iters = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(1)
a = rng.random((n, n), dtype=np.float32) - 0.5
b = rng.random((n, n), dtype=np.float32) - 0.5
c = a @ b                                   # warm-up
t0 = time.perf_counter()
for _ in range(iters):
    np.matmul(a, b, out=c)
dt = (time.perf_counter() - t0) / iters
w = rng.random((n, n), dtype=np.float32) - 0.5
bias = rng.random(n, dtype=np.float32) - 0.5
y = np.maximum(a @ w.T + bias, 0)           # warm-up
t0 = time.perf_counter()
for _ in range(iters):
    y = np.maximum(a @ w.T + bias, 0)
df = (time.perf_counter() - t0) / iters
print("%.1f %.1f" % (2 * n**3 / dt / 1e9, 2 * n**3 / df / 1e9))
PY
)
set -- $dg $ng
echo "size ${size}^3 f32, $threads threads, $iters iterations"
echo "$(printf '%-28s %10s %10s' '' dcrun NumPy)"
printf '%-28s %10s %10s   ratio %s\n' "GEMM GFLOP/s" "$1" "$3" \
    "$("$py" -c "print('%.2f' % ($1 / $3))")"
printf '%-28s %10s %10s   ratio %s\n' "relu(x.w^T+b) GFLOP/s" "$2" "$4" \
    "$("$py" -c "print('%.2f' % ($2 / $4))")"
