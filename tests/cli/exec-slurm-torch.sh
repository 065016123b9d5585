#!/bin/sh
# A PyTorch gloo all_reduce inside the one-node Slurm testbed
# (tests/testbed/slurm.sh), as torchrun users run it: through the slurm
# launcher (`dcrun exec` in the batch script: one srun for the ranks) and
# as srun's tasks (`srun dcrun exec`: each task is its rank, MASTER_ADDR
# the step's first node, MASTER_PORT from the job and step ids); the rank
# environment as TorchElasticEnvironment checks it; stdin to rank 0 through
# the slurm launcher; --wdir for srun's
# tasks (there, missing: exit 4).  Run alone: the Slurm
# tests share the testbed.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
$DCRUN --version | grep -q '^launchers:.* slurm' || skip_all "dcrun built without the slurm launcher"
command -v sbatch > /dev/null || skip_all "no Slurm (sbatch)"
[ -x "$PY" ] && $PY -c 'import torch.distributed as d; assert d.is_gloo_available()' 2> /dev/null \
    || skip_all "/usr/bin/python3 cannot import torch.distributed with gloo (python3-torch)"
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
NODE=$(hostname -s)

cat > ar.py <<'PY'
import os, sys
import torch, torch.distributed as dist
e = os.environ
need = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
        "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"]
missing = [k for k in need if k not in e]
dist.init_process_group("gloo")  # env:// from MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
t = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(t)
print("%s rank %d of %d sum %g local %s of %s missing %s addr-numeric %s" % (
    sys.argv[1], dist.get_rank(), dist.get_world_size(), t.item(),
    e.get("LOCAL_RANK"), e.get("LOCAL_WORLD_SIZE"), missing,
    all(p.isdigit() for p in e["MASTER_ADDR"].split("."))))
dist.destroy_process_group()
PY
cat > job.sh <<EOF2
#!/bin/sh
#SBATCH --ntasks=3
#SBATCH --overcommit
"$DCRUN" exec -- $PY "$T_TMP/ar.py" launcher || exit \$?
srun "$DCRUN" exec -- $PY "$T_TMP/ar.py" step || exit \$?
echo hi | "$DCRUN" exec -- sh -c 'read x; echo "stdin \${x:-none}"' || exit \$?
srun -n 1 "$DCRUN" exec --wdir "$T_TMP/sub" -- sh -c 'echo "wdir \$(pwd)"' || exit \$?
srun -n 1 "$DCRUN" exec --wdir "$T_TMP/nope" -- pwd
echo "missing wdir: exit \$?"
EOF2
mkdir -p sub
timeout 240 sbatch --wait -o "$T_TMP/job.out" job.sh > sbatch.out 2>&1
rc=$?
expect_eq "$rc" 0 "sbatch --wait: both all_reduce runs exit 0"
[ $rc -eq 0 ] || sed 's/^/#   /' sbatch.out job.out
for r in 0 1 2; do
    expect_eq "$(grep -c "^$r@$NODE: launcher rank $r of 3 sum 6 local $r of 3 missing \[\] addr-numeric True\$" job.out)" 1 \
        "slurm launcher: rank $r all_reduces with the others (sum 6 of 3)"
    expect_eq "$(grep -c "^step rank $r of 3 sum 6 local $r of 3 missing \[\] addr-numeric True\$" job.out)" 1 \
        "srun dcrun exec: task $r all_reduces with the others"
done
expect_eq "$(grep -c "^0@$NODE: stdin hi\$" job.out) $(grep -c "^[12]@$NODE: stdin none\$" job.out)" "1 2" \
    "slurm launcher: stdin goes to rank 0 (frames on its connect-back channel), EOF to the others"
expect_eq "$(grep -c "^wdir $T_TMP/sub\$" job.out)" 1 "srun dcrun exec --wdir: the task starts there"
expect_eq "$(grep -c '^missing wdir: exit 4$' job.out)" 1 "srun dcrun exec --wdir missing: exit 4"
expect_eq "$(grep -c "cannot run in folder $T_TMP/nope" job.out)" 1 "names the folder"
done_testing
