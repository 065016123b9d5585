#!/bin/sh
# dcrun exec -L mpi: OpenMPI's mpirun over a real sshd on 127.0.0.1-4
# (tests/testbed/sshd.sh): ranks 0..3 once each with the rank environment,
# tagged whole lines, a failing rank's status in the last line, the rank map
# kept (map-by node), Ctrl-C leaves nothing on any host, stdin to rank 0 (or
# every rank) in frames on the connect-back channel.
set -u
: "${DCRUN:?}" "${DCRUN_SRCDIR:?}" "${DCRUN_BUILDDIR:?}"
$DCRUN --version | grep -q '^launchers:.* mpi' || {
    echo "1..0 # SKIP dcrun built without the mpi launcher"; exit 77; }
command -v mpirun > /dev/null || {
    echo "1..0 # SKIP mpirun not installed (openmpi-bin)"; exit 77; }
command -v ssh > /dev/null || {
    echo "1..0 # SKIP ssh not installed (openssh-client)"; exit 77; }
TB=$(mktemp -d "$DCRUN_BUILDDIR/tb-mpi.XXXXXX")
T=$TB/t
mkdir -p "$T"
trap 'sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd"; rm -rf "$TB"' EXIT
why=$(sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 4 2>&1)
case $? in
0) ;;
77) echo "1..0 # SKIP cannot start sshd: $why"; exit 77 ;;
*) echo "testbed failed: $why"; exit 1 ;;
esac
. "$TB/sshd/env.sh"
unset SSH_AUTH_SOCK
fails=0
n=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check () { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
alive () { ps -eo stat=,args= | awk -v t="$1" '$1 !~ /^Z/ && index($0, t) && !/awk/' | wc -l; }
TOKEN=dcrun-mpi-$$-$(date +%s%N)
SLEEP=$T/sleep-$TOKEN
cp "$(command -v sleep)" "$SLEEP"
H=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4
# mpirun reaches the "hosts" through the test sshd (it runs 127.0.0.1 itself)
RSH="--mca plm_rsh_agent 'ssh $TB_SSH_OPTS'"

# 1. ranks 0..3 once each on their host, with the rank environment
$DCRUN exec -L mpi --mpirun-args "$RSH" -H $H -x FOO=bar -- sh -c 'echo "env $DCRUN_RANK $DCRUN_SIZE $DCRUN_LOCAL_RANK $DCRUN_NODE_RANK $DCRUN_HOST $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $FOO $OMPI_COMM_WORLD_RANK"; echo "node ${TESTBED_NODE:-127.0.0.1}" >&2' > "$T/env.out" 2> "$T/env.err"
rc=$?
check "exec through mpirun exits 0" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || sed 's/^/#   /' "$T/env.err"
for r in 0 1 2 3; do
    h=127.0.0.$((r + 1))
    check "rank $r ran once with its environment (MPI rank $r)" \
        '[ "$(grep -c "^$r@$h: env $r 4 0 $r $h $r 4 0 1 127.0.0.1 bar $r\$" "$T/env.out")" = 1 ]'
    check "rank $r's stderr tagged and from host $h" \
        '[ "$(grep -c "^$r@$h: node $h\$" "$T/env.err")" = 1 ]'
done

# 2. dcrun's rank map kept: two ranks on .2, map-by node
$DCRUN exec -L mpi --mpirun-args "$RSH" -H 127.0.0.1,127.0.0.2:2,127.0.0.3 --map-by node -- sh -c 'echo $DCRUN_LOCAL_RANK $LOCAL_WORLD_SIZE ${TESTBED_NODE:-127.0.0.1}' > "$T/map.out" 2> "$T/map.err"
check "map-by node: rank 1 and 3 on 127.0.0.2, rank 2 on 127.0.0.3" \
    '[ "$(sort "$T/map.out" | tr "\n" " ")" = "0@127.0.0.1: 0 1 127.0.0.1 1@127.0.0.2: 0 2 127.0.0.2 2@127.0.0.3: 0 1 127.0.0.3 3@127.0.0.2: 1 2 127.0.0.2 " ]'

# 3. whole tagged lines under concurrent output
$DCRUN exec -L mpi --mpirun-args "$RSH" -H $H -- sh -c 'i=0; while [ $i -lt 500 ]; do echo "r$DCRUN_RANK-cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc-end"; i=$((i+1)); done; printf part; sleep 0.2; echo ial' > "$T/many.out" 2> /dev/null
check "2004 lines" '[ "$(wc -l < "$T/many.out")" = 2004 ]'
bad=$(grep -v -E '^([0-3])@127\.0\.0\.[1-4]: (r\1-c{90}-end|partial)$' "$T/many.out" | wc -l)
check "every line whole with its own rank's tag ($bad bad)" '[ "$bad" = 0 ]'

# 4. a failing rank: its status and host on the last line, the others
# stopped (kill-on-bad-exit), every rank's status known
start=$(date +%s)
$DCRUN exec -L mpi --mpirun-args "$RSH" -H $H -- sh -c "[ \$DCRUN_RANK = 2 ] && exit 3; exec $SLEEP 30" 2> "$T/fail.err"
rc=$?
el=$(( $(date +%s) - start ))
check "failing rank: exit 3 (its status) in ${el}s" '[ $rc -eq 3 ] && [ $el -lt 10 ]'
check "last line names rank 2, 127.0.0.3 and status 3" \
    '[ "$(tail -n 1 "$T/fail.err")" = "dcrun: exec: rank 2 on 127.0.0.3 exited with status 3" ]'
check "kill-on-bad-exit left nothing running" '[ "$(alive "$TOKEN")" = 0 ]'
$DCRUN exec -L mpi --mpirun-args "$RSH" -H $H --no-kill-on-bad-exit -- sh -c '[ $DCRUN_RANK = 0 ] && exit 2; sleep 0.5; echo survived' > "$T/nk.out" 2> "$T/nk.err"
rc=$?
check "--no-kill-on-bad-exit: the others finish, rank 0's status is the last line" \
    '[ $rc -eq 2 ] && [ "$(grep -c survived "$T/nk.out")" = 3 ] && [ "$(tail -n 1 "$T/nk.err")" = "dcrun: exec: rank 0 on 127.0.0.1 exited with status 2" ]'
$DCRUN exec -L mpi --mpirun-args "$RSH" -H $H -- sh -c '[ $DCRUN_RANK = 3 ] && kill -KILL $$; exit 0' 2> "$T/sig.err"
check "a rank killed by a signal is named with it" \
    'tail -n 1 "$T/sig.err" | grep -q "rank 3 on 127.0.0.4 killed by signal 9 (SIGKILL)"'
$DCRUN exec -L mpi --mpirun-args "$RSH" -H $H -- /nonexistent/cmd-$TOKEN 2> "$T/nx.err"
check "a command that cannot run: exit 127 with the reason" \
    '[ $? -eq 127 ] && grep -q "nonexistent/cmd-$TOKEN: No such file or directory" "$T/nx.err"'

# 5. an unreachable host: exit 4 with mpirun's reason
start=$(date +%s)
$DCRUN exec -L mpi --mpirun-args "$RSH" -H 127.0.0.1,127.0.0.9 --connect-timeout 3 -- $SLEEP 30 2> "$T/unr.err"
rc=$?
el=$(( $(date +%s) - start ))
check "unreachable host: exit 4 in ${el}s" '[ $rc -eq 4 ] && [ $el -lt 10 ]'
check "unreachable host: mpirun's reason" 'grep -q "dcrun: mpi: .*never started\|did not start" "$T/unr.err"'
sleep 0.5
check "unreachable host: nothing left" '[ "$(alive "$TOKEN")" = 0 ]'

# 6. Ctrl-C: SIGTERM to every rank (and mpirun), SIGKILL after the grace,
# exit 130, nothing of the job left: no rank, no worker, no orted
$DCRUN exec -L mpi --mpirun-args "$RSH" -H $H --kill-grace 1 -- sh -c "trap '' TERM; $SLEEP 30 & $SLEEP 30; wait" > /dev/null 2> "$T/int.err" &
pid=$!
i=0
while [ "$(alive "$SLEEP 30")" -lt 8 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "the job runs on every host" '[ "$(alive "$SLEEP 30")" -ge 8 ]'
kill -INT $pid
wait $pid
rc=$?
check "Ctrl-C: exit 130" '[ $rc -eq 130 ]'
[ $rc -eq 130 ] || sed 's/^/#   /' "$T/int.err"
i=0
while [ "$(alive "$TOKEN")" != 0 ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
check "Ctrl-C: no process of the job left on any host" '[ "$(alive "$TOKEN")" = 0 ]'
i=0
while [ "$(alive "$TB_KEY")" != 0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "Ctrl-C: no mpirun, orted or ssh to the test hosts left" '[ "$(alive "$TB_KEY")" = 0 ]'

# 7. --dry-run starts nothing and says mpi
$DCRUN exec -L mpi --mpirun-args "$RSH" -H $H --dry-run -- echo hi > "$T/dry.out"
check "--dry-run: launcher mpi, the mpirun line" \
    'grep -q "^launcher: mpi" "$T/dry.out" && grep -q "^mpirun .*--hostfile .* -np 1 --host 127.0.0.4:1 .* worker --control none .*-- echo hi" "$T/dry.out"'

# 8. stdin: to rank 0 (on 127.0.0.1) in frames on its connect-back ctl
# channel, EOF included; --stdin all to every host; binary bytes whole
printf 'hello\nworld\n' > "$T/in.txt"
$DCRUN exec -L mpi --mpirun-args "$RSH" -H 127.0.0.1,127.0.0.2 -- sh -c 'read x; read y; echo "got:${x:-none}:${y:-none}"; wc -c' < "$T/in.txt" > "$T/in.out" 2> "$T/in.err"
check "stdin goes to rank 0 only, then EOF; rank 1 reads nothing" \
    '[ "$(sort "$T/in.out" | tr "\n" "|")" = "0@127.0.0.1: 0|0@127.0.0.1: got:hello:world|1@127.0.0.2: 0|1@127.0.0.2: got:none:none|" ]'
head -c 1000000 /dev/urandom > "$T/big.bin"
sum=$(sha256sum < "$T/big.bin" | cut -c1-64)
$DCRUN exec -L mpi --mpirun-args "$RSH" -H 127.0.0.1,127.0.0.2 --stdin all -- sh -c 'sha256sum | cut -c1-64' < "$T/big.bin" > "$T/big.out" 2> "$T/big.err"
check "--stdin all: 1 MB of binary stdin whole on every host" \
    '[ "$(sort "$T/big.out" | tr "\n" "|")" = "0@127.0.0.1: $sum|1@127.0.0.2: $sum|" ]'
echo hi | $DCRUN exec -L mpi --mpirun-args "$RSH" -H 127.0.0.1,127.0.0.2 --stdin none -- sh -c 'read x; echo "got:${x:-none}"' > "$T/none.out" 2> "$T/none.err"
check "--stdin none: every rank reads nothing" \
    '[ "$(sort "$T/none.out" | tr "\n" "|")" = "0@127.0.0.1: got:none|1@127.0.0.2: got:none|" ]'

# 9. MASTER_PORT is chosen (or checked) on rank 0's host, 127.0.0.2 here,
# by a one-rank mpirun of `dcrun worker --port-check` there
$DCRUN exec -v -L mpi --mpirun-args "$RSH" -H 127.0.0.2,127.0.0.3 -- sh -c 'echo "port $MASTER_PORT"' > "$T/port.out" 2> "$T/port.err"
rc=$?
port=$(sed -n 's/^0@127.0.0.2: port \([0-9]*\)$/\1/p' "$T/port.out")
check "MASTER_PORT chosen on rank 0's host: every rank has it" \
    '[ $rc -eq 0 ] && [ -n "$port" ] && [ "$(grep -c "^[01]@127.0.0.[23]: port $port\$" "$T/port.out")" = 2 ]'
check "-v says rank 0's host chose it" \
    'grep -q "mpi: 127.0.0.2: MASTER_PORT $port, free there (rank 0.s host)" "$T/port.err"'
$DCRUN exec -L mpi --mpirun-args "$RSH" -H 127.0.0.2 --dry-run -- true > "$T/pdry.out"
check "--dry-run says MASTER_PORT is decided on rank 0's host" \
    'grep -q "^MASTER_PORT: chosen on rank 0.s host (127.0.0.2) before any rank starts$" "$T/pdry.out"'
mkfifo "$T/busy.fifo"
exec 8<> "$T/busy.fifo"
/usr/bin/python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.2", 0)); s.listen()
print(s.getsockname()[1], flush=True); sys.stdin.read()' > "$T/busy.port" < "$T/busy.fifo" 2> /dev/null &
lpid=$!
i=0
while [ ! -s "$T/busy.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
busy=$(cat "$T/busy.port")
$DCRUN exec -L mpi --mpirun-args "$RSH" -H 127.0.0.2,127.0.0.3 --master-port "$busy" -- echo never > "$T/busy.out" 2> "$T/busy.err"
rc=$?
check "--master-port in use on rank 0's host: exit 4, no rank started" \
    '[ $rc -eq 4 ] && [ ! -s "$T/busy.out" ]'
check "the error names rank 0's host and the port" \
    'grep -q "127.0.0.2: MASTER_PORT $busy is in use there (rank 0.s host)" "$T/busy.err"'
[ $rc -eq 4 ] || sed 's/^/#   /' "$T/busy.err"
kill $lpid 2> /dev/null
wait $lpid 2> /dev/null
exec 8>&-
$DCRUN exec -L mpi --mpirun-args "$RSH" -H 127.0.0.2,127.0.0.3 --master-port "$busy" -- sh -c 'echo "port $MASTER_PORT"' > "$T/free.out" 2> "$T/free.err"
check "--master-port free on rank 0's host: every rank has the port given" \
    '[ "$(grep -c "^[01]@127.0.0.[23]: port $busy\$" "$T/free.out")" = 2 ]'

echo "1..$n"
[ $fails -eq 0 ]
