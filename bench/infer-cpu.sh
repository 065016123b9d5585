#!/bin/sh
# bench/infer-cpu.sh [ROWS] [THREADS] [REPEAT]
# dcrun infer --device cpu against NumPy doing the same forward pass with
# the same thread count, end to end (load the model and X.npy, compute,
# save Y.npy), on an MLP 1024 -> 4096 -> 4096 -> 1024 with relu, f32,
# 32768 rows by default.  Prints the wall time of both (best of REPEAT,
# whole processes), the ratio NumPy / dcrun (>= 1: dcrun at least as fast),
# their GFLOP/s and cblas_sgemm's own rate from `dcrun bench gemm`.
# DCRUN: the binary (default build/cli/dcrun, else dcrun on PATH);
# BENCH_DIR: where the model and arrays go (default a temporary folder).
set -eu
rows=${1:-32768}
threads=${2:-$(nproc)}
repeat=${3:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
dcrun=${DCRUN:-}
if [ -z "$dcrun" ]; then
    if [ -x "$here/build/cli/dcrun" ]; then dcrun=$here/build/cli/dcrun
    else dcrun=$(command -v dcrun) || { echo "infer-cpu: no dcrun (set DCRUN)" >&2; exit 2; }
    fi
fi
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null \
    || { echo "infer-cpu: $py has no numpy (apt-get install python3-numpy)" >&2; exit 2; }
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dcrun-bench.XXXXXX")}
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads

# model and batch (nn.Linear's initialisation), written with NumPy only
"$py" -B - "$here/examples" "$dir" "$rows" <<'PY'
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
mk = __import__("make-example")
d, rows = sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(1)
sizes = [1024, 4096, 4096, 1024]
t = {}
for i in range(3):
    w, b = mk.linear_init(rng, sizes[i], sizes[i + 1])
    t["%d.weight" % (2 * i)], t["%d.bias" % (2 * i)] = w, b
mk.save_safetensors(d + "/model.safetensors", t)
np.save(d + "/X.npy", rng.standard_normal((rows, sizes[0]), dtype=np.float32))
PY

# NumPy's side: bench/np_infer.py, the same steps and file formats

now () { date +%s.%N; }
: > "$dir/times"
i=0
while [ "$i" -lt "$repeat" ]; do
    t0=$(now); "$dcrun" infer --device cpu --threads "$threads" --model "$dir/model.safetensors" \
        --input "$dir/X.npy" --output "$dir/Y.npy" --report "$dir/report-$i.json"; t1=$(now)
    "$py" "$here/bench/np_infer.py" "$dir/model.safetensors" "$dir/X.npy" "$dir/Ynp.npy"; t2=$(now)
    echo "$t0 $t1 $t2" >> "$dir/times"
    i=$((i + 1))
done

"$py" - "$dir" "$rows" "$threads" <<'PY'
import json, sys
import numpy as np
d, rows, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ts = [[float(v) for v in l.split()] for l in open(d + "/times")]
best = min(range(len(ts)), key=lambda i: ts[i][1] - ts[i][0])
td, tn = ts[best][1] - ts[best][0], min(c - b for a, b, c in ts)
y, ynp = np.load(d + "/Y.npy"), np.load(d + "/Ynp.npy")
err = float(np.abs(y - ynp).max() / np.abs(ynp).max())
flop = 2.0 * rows * (1024 * 4096 + 4096 * 4096 + 4096 * 1024)
r = json.load(open(d + "/report-%d.json" % best))  # the best dcrun run
ph = r["phases"]
print("model 1024->4096->4096->1024 relu, %d rows f32, %d threads; %.3f TFLOP per pass"
      % (rows, threads, flop / 1e12))
print("dcrun infer  %7.2f s end to end  %7.1f GFLOP/s  (load %.2f s, compute %.2f s = %.1f GFLOP/s, write %.2f s)"
      % (td, flop / td / 1e9, ph["load"], ph["compute"], flop / ph["compute"] / 1e9, ph["write"]))
print("NumPy        %7.2f s end to end  %7.1f GFLOP/s" % (tn, flop / tn / 1e9))
print("ratio NumPy/dcrun %.3f (>= 1.0: dcrun at least as fast); outputs agree to %.1e" % (tn / td, err))
PY
if "$dcrun" bench --help >/dev/null 2>&1; then
    g=$("$dcrun" bench gemm --device cpu --m 4096 --threads "$threads" --iters 3 --json)
    printf '%s' "$g" | "$py" -c 'import json,sys; j=json.load(sys.stdin); print("cblas_sgemm  4096^3: %7.1f GFLOP/s (dcrun bench gemm --device cpu); fused layer %.1f GFLOP/s" % (j["gemm_tflops"]*1e3, j["linear_fwd_tflops"]*1e3))'
fi
