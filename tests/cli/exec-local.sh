#!/bin/sh
# dcrun exec with the local launcher: rank environment, tagged whole lines,
# exit status, kill-on-bad-exit, timeout, Ctrl-C, --output-dir, --dry-run.
set -u
: "${DCRUN:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/dcrun-exec-local.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
n=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check () { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
# a word no other process on this machine has in its command line
TOKEN=dcrun-test-$$-$(date +%s%N)
# a sleep whose command line carries the token, so pgrep -f finds it
SLEEP=$T/sleep-$TOKEN
cp "$(command -v sleep)" "$SLEEP"

# 1. ranks 0..3 once each, environment
$DCRUN exec -H localhost:4 -x FOO=bar -- sh -c 'echo "env $DCRUN_RANK $DCRUN_SIZE $DCRUN_LOCAL_RANK $DCRUN_LOCAL_SIZE $DCRUN_NODE_RANK $DCRUN_HOST $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $FOO"; echo "port=$MASTER_PORT"' > "$T/env.out" 2> "$T/env.err"
rc=$?
check "exec exits 0 when every rank does" '[ $rc -eq 0 ]'
for r in 0 1 2 3; do
    check "rank $r ran once with its environment" \
        '[ "$(grep -c "^$r@localhost: env $r 4 $r 4 0 localhost $r 4 $r 4 127.0.0.1 bar\$" "$T/env.out")" = 1 ]'
done
check "four lines of env" '[ "$(grep -c " env " "$T/env.out")" = 4 ]'
check "one MASTER_PORT, a number, for all ranks" \
    '[ "$(sed -n "s/.*port=//p" "$T/env.out" | sort -u | grep -c "^[0-9][0-9]*\$")" = 1 ]'

# 2. whole tagged lines under concurrent output, partial lines joined
$DCRUN exec -H localhost:4 -- sh -c 'i=0; while [ $i -lt 300 ]; do echo "r$DCRUN_RANK-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-end"; i=$((i+1)); done; printf "part"; sleep 0.2; printf "ial\n"; printf "x%.0s" $(seq 40000) >&2' > "$T/many.out" 2> "$T/many.err"
check "1200 output lines plus partial" '[ "$(wc -l < "$T/many.out")" = 1204 ]'
bad=$(grep -v -E '^([0-3])@localhost: (r\1-a{114}-end|partial)$' "$T/many.out" | wc -l)
check "every line whole and tagged with its own rank ($bad bad)" '[ "$bad" = 0 ]'
check "a partial line written as one line" '[ "$(grep -c ": partial$" "$T/many.out")" = 4 ]'
check "a 40000-byte line comes in pieces no longer than the cap" \
    '[ "$(awk "length > 16400" "$T/many.err" | wc -l)" = 0 ] && [ "$(grep -c "^2@localhost: xxx" "$T/many.err")" -ge 3 ]'

# 3. a failing rank: status and host on the last stderr line
$DCRUN exec -H localhost:3 --no-kill-on-bad-exit -- sh -c 'sleep 0.$DCRUN_RANK; [ $DCRUN_RANK = 1 ] && exit 3; echo done' > "$T/fail.out" 2> "$T/fail.err"
rc=$?
check "exit 3, the failing rank's status" '[ $rc -eq 3 ]'
check "last line names rank 1, its host and status 3" \
    '[ "$(tail -n 1 "$T/fail.err")" = "dcrun: exec: rank 1 on localhost exited with status 3" ]'
check "--no-kill-on-bad-exit lets rank 2 finish" 'grep -q "^2@localhost: done" "$T/fail.out"'

$DCRUN exec -H localhost:2 -- sh -c '[ $DCRUN_RANK = 1 ] && kill -9 $$; sleep 5' 2> "$T/sig.err"
check "a rank killed by a signal is named with it" \
    'tail -n 1 "$T/sig.err" | grep -q "rank 1 on localhost killed by signal 9 (SIGKILL)"'

# 4. kill-on-bad-exit (default) stops the others quickly
start=$(date +%s)
$DCRUN exec -H localhost:3 -- sh -c "[ \$DCRUN_RANK = 2 ] && exit 5; exec $SLEEP 30" 2> "$T/kob.err"
rc=$?
el=$(( $(date +%s) - start ))
check "kill-on-bad-exit: exit 5 (the failing rank's) in ${el}s (< 5)" '[ $rc -eq 5 ] && [ $el -lt 5 ]'
check "kill-on-bad-exit: first failure named" \
    'tail -n 1 "$T/kob.err" | grep -q "rank 2 on localhost exited with status 5"'
check "kill-on-bad-exit: nothing left" '! pgrep -f "$TOKEN" > /dev/null'

# 5. exec failure comes back with the reason
$DCRUN exec -H localhost:1 -- /nonexistent/cmd-$TOKEN 2> "$T/noexec.err"
rc=$?
check "a command that cannot run: exit 127 with the reason" \
    '[ $rc -eq 127 ] && tail -n 1 "$T/noexec.err" | grep -q "rank 0 on localhost: /nonexistent/cmd-$TOKEN: No such file or directory"'

# 6. timeout
start=$(date +%s)
$DCRUN exec -H localhost:2 --timeout 1 -- "$SLEEP" 30 2> "$T/to.err"
rc=$?
el=$(( $(date +%s) - start ))
check "timeout: exit 1 in ${el}s" '[ $rc -eq 1 ] && [ $el -lt 4 ]'
check "timeout: message" 'tail -n 1 "$T/to.err" | grep -q "timed out after 1 s"'
check "timeout: nothing left" '! pgrep -f "$TOKEN" > /dev/null'

# 7. Ctrl-C: SIGTERM to every group, SIGKILL after the grace, exit 130
$DCRUN exec -H localhost:3 --kill-grace 1 -- sh -c "trap '' TERM; $SLEEP 30 & $SLEEP 30; wait" > /dev/null 2> "$T/int.err" &
pid=$!
i=0
while [ "$(pgrep -f "$SLEEP 30" | wc -l)" -lt 6 ] && [ $i -lt 50 ]; do
    sleep 0.1; i=$((i + 1))
done
check "six sleeps running" '[ "$(pgrep -f "$SLEEP 30" | wc -l)" -ge 6 ]'
kill -INT $pid
wait $pid
rc=$?
check "Ctrl-C: exit 130" '[ $rc -eq 130 ]'
check "Ctrl-C: no process of the job left (TERM ignored, so KILL)" \
    '! pgrep -f "$TOKEN" > /dev/null'

$DCRUN exec -H localhost:2 -- "$SLEEP" 30 2> /dev/null &
pid=$!
sleep 0.3
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM: exit 143, nothing left" \
    '[ $rc -eq 143 ] && ! pgrep -f "$TOKEN" > /dev/null'

# 8. --output-dir and --no-tag
$DCRUN exec -H localhost:2 --no-tag --output-dir "$T/o" -- sh -c 'echo out$DCRUN_RANK; echo err$DCRUN_RANK >&2' > "$T/nt.out" 2> /dev/null
check "--no-tag writes raw lines" \
    '[ "$(sort "$T/nt.out" | tr "\n" " ")" = "out0 out1 " ]'
check "--output-dir files per rank" \
    '[ "$(cat "$T/o/rank-1.out")" = out1 ] && [ "$(cat "$T/o/rank-0.err")" = err0 ]'

# 9. --dry-run starts nothing; unknown launcher lists those compiled in
$DCRUN exec -H localhost:2 --dry-run -- touch "$T/dry" > "$T/dry.out"
check "--dry-run starts nothing" '[ ! -e "$T/dry" ]'
check "--dry-run prints launcher and rank lines" \
    'grep -q "^launcher: local" "$T/dry.out" && grep -q "^rank 1: .*DCRUN_RANK=1 .*touch" "$T/dry.out"'
$DCRUN exec -L nosuch -H localhost -- true 2> "$T/L.err"
rc=$?
check "unknown launcher: exit 2 listing the compiled ones" \
    '[ $rc -eq 2 ] && grep -q "unknown launcher .nosuch. (have: local" "$T/L.err"'
$DCRUN exec -H localhost 2> /dev/null
check "no command: exit 2" '[ $? -eq 2 ]'

# 10. dcrun worker: runs CMD in its own group, EOF on stdin kills it
(sleep 0.5) | $DCRUN worker -e DCRUN_RANK=7 -- sh -c "echo rank=\$DCRUN_RANK; exec $SLEEP 30" > "$T/w.out"
rc=$?
check "worker: EOF on its control channel kills the job" \
    '! pgrep -f "$TOKEN" > /dev/null && [ "$(cat "$T/w.out")" = rank=7 ]'
check "worker: dies of the signal its command died of (TERM)" '[ $rc -eq 143 ]'
$DCRUN worker --control none -- sh -c 'exit 9' < /dev/null
check "worker: exit status passed on" '[ $? -eq 9 ]'
OMPI_COMM_WORLD_RANK=3 OMPI_COMM_WORLD_SIZE=8 OMPI_COMM_WORLD_LOCAL_RANK=1 \
OMPI_COMM_WORLD_LOCAL_SIZE=2 OMPI_COMM_WORLD_NODE_RANK=1 \
    $DCRUN worker -- sh -c 'echo $DCRUN_RANK $WORLD_SIZE $LOCAL_RANK $DCRUN_LOCAL_SIZE $DCRUN_NODE_RANK' < /dev/null > "$T/ompi.out"
check "worker: rank environment from mpirun's" '[ "$(cat "$T/ompi.out")" = "3 8 1 2 1" ]'
SLURM_PROCID=2 SLURM_STEP_ID=0 SLURM_NTASKS=4 SLURM_LOCALID=0 SLURM_NODEID=1 \
SLURM_STEP_TASKS_PER_NODE='2(x2)' \
    $DCRUN worker -- sh -c 'echo $RANK $DCRUN_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $DCRUN_NODE_RANK' < /dev/null > "$T/slurm.out"
check "worker: rank environment from srun's" '[ "$(cat "$T/slurm.out")" = "2 4 0 2 1" ]'

echo "1..$n"
[ $fails -eq 0 ]
