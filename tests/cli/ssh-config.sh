#!/bin/sh
# ssh as users configure it, against a real sshd on 127.0.0.1-3
# (tests/testbed/sshd.sh): ~/.ssh/config with Include, Port and User in
# `Host *`, StrictHostKeyChecking, UserKnownHostsFile, ConnectTimeout,
# unknown options listed with -v, ProxyJump through one test host to
# another (a host-key check per hop), a host without dcrun (exit 4 with a
# hint) and --copy-dcrun (run from a private folder, removed at the end).
set -u
: "${DCRUN:?}" "${DCRUN_SRCDIR:?}" "${DCRUN_BUILDDIR:?}"
$DCRUN --version | grep -q '^launchers:.* ssh' || {
    echo "1..0 # SKIP dcrun built without libssh2"; exit 77; }
TB=$(mktemp -d "$DCRUN_BUILDDIR/tb-sshcfg.XXXXXX")
T=$TB/t
mkdir -p "$T/home/.ssh/conf.d"
LPID=
trap '[ -n "$LPID" ] && kill $LPID 2>/dev/null; sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd"; rm -rf "$TB"' EXIT
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
show () { sed 's/^/#   /' "$1"; }
ME=$(id -un)
# dcrun with its own HOME: ~/.ssh/config is the one this test writes
D () { HOME=$T/home $DCRUN "$@"; }

