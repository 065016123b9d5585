#!/bin/sh
# dcrun check over a real sshd (tests/testbed/sshd.sh): a good host, a host
# with no sshd, a host whose known key is another one, dcrun missing there,
# --json, exit 0 only when every host is fine (4 otherwise), in bounded time.
set -u
: "${DCRUN:?}" "${DCRUN_SRCDIR:?}" "${DCRUN_BUILDDIR:?}"
$DCRUN --version | grep -q '^launchers:.* ssh' || {
    echo "1..0 # SKIP dcrun built without libssh2"; exit 77; }
TB=$(mktemp -d "$DCRUN_BUILDDIR/tb-check.XXXXXX")
T=$TB/t
mkdir -p "$T"
trap 'sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd"; rm -rf "$TB"' EXIT
why=$(sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 3 2>&1)
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
# 127.0.0.3's known key is another host's
ssh-keygen -q -t ed25519 -N '' -f "$T/other" < /dev/null > /dev/null
grep -v '^\[127.0.0.3\]' "$TB_KNOWN_HOSTS" > "$T/kh"
echo "[127.0.0.3]:$TB_PORT $(cut -d' ' -f1,2 "$T/other.pub")" >> "$T/kh"
SSH="-L ssh --ssh-port $TB_PORT --ssh-key $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $T/kh"

$DCRUN check $SSH -H 127.0.0.1,127.0.0.2 > "$T/good.out" 2> "$T/good.err"
rc=$?
check "every host fine: exit 0" '[ $rc -eq 0 ]'
check "a row per host with OK and the version" \
    '[ "$(grep -c "^127.0.0.[12] *OK *dcrun $($DCRUN --version | sed -n "s/^dcrun //p"), 0 GPUs" "$T/good.out")" = 2 ]'

start=$(date +%s)
$DCRUN check $SSH --connect-timeout 3 -H 127.0.0.9,127.0.0.3 > /dev/null 2>&1
rc=$?
el=$(( $(date +%s) - start ))
check "bad hosts: exit 4 within the connect timeout (${el}s)" '[ $rc -eq 4 ] && [ $el -le 4 ]'
$DCRUN check $SSH -H 127.0.0.1,127.0.0.9,127.0.0.3 > "$T/bad.out" 2> "$T/bad.err"
rc=$?
check "a bad host among good ones: exit 4" '[ $rc -eq 4 ]'
check "good host: OK" 'grep -q "^127.0.0.1 *OK " "$T/bad.out"'
check "no sshd: BAD with the reason" \
    'grep -q "^127.0.0.9 *BAD *connect to port $TB_PORT: Connection refused" "$T/bad.out"'
check "wrong key: BAD, the key changed, with its fingerprint and a hint" \
    'grep -q "^127.0.0.3 *BAD *host key CHANGED (SHA256:" "$T/bad.out" && grep -q "hint: .*ssh-keygen -R" "$T/bad.out"'
check "the summary names the count" 'grep -q "^dcrun: check: 2 of 3 hosts not ready" "$T/bad.err"'

$DCRUN check $SSH --json -H 127.0.0.1,127.0.0.9 > "$T/json.out" 2> /dev/null
check "--json: one object, ok false, a row per host" \
    '/usr/bin/python3 -c "
import json, sys
o = json.load(open(sys.argv[1]))
h = o[\"hosts\"]
assert o[\"ok\"] is False and len(h) == 2
assert h[0][\"host\"] == \"127.0.0.1\" and h[0][\"ok\"] and h[0][\"gpus\"] == 0
assert h[1][\"stage\"] == \"connect\" and not h[1][\"ok\"] and h[1][\"gpus\"] is None
" "$T/json.out"'

$DCRUN check $SSH --remote-dcrun /nonexistent/dcrun -H 127.0.0.2 > "$T/nx.out" 2>&1
rc=$?
check "dcrun missing there: exit 4 and said so" \
    '[ $rc -eq 4 ] && grep -q "^127.0.0.2 *BAD *dcrun not found there as /nonexistent/dcrun" "$T/nx.out"'

printf '127.0.0.1 slots=1 gpus=0\n' > "$T/gpus.hosts"
$DCRUN check $SSH -f "$T/gpus.hosts" > "$T/gpu.out" 2>&1
check "gpus= naming a GPU the host lacks: BAD" \
    '[ $? -eq 4 ] && grep -q "gpus= names GPU 0 but the host has 0 GPUs" "$T/gpu.out"'

# dcrun probe -H: every host's probe in one {"hosts": [...]}
$DCRUN probe $SSH --json -H 127.0.0.2,127.0.0.9 > "$T/probe.out" 2> "$T/probe.err"
rc=$?
check "probe -H: exit 4 with a host not probed" '[ $rc -eq 4 ]'
check "probe -H: one entry per host, remote probe read, the bad host's error" \
    '/usr/bin/python3 -c "
import json, sys
h = json.load(open(sys.argv[1]))[\"hosts\"]
assert [x[\"host\"] for x in h] == [\"127.0.0.2\", \"127.0.0.9\"]
assert h[0][\"cores\"] >= 1 and \"gpus\" in h[0]
assert \"Connection refused\" in h[1][\"error\"]
" "$T/probe.out"'

echo "1..$n"
[ $fails -eq 0 ]
