#!/bin/sh
# --trace T.json on infer and train (Chrome Trace Event Format): the trace
# parses, names every process and thread, its spans nest per thread, it
# has the documented events, one chunk span per chunk record of the
# report, per-rank busy time within 5% of the report's; infer in one
# process and on 3 local ranks with a killed worker (its "lost" instant),
# train in one process and on 2 ranks (a "step" span per step per rank)
# and on 3 with a killed rank (its lost instant, the redone step);
# --split layers (per stage a chunk, compute and transfer span per
# micro-batch, busy as the report's), -L mpi and 3 ssh hosts (a process
# per host);
# --trace that is an input, the report or in a missing folder: exit 3 at
# start, nothing written.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
TOKEN=trace$$x$(date +%s%N)
# a copy of dcrun with a unique name: its ranks are easy to find
D=$T_TMP/dcrun-$TOKEN
cp "$DCRUN" "$D"
cd "$T_TMP" || exit 1
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 3000 \
    --sizes 64,128,32 --seed 7 > /dev/null || skip_all "make-example.py failed"
XSUM=$(sha256sum X.npy model.safetensors)
ARGS="--model model.safetensors --input X.npy --device cpu --threads 1"
TRAIN="--model model.safetensors --input X.npy --target T.npy --device cpu \
--threads 1 --batch-size 500 --epochs 1"
check () { $PY "$DCRUN_SRCDIR/tests/cli/trace_check.py" "$@"; }
# fact WHAT: the line of the last check's facts that starts with WHAT
fact () { grep "^$1" "$T_TMP/facts" | head -n 1; }
# common WHAT: the facts every trace has
common () {
    expect_eq "$(fact parses)" parses "$1: the trace is JSON with traceEvents"
    expect_eq "$(fact names)" names "$1: every host and rank named"
    expect_eq "$(fact nesting)" nesting "$1: the spans of each thread never overlap"
}

# 1. infer in one process: a chunk per block, its phases measured
expect_rc 0 "infer, one process, --trace" \
    $D infer $ARGS --output Y1.npy --chunk-rows 256 --report r1.json --trace t1.json
check t1.json r1.json > "$T_TMP/facts"
common "infer, one process"
expect_eq "$(fact events)" "events chunk,commit,compute,load,read,write" \
    "infer, one process: load, chunks (read, compute, write), the commit"
expect_eq "$(fact chunks | awk '{print ($2 == $3 && $2 > 0)}')" 1 \
    "infer, one process: a chunk span per chunk of the report ($(fact chunks))"
expect_eq "$(fact busy)" busy "infer, one process: busy agrees with the report"

# 2. infer on 3 local ranks, one killed in the middle
export DCRUN_TEST_CHUNK_DELAY_MS=150
$D infer -H localhost:3 $ARGS --output Yk.npy --chunk-rows 150 \
    --report rk.json --trace tk.json 2> err.k &
P=$!
i=0
while [ "$(pgrep -f "dcrun-$TOKEN serve" | wc -l)" -lt 3 ] && [ $i -lt 200 ]; do
    sleep 0.05; i=$((i + 1))
done
sleep 0.5
victim=$(pgrep -f "dcrun-$TOKEN serve" | head -n 1)
kill -KILL "$victim"
wait $P
expect_eq "$?" 0 "infer, 3 ranks, one killed: the job completes"
unset DCRUN_TEST_CHUNK_DELAY_MS
check tk.json rk.json > "$T_TMP/facts"
common "infer, 3 ranks"
expect_eq "$(fact events)" \
    "events chunk,commit,compute,connect+load,launch,lost,read,retry,write" \
    "infer, 3 ranks (direct I/O): launch, connect+load, chunks with read/compute/write, the loss, the retry, the commit"
expect_eq "$(fact chunks | awk '{print ($2 == $3 && $2 >= 20)}')" 1 \
    "infer, 3 ranks: a chunk span per chunk of the report ($(fact chunks))"
expect_eq "$(fact busy)" busy "infer, 3 ranks: each rank's busy agrees with the report"
expect_eq "$(fact lost)" "lost $($PY -c "
import json
print(','.join(str(l['rank']) for l in json.load(open('rk.json'))['distributed']['lost_workers']))")" \
    "infer, 3 ranks: the lost instant on the rank the report names"
expect_eq "$($PY -c "
import json
t = json.load(open('tk.json'))['traceEvents']
print(sorted({e['args']['name'] for e in t if e['name'] == 'thread_name'}))")" \
    "['hub (coordinator)', 'rank 0', 'rank 1', 'rank 2']" \
    "infer, 3 ranks: a thread per rank and the hub"

# 3. train in one process and on 2 ranks: a step span per step
expect_rc 0 "train, one process, --trace" \
    $D train $TRAIN --output M1.safetensors --report rt1.json --trace tt1.json