# 1. Include (relative to ~/.ssh, a glob) of a file that names an alias;
# Port, User, IdentityFile and UserKnownHostsFile from `Host *`
cat > "$T/home/.ssh/config" <<EOF
Include conf.d/*.conf
Host *
  Port $TB_PORT
  User $ME
  IdentityFile $TB_KEY
  UserKnownHostsFile $TB_KNOWN_HOSTS
EOF
cat > "$T/home/.ssh/conf.d/nodes.conf" <<EOF
Host nodea
  HostName 127.0.0.3
  User $ME
EOF
D exec -L ssh -H nodea -- sh -c 'echo "on $TESTBED_NODE"' > "$T/inc.out" 2> "$T/inc.err"
rc=$?
check "Include: the alias from the included file reaches 127.0.0.3" \
    '[ $rc -eq 0 ] && grep -q "^0@nodea: on 127.0.0.3\$" "$T/inc.out"'
[ $rc -eq 0 ] || show "$T/inc.err"
D exec -L ssh -H 127.0.0.1 -- true 2> "$T/star.err"
check "Port, User, IdentityFile, UserKnownHostsFile from Host * (no --ssh-port)" '[ $? -eq 0 ]'
[ -s "$T/star.err" ] && show "$T/star.err"
# the first value wins: a User in Host * before the host's own one
cat > "$T/first.conf" <<EOF
Host *
  User nosuchuser-$$
Host 127.0.0.1
  User $ME
EOF
HOME=$T/home $DCRUN exec -L ssh --ssh-config "$T/first.conf" -i "$TB_KEY" --ssh-port "$TB_PORT" --known-hosts "$TB_KNOWN_HOSTS" -H 127.0.0.1 -- true 2> "$T/first.err"
rc=$?
check "User in Host * is the first value: it wins (login refused, exit 4)" \
    '[ $rc -eq 4 ] && grep -q "login as nosuchuser-$$ refused" "$T/first.err"'

# 2. StrictHostKeyChecking: accept-new adds the key, yes refuses an unknown
# host, no connects without adding it; UserKnownHostsFile names the file
kh=$T/kh-new
: > "$kh"
ssh_conf () { # $1: StrictHostKeyChecking value
    cat > "$T/strict.conf" <<EOF
Host 127.0.0.2
  StrictHostKeyChecking $1
  UserKnownHostsFile $kh
Host *
  Port $TB_PORT
  IdentityFile $TB_KEY
EOF
}
ssh_conf yes
D exec -L ssh --ssh-config "$T/strict.conf" -H 127.0.0.2 -- true 2> "$T/yes.err"
rc=$?
check "StrictHostKeyChecking yes: an unknown host is refused (exit 4)" \
    '[ $rc -eq 4 ] && grep -q "127.0.0.2: unknown host key SHA256:.* not in $kh" "$T/yes.err"'
ssh_conf no
D exec -L ssh --ssh-config "$T/strict.conf" -H 127.0.0.2 -- true 2> "$T/no.err"
rc=$?
check "StrictHostKeyChecking no: connects, adds nothing" '[ $rc -eq 0 ] && ! [ -s "$kh" ]'
ssh_conf accept-new
D exec -L ssh --ssh-config "$T/strict.conf" -H 127.0.0.2 -- true 2> "$T/an.err"
rc=$?
check "StrictHostKeyChecking accept-new: connects and adds the key to UserKnownHostsFile" \
    '[ $rc -eq 0 ] && grep -q "^\[127.0.0.2\]:$TB_PORT ssh-ed25519 " "$kh"'
ssh_conf yes
D exec -L ssh --ssh-config "$T/strict.conf" -H 127.0.0.2 -- true 2> "$T/yes2.err"
check "the added key is known the next time (yes)" '[ $? -eq 0 ]'

# 3. ConnectTimeout against a listening socket that never answers
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
time.sleep(60)' > "$T/port" &
LPID=$!
i=0
while ! [ -s "$T/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
cat > "$T/ct.conf" <<EOF
Host mute
  HostName 127.0.0.1
  Port $(cat "$T/port")
  ConnectTimeout 1
EOF
start=$(date +%s)
D exec -L ssh --ssh-config "$T/ct.conf" -H mute -- true 2> "$T/ct.err"
rc=$?
el=$(( $(date +%s) - start ))
check "ConnectTimeout 1: exit 4 in ${el}s (the default is 10 s)" \
    '[ $rc -eq 4 ] && [ $el -le 4 ] && grep -q "mute 127.0.0.1: no answer within 1 s" "$T/ct.err"'
[ $rc -eq 4 ] && [ $el -le 4 ] || show "$T/ct.err"
kill $LPID 2>/dev/null; wait $LPID 2>/dev/null; LPID=

# 4. options dcrun does not understand: listed once with -v, silent without
cat > "$T/unk.conf" <<EOF
Host *
  Compression yes
  Port $TB_PORT
  IdentityFile $TB_KEY
  UserKnownHostsFile $TB_KNOWN_HOSTS
EOF
D exec -v -L ssh --ssh-config "$T/unk.conf" -H 127.0.0.1,127.0.0.2 -- true 2> "$T/unk.err"
rc=$?
check "-v: an unknown option is listed once, with file and line" \
    '[ $rc -eq 0 ] && [ "$(grep -c "unk.conf:2: Compression (for 127.0.0.[12]): not understood by dcrun, ignored" "$T/unk.err")" = 1 ] && [ "$(grep -c Compression "$T/unk.err")" = 1 ]'
[ $rc -eq 0 ] && [ "$(grep -c Compression "$T/unk.err")" = 1 ] || show "$T/unk.err"
D exec -L ssh --ssh-config "$T/unk.conf" -H 127.0.0.1 -- true 2> "$T/unk0.err"
check "without -v: not listed" '[ $? -eq 0 ] && ! grep -q Compression "$T/unk0.err"'

# 5. ProxyJump: through 127.0.0.1 to 127.0.0.2.  The session to the target
# runs over the jump's forwarding: the client end of the target's ssh
# connection belongs to sshd (the jump's), not to dcrun.
cat > "$T/pj.conf" <<EOF
Host target
  HostName 127.0.0.2
  ProxyJump jump
Host jump
  HostName 127.0.0.1
Host *
  Port $TB_PORT
  IdentityFile $TB_KEY
EOF
D exec -L ssh --ssh-config "$T/pj.conf" --known-hosts "$TB_KNOWN_HOSTS" -H target -- sh -c 'set -- $SSH_CONNECTION; echo "on $TESTBED_NODE"; ss -Htnp state established "( sport = :$2 )"' > "$T/pj.out" 2> "$T/pj.err"
rc=$?
check "ProxyJump: the rank runs on the target" \
    '[ $rc -eq 0 ] && grep -q "^0@target: on 127.0.0.2\$" "$T/pj.out"'
[ $rc -eq 0 ] || show "$T/pj.err"
check "ProxyJump: the target's connection comes from the jump's sshd" \
    'grep -q "users:((\"sshd" "$T/pj.out" && ! grep -q "users:((\"dcrun" "$T/pj.out"'
show "$T/pj.out"
# a host-key check for each hop
grep -v '^\[127.0.0.1\]' "$TB_KNOWN_HOSTS" > "$T/kh-nojump"
D exec -L ssh --ssh-config "$T/pj.conf" --known-hosts "$T/kh-nojump" -H target -- true 2> "$T/pj1.err"
rc=$?
check "ProxyJump: the jump host's key is checked (unknown: exit 4 naming it)" \
    '[ $rc -eq 4 ] && grep -q "target 127.0.0.2: ProxyJump jump 127.0.0.1: unknown host key" "$T/pj1.err"'
grep -v '^\[127.0.0.2\]' "$TB_KNOWN_HOSTS" > "$T/kh-notarget"
D exec -L ssh --ssh-config "$T/pj.conf" --known-hosts "$T/kh-notarget" -H target -- true 2> "$T/pj2.err"
rc=$?
check "ProxyJump: the target's key is checked too (unknown: exit 4)" \
    '[ $rc -eq 4 ] && grep -q "target 127.0.0.2: unknown host key" "$T/pj2.err" && ! grep -q ProxyJump "$T/pj2.err"'
# a jump that cannot be reached: the target is not tried directly
sed "s/^Host jump\$/Host jump\n  Port 1/" "$T/pj.conf" > "$T/pj-bad.conf"
D exec -L ssh --ssh-config "$T/pj-bad.conf" --known-hosts "$TB_KNOWN_HOSTS" -H target -- true 2> "$T/pj3.err"
rc=$?
check "ProxyJump: an unreachable jump host fails the host (exit 4)" \
    '[ $rc -eq 4 ] && grep -q "ProxyJump jump 127.0.0.1: connect to port 1" "$T/pj3.err"'

# 6. no dcrun at --remote-dcrun's path: exit 4 with the host, path and hint
SSH="-L ssh --ssh-port $TB_PORT -i $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS"
$DCRUN exec $SSH --remote-dcrun /nonexistent/dcrun -H 127.0.0.3 -- true 2> "$T/nod.err"
rc=$?
check "no dcrun there: exit 4 naming host and path" \
    '[ $rc -eq 4 ] && grep -q "dcrun: ssh: 127.0.0.3: no dcrun at .\?/nonexistent/dcrun.\? there" "$T/nod.err"'
check "no dcrun there: the hint" \
    'grep -q "^hint: install dcrun there, or use --copy-dcrun" "$T/nod.err" && ! grep -q "status 127" "$T/nod.err"'

# 7. --copy-dcrun: the binary goes to a private folder under the host's
# TMPDIR, runs from there, and is removed at the end
NT=$TB_DIR/nodes/127.0.0.3/tmp
$DCRUN exec $SSH --remote-dcrun /nonexistent/dcrun --copy-dcrun -H 127.0.0.3,127.0.0.3 -- sh -c 'echo "rank $DCRUN_RANK"; ls -ld "$TMPDIR"/dcrun.* | cut -c1-10; ls "$TMPDIR"/dcrun.*; echo "modules ${DCRUN_MODULE_DIR:-none}: $(ls "${DCRUN_MODULE_DIR:-/nonexistent}" 2>/dev/null | tr "\n" " ")"' > "$T/cp.out" 2> "$T/cp.err"
rc=$?
check "--copy-dcrun: both ranks run" \
    '[ $rc -eq 0 ] && grep -q "^0@127.0.0.3: rank 0\$" "$T/cp.out" && grep -q "^1@127.0.0.3: rank 1\$" "$T/cp.out"'
[ $rc -eq 0 ] || show "$T/cp.err"
check "--copy-dcrun: one private folder (drwx------) holding dcrun while it runs" \
    '[ "$(grep -c ": drwx------\$" "$T/cp.out")" = 2 ] && [ "$(grep -c ": dcrun\$" "$T/cp.out")" = 2 ]'
if [ -f "$DCRUN_BUILDDIR/gpu/dcrun_cudart.so" ]; then
    check "--copy-dcrun: the GPU modules go along (DCRUN_MODULE_DIR)" \
        '[ "$(grep -c ": modules $NT/dcrun\.[A-Za-z0-9]*/modules: .*dcrun_cudart\.so" "$T/cp.out")" = 2 ]'
