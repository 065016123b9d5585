#!/bin/sh
# bench/infer-scale.sh [ROWS] [RUNS]
# The overhead of dcrun's distribution: one CPU model (MLP 1024 -> 4096 ->
# 4096 -> 1024, relu, f32; 16384 rows by default) run end to end (load the
# model and X.npy, compute, write Y.npy) by
#   NumPy with 1 thread,
#   dcrun infer --device cpu --threads 1 in one process,
#   the same across 1 local rank (-H localhost:1) and 2 local ranks
#   (-H localhost:2), 1 thread each, comm "stream" with this process as hub,
#   and one process with --threads 2.
# Prints one table: median wall seconds of RUNS runs (default 3), rows/s,
# speed-up over 1 rank, efficiency of 2 ranks against the ideal 2x (goal:
# >= 90%) and the ratio NumPy / dcrun (>= 1: dcrun at least as fast).
# Checks that every dcrun output equals the single-process one byte for
# byte.  Then `dcrun bench comm` between 2 local ranks (goal: >= 1 GB/s).
# DCRUN: the binary (default build/cli/dcrun, else dcrun on PATH);
# BENCH_DIR: where the model and arrays go (default a temporary folder).
set -eu
rows=${1:-16384}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
dcrun=${DCRUN:-}
if [ -z "$dcrun" ]; then
    if [ -x "$here/build/cli/dcrun" ]; then dcrun=$here/build/cli/dcrun
    else dcrun=$(command -v dcrun) || { echo "infer-scale: no dcrun (set DCRUN)" >&2; exit 2; }
    fi
fi
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null \
    || { echo "infer-scale: $py has no numpy (apt-get install python3-numpy)" >&2; exit 2; }
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dcrun-bench.XXXXXX")}
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"
# NumPy and anything else that reads these: 1 thread unless told otherwise
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

"$py" "$here/examples/make-example.py" --out "$dir" --rows "$rows" \
    --sizes 1024,4096,4096,1024 --seed 1 > /dev/null

# NumPy's side: bench/np_infer.py, the same steps and file formats

now () { "$py" -c 'import time; print(time.time())'; }
M="--model $dir/model.safetensors --input $dir/X.npy"
# one run of config NAME: the command, its wall seconds appended to NAME.t
one () {
    name=$1; shift
    t0=$(now)
    "$@" > "$dir/$name.log" 2>&1 || { cat "$dir/$name.log" >&2; exit 1; }
    t1=$(now)
    echo "$t0 $t1" >> "$dir/$name.t"
}
for c in numpy single rank1 rank2 threads2; do : > "$dir/$c.t"; done
i=0
while [ "$i" -lt "$runs" ]; do
    # interleaved, so a slow moment of the machine hits every config alike
    one numpy "$py" "$here/bench/np_infer.py" "$dir/model.safetensors" "$dir/X.npy" "$dir/Ynp.npy"
    one single "$dcrun" infer --device cpu --threads 1 $M --output "$dir/Y1.npy"
    one rank1 "$dcrun" infer -H localhost:1 --device cpu --threads 1 $M --output "$dir/Yr1.npy"
    one rank2 "$dcrun" infer -H localhost:2 --device cpu --threads 1 $M --output "$dir/Yr2.npy"
    one threads2 "$dcrun" infer --device cpu --threads 2 $M --output "$dir/Yt2.npy"
    i=$((i + 1))
done
for y in Yr1 Yr2 Yt2; do
    cmp -s "$dir/Y1.npy" "$dir/$y.npy" || echo "infer-scale: warning: $y.npy differs from the single-process output" >&2
done

"$py" - "$dir" "$rows" "$runs" "$(getconf _NPROCESSORS_ONLN)" <<'PY'
import statistics, sys
import numpy as np
d, rows, runs, ncpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def med(name):
    return statistics.median(b - a for a, b in
                             (map(float, l.split()) for l in open("%s/%s.t" % (d, name))))
t = {c: med(c) for c in ("numpy", "single", "rank1", "rank2", "threads2")}
y, ynp = np.load(d + "/Y1.npy"), np.load(d + "/Ynp.npy")
err = float(np.abs(y - ynp).max() / np.abs(ynp).max())
flop = 2.0 * rows * (1024 * 4096 + 4096 * 4096 + 4096 * 1024)
print("model 1024->4096->4096->1024 relu, %d rows f32 (%.0f GFLOP per pass), "
      "median of %d runs, wall seconds end to end" % (rows, flop / 1e9, runs))
print("this machine has %d CPU core%s: 2 ranks or 2 threads use all of %s"
      % (ncpu, "" if ncpu == 1 else "s", "it" if ncpu == 1 else "them"))
rows_ = [("numpy", "NumPy, 1 thread"),
         ("single", "dcrun, 1 process, 1 thread"),
         ("rank1", "dcrun -H localhost:1, 1 thread"),
         ("rank2", "dcrun -H localhost:2, 1 thread each"),
         ("threads2", "dcrun, 1 process, --threads 2")]
print("%-38s %8s %10s %9s %11s %9s" % ("", "wall_s", "rows/s", "vs_1rank",
                                       "efficiency", "vs_NumPy"))
for k, label in rows_:
    s = t["rank1"] / t[k]
    eff = "%.0f%%" % (100 * s / 2) if k in ("rank2", "threads2") else "-"
    print("%-38s %8.2f %10.0f %8.2fx %11s %8.2fx"
          % (label, t[k], rows / t[k], s, eff, t["numpy"] / t[k]))
e = t["rank1"] / t["rank2"] / 2
print("2 ranks: %.0f%% of the ideal 2x over 1 rank (goal >= 90%%): %s"
      % (100 * e, "met" if e >= 0.9 else "NOT met"))
print("dcrun output agrees with NumPy to %.1e (relative max)" % err)
PY
if "$dcrun" bench --help 2>/dev/null | grep -q -- --frame; then
    "$dcrun" bench comm -H localhost:2 --json | "$py" -c '
import json, sys
j = json.load(sys.stdin)
print("stream comm, 2 local ranks, %d MiB each way per rank in %d KiB frames: "
      "hub->ranks %.2f GB/s, ranks->hub %.2f GB/s, total %.2f GB/s (goal >= 1 GB/s)"
      % (j["bytes_per_rank"] >> 20, j["frame_bytes"] >> 10, j["to_ranks_gbps"],
         j["from_ranks_gbps"], j["total_gbps"]))'
fi
