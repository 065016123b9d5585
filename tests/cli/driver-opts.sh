#!/bin/sh
# infer and train with -L mpi: the launch options reach the inner
# `dcrun exec` that runs mpirun (cli/dist.c): --gpu-bind, --export-all,
# --wdir, --exclude, -x patterns and the rest on its command line, and for
# real with mpirun: --exclude drops a host that cannot be reached, --wdir
# is the ranks' folder (relative file names are read and written there),
# a --wdir that does not exist is exit 4.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
$DCRUN --version | grep -q '^launchers:.* mpi' || skip_all "dcrun built without MPI"
command -v mpirun > /dev/null || skip_all "no mpirun (apt-get install openmpi-bin)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$T_TMP" || exit 1
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 3000 \
    --sizes 24,48,8 --seed 5 > /dev/null || skip_all "make-example.py failed"
A="--model model.safetensors --input X.npy --device cpu --threads 1"
T="--model model.safetensors --input X.npy --target T.npy --device cpu --threads 1 --epochs 1 --batch-size 50 --seed 9"
OPTS="--gpu-bind rank --export-all --wdir /tmp --exclude node9 -x FOO_* -x BAR=secret1 --gpus-per-rank 1 --master-port 4321 --kill-grace 2 --map-by node --oversubscribe --bind none"

# 1. every option on the inner exec's command line
for cmd in infer train; do
    if [ $cmd = infer ]; then args="$A --output Yd.npy"; else args="$T --output Md.safetensors"; fi
    expect_rc 0 "$cmd -L mpi --dry-run" $DCRUN $cmd -L mpi -H localhost:2,node9 $OPTS $args --dry-run
    line=$(grep " exec -L mpi " "$T_TMP/out")
    for o in "--gpu-bind rank" "--export-all" "--wdir /tmp" "--exclude node9" "-x 'FOO_\*'" "-x BAR " \
        "--gpus-per-rank 1" "--master-port 4321" "--kill-grace 2" "--map-by node" "--oversubscribe" "--bind none"; do
        if echo "$line" | grep -q -- "$o"; then ok "$cmd: $o reaches the inner exec"
        else not_ok "$cmd: $o reaches the inner exec: $line"; fi
    done
    expect_eq "$(echo "$line" | grep -c -- "-- .*/dcrun $cmd ")" 1 "$cmd: each rank runs dcrun $cmd"
    expect_eq "$(grep -c secret1 "$T_TMP/out")" 0 "$cmd: the value of -x BAR=... stays off the command line"
done

# 2. for real, with mpirun
# (under the sanitizers: Open MPI's own allocations are never freed, and
# LeakSanitizer cannot name its unloaded components; part 1 checks ours)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
expect_rc 0 "infer, 1 process" $DCRUN infer $A --output Y1.npy
expect_rc 0 "infer -L mpi --exclude: the unreachable host is left out" \
    timeout 120 $DCRUN infer -L mpi -H localhost:2,127.0.0.9:2 --exclude 127.0.0.9 $A --output Yx.npy
expect_eq "$(cmp Y1.npy Yx.npy && echo same)" same "--exclude: the bytes of the single-process run"
mkdir sub
cp model.safetensors X.npy T.npy sub/
expect_rc 0 "infer -L mpi --wdir sub: relative names are read and written in sub" \
    timeout 120 $DCRUN infer -L mpi -H localhost:2 --wdir "$T_TMP/sub" $A --output Yw.npy
expect_eq "$(cmp Y1.npy sub/Yw.npy && echo same)" same "--wdir: the output is in sub, the same bytes"
expect_eq "$(ls Yw.npy 2> /dev/null | wc -l)" 0 "--wdir: nothing written in the caller's folder"
expect_rc 0 "train -L mpi --wdir sub" timeout 120 $DCRUN train -L mpi -H localhost:2 --wdir "$T_TMP/sub" $T --output Mw.safetensors
expect_eq "$(ls sub/Mw.safetensors 2> /dev/null | wc -l)" 1 "train --wdir: the model is in sub"
expect_rc 4 "infer -L mpi --wdir missing: exit 4" timeout 120 $DCRUN infer -L mpi -H localhost:2 --wdir "$T_TMP/nope" $A --output Yn.npy
expect_err "nope" "names the folder"
# a pipeline under -L mpi is planned on the head and its stages started
# through mpirun; --split auto that comes out data parallel goes to the
# driver, whose ranks run it as data
expect_rc 0 "train, 1 process" $DCRUN train $T --output M1.safetensors
expect_rc 0 "train -L mpi --split layers" $DCRUN train -L mpi -H localhost:2 --split layers $T --output Ml.safetensors
expect_eq "$($PY "$DCRUN_SRCDIR/tests/cli/cmp_models.py" M1.safetensors Ml.safetensors 1e-4)" close "train -L mpi --split layers: the one-process model"
expect_rc 0 "train -L mpi --split auto" $DCRUN train -L mpi -H localhost:2 --split auto $T --output Ma.safetensors
expect_eq "$($PY "$DCRUN_SRCDIR/tests/cli/cmp_models.py" M1.safetensors Ma.safetensors 1e-4)" close "train -L mpi --split auto: the one-process model"
expect_rc 0 "infer -L mpi --split auto" $DCRUN infer -L mpi -H localhost:2 --split auto $A --output Ya.npy
expect_eq "$(cmp Y1.npy Ya.npy && echo same)" same "infer -L mpi --split auto: the bytes of one process"
done_testing
