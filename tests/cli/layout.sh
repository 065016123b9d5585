#!/bin/sh
# --split data|layers|hybrid|auto: a model larger than --max-device-memory
# runs in layers and hybrid over local ranks and ssh hosts with the bytes
# of the uncapped data-parallel run; auto picks the layout expected for
# several memory sizes; dry-run prints it; a model with a layer too large
# is exit 3 naming the layer; a lost stage stops the job (exit 1, no
# output, no rank left); pipeline training equals data-parallel training
# and resumes from its checkpoint.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
TOKEN=layout$$x$(date +%s%N)
D=$T_TMP/dcrun-$TOKEN
cp "$DCRUN" "$D"
cd "$T_TMP" || exit 1
# layers 64x128, 128x128, 128x32: with 64-row micro-batches a layer alone
# needs 80.5, 128.5 and 56.1 KiB (with activations), the whole model 201 KiB
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 3000 \
    --sizes 64,128,128,32 --seed 7 > /dev/null || skip_all "make-example.py failed"
ranks () { pgrep -f "dcrun-$TOKEN serve" | wc -l; }
wait_ranks () {
    i=0
    while [ "$(ranks)" -lt "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
A="--model model.safetensors --input X.npy --device cpu --threads 1 --micro-batch-rows 64"

expect_rc 0 "single process" $D infer $A --output Y1.npy
expect_rc 0 "data parallel, 2 ranks, no cap" $D infer -H localhost:2 $A --output Yd.npy --split data
expect_eq "$(cmp Y1.npy Yd.npy && echo same)" same "data: the bytes of one process"

# auto: the layout for several sizes and rank counts (dry run)
layout () { $D infer $A --output Yx.npy --dry-run --split auto "$@" 2>&1 | sed -n 's/^layout: \([a-z]*\), \([0-9]*\) stages* x \([0-9]*\) group.*/\1 \2x\3/p'; }
expect_eq "$(layout -H localhost:2 --max-device-memory 1G)" "data 1x2" "auto, 1 GiB: data"
expect_eq "$(layout -H localhost:2 --max-device-memory 200K)" "layers 2x1" "auto, 200 KiB, 2 ranks: 2 stages"
expect_eq "$(layout -H localhost:4 --max-device-memory 200K)" "hybrid 2x2" "auto, 200 KiB, 4 ranks: 2 groups of 2 stages"
expect_eq "$(layout -H localhost:3 --max-device-memory 150K)" "layers 3x1" "auto, 150 KiB, 3 ranks: 3 stages"
expect_eq "$(layout -H localhost:6 --max-device-memory 150K)" "hybrid 3x2" "auto, 150 KiB, 6 ranks: 2 groups of 3 stages"
expect_eq "$(ls Yx.npy 2>/dev/null)" "" "dry run writes nothing"

expect_rc 0 "dry run of a 2-stage pipeline" $D infer -H localhost:2 $A --output Yx.npy --dry-run --split layers --max-device-memory 200K
expect_out '^rank 0 on localhost: stage 0 group 0: layers 0-0 \(0\), weights 32\.5 KiB, activations 48\.0 KiB, memory 200\.0 KiB, work 28\.6%' "dry run: rank 0's stage, layers, bytes and share"
expect_out '^rank 1 on localhost: stage 1 group 0: layers 1-2 \(2, 4\), weights 80\.6 KiB, activations 72\.0 KiB, memory 200\.0 KiB, work 71\.4%' "dry run: rank 1's stage"

# too large for its cap: errors before anything starts
expect_rc 3 "auto, 4 ranks of 150 KiB: no layout fits" $D infer -H localhost:4 $A --output Yx.npy --split auto --max-device-memory 150K
expect_err "does not fit 4 ranks" "says the model does not fit"
expect_rc 3 "a layer larger than every rank" $D infer -H localhost:2 $A --output Yx.npy --split auto --max-device-memory 100K
expect_err "layer 1 \('2', 128 x 128\) needs 128\.5 KiB" "names the layer and its size"
expect_rc 3 "--split data over the cap" $D infer -H localhost:2 $A --output Yx.npy --split data --max-device-memory 150K
expect_err "split data: the model and a chunk need" "says data does not fit"
expect_rc 2 "hybrid: ranks not a multiple of --stages" $D infer -H localhost:3 $A --output Yx.npy --split hybrid --stages 2
expect_err "multiple of --stages" "says why"
expect_rc 2 "--split layers without ranks" $D infer $A --output Yx.npy --split layers
expect_rc 2 "bad --split" $D infer -H localhost:2 $A --output Yx.npy --split rows
expect_rc 2 "bad --max-device-memory" $D infer -H localhost:2 $A --output Yx.npy --max-device-memory 12X
expect_eq "$(ls -a | grep -c Yx)" 0 "no output from any of them"

# capped below the model: pipelines give the bytes of the data run
expect_rc 0 "layers, 3 ranks of 150 KiB" $D infer -H localhost:3 $A --output Yl.npy --split layers --max-device-memory 150K --report rl.json
expect_eq "$(cmp Y1.npy Yl.npy && echo same)" same "layers: the bytes of data parallel"
expect_eq "$($PY -c "import json; r=json.load(open('rl.json')); p=r['pipeline']; print(r['layout'], p['stages'], p['groups'], p['micro_batches'], p['stage_layers'])")" \
    "layers 3 1 47 [[0, 1], [1, 2], [2, 3]]" "report: the layout and its micro-batches"
# each stage: its device, every row through it, its own compute seconds,
# a chunk per micro-batch, its idle time; the totals count the rows once
expect_eq "$($PY -c "
import json
r = json.load(open('rl.json'))
n = r['totals']['rows']
t = r['pipeline']['rank_times']
print(n, [k['rows'] == n and k['seconds'] > 0 and k['device'] not in ('', '?')
          and len(k['chunks']) == 47 and k['phases']['busy'] == k['seconds']
          for k in r['ranks']],
      [x['micro_batches'] == 47 and x['idle'] >= 0 and x['compute'] > 0 for x in t],
      abs(r['pipeline']['busy_seconds'] - sum(k['seconds'] for k in r['ranks'])) < 1e-9)")" \
    "$($PY -c "import numpy; print(len(numpy.load('X.npy')))") [True, True, True] [True, True, True] True" \
    "report: per stage its device, all rows, its compute, 47 micro-batches, idle; the rows counted once"
expect_eq "$($D report rl.json --json | $PY -c "
import json, sys
v = json.load(sys.stdin)
print(v['rows'], [k['share'] == 1 and k['busy'] > 0 and k['device'] != '?' for k in v['ranks']])")" \
    "$($PY -c "import numpy; print(len(numpy.load('X.npy')))") [True, True, True]" \
    "dcrun report: the rows once, each stage busy with all of them through it"
expect_rc 0 "hybrid, 4 ranks of 200 KiB, 2 stages" $D infer -H localhost:4 $A --output Yh.npy --split hybrid --stages 2 --max-device-memory 200K --report rh.json
expect_eq "$(cmp Y1.npy Yh.npy && echo same)" same "hybrid: the bytes of data parallel"
expect_eq "$($PY -c "
import json
r = json.load(open('rh.json'))
k = r['ranks']
print(r['totals']['rows'] == k[0]['rows'] + k[2]['rows'], k[0]['rows'] == k[1]['rows'],
      k[2]['rows'] == k[3]['rows'], all(x['seconds'] > 0 for x in k))")" "True True True True" \
    "hybrid report: each group's rows through both its stages, counted once in the totals"
expect_rc 0 "auto, 6 ranks of 150 KiB, odd micro-batches" $D infer -H localhost:6 --model model.safetensors --input X.npy --device cpu --threads 1 --micro-batch-rows 37 --output Ya.npy --split auto --max-device-memory 150K
expect_eq "$(cmp Y1.npy Ya.npy && echo same)" same "auto (hybrid 3x2), 37-row micro-batches: the same bytes"

# a stage lost: the job stops, no output, no rank left
export DCRUN_TEST_CHUNK_DELAY_MS=60
$D infer -H localhost:3 $A --output Yk.npy --split layers 2> "$T_TMP/err" &
P=$!
wait_ranks 3
sleep 0.5
victim=$(pgrep -f "dcrun-$TOKEN serve" | sed -n 2p)
kill -KILL "$victim"
wait $P
expect_eq "$?" 1 "a stage killed: exit 1"
expect_err "infer: stage [0-2] of 3 \(rank [0-2] on localhost\) was lost \((killed by signal 9|channel closed \(Broken pipe\))\)" "says which stage was lost"
expect_eq "$(ls -a | grep -c Yk)" 0 "a stage killed: no output, no temporary file"
sleep 0.3
expect_eq "$(ranks)" 0 "a stage killed: no rank left"
$D infer -H localhost:4 $A --output Yc.npy --split hybrid --stages 2 2> "$T_TMP/err" &
P=$!
wait_ranks 4
sleep 0.3
kill -INT $P
wait $P
expect_eq "$?" 130 "hybrid, Ctrl-C: exit 130"
sleep 0.3
expect_eq "$(ranks)" 0 "hybrid, Ctrl-C: no rank left"
expect_eq "$(ls -a | grep -c Yc)" 0 "hybrid, Ctrl-C: no output"
unset DCRUN_TEST_CHUNK_DELAY_MS

# training: the pipelines give the model of data-parallel training
sed -n '/^cat > cmp.py/,/^PYEOF/p' "$DCRUN_SRCDIR/tests/cli/train-dist.sh" | sed '1d;$d' > cmp.py
TA="--model model.safetensors --input X.npy --target T.npy --device cpu --threads 1 --batch-size 64 --seed 5 --epochs 2 --momentum 0.9"
expect_rc 0 "train, data parallel, 2 ranks" $D train -H localhost:2 $TA --output Md.safetensors
expect_rc 0 "train, layers, 3 ranks of 150 KiB" $D train -H localhost:3 $TA --output Ml.safetensors --split layers --max-device-memory 150K --report tl.json
expect_eq "$($PY cmp.py Md.safetensors Ml.safetensors 1e-5)" close "train layers: the model of data parallel"
expect_eq "$($PY -c "import json; print(json.load(open('tl.json'))['layout'])")" layers "train report: layers"
expect_rc 0 "train, hybrid 2x2, 10-row micro-batches" $D train -H localhost:4 $TA --output Mh.safetensors --split hybrid --stages 2 --micro-batch-rows 10
expect_eq "$($PY cmp.py Md.safetensors Mh.safetensors 1e-5)" close "train hybrid: the model of data parallel"
expect_rc 0 "train --dry-run" $D train -H localhost:3 $TA --output Mx.safetensors --split auto --max-device-memory 150K --dry-run
expect_out '^layout: layers, 3 stages' "train: auto picks 3 stages for a batch of 64 rows in 150 KiB"
XA="--model model.safetensors --input X.npy --target labels.npy --loss xent --optimizer adam --device cpu --threads 1 --batch-size 256 --seed 5"
expect_rc 0 "train adam+xent, single process" $D train $XA --output A1.safetensors --checkpoint-dir ck1 --checkpoint-every 2
# a stage lost mid-run: exit 1, no model; --resume (as hybrid) finishes it
export DCRUN_TEST_CHUNK_DELAY_MS=20
$D train -H localhost:3 $XA --output Ak.safetensors --split layers --checkpoint-dir ck2 --checkpoint-every 2 2> "$T_TMP/err" &
P=$!
wait_ranks 3
# kill a stage once a checkpoint exists (a loaded machine may be slow)
i=0
while [ ! -e ck2/checkpoint.safetensors ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
victim=$(pgrep -f "dcrun-$TOKEN serve" | sed -n 3p)
kill -KILL "$victim"
wait $P
expect_eq "$?" 1 "train: a stage killed: exit 1"
# the hub may see the killed rank's channel close before its exit status
expect_err "train: stage [0-2] of 3 \(rank [0-2] on localhost\) was lost \((killed by signal 9|channel closed \(Broken pipe\))\)" "train: says which stage was lost"
expect_eq "$(ls Ak.safetensors 2>/dev/null)" "" "train: no model written"
i=0
while [ "$(ranks)" -gt 0 ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
expect_eq "$(ranks)" 0 "train: no rank left"
unset DCRUN_TEST_CHUNK_DELAY_MS
expect_rc 0 "train --resume as hybrid 2x2" $D train -H localhost:4 $XA --output Ak.safetensors --split hybrid --stages 2 --checkpoint-dir ck2 --checkpoint-every 2 --resume
expect_err "resuming from ck2/checkpoint.safetensors at epoch 1, step [1-9]" "resumed from a checkpoint in the middle"
expect_eq "$($PY cmp.py A1.safetensors Ak.safetensors 1e-5)" close "resumed: the model of an uninterrupted run"

# over ssh: 3 loopback hosts of the test sshd, one stage each
if $D --version | grep -q '^launchers:.* ssh'; then
    TB=$T_TMP/tb
    if sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 3 > "$T_TMP/tb.log" 2>&1; then
        . "$TB/sshd/env.sh"
        unset SSH_AUTH_SOCK
        SSH="-L ssh --ssh-port $TB_PORT --ssh-key $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS"
        # ssh ranks do not inherit the environment: the same BLAS kernel
        for v in $(env | sed -n 's/^\(OPENBLAS_[A-Z_]*\)=.*/\1/p'); do SSH="$SSH -x $v"; done
        expect_rc 0 "layers over 3 ssh hosts of 150 KiB" $D infer $SSH -H 127.0.0.1,127.0.0.2,127.0.0.3 $A --output Ys.npy --split layers --max-device-memory 150K
        expect_eq "$(cmp Y1.npy Ys.npy && echo same)" same "ssh layers: the bytes of data parallel"
        sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd" > /dev/null 2>&1
    else
        echo "# ssh part skipped: cannot start the test sshd: $(tail -n 1 "$T_TMP/tb.log")"
    fi
fi
# the stages started by mpirun (-L mpi: dcrun's comm down each rank's
# connect-back channel)
if mpi_ok; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    expect_rc 0 "-L mpi --split layers, 2 stages" $D infer -L mpi -H localhost:2 $A --split layers --output Ym.npy
    expect_eq "$(cmp Y1.npy Ym.npy && echo same)" same "-L mpi pipeline: the bytes of one process"
else
    ok "-L mpi --split layers # SKIP $MPI_WHY"
fi
done_testing
