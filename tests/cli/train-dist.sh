#!/bin/sh
# dcrun train across ranks: the trained model equals single-process
# training (float tolerance); a rank killed mid-run: the survivors redo the
# step and the result still matches; Ctrl-C: exit 130, and --resume with
# another rank count continues to the result of an uninterrupted run.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
TOKEN=tdist$$x$(date +%s%N)
D=$T_TMP/dcrun-$TOKEN
cp "$DCRUN" "$D"
cd "$T_TMP" || exit 1
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 4000 \
    --sizes 32,64,8 --seed 3 > /dev/null || skip_all "make-example.py failed"
ranks () { pgrep -f "dcrun-$TOKEN serve" | wc -l; }
wait_ranks () {
    i=0
    while [ "$(ranks)" -lt "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
# max relative difference of two safetensors models
cat > cmp.py <<'PYEOF'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]],
                             dtype=np.float32) for k, v in h.items() if k != '__metadata__'}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys()
d = max(float(np.max(np.abs(a[k] - b[k])) / (np.max(np.abs(a[k])) + 1e-12)) for k in a)
print('close' if d < float(sys.argv[3]) else 'far %g' % d)
PYEOF
A="--model model.safetensors --input X.npy --target T.npy --device cpu --threads 1 --batch-size 64 --seed 5"

expect_rc 0 "single process, sgd+momentum, 3 epochs" $D train $A --epochs 3 --momentum 0.9 --output M1.safetensors
expect_rc 0 "3 local ranks" $D train -H localhost:3 $A --epochs 3 --momentum 0.9 --output M3.safetensors --report r3.json
expect_eq "$($PY cmp.py M1.safetensors M3.safetensors 1e-5)" close "3 ranks: the model of single-process training"
expect_eq "$($PY -c "import json; r=json.load(open('r3.json')); print(r['distributed']['ranks'], r['layout'])")" "3 data" "report: 3 ranks, data parallel"
# rows: each rank reads its own (direct, the default where it sees the
# head's files) or gets them from the head (relay); the same model either way
expect_rc 0 "--io direct on 2 ranks" $D train -H localhost:2 --io direct $A --epochs 3 --momentum 0.9 --output Md.safetensors --report rd.json
expect_eq "$($PY cmp.py M1.safetensors Md.safetensors 1e-5)" close "--io direct: the model of single-process training"
expect_eq "$($PY -c "
import json; r=json.load(open('rd.json')); d=r['distributed']; k=d['rank_train']
print(d['io'], len(r['ranks']), [x['io'] for x in k], sum(x['rows'] for x in k), [x['steps'] for x in k],
      all(x['compute'] > 0 and x['allreduce'] >= 0 and x['wait'] >= 0 and x['read'] >= 0 for x in k))")" \
    "direct 2 ['direct', 'direct'] 12000 [189, 189] True" \
    "report: every rank with its rows, steps, read, compute, allreduce and wait"
expect_rc 0 "--io relay on 2 ranks" $D train -H localhost:2 --io relay $A --epochs 3 --momentum 0.9 --output Mrl.safetensors --report rrl.json
expect_eq "$($PY cmp.py M1.safetensors Mrl.safetensors 1e-5)" close "--io relay: the same model"
expect_eq "$($PY -c "import json; print(json.load(open('rrl.json'))['distributed']['io'])")" relay "report: relay"
expect_rc 2 "--io bogus" $D train -H localhost:2 --io bogus $A --output Mb.safetensors
expect_err "--io 'bogus': expected direct, relay or auto" "--io bogus: says what it expects"
expect_rc 0 "adam, xent on 2 ranks" $D train -n 2 --oversubscribe $A --epochs 1 --optimizer adam --loss xent --target labels.npy --output A2.safetensors
expect_rc 0 "adam, xent on 1 process" $D train $A --epochs 1 --optimizer adam --loss xent --target labels.npy --output A1.safetensors
expect_eq "$($PY cmp.py A1.safetensors A2.safetensors 1e-4)" close "adam/xent: 2 ranks match 1 process"

# a rank killed in the middle: the survivors redo the step
export DCRUN_TEST_CHUNK_DELAY_MS=40
$D train -H localhost:3 $A --epochs 3 --momentum 0.9 --output Mk.safetensors 2> err.k &
P=$!
wait_ranks 3
sleep 0.5
kill -KILL "$(pgrep -f "dcrun-$TOKEN serve" | tail -n 1)"
wait $P
expect_eq "$?" 0 "one of 3 ranks killed: training completes"
expect_eq "$($PY cmp.py M1.safetensors Mk.safetensors 1e-5)" close "killed rank: the same model"
mv err.k "$T_TMP/err"
expect_err "lost on the way .*(killed by signal 9|channel closed)" "the lost rank is named"

# Ctrl-C, then --resume on another number of ranks
mkdir ck
$D train -H localhost:2 $A --epochs 3 --momentum 0.9 --checkpoint-dir ck --checkpoint-every 20 --output Mr.safetensors 2> "$T_TMP/err" &
P=$!
wait_ranks 2
# interrupt once the first checkpoint is there (not after a fixed time:
# a loaded machine may not have written it yet)
i=0
while [ ! -e ck/checkpoint.safetensors ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
kill -INT $P
wait $P
expect_eq "$?" 130 "Ctrl-C: exit 130"
expect_eq "$(ls Mr.safetensors 2>/dev/null)" "" "Ctrl-C: no model written"
i=0
while [ "$(ranks)" -gt 0 ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
expect_eq "$(ranks)" 0 "Ctrl-C: no rank left"
unset DCRUN_TEST_CHUNK_DELAY_MS
expect_eq "$(ls ck)" "checkpoint.safetensors" "a checkpoint was written before the interrupt"
expect_rc 0 "--resume on 3 ranks" $D train -H localhost:3 $A --epochs 3 --momentum 0.9 --checkpoint-dir ck --resume --output Mr.safetensors
expect_err "resuming from" "says where it resumes"
expect_eq "$($PY cmp.py M1.safetensors Mr.safetensors 1e-5)" close "resumed run: the model of an uninterrupted run"
expect_rc 0 "--dry-run" $D train -H localhost:2 $A --output Md.safetensors --dry-run
expect_out "^rank 1 on localhost" "dry run lists the ranks"
done_testing
