#!/bin/sh
# bench/map.sh [ROWS] [THREADS] [RANKS] [CHUNK_ROWS]
# The PyTorch model of examples/map_torch.py (Linear, LayerNorm, GELU,
# residual blocks) end to end, Python start included: `dcrun map` over
# RANKS local ranks (default 2) of THREADS/RANKS threads each, against
# PyTorch alone in one process with THREADS threads (default: nproc).
# Prints both wall times (the best of REPEAT runs each, default 3: a
# loaded machine makes single runs noisy), the ratio dcrun map / PyTorch,
# map's overhead per chunk and per row, and the cost of the relay alone
# (an identity worker over 200 chunks); checks that the outputs agree.
# DCRUN: the binary (default: build/cli/dcrun, else dcrun on PATH).
set -eu
rows=${1:-200000}
threads=${2:-$(nproc)}
nr=${3:-2}
chunk=${4:-0}
here=$(cd "$(dirname "$0")/.." && pwd)
dcrun=${DCRUN:-}
if [ -z "$dcrun" ]; then
    if [ -x "$here/build/cli/dcrun" ]; then dcrun=$here/build/cli/dcrun
    else dcrun=$(command -v dcrun) || { echo "map: no dcrun (set DCRUN)" >&2; exit 2; }
    fi
fi
py=/usr/bin/python3
"$py" -c 'import numpy, torch' 2>/dev/null \
    || { echo "map: $py has no numpy or torch" >&2; exit 2; }
ex=$here/examples/map_torch.py
per=$((threads / nr))
[ "$per" -ge 1 ] || per=1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dcrun-bench-map.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
"$py" "$ex" make --rows "$rows" --out "$tmp/X.npy"
now () { "$py" -c 'import time; print("%.6f" % time.time())'; }
chunk_opt=
[ "$chunk" -gt 0 ] && chunk_opt="--chunk-rows $chunk"

repeat=${REPEAT:-3}
best () { # best OLD START END: the smaller of OLD and END - START
    "$py" -c 'import sys; o, a, b = map(float, sys.argv[1:]); print("%.6f" % min(o, b - a))' "$@"
}
single=1e9
mapped=1e9
ident=1e9
i=0
while [ $i -lt "$repeat" ]; do
    t0=$(now)
    MAP_TORCH_THREADS=$threads "$py" "$ex" single --input "$tmp/X.npy" --output "$tmp/Y1.npy"
    t1=$(now)
    # shellcheck disable=SC2086
    MAP_TORCH_THREADS=$per "$dcrun" map -q -H "localhost:$nr" --oversubscribe $chunk_opt \
        --input "$tmp/X.npy" --output "$tmp/Ym.npy" --report "$tmp/r.json" \
        -- "$py" "$ex" worker
    t2=$(now)
    # the relay alone: rows out and back through a worker that copies them
    "$dcrun" map -q -H "localhost:$nr" --oversubscribe --chunk-rows $(((rows + 199) / 200)) \
        --input "$tmp/X.npy" --output "$tmp/Yi.npy" \
        -- "$py" -c 'import sys, numpy as np
for l in sys.stdin:
    i, o = l.split(); np.save(o, np.load(i)); print("done", flush=True)'
    t3=$(now)
    single=$(best "$single" "$t0" "$t1")
    mapped=$(best "$mapped" "$t1" "$t2")
    ident=$(best "$ident" "$t2" "$t3")
    [ $i -eq 0 ] && cp "$tmp/r.json" "$tmp/r0.json"
    i=$((i + 1))
done
"$py" -c 'import sys, numpy as np; sys.exit(0 if np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2])) else 1)' \
    "$tmp/X.npy" "$tmp/Yi.npy" || { echo "map: the identity worker changed the rows" >&2; exit 1; }

"$py" - "$tmp" "$single" "$mapped" "$ident" "$rows" "$threads" "$nr" "$per" <<'PY'
import json, sys
import numpy as np
tmp = sys.argv[1]
single, mapped, ident = map(float, sys.argv[2:5])
rows, threads, nr, per = map(int, sys.argv[5:9])
a, b = np.load(tmp + "/Y1.npy"), np.load(tmp + "/Ym.npy")
r = json.load(open(tmp + "/r0.json"))
chunks = r["distributed"]["chunks"]
print("rows %d, %d threads, best of runs: pytorch alone %.3f s; dcrun map, %d ranks x %d "
      "threads, %d chunks of %d rows: %.3f s" % (rows, threads, single, nr, per, chunks,
                                                r["distributed"]["chunk_rows"], mapped))
print("ratio dcrun map / pytorch: %.2f" % (mapped / single))
print("overhead against pytorch alone: %.1f ms per chunk, %.2f us per row" %
      ((mapped - single) / chunks * 1e3, (mapped - single) / rows * 1e6))
print("relay alone (identity worker, 200 chunks, %d ranks): %.3f s end to end, "
      "%.1f ms per chunk per rank, %.2f us per row" %
      (nr, ident, ident / 200 * nr * 1e3, ident / rows * 1e6))
print("outputs agree within 1e-5: %s (max abs diff %.3g)" %
      (bool(np.allclose(a, b, rtol=1e-5, atol=1e-5)), float(np.abs(a - b).max())))
PY