fi
check "--copy-dcrun: no temporary folder left on the host" '[ -z "$(ls -A "$NT")" ]'
# a host where dcrun is found gets no copy
$DCRUN exec $SSH --copy-dcrun -H 127.0.0.3 -- sh -c 'echo "tmp: $(ls -A "$TMPDIR") modules: ${DCRUN_MODULE_DIR:-unset}"' > "$T/cp0.out" 2> "$T/cp0.err"
check "--copy-dcrun: no copy where dcrun is found" \
    '[ $? -eq 0 ] && grep -q "^0@127.0.0.3: tmp:  modules: unset\$" "$T/cp0.out"'
# interrupted: removed too
$DCRUN exec $SSH --remote-dcrun /nonexistent/dcrun --copy-dcrun -H 127.0.0.3 -- sh -c 'echo started; exec sleep 30' > "$T/int.out" 2>&1 &
pid=$!
# interrupt once the rank runs from the copy (not after a fixed time: the
# copy takes longer on a loaded machine)
i=0
while ! grep -q started "$T/int.out" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid
rc=$?
check "--copy-dcrun, interrupted: exit 130, the folder is removed" \
    '[ $rc -eq 130 ] && [ -z "$(ls -A "$NT")" ]'

echo "1..$n"
[ $fails -eq 0 ]
