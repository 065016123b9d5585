#!/bin/sh
# bench/map.sh [ROWS] [THREADS] [RANKS] [CHUNK_ROWS]
# The PyTorch model of examples/map_torch.py (Linear, LayerNorm, GELU,
# residual blocks) end to end, Python start included: `dcrun map` over
# RANKS local ranks (default 2) of THREADS/RANKS threads each, against
# PyTorch alone in one process with THREADS threads (default: nproc).
# Prints both wall times, the ratio dcrun map / PyTorch, and map's
# overhead per chunk and per row; checks that the outputs agree.
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

t0=$(now)
MAP_TORCH_THREADS=$threads "$py" "$ex" single --input "$tmp/X.npy" --output "$tmp/Y1.npy"
t1=$(now)
# shellcheck disable=SC2086
MAP_TORCH_THREADS=$per "$dcrun" map -q -H "localhost:$nr" --oversubscribe $chunk_opt \
    --input "$tmp/X.npy" --output "$tmp/Ym.npy" --report "$tmp/r.json" \
    -- "$py" "$ex" worker
t2=$(now)

"$py" - "$tmp" "$t0" "$t1" "$t2" "$rows" "$threads" "$nr" "$per" <<'PY'
import json, sys
import numpy as np
tmp, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:5])
rows, threads, nr, per = map(int, sys.argv[5:9])
a, b = np.load(tmp + "/Y1.npy"), np.load(tmp + "/Ym.npy")
r = json.load(open(tmp + "/r.json"))
chunks = r["map"]["chunks"]
single, mapped = t1 - t0, t2 - t1
print("rows %d, %d threads: pytorch alone %.3f s; dcrun map, %d ranks x %d threads, "
      "%d chunks of %d rows: %.3f s" % (rows, threads, single, nr, per, chunks,
                                        r["map"]["chunk_rows"], mapped))
print("ratio dcrun map / pytorch: %.2f" % (mapped / single))
print("overhead: %.1f ms per chunk, %.2f us per row" %
      ((mapped - single) / chunks * 1e3, (mapped - single) / rows * 1e6))
print("outputs agree within 1e-5: %s (max abs diff %.3g)" %
      (bool(np.allclose(a, b, rtol=1e-5, atol=1e-5)), float(np.abs(a - b).max())))
PY
