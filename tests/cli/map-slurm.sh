#!/bin/sh
# dcrun map inside the one-node Slurm testbed (tests/testbed/slurm.sh):
# through the slurm launcher (`dcrun map` in the batch script: one srun for
# the ranks) and as srun's tasks (`srun --mpi=pmix dcrun map`: each task a
# rank, task 0 also the hub), a NumPy worker, the output equal to NumPy's
# in one process.  Run alone: the Slurm tests share the testbed.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
$DCRUN --version | grep -q '^launchers:.* slurm' || skip_all "dcrun built without the slurm launcher"
command -v sbatch > /dev/null || skip_all "no Slurm (sbatch)"
[ -x "$PY" ] && $PY -c 'import numpy' 2> /dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
cd "$T_TMP" || exit 1
TB=$T_TMP/tb
trap 'sh "$DCRUN_SRCDIR/tests/testbed/slurm.sh" down "$TB/slurm"; rm -rf "$T_TMP"' EXIT
why=$(sh "$DCRUN_SRCDIR/tests/testbed/slurm.sh" up "$TB/slurm" 2>&1)
case $? in
0) ;;
77) skip_all "cannot start Slurm: $why" ;;
*) echo "testbed failed: $why"; exit 1 ;;
esac
. "$TB/slurm/env.sh"
unset SLURM_JOB_ID SLURM_STEP_ID SLURM_PROCID

$PY -c "import numpy as np; x = np.random.default_rng(3).standard_normal((900, 6)).astype(np.float32); np.save('X.npy', x); np.save('R.npy', np.tanh(x) * 2)"
cat > w.py <<'PY'
import sys, numpy as np
for line in sys.stdin:
    i, o = line.split()
    np.save(o, np.tanh(np.load(i)) * 2)
    print("done", flush=True)
PY
cat > job.sh <<EOF2
#!/bin/sh
#SBATCH --ntasks=3
#SBATCH --overcommit
cd "$T_TMP" || exit 1
"$DCRUN" map --chunk-rows 100 --input X.npy --output Y1.npy --report r1.json -- $PY "$T_TMP/w.py" || exit \$?
srun --mpi=pmix "$DCRUN" map --chunk-rows 100 --input X.npy --output Y2.npy -- $PY "$T_TMP/w.py" || exit \$?
EOF2
timeout 240 sbatch --wait -o "$T_TMP/job.out" job.sh > sbatch.out 2>&1
rc=$?
expect_eq "$rc" 0 "sbatch --wait: both map runs exit 0"
[ $rc -eq 0 ] || sed 's/^/#   /' sbatch.out job.out
same () { $PY -c "import sys, numpy as np; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); print('same' if a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b) else 'differ')" "$1" "$2" 2>&1 | tail -n 1; }
expect_eq "$(same Y1.npy R.npy)" same "slurm launcher: NumPy's single-process result"
expect_eq "$($PY -c "import json; r = json.load(open('r1.json')); print(len(r['ranks']), sum(x['rows'] for x in r['ranks']))")" \
    "3 900" "slurm launcher: 3 ranks, every row once"
expect_eq "$(same Y2.npy R.npy)" same "srun --mpi=pmix dcrun map: NumPy's single-process result"
expect_eq "$(ls -a | grep -c 'dcrun-')" 0 "no temporary file left"
done_testing
