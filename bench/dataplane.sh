#!/bin/sh
# bench/dataplane.sh [ROWS] [REPEAT]
# Where the bytes of a distributed infer go.  A light model (1024 -> 16,
# so most of the time is moving rows), ROWS x 1024 f32 input (default
# 262144 rows: 1 GiB), in one run: one process; 2 and 4 local ranks with
# --io relay (rows through the head) and --io direct (each rank reads and
# writes its own rows); -L mpi with 2 ranks (direct); against reading the
# input file (dd to /dev/null) and NumPy's np.load + np.save of the same
# arrays.  Prints the median wall time of REPEAT runs (default 3) of each,
# its ratio to one process, and the head's CPU seconds per GiB of input
# (the report's hub_cpu_seconds).  Goals (issue 13): 2 ranks with
# --io direct at most 1.3x one process; the head's CPU under 0.05 s/GiB.
# DCRUN: the binary (default build/cli/dcrun); BENCH_DIR: where the files
# go (default a temporary folder; it needs 1.1 GiB per million rows / 4).
set -eu
rows=${1:-262144}
repeat=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
dcrun=${DCRUN:-$here/build/cli/dcrun}
[ -x "$dcrun" ] || { echo "dataplane: no dcrun at $dcrun (set DCRUN)" >&2; exit 2; }
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null \
    || { echo "dataplane: $py has no numpy (apt-get install python3-numpy)" >&2; exit 2; }
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dcrun-dataplane.XXXXXX")}
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

"$py" -B - "$here/examples" "$dir" "$rows" <<'PY'
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
mk = __import__("make-example")
d, rows = sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(1)
w, b = mk.linear_init(rng, 1024, 16)
mk.save_safetensors(d + "/model.safetensors", {"0.weight": w, "0.bias": b})
x = np.lib.format.open_memmap(d + "/X.npy", mode="w+", dtype=np.float32,
                              shape=(rows, 1024))
for i in range(0, rows, 65536):
    n = min(65536, rows - i)
    x[i:i + n] = rng.standard_normal((n, 1024), dtype=np.float32)
x.flush()
PY

now () { date +%s.%N; }
A="--model $dir/model.safetensors --input $dir/X.npy --device cpu --threads 1"
MPI=""
if command -v mpirun > /dev/null && "$dcrun" --version | grep -q '^launchers:.* mpi'; then
    MPI=yes
fi
# name|command (the output is $dir/Y-name.npy, the report $dir/r-name.json)
cases="1proc|$dcrun infer $A
relay-2|$dcrun infer -H localhost:2 --io relay $A
direct-2|$dcrun infer -H localhost:2 --io direct $A
relay-4|$dcrun infer -H localhost:4 --oversubscribe --io relay $A
direct-4|$dcrun infer -H localhost:4 --oversubscribe --io direct $A"
[ -n "$MPI" ] && cases="$cases
mpi-2|$dcrun infer -L mpi -H localhost:2 --io direct $A"

: > "$dir/times"
i=0
while [ "$i" -lt "$repeat" ]; do
    t0=$(now); dd if="$dir/X.npy" of=/dev/null bs=16M 2> /dev/null; t1=$(now)
    echo "dd $t0 $t1" >> "$dir/times"
    t0=$(now)
    "$py" -c "import numpy as np, sys; x = np.load(sys.argv[1]); np.save(sys.argv[2], x[:, :16].copy())" \
        "$dir/X.npy" "$dir/Ynp.npy"
    t1=$(now)
    echo "numpy $t0 $t1" >> "$dir/times"
    echo "$cases" | while IFS='|' read -r name cmd; do
        t0=$(now)
        $cmd --output "$dir/Y-$name.npy" --report "$dir/r-$name.json" > /dev/null
        t1=$(now)
        echo "$name $t0 $t1" >> "$dir/times"
    done
    i=$((i + 1))
done
for name in relay-2 direct-2 relay-4 direct-4 $( [ -n "$MPI" ] && echo mpi-2); do
    cmp -s "$dir/Y-1proc.npy" "$dir/Y-$name.npy" \
        || { echo "dataplane: $name wrote other bytes than one process" >&2; exit 1; }
done

"$py" - "$dir" "$rows" <<'PY'
import json, os, statistics, sys
d, rows = sys.argv[1], int(sys.argv[2])
t = {}
for line in open(d + "/times"):
    n, a, b = line.split()
    t.setdefault(n, []).append(float(b) - float(a))
gib = os.path.getsize(d + "/X.npy") / 2**30
one = statistics.median(t["1proc"])
print("dataplane: %d rows x 1024 f32 (%.2f GiB) -> 16, median of %d runs"
      % (rows, gib, len(t["1proc"])))
print("%-10s %8s %8s %8s %14s %10s" % ("case", "seconds", "x 1proc", "GiB/s",
                                       "head cpu s/GiB", "relayed"))
for n in ["dd", "numpy", "1proc", "relay-2", "direct-2", "relay-4",
          "direct-4", "mpi-2"]:
    if n not in t:
        continue
    s = statistics.median(t[n])
    cpu, rel = "-", "-"
    try:
        r = json.load(open("%s/r-%s.json" % (d, n)))
        x = r.get("distributed", {})
        if "hub_cpu_seconds" in x:
            cpu = "%.3f" % (x["hub_cpu_seconds"] / gib)
        if "rank_io" in x:
            rel = "%.0f MiB" % (sum(i["relayed_bytes"] for i in x["rank_io"]) / 2**20)
    except (OSError, ValueError):
        pass
    print("%-10s %8.3f %8.2f %8.2f %14s %10s" % (n, s, s / one, gib / s, cpu, rel))
PY
