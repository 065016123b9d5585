#!/bin/sh
# dcrun exec inside a real one-node Slurm cluster (tests/testbed/slurm.sh):
# examples/exec.sbatch run with sbatch --wait; ranks 0..3 once each with the
# rank environment through the slurm launcher and as srun's tasks, tagged
# lines, the failing rank's status in the last line and as dcrun's own.
set -u
: "${DCRUN:?}" "${DCRUN_SRCDIR:?}" "${DCRUN_BUILDDIR:?}"
$DCRUN --version | grep -q '^launchers:.* slurm' || {
    echo "1..0 # SKIP dcrun built without the slurm launcher"; exit 77; }
TB=$(mktemp -d "$DCRUN_BUILDDIR/tb-slurm.XXXXXX")
trap 'sh "$DCRUN_SRCDIR/tests/testbed/slurm.sh" down "$TB/slurm"; rm -rf "$TB"' EXIT
why=$(sh "$DCRUN_SRCDIR/tests/testbed/slurm.sh" up "$TB/slurm" 2>&1)
case $? in
0) ;;
77) echo "1..0 # SKIP cannot start Slurm: $why"; exit 77 ;;
*) echo "testbed failed: $why"; exit 1 ;;
esac
. "$TB/slurm/env.sh"
unset SLURM_JOB_ID SLURM_STEP_ID SLURM_PROCID
fails=0
n=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check () { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
NODE=$(hostname -s)

DCRUN=$DCRUN timeout 120 sbatch --wait -o "$TB/job.out" "$DCRUN_SRCDIR/examples/exec.sbatch" > "$TB/sbatch.out" 2>&1
rc=$?
check "sbatch --wait examples/exec.sbatch exits 0" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || sed 's/^/#   /' "$TB/sbatch.out" "$TB/job.out"
for r in 0 1 2 3; do
    check "slurm launcher: rank $r once, tagged, its environment and GPUs" \
        '[ "$(grep -c "^$r@$NODE: launcher $r 4 $r 4 0 $r 4 $r 4 127.0.0.1 port 0,1 bar\$" "$TB/job.out")" = 1 ]'
    check "srun task: dcrun exec is rank $r with its environment" \
        '[ "$(grep -c "^step $r 4 $r 4 0 $r 4 $r 4 127.0.0.1 port 0,1 bar\$" "$TB/job.out")" = 1 ]'
done
check "a failing rank: the last line names it and its status, and dcrun exits with it (3)" \
    'grep -q "^dcrun: exec: rank 2 on $NODE exited with status 3\$" "$TB/job.out" && grep -q "^failing job: exit 3\$" "$TB/job.out"'

# srun dcrun exec: rank 0's task checks MASTER_PORT on its host; in use,
# the step is stopped at once (no task waits for a rendezvous)
cat > "$TB/port.sbatch" <<EOS
#!/bin/sh
#SBATCH --ntasks=2
#SBATCH --overcommit
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(60)' > "$TB/busy.port" &
lp=\$!
i=0
while [ ! -s "$TB/busy.port" ] && [ \$i -lt 100 ]; do sleep 0.05; i=\$((i + 1)); done
busy=\$(cat "$TB/busy.port")
start=\$(date +%s)
srun "$DCRUN" exec --master-port "\$busy" -- sh -c 'sleep 30; echo never'
echo "busy step: exit \$? in \$(( \$(date +%s) - start )) s, port \$busy"
"$DCRUN" exec --master-port "\$busy" -- echo never
echo "launcher busy: exit \$?"
kill \$lp
EOS
timeout 120 sbatch --wait -o "$TB/port.out" "$TB/port.sbatch" > "$TB/sbatch2.out" 2>&1
busy=$(sed -n 's/^busy step: exit [0-9]* in [0-9]* s, port \([0-9]*\)$/\1/p' "$TB/port.out")
secs=$(sed -n 's/^busy step: exit [0-9]* in \([0-9]*\) s.*$/\1/p' "$TB/port.out")
check "srun dcrun exec, MASTER_PORT in use on rank 0's host: a clear error naming it" \
    '[ -n "$busy" ] && grep -q "^dcrun: exec: .*: MASTER_PORT $busy is in use there (rank 0.s host)\$" "$TB/port.out"'
check "... the step fails and stops at once (${secs:-?} s), no task ran its command" \
    'grep -q "^busy step: exit [1-9][0-9]* in" "$TB/port.out" && [ "${secs:-99}" -lt 20 ] && ! grep -q never "$TB/port.out"'
check "slurm launcher, --master-port in use on rank 0's host: exit 4 naming it, no rank ran" \
    'grep -q "^launcher busy: exit 4\$" "$TB/port.out" && grep -q "MASTER_PORT $busy is in use on this host (rank 0.s)" "$TB/port.out"'
grep -q "is in use there" "$TB/port.out" || sed 's/^/#   /' "$TB/port.out" "$TB/sbatch2.out"

echo "1..$n"
[ $fails -eq 0 ]
