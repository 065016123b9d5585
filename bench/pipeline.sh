#!/bin/sh
# bench/pipeline.sh [RANKS] [ROWS] [WIDTH] [LAYERS]
# dcrun infer --split layers (one pipeline of RANKS stages) against
# --split data on the same local ranks, for an MLP of LAYERS layers of
# WIDTH x WIDTH that fits every rank (default 2 ranks, 16384 rows, 1024,
# 4 layers), cpu back-end with one thread per rank.  For each micro-batch
# size: the wall time of the whole command (best of 2), the compute phase
# of the run report, the pipeline's efficiency (data time / pipeline time)
# and its bubble (the share of rank-seconds the stages spent waiting:
# filling, draining and imbalance, from the report's busy seconds).
# DCRUN: the binary (default build/cli/dcrun); BENCH_DIR: where the files go.
set -eu
ranks=${1:-2}
rows=${2:-16384}
width=${3:-1024}
layers=${4:-4}
here=$(cd "$(dirname "$0")/.." && pwd)
dcrun=${DCRUN:-}
if [ -z "$dcrun" ]; then
    if [ -x "$here/build/cli/dcrun" ]; then dcrun=$here/build/cli/dcrun
    else dcrun=$(command -v dcrun) || { echo "pipeline: no dcrun (set DCRUN)" >&2; exit 2; }
    fi
fi
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null \
    || { echo "pipeline: $py has no numpy (apt-get install python3-numpy)" >&2; exit 2; }
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dcrun-bench.XXXXXX")}
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"
sizes=$width
i=0
while [ $i -lt "$layers" ]; do sizes=$sizes,$width; i=$((i + 1)); done
"$py" "$here/examples/make-example.py" --out "$dir" --rows "$rows" \
    --sizes "$sizes" --seed 1 > /dev/null
cd "$dir"
A="-H localhost:$ranks --model model.safetensors --input X.npy --device cpu --threads 1"

# best wall seconds of 2 runs of "$@"; the report of the best in best.json
best () {
    b=
    for k in 1 2; do
        t0=$("$py" -c 'import time; print(time.time())')
        "$dcrun" infer $A "$@" --report r.json > /dev/null
        t=$("$py" -c "import time; print(round(time.time() - $t0, 3))")
        if [ -z "$b" ] || "$py" -c "import sys; sys.exit(0 if $t < $b else 1)"; then
            b=$t
            cp r.json best.json
        fi
    done
    echo "$b"
}
field () { "$py" -c "import json; r=json.load(open('best.json')); print($1)"; }

echo "model: $layers layers of ${width}x$width, $rows rows, $ranks ranks, cpu, 1 thread each"
td=$(best --output Yd.npy --split data)
cd_=$(field "round(r['phases']['compute'], 3)")
printf '%-22s %8s %10s %10s %8s\n' layout wall_s compute_s efficiency bubble
printf '%-22s %8s %10s %10s %8s\n' data "$td" "$cd_" 1.00 -
for mr in 64 256 1024 4096; do
    tp=$(best --output Yp.npy --split layers --micro-batch-rows $mr)
    cmp -s Yd.npy Yp.npy || { echo "pipeline: micro $mr: output differs from data" >&2; exit 1; }
    cp_=$(field "round(r['phases']['compute'], 3)")
    bub=$(field "round(r['pipeline']['bubble'], 3)")
    eff=$("$py" -c "print(round($td / $tp, 2))")
    printf '%-22s %8s %10s %10s %8s\n' "layers, micro $mr" "$tp" "$cp_" "$eff" "$bub"
done
