#!/bin/sh
# Reproducible bytes and visible NaN/Inf.  Under several OpenBLAS kernels
# (OPENBLAS_CORETYPE: those this CPU can run), with --threads 1 and 2, the
# output of 1 process, 3 local ranks with odd chunks, --split layers and
# --split hybrid with odd micro-batches, and 3 ranks of which one is killed
# all have the bytes of the 1-process --threads 1 run under that kernel;
# the report names the kernel.  A NaN weight gives NaN rows (relu keeps
# NaN), a warning and "nonfinite_rows", exit 0; a training whose loss
# becomes Inf or NaN stops with exit 5 naming epoch and step, no model.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
TOKEN=bytes$$x$(date +%s%N)
D=$T_TMP/dcrun-$TOKEN
cp "$DCRUN" "$D"
cd "$T_TMP" || exit 1
# 300 rows: with 256-row blocks every split cuts blocks in the middle
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 300 \
    --sizes 64,128,128,32 --seed 11 > /dev/null || skip_all "make-example.py failed"
ranks () { pgrep -f "dcrun-$TOKEN serve" | wc -l; }
wait_ranks () {
    i=0
    while [ "$(ranks)" -lt "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
kernel () { $PY -c "import json; print(json.load(open('$1'))['ranks'][0].get('blas_kernel', ''))"; }
same () { cmp -s "$1" "$2" && echo same || echo differ; }

# the kernels this CPU can run: by its flags, then by a tiny run whose
# report names the kernel asked for
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has () { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
CTS=
for ct in Haswell SkylakeX Zen Sandybridge; do
    case $ct in
        SkylakeX) has avx512f || continue ;;
        Haswell|Zen) has avx2 && has fma || continue ;;
        Sandybridge) has avx || continue ;;
    esac
    if OPENBLAS_CORETYPE=$ct $D infer --model model.safetensors --input X.npy \
            --device cpu --threads 1 --output Y.$ct.npy --report r.$ct.json \
            > /dev/null 2>&1 \
        && [ "$(kernel r.$ct.json | tr A-Z a-z)" = "$(echo $ct | tr A-Z a-z)" ]; then
        CTS="$CTS $ct"
    else
        echo "# kernel $ct skipped: this CPU or OpenBLAS cannot run it"
    fi
done
[ -n "$CTS" ] || skip_all "OpenBLAS runs none of Haswell, SkylakeX, Zen, Sandybridge here"
echo "# kernels:$CTS"

A="--model model.safetensors --input X.npy --device cpu"
for ct in $CTS; do
    export OPENBLAS_CORETYPE=$ct
    ok "$ct: 1 process, --threads 1, report names the kernel $(kernel r.$ct.json)"
    for t in 1 2; do
        expect_rc 0 "$ct t$t: 1 process" $D infer $A --threads $t --output Y1.npy
        expect_eq "$(same Y.$ct.npy Y1.npy)" same "$ct t$t: 1 process, the bytes of --threads 1"
        expect_rc 0 "$ct t$t: 3 local ranks, 77-row chunks" $D infer -H localhost:3 $A --threads $t --chunk-rows 77 --output Y3.npy --report r3.json
        expect_eq "$(same Y.$ct.npy Y3.npy)" same "$ct t$t: 3 ranks, the same bytes"
        expect_eq "$($PY -c "import json; print(sorted(set(x.get('blas_kernel','') for x in json.load(open('r3.json'))['ranks'] if x['rows'] > 0)))")" \
            "['$(kernel r.$ct.json)']" "$ct t$t: the report names the kernel of every rank that worked"
        expect_rc 0 "$ct t$t: --split layers, 37-row micro-batches" $D infer -H localhost:3 $A --threads $t --split layers --micro-batch-rows 37 --output Yl.npy
        expect_eq "$(same Y.$ct.npy Yl.npy)" same "$ct t$t: layers, the same bytes"
        expect_rc 0 "$ct t$t: --split hybrid 2x2, 50-row micro-batches" $D infer -H localhost:4 $A --threads $t --split hybrid --stages 2 --micro-batch-rows 50 --output Yh.npy
        expect_eq "$(same Y.$ct.npy Yh.npy)" same "$ct t$t: hybrid, the same bytes"
        # one of 3 workers killed while it works: 30 slow chunks (at least 1.5 s of
        # work after the ranks start) make it certain, also on a loaded machine
        DCRUN_TEST_CHUNK_DELAY_MS=150 $D infer -H localhost:3 $A --threads $t --chunk-rows 10 --output Yk.npy 2> "$T_TMP/err" &
        P=$!
        wait_ranks 3
        sleep 0.3
        victim=$(pgrep -f "dcrun-$TOKEN serve" | head -n 1)
        [ -n "$victim" ] && kill -KILL "$victim"
        wait $P
        expect_eq "$?" 0 "$ct t$t: one of 3 workers killed: the job completes"
        expect_err "lost on the way" "$ct t$t: a worker was lost"
        expect_eq "$(same Y.$ct.npy Yk.npy)" same "$ct t$t: killed worker, the same bytes"
    done
