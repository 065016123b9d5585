#!/bin/sh
# dcrun exec over a real sshd on 127.0.0.1-4 (tests/testbed/sshd.sh):
# ranks and environment, tagged whole lines, failing rank, kill-on-bad-exit,
# timeout, host keys, unreachable host, Ctrl-C leaves nothing on any host.
set -u
: "${DCRUN:?}" "${DCRUN_SRCDIR:?}" "${DCRUN_BUILDDIR:?}"
$DCRUN --version | grep -q '^launchers:.* ssh' || {
    echo "1..0 # SKIP dcrun built without libssh2"; exit 77; }
TB=$(mktemp -d "$DCRUN_BUILDDIR/tb-ssh.XXXXXX")
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
unset SSH_AUTH_SOCK # the test key only, whatever agent CI has
fails=0
n=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check () { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
# processes (not zombies) whose command line holds $1
alive () { ps -eo stat=,args= | awk -v t="$1" '$1 !~ /^Z/ && index($0, t) && !/awk/' | wc -l; }
TOKEN=dcrun-ssh-$$-$(date +%s%N)
SLEEP=$T/sleep-$TOKEN
cp "$(command -v sleep)" "$SLEEP"
H=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4
SSH="-L ssh --ssh-port $TB_PORT -i $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS"

# 1. ranks 0..3 once each on their host, with the rank environment
$DCRUN exec $SSH -H $H -x FOO=bar -- sh -c 'echo "env $DCRUN_RANK $DCRUN_SIZE $DCRUN_LOCAL_RANK $DCRUN_NODE_RANK $DCRUN_HOST $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $FOO $TESTBED_NODE"' > "$T/env.out" 2> "$T/env.err"
rc=$?
check "exec over ssh exits 0" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || sed 's/^/#   /' "$T/env.err"
for r in 0 1 2 3; do
    h=127.0.0.$((r + 1))
    check "rank $r ran once on $h with its environment" \
        '[ "$(grep -c "^$r@$h: env $r 4 0 $r $h $r 4 0 1 127.0.0.1 bar $h\$" "$T/env.out")" = 1 ]'
done

# 2. whole tagged lines under concurrent output from every host
$DCRUN exec $SSH -H $H -- sh -c 'i=0; while [ $i -lt 500 ]; do echo "r$DCRUN_RANK-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-end"; i=$((i+1)); done; printf "part"; sleep 0.2; echo ial' > "$T/many.out" 2> /dev/null
check "2004 lines" '[ "$(wc -l < "$T/many.out")" = 2004 ]'
bad=$(grep -v -E '^([0-3])@127\.0\.0\.[1-4]: (r\1-b{90}-end|partial)$' "$T/many.out" | wc -l)
check "every line whole with its own rank's tag ($bad bad)" '[ "$bad" = 0 ]'

# 3. failing rank: its status and host on the last line; kill-on-bad-exit
start=$(date +%s)
$DCRUN exec $SSH -H $H -- sh -c "[ \$DCRUN_RANK = 2 ] && exit 3; exec $SLEEP 30" 2> "$T/fail.err"
rc=$?
el=$(( $(date +%s) - start ))
check "failing rank: exit 3 (its status) in ${el}s" '[ $rc -eq 3 ] && [ $el -lt 6 ]'
check "last line names rank 2, 127.0.0.3 and status 3" \
    '[ "$(tail -n 1 "$T/fail.err")" = "dcrun: exec: rank 2 on 127.0.0.3 exited with status 3" ]'
check "kill-on-bad-exit left nothing running" '[ "$(alive "$TOKEN")" = 0 ]'
$DCRUN exec $SSH -H $H -- sh -c '[ $DCRUN_RANK = 1 ] && kill -KILL $$; exit 0' 2> "$T/sig.err"
check "a rank killed by a signal is named with it" \
    'tail -n 1 "$T/sig.err" | grep -q "rank 1 on 127.0.0.2 killed by signal 9 (SIGKILL)"'
$DCRUN exec $SSH -H $H --no-kill-on-bad-exit -- sh -c '[ $DCRUN_RANK = 0 ] && exit 2; sleep 0.5; echo survived' > "$T/nk.out" 2> /dev/null
check "--no-kill-on-bad-exit lets the others finish" '[ "$(grep -c survived "$T/nk.out")" = 3 ]'

# 4. timeout
start=$(date +%s)
$DCRUN exec $SSH -H $H --timeout 1 -- "$SLEEP" 30 2> "$T/to.err"
rc=$?
el=$(( $(date +%s) - start ))
check "timeout: exit 1 in ${el}s with the message" \
    '[ $rc -eq 1 ] && [ $el -lt 5 ] && tail -n 1 "$T/to.err" | grep -q "timed out after 1 s"'
check "timeout: nothing left" '[ "$(alive "$TOKEN")" = 0 ]'

# 5. host keys: unknown refused with its fingerprint, accepted with
# --ssh-accept-new (and remembered), changed refused even then
: > "$T/kh"
$DCRUN exec $SSH --known-hosts "$T/kh" -H 127.0.0.2 -- true 2> "$T/kh.err"
rc=$?
check "unknown host key: exit 4" '[ $rc -eq 4 ]'
check "unknown host key: host, SHA256 fingerprint and a hint" \
    'grep -q "dcrun: ssh: 127.0.0.2: unknown host key SHA256:[A-Za-z0-9+/]\{43\}, refused" "$T/kh.err" && grep -q "^hint: .*--ssh-accept-new" "$T/kh.err"'
$DCRUN exec $SSH --known-hosts "$T/kh" --ssh-accept-new -H 127.0.0.2 -- true
check "--ssh-accept-new: runs and adds the key" \
    '[ $? -eq 0 ] && grep -q "^\[127.0.0.2\]:$TB_PORT ssh-ed25519 " "$T/kh"'
$DCRUN exec $SSH --known-hosts "$T/kh" -H 127.0.0.2 -- true
check "the added key is known the next time" '[ $? -eq 0 ]'
ssh-keygen -q -t ed25519 -N '' -f "$T/other" < /dev/null > /dev/null
echo "[127.0.0.2]:$TB_PORT $(cut -d' ' -f1,2 "$T/other.pub")" > "$T/kh2"
$DCRUN exec $SSH --known-hosts "$T/kh2" --ssh-accept-new -H 127.0.0.2 -- true 2> "$T/kh2.err"
rc=$?
check "changed host key: refused even with --ssh-accept-new (exit 4)" \
    '[ $rc -eq 4 ] && grep -q "127.0.0.2: host key CHANGED (SHA256:" "$T/kh2.err"'

# 6. unreachable address: exit 4, fast, naming the host; nothing left on the
# hosts that were reached
start=$(date +%s)
$DCRUN exec $SSH -H 127.0.0.1,127.0.0.9 --connect-timeout 3 -- "$SLEEP" 30 2> "$T/unr.err"
rc=$?
el=$(( $(date +%s) - start ))
check "unreachable host: exit 4 within the connect timeout (${el}s)" \
    '[ $rc -eq 4 ] && [ $el -le 3 ]'
check "unreachable host: named with the reason" \
    'grep -q "dcrun: ssh: 127.0.0.9: connect to port $TB_PORT: Connection refused" "$T/unr.err"'
sleep 0.5
check "unreachable host: nothing left on 127.0.0.1" '[ "$(alive "$TOKEN")" = 0 ]'
# a login refused: HOME elsewhere so that no default key of root fits
HOME=$T $DCRUN exec -L ssh --ssh-port $TB_PORT -i "$T/other" --ssh-config "$TB_SSH_CONFIG" --known-hosts "$TB_KNOWN_HOSTS" -H 127.0.0.1 -- true 2> "$T/auth.err"
rc=$?
check "refused login: exit 4 naming the host" \
    '[ $rc -eq 4 ] && grep -q "127.0.0.1: login as .* refused" "$T/auth.err"'

# 7. Ctrl-C: every group on every host gets TERM, then KILL; exit 130;
# no process of the job on any host afterwards
$DCRUN exec $SSH -H $H --kill-grace 1 -- sh -c "trap '' TERM; $SLEEP 30 & $SLEEP 30; wait" > /dev/null 2> "$T/int.err" &
pid=$!
i=0
while [ "$(alive "$SLEEP 30")" -lt 8 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "the job runs on every host" '[ "$(alive "$SLEEP 30")" -ge 8 ]'
kill -INT $pid
wait $pid
rc=$?
check "Ctrl-C: exit 130" '[ $rc -eq 130 ]'
check "Ctrl-C: no process of the job left on any host" '[ "$(alive "$TOKEN")" = 0 ]'

# 8. dcrun killed outright: the workers see their channel close and clean up
$DCRUN exec $SSH -H $H -- "$SLEEP" 30 > /dev/null 2>&1 &
pid=$!
i=0
while [ "$(alive "$SLEEP 30")" -lt 4 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL $pid
wait $pid 2> /dev/null
i=0
while [ "$(alive "$TOKEN")" != 0 ] && [ $i -lt 40 ]; do sleep 0.1; i=$((i + 1)); done
check "dcrun SIGKILLed: the workers kill their jobs when the channel closes" \
    '[ "$(alive "$TOKEN")" = 0 ]'

# 9. ~/.ssh/config: Host alias with HostName, Port and IdentityFile
cat > "$T/config" <<EOF
Host node-a
    HostName 127.0.0.3
    Port $TB_PORT
    IdentityFile $TB_KEY
EOF
HOME=$T $DCRUN exec -L ssh --ssh-config "$T/config" --known-hosts "$TB_KNOWN_HOSTS" -H node-a -- sh -c 'echo $TESTBED_NODE' > "$T/cfg.out" 2> "$T/cfg.err"
check "ssh config Host/HostName/Port/IdentityFile honoured" \
    '[ "$(cat "$T/cfg.out")" = "0@node-a: 127.0.0.3" ]'

# 10. --dry-run prints the remote worker command lines
$DCRUN exec $SSH -H $H --dry-run -- echo hi > "$T/dry.out"
check "--dry-run: launcher ssh and a dcrun worker line per rank" \
    'grep -q "^launcher: ssh" "$T/dry.out" && [ "$(grep -c "^rank [0-3] on 127.0.0.[1-4]: .* worker .*-- echo hi" "$T/dry.out")" = 4 ]'

echo "1..$n"
[ $fails -eq 0 ]
