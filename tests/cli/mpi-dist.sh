#!/bin/sh
# dcrun infer and train started by mpirun (4 ranks on this host) and by
# srun inside the test Slurm cluster (examples/infer.sbatch): the bytes of
# the single-process output, training equal to single-process training,
# bad input exit 3 with no output, Ctrl-C leaves no output.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
$DCRUN --version | grep -q '^launchers:.* mpi' || skip_all "dcrun built without MPI"
command -v mpirun > /dev/null || skip_all "no mpirun (apt-get install openmpi-bin)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI="mpirun --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
cd "$T_TMP" || exit 1
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 6000 \
    --sizes 48,96,16 --seed 11 > /dev/null || skip_all "make-example.py failed"
cp "$DCRUN_SRCDIR/tests/cli/cmp_models.py" . 2>/dev/null
A="--model model.safetensors --input X.npy --device cpu --threads 1"

expect_rc 0 "single process" $DCRUN infer $A --output Y1.npy
expect_rc 0 "mpirun -np 4 dcrun infer" timeout 120 $MPI -np 4 $DCRUN infer $A --output Y4.npy --chunk-rows 200
expect_eq "$(cmp Y1.npy Y4.npy && echo same)" same "mpirun: the bytes of the single-process run"
expect_rc 3 "mpirun, input of the wrong width" timeout 120 $MPI -np 2 $DCRUN infer --model model.safetensors --input T.npy --output Yb.npy --device cpu
expect_eq "$(ls -a | grep -c Yb)" 0 "mpirun, bad input: no output"

T="--model model.safetensors --input X.npy --target T.npy --device cpu --threads 1 --epochs 2 --batch-size 50 --seed 9 --momentum 0.5"
expect_rc 0 "single-process training" $DCRUN train $T --output M1.safetensors
expect_rc 0 "mpirun -np 3 dcrun train" timeout 120 $MPI -np 3 $DCRUN train $T --output M3.safetensors
expect_eq "$($PY "$DCRUN_SRCDIR/tests/cli/cmp_models.py" M1.safetensors M3.safetensors 1e-5)" close "mpirun: the model of single-process training"

# -L mpi from this process: mpirun through dcrun exec, each rank the same
# dcrun command under MPI
expect_rc 0 "dcrun infer -L mpi -H localhost:3" $DCRUN infer -L mpi -H localhost:3 $A --output Yl.npy
expect_eq "$(cmp Y1.npy Yl.npy && echo same)" same "-L mpi: the bytes of the single-process run"
expect_rc 0 "dcrun train -L mpi -H localhost:2" $DCRUN train -L mpi -H localhost:2 $T --output Ml.safetensors
expect_eq "$($PY "$DCRUN_SRCDIR/tests/cli/cmp_models.py" M1.safetensors Ml.safetensors 1e-5)" close "-L mpi: the model of single-process training"
expect_rc 0 "-L mpi --dry-run" $DCRUN infer -L mpi -H localhost:3 $A --output Yd.npy --dry-run
expect_out "exec -L mpi -H localhost:3 -- .* infer --model model.safetensors" "dry run shows the mpirun job"

# Ctrl-C to mpirun in the middle: no output file
DCRUN_TEST_CHUNK_DELAY_MS=200 $MPI -x DCRUN_TEST_CHUNK_DELAY_MS -np 3 $DCRUN infer $A --output Yc.npy --chunk-rows 100 > /dev/null 2>&1 &
P=$!
sleep 2
kill -INT $P
wait $P
rc=$?
expect_eq "$([ $rc -ne 0 ] && echo failed)" failed "mpirun interrupted: not a success (exit $rc)"
sleep 1
expect_eq "$(ls -a | grep -c Yc)" 0 "mpirun interrupted: no output, no temporary file"

# srun inside the test Slurm cluster, with the example batch script
if $DCRUN --version | grep -q '^launchers:.* slurm' && command -v sbatch > /dev/null; then
    TB=$T_TMP/tb
    if sh "$DCRUN_SRCDIR/tests/testbed/slurm.sh" up "$TB/slurm" > "$T_TMP/tb.log" 2>&1; then
        (
            . "$TB/slurm/env.sh"
            unset SLURM_JOB_ID SLURM_STEP_ID SLURM_PROCID
            DCRUN=$DCRUN DATA=$T_TMP DEVICE=cpu timeout 120 sbatch --wait -o "$T_TMP/job.out" "$DCRUN_SRCDIR/examples/infer.sbatch" > "$T_TMP/sbatch.out" 2>&1
        )
        rc=$?
        expect_eq "$rc" 0 "sbatch examples/infer.sbatch (srun --mpi=pmix dcrun infer)"
        [ $rc -eq 0 ] || sed 's/^/#   /' "$T_TMP/sbatch.out" "$T_TMP/job.out" | head -20
        expect_eq "$(cmp Y1.npy Y.npy && echo same)" same "srun: the bytes of the single-process run"
        sh "$DCRUN_SRCDIR/tests/testbed/slurm.sh" down "$TB/slurm" > /dev/null 2>&1
    else
        echo "# srun part skipped: cannot start the test Slurm cluster: $(tail -n 1 "$T_TMP/tb.log")"
    fi
fi
done_testing