check tt1.json > "$T_TMP/facts"
common "train, one process"
expect_eq "$(fact events)" "events commit,compute,load,step" \
    "train, one process: load, steps, the commit"
expect_eq "$(fact steps)" "steps 0:6" "train, one process: a step span per step (6)"
expect_rc 0 "train, 2 ranks, --trace" \
    $D train -H localhost:2 $TRAIN --output M2.safetensors --report rt2.json --trace tt2.json
check tt2.json > "$T_TMP/facts"
common "train, 2 ranks"
expect_eq "$(fact events)" \
    "events allreduce,commit,compute,connect+load,launch,load,read,step,wait" \
    "train, 2 ranks: launch, connect+load, steps (wait, read, compute, allreduce), the commit"
expect_eq "$(fact steps)" "steps 0:6,1:6" "train, 2 ranks: a step span per step on each rank"

# a rank killed in the middle of training: its lost instant, the redone
# step (retry on the hub), the spans still nest
export DCRUN_TEST_CHUNK_DELAY_MS=100
$D train -H localhost:3 $TRAIN --batch-size 100 --output Mk.safetensors \
    --trace ttk.json 2> err.tk &
P=$!
i=0
while [ "$(pgrep -f "dcrun-$TOKEN serve" | wc -l)" -lt 3 ] && [ $i -lt 200 ]; do
    sleep 0.05; i=$((i + 1))
done
sleep 0.8
victim=$(pgrep -f "dcrun-$TOKEN serve" | head -n 1)
kill -KILL "$victim"
wait $P
expect_eq "$?" 0 "train, 3 ranks, one killed: the job completes"
unset DCRUN_TEST_CHUNK_DELAY_MS
check ttk.json > "$T_TMP/facts"
common "train, 3 ranks, one killed"
expect_eq "$(fact lost | awk '{print NF == 2 && $2 ~ /^[0-2]$/}')" 1 \
    "train, one killed: a lost instant on one rank ($(fact lost))"
# a rank killed between two steps is dropped before the next: no redo
expect_eq "$($PY -c "
import json
t = json.load(open('ttk.json'))['traceEvents']
redo = {e['args']['n'] for e in t if e['name'] == 'step (redo)'}
print(sum(1 for e in t if e['name'] == 'retry' and e['tid'] == 0) == len(redo))")" True \
    "train, one killed: each redone step attempt marked on the hub"

# 4. --split layers: a connect+load per stage; in training a step span
# per stage per step
expect_rc 0 "infer --split layers, --trace" $D infer -H localhost:2 --split layers \
    $ARGS --output Yp.npy --report rp.json --trace tp.json
check tp.json rp.json > "$T_TMP/facts"
common "infer --split layers"
expect_eq "$(fact events)" \
    "events chunk,commit,compute,connect+load,launch,transfer" \
    "infer --split layers: launch, connect+load, micro-batches (compute, transfer), the commit"
expect_eq "$($PY -c "
import json
t = json.load(open('tp.json'))['traceEvents']
print(sorted(e['tid'] for e in t if e['name'] == 'connect+load'))")" "[1, 2]" \
    "infer --split layers: a connect+load per stage"
expect_eq "$(fact busy)" busy "infer --split layers: each stage's busy agrees with the report"
# a chunk, a compute and a transfer span per micro-batch per stage, each
# stage's compute spans in micro-batch order and after the previous
# stage's (the bubble: stage 1 starts after stage 0's first)
expect_eq "$($PY -c "
import json
t = json.load(open('tp.json'))['traceEvents']
r = json.load(open('rp.json'))
n = r['pipeline']['micro_batches']
def spans(name, tid):
    return sorted((e for e in t if e['ph'] == 'X' and e['name'] == name
                   and e['tid'] == tid), key=lambda e: e['ts'])
ok = n >= 10 and r['totals']['rows'] == 3000
for tid in (1, 2):
    c = spans('compute', tid)
    ok = ok and len(spans('chunk', tid)) == n and len(c) == n
    ok = ok and len(spans('transfer', tid)) == n
    ok = ok and [e['args']['id'] for e in spans('chunk', tid)] == list(range(n))
c0, c1 = spans('compute', 1), spans('compute', 2)
ok = ok and c1[0]['ts'] >= c0[0]['ts'] + c0[0]['dur'] - 1
for k in r['ranks']:
    ok = ok and k['rows'] == 3000 and k['seconds'] > 0 and k['device'] != '?'
    ok = ok and len(k['chunks']) == n
print(ok)")" True \
    "infer --split layers: per stage a chunk, compute and transfer span per micro-batch, stage 1 after stage 0, rows counted once"
expect_rc 0 "train --split layers, --trace" $D train -H localhost:2 --split layers \
    $TRAIN --output Mp.safetensors --trace ttp.json