done
unset OPENBLAS_CORETYPE
sleep 0.2
expect_eq "$(ranks)" 0 "no rank left"

# NaN and Inf are never hidden: a NaN weight in the first layer makes hidden
# unit 0 NaN for every row; relu keeps it, so every output row is NaN
$PY - <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["DCRUN_SRCDIR"] + "/examples")
import numpy as np
mk = __import__("make-example")
rng = np.random.default_rng(3)
t = {}
for i, (a, b) in enumerate([(64, 16), (16, 8)]):
    w, bb = mk.linear_init(rng, a, b)
    t["%d.weight" % (2 * i)], t["%d.bias" % (2 * i)] = w, bb
t["0.weight"][0, 5] = np.nan
mk.save_safetensors("nan.safetensors", t)
PY
NA="--model nan.safetensors --input X.npy --device cpu"
expect_rc 0 "a NaN weight: exit 0, as PyTorch" $D infer $NA --output Yn.npy --report rn.json
expect_err "warning: infer: 300 rows of Yn.npy hold NaN or Inf" "one warning with the count of rows"
expect_eq "$(grep -c 'NaN or Inf' "$T_TMP/err")" 1 "one warning line"
expect_eq "$($PY -c "import json; print(json.load(open('rn.json'))['nonfinite_rows'])")" 300 "report: nonfinite_rows"
expect_eq "$($PY -c "import numpy as np; print(int(np.isnan(np.load('Yn.npy')).any(axis=1).sum()))")" 300 "relu kept the NaN in every row"
expect_rc 0 "a NaN weight over 2 ranks: exit 0" $D infer -H localhost:2 $NA --output Yn2.npy --report rn2.json
expect_err "warning: infer: 300 rows of Yn2.npy hold NaN or Inf" "2 ranks: the same warning"
expect_eq "$($PY -c "import json; print(json.load(open('rn2.json'))['nonfinite_rows'])")" 300 "2 ranks: report: nonfinite_rows"
expect_rc 0 "a finite model" $D infer $A --output Yf.npy --report rf.json
expect_eq "$(grep -c 'NaN or Inf' "$T_TMP/err")" 0 "a finite output: no warning"
expect_eq "$($PY -c "import json; print(json.load(open('rf.json'))['nonfinite_rows'])")" 0 "a finite output: nonfinite_rows 0"

# a loss that becomes Inf or NaN stops the training: exit 5, no model
TA="--model model.safetensors --input X.npy --target T.npy --device cpu --batch-size 50 --epochs 3 --lr 1e6"
expect_rc 5 "train with lr 1e6: exit 5" $D train $TA --output Mn.safetensors --checkpoint-dir ck --checkpoint-every 1
expect_err "train: the loss became (NaN|Inf) at epoch [0-9]+, step [0-9]+" "names the epoch and the step"
expect_eq "$(ls Mn.safetensors 2>/dev/null)" "" "no model written"
expect_rc 5 "train with lr 1e6 over 2 ranks: exit 5" $D train -H localhost:2 $TA --output Mn2.safetensors
expect_err "the loss became (NaN|Inf) at epoch [0-9]+, step [0-9]+" "2 ranks: names the epoch and the step"
expect_eq "$(ls Mn2.safetensors 2>/dev/null)" "" "2 ranks: no model written"
done_testing
