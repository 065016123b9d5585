#!/bin/sh
# dcrun train under mpirun (-L mpi): each rank reads its rows through
# MPI-IO (the report says so) and sums the gradient in buckets while its
# backward pass goes on; the trained model equals single-process training
# within float tolerance and is byte-identical from one run to the next.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
mpi_ok || skip_all "$MPI_WHY"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$T_TMP" || exit 1
# 1001 rows: the last batch has one row, so a rank has none and sums zeros.
# 3 layers, the middle one over 1 MiB: 2 buckets a step (layers 2 and 1,
# as layer 2 alone holds under 1 MiB; then layer 0)
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 1001 \
    --sizes 64,600,600,16 --seed 4 > /dev/null || skip_all "make-example.py failed"
$PY -c "
import numpy as np
y = np.load('T.npy'); np.save('T2.npy', y.astype(np.float16))" || skip_all "numpy failed"
A="--model model.safetensors --input X.npy --device cpu --threads 1 --batch-size 100 --seed 5 --epochs 2"
CMP="$PY $DCRUN_SRCDIR/tests/cli/cmp_models.py"
q () { $PY -c "import json; r=json.load(open('$1')); $2"; }

expect_rc 0 "one process, sgd+momentum" $DCRUN train $A --target T.npy --momentum 0.9 --output M1.safetensors
expect_rc 0 "-L mpi, 2 ranks, --io direct" timeout 300 $DCRUN train -L mpi -H localhost:2 --io direct $A \
    --target T.npy --momentum 0.9 --output Mm.safetensors --report rm.json
expect_eq "$($CMP M1.safetensors Mm.safetensors 1e-4)" close "-L mpi: the model of single-process training"
expect_eq "$(q rm.json "d=r['distributed']; k=d['rank_train']
print(d['io'], [x['io'] for x in k], [x.get('engine') for x in k], sum(x['rows'] for x in k), [x['steps'] for x in k])")" \
    "direct ['direct', 'direct'] ['mpi-io', 'mpi-io'] 2002 [22, 22]" \
    "report: the ranks read their rows through MPI-IO"
expect_rc 0 "-L mpi again" timeout 300 $DCRUN train -L mpi -H localhost:2 --io direct $A \
    --target T.npy --momentum 0.9 --output Mm2.safetensors
expect_eq "$(cmp Mm.safetensors Mm2.safetensors && echo same)" same "two runs: the same bytes"
# a target of another dtype is converted: read with pread
expect_rc 0 "-L mpi, f2 target" timeout 300 $DCRUN train -L mpi -H localhost:2 --io direct $A \
    --target T2.npy --output Mh.safetensors --report rh.json
expect_eq "$(q rh.json "print([x.get('engine') for x in r['distributed']['rank_train']])")" \
    "['pread', 'pread']" "report: converted rows are read with pread"
expect_rc 0 "one process, f2 target" $DCRUN train $A --target T2.npy --output M1h.safetensors
expect_eq "$($CMP M1h.safetensors Mh.safetensors 1e-4)" close "f2 target: the model of one process"
# relayed rows: the same model
expect_rc 0 "-L mpi, --io relay" timeout 300 $DCRUN train -L mpi -H localhost:2 --io relay $A \
    --target T.npy --momentum 0.9 --output Mr.safetensors --report rr.json
expect_eq "$(cmp Mm.safetensors Mr.safetensors && echo same)" same "--io relay: the bytes of --io direct"
expect_eq "$(q rr.json "print([x['io'] + str(x.get('engine')) for x in r['distributed']['rank_train']])")" \
    "['relayNone', 'relayNone']" "report: relayed rows name no engine"
# adam and cross-entropy, 3 ranks (rows that do not divide evenly)
expect_rc 0 "one process, adam+xent" $DCRUN train $A --target labels.npy --loss xent --optimizer adam --output A1.safetensors
expect_rc 0 "-L mpi, 3 ranks, adam+xent" timeout 300 $DCRUN train -L mpi -H localhost:3 --oversubscribe $A \
    --target labels.npy --loss xent --optimizer adam --output A3.safetensors --report ra.json
expect_eq "$($CMP A1.safetensors A3.safetensors 1e-4)" close "adam/xent on 3 MPI ranks: the model of one process"
expect_eq "$(q ra.json "print(sorted(set(x.get('engine') for x in r['distributed']['rank_train'])))")" \
    "['mpi-io']" "xent labels (int64) through MPI-IO"
expect_eq "$(ls -a | grep -c 'dcrun-')" 0 "no temporary file left"
done_testing