check ttp.json > "$T_TMP/facts"
common "train --split layers"
expect_eq "$(fact steps)" "steps 0:6,1:6" "train --split layers: a step span per stage per step"

# 4b. dcrun map: each chunk on its rank, a killed worker's chunks retried
cat > worker.py <<'PY'
import sys, numpy as np
for line in sys.stdin:
    i, o = line.split()
    np.save(o, np.load(i) * 2)
    print("done", flush=True)
PY
expect_rc 0 "map, 3 ranks, --trace" $D map -H localhost:3 --input X.npy --output Ym.npy \
    --chunk-rows 500 --report rm.json --trace tm.json -- $PY worker.py
check tm.json rm.json > "$T_TMP/facts"
common "map, 3 ranks"
expect_eq "$(fact events)" "events chunk,commit,compute,connect+load,launch" \
    "map: launch, connect+load, a chunk with its worker's time per chunk, the commit"
expect_eq "$(fact chunks | awk '{print ($2 == $3 && $2 >= 5)}')" 1 \
    "map: a chunk span per chunk of the report ($(fact chunks))"
expect_eq "$(fact busy)" busy "map: each rank's busy agrees with the report"
expect_rc 3 "map --trace naming the input" $D map -H localhost:2 --input X.npy --output Ym2.npy \
    --trace X.npy -- $PY worker.py
expect_eq "$(ls Ym2.npy 2> /dev/null)" "" "map, bad --trace: nothing written"

# 5. -L mpi (mpirun on this host): the hub is MPI rank 0
if mpi_ok; then
    expect_rc 0 "infer -L mpi, --trace" $D infer -L mpi -H localhost:2 $ARGS \
        --output Ym.npy --chunk-rows 300 --report rm.json --trace tm.json
    check tm.json rm.json > "$T_TMP/facts"
    common "infer -L mpi"
    expect_eq "$(fact chunks | awk '{print ($2 == $3 && $2 >= 10)}')" 1 \
        "infer -L mpi: a chunk span per chunk of the report ($(fact chunks))"
    expect_eq "$(fact busy)" busy "infer -L mpi: each rank's busy agrees with the report"
else
    ok "infer -L mpi # SKIP $MPI_WHY"
fi

# 6. over ssh: 3 loopback hosts of the test sshd, a process per host
if $D --version | grep -q '^launchers:.* ssh'; then
    TB=$T_TMP/tb
    if sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 3 > "$T_TMP/tb.log" 2>&1; then
        . "$TB/sshd/env.sh"
        unset SSH_AUTH_SOCK
        SSH="-L ssh --ssh-port $TB_PORT --ssh-key $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS"
        expect_rc 0 "infer on 3 ssh hosts, --trace" $D infer $SSH -H 127.0.0.1,127.0.0.2,127.0.0.3 \
            $ARGS --output Ys.npy --chunk-rows 300 --report rs.json --trace ts.json
        check ts.json rs.json > "$T_TMP/facts"
        common "infer over ssh"
        expect_eq "$(fact busy)" busy "infer over ssh: each rank's busy agrees with the report"
        expect_eq "$($PY -c "
import json
t = json.load(open('ts.json'))['traceEvents']
p = {e['pid']: e['args']['name'] for e in t if e['name'] == 'process_name'}
r = {e['tid']: p[e['pid']] for e in t if e['name'] == 'thread_name'}
print(sorted(p.values()), r[0], r[1] != r[2] != r[3])")" \
            "['127.0.0.1', '127.0.0.2', '127.0.0.3'] 127.0.0.1 True" \
            "infer over ssh: a process per host, the hub on this one"
        sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd" > /dev/null 2>&1
    else
        ok "infer over ssh # SKIP cannot start the test sshd: $(tail -n 1 "$T_TMP/tb.log")"
    fi
fi

# 7. bad --trace: exit 3 at start, nothing written
expect_rc 3 "infer --trace the input" $D infer $ARGS --output Yb.npy --trace X.npy
expect_err "--trace X.npy and --input X.npy are the same file" "names the trace and the input"
expect_rc 3 "infer --trace the report" $D infer -H localhost:2 $ARGS --output Yb.npy \
    --report same.json --trace same.json
expect_err "same.json.*same file" "names the trace and the report"
expect_rc 3 "train --trace the model" $D train $TRAIN --output Mb.safetensors \
    --trace model.safetensors
expect_err "--trace model.safetensors and --model model.safetensors are the same file" \
    "names the trace and the model"
expect_rc 3 "train --trace in a missing folder" $D train $TRAIN --output Mb.safetensors \
    --trace nodir/t.json
expect_err "nodir" "names the missing folder"
expect_eq "$(ls Yb.npy Mb.safetensors same.json 2>/dev/null)" "" "no output written"
expect_eq "$(sha256sum X.npy model.safetensors)" "$XSUM" "the input and the model are intact"
done_testing
