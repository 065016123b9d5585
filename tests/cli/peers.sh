#!/bin/sh
# Peers: nobody gets in or blocks a job (issue 10).
#  1. host keys as OpenSSH checks them, against a real sshd
#     (tests/testbed/sshd.sh): a host known only with a key of another type
#     is a changed key, a known_hosts line that cannot be parsed is an error
#     naming it, @revoked keys are refused, the handshake asks for the key
#     type known_hosts has;
#  2. -x NAME=VALUE never on a command line (every /proc/*/cmdline read
#     while the ranks run), for the local, ssh and mpi launchers;
#  3. the connect-back listener of -L mpi: on loopback for local ranks, and
#     40 idle connections of another user (tests/fixtures/connect-back/
#     squat.py as nobody) do not stop a job.
# Parts whose tools are missing say so with "# SKIP".
set -u
: "${DCRUN:?}" "${DCRUN_SRCDIR:?}" "${DCRUN_BUILDDIR:?}"
TB=$(mktemp -d "$DCRUN_BUILDDIR/tb-peers.XXXXXX")
T=$TB/t
mkdir -p "$T"
SSHD_UP=0
cleanup () {
    [ $SSHD_UP = 1 ] && sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd"
    [ -s "$TB/sshd2.pid" ] && kill "$(cat "$TB/sshd2.pid")" 2>/dev/null
    rm -rf "$TB"
}
trap cleanup EXIT
unset SSH_AUTH_SOCK
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fails=0
n=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
skip () { n=$((n + 1)); echo "ok $n # SKIP $1"; }
check () { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
show () { sed 's/^/#   /' "$1" | head -5; }
has_launcher () { $DCRUN --version | grep -q "^launchers:.* $1"; }

why=$(sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 2 2>&1)
case $? in
0) SSHD_UP=1; . "$TB/sshd/env.sh" ;;
*) echo "# no sshd: $why" ;;
esac
has_launcher ssh || SSHD_UP=0

# ---- 1. host keys ----
if [ $SSHD_UP = 1 ]; then
    SSH="-L ssh --ssh-port $TB_PORT -i $TB_KEY --ssh-config $TB_SSH_CONFIG"
    HP="[127.0.0.1]:$TB_PORT"
    SRVKEY=$(cut -d' ' -f1,2 "$TB_DIR/ssh_host_ed25519_key.pub")
    ssh-keygen -q -t ecdsa -N '' -f "$T/ecdsa" < /dev/null > /dev/null
    ssh-keygen -q -t ed25519 -N '' -f "$T/ed" < /dev/null > /dev/null
    ECKEY=$(cut -d' ' -f1,2 "$T/ecdsa.pub")
    EDKEY=$(cut -d' ' -f1,2 "$T/ed.pub")

    # the server offers ed25519; known_hosts knows the host by ecdsa only
    echo "$HP $ECKEY" > "$T/kh-type"
    for accept in "" --ssh-accept-new; do
        $DCRUN exec $SSH --known-hosts "$T/kh-type" $accept -H 127.0.0.1 -- true 2> "$T/type.err"
        rc=$?
        check "known by another key type only${accept:+ ($accept)}: refused as changed, exit 4" \
            '[ $rc -eq 4 ] && grep -q "127.0.0.1: host key CHANGED (SHA256:.*offers a ssh-ed25519 key .* only keys of other types (ecdsa-sha2-nistp256)" "$T/type.err"'
        [ $rc -eq 4 ] || show "$T/type.err"
    done
    check "--ssh-accept-new added nothing" '[ "$(wc -l < "$T/kh-type")" = 1 ]'

    # a line that cannot be parsed: an error naming file and line, even
    # when the host's own line comes before it
    i=0
    while read -r bad; do
        i=$((i + 1))
        printf '%s\n# a comment\n%s\n%s\n' "$HP $SRVKEY" "$bad" "other.example $EDKEY" > "$T/kh-bad$i"
        $DCRUN exec $SSH --known-hosts "$T/kh-bad$i" -H 127.0.0.1 -- true 2> "$T/bad$i.err"
        rc=$?
        check "bad known_hosts line '$(echo "$bad" | cut -c1-40)': exit 4 naming $T/kh-bad$i:3" \
            '[ $rc -eq 4 ] && grep -q "kh-bad$i:3: cannot parse this known_hosts line" "$T/bad$i.err"'
        [ $rc -eq 4 ] || show "$T/bad$i.err"
    done <<EOF
$HP
$HP ssh-ed25519
$HP ssh-ed25519 not*base64!
$HP ssh-rsa ${EDKEY#ssh-ed25519 }
@bogus $HP $EDKEY
@revoked $HP
EOF
    # a file that parses: hashed names, markers, comments, CRLF are fine
    printf '%s\r\n@cert-authority *.example %s\n%s trailing comment\n' "$HP $SRVKEY" "$EDKEY" "a.example,b.example $ECKEY" > "$T/kh-good"
    $DCRUN exec $SSH --known-hosts "$T/kh-good" -H 127.0.0.1 -- true 2> "$T/good.err"
    rc=$?
    check "a known_hosts with markers, comments and CRLF is read whole (exit 0)" '[ $rc -eq 0 ]'
    [ $rc -eq 0 ] || show "$T/good.err"

    # @revoked with the server's key refuses it, even next to its line
    printf '%s\n@revoked * %s\n' "$HP $SRVKEY" "$SRVKEY" > "$T/kh-rev"
    $DCRUN exec $SSH --known-hosts "$T/kh-rev" --ssh-accept-new -H 127.0.0.1 -- true 2> "$T/rev.err"
    rc=$?
    check "@revoked server key: refused, exit 4, naming the line" \
        '[ $rc -eq 4 ] && grep -q "127.0.0.1: host key SHA256:.* is REVOKED (@revoked at $T/kh-rev:2), refused" "$T/rev.err"'
    [ $rc -eq 4 ] || show "$T/rev.err"
    printf '%s\n@revoked * %s\n' "$HP $SRVKEY" "$EDKEY" > "$T/kh-rev2"
    $DCRUN exec $SSH --known-hosts "$T/kh-rev2" -H 127.0.0.1 -- true 2> "$T/rev2.err"
    check "another revoked key does not refuse the server" '[ $? -eq 0 ]'

    # a second sshd with an ed25519 and an ecdsa host key: known_hosts
    # holding only its ecdsa key must get the ecdsa key offered
    if [ -x /usr/sbin/sshd ]; then
        ssh-keygen -q -t ecdsa -N '' -f "$TB/hk_ecdsa" < /dev/null > /dev/null
        P2=$((TB_PORT + 100))
        while ss -Hltn "sport = :$P2" 2>/dev/null | grep -q . && [ $P2 -lt 2900 ]; do P2=$((P2 + 1)); done
        sed -e "s/^Port .*/Port $P2/" -e "s|^PidFile .*|PidFile $TB/sshd2.pid|" \
            -e "s|^HostKey .*|HostKey $TB_DIR/ssh_host_ed25519_key\nHostKey $TB/hk_ecdsa|" \
            "$TB_DIR/sshd-0.conf" > "$TB/sshd2.conf"
        /usr/sbin/sshd -f "$TB/sshd2.conf" -E "$TB/sshd2.log"
        i=0
        while ! [ -s "$TB/sshd2.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        if [ -s "$TB/sshd2.pid" ]; then
            echo "[127.0.0.1]:$P2 $(cut -d' ' -f1,2 "$TB/hk_ecdsa.pub")" > "$T/kh-pref"
            $DCRUN exec -L ssh --ssh-port $P2 -i $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts "$T/kh-pref" -H 127.0.0.1 -- true 2> "$T/pref.err"
            rc=$?
            check "the key type known_hosts holds is asked for first (ecdsa, exit 0)" '[ $rc -eq 0 ]'
            [ $rc -eq 0 ] || show "$T/pref.err"
            kill "$(cat "$TB/sshd2.pid")"
            rm -f "$TB/sshd2.pid"
        else
            not_ok "second sshd did not start: $(cat "$TB/sshd2.log")"
        fi
    fi
else
    skip "host keys: no sshd or no ssh launcher"
fi

# ---- 2. -x values never on a command line ----
TOKEN=dcrun-peers-$$-$(date +%s%N)
SLEEP=$T/sleep-$TOKEN
cp "$(command -v sleep)" "$SLEEP"
SECRET=s3cr3t-$TOKEN-value
printf '%s\n' "$SECRET" > "$T/secret.pat"
# pids of live processes whose command line holds $1 (pattern from a file,
# so that grep's own command line does not hold it)
holders () {
    for f in /proc/[0-9]*/cmdline; do
        { tr '\0' ' ' < "$f"; } 2>/dev/null | grep -qFf "$1" && echo "${f%/cmdline}"
    done
}
secret_case () {
    name=$1; shift
    rm -f "$T/seen.$name"
    # each rank records what it sees, then sleeps while we look
    "$DCRUN" exec "$@" -x "DCRUN_PEERS_SECRET=$SECRET" -- sh -c \
        "printf '%s\n' \"\$DCRUN_PEERS_SECRET\" >> '$T/seen.$name'; exec '$SLEEP' 30" \
        > "$T/x.$name.out" 2> "$T/x.$name.err" &
    dpid=$!
    i=0
    while [ "$(ps -eo args= | grep -c "^$SLEEP")" -lt 2 ] && [ $i -lt 300 ] && kill -0 $dpid 2>/dev/null; do
        sleep 0.1; i=$((i + 1))
    done
    running=$(ps -eo args= | grep -c "^$SLEEP")
    leaks=$(holders "$T/secret.pat" | while read -r p; do
        printf '%s: %s\n' "$p" "$({ tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | cut -c1-200)"; done)
    for p in $(ps -eo pid=,args= | awk -v s="$SLEEP" '$2 == s {print $1}'); do
        kill "$p" 2>/dev/null
    done
    wait $dpid
    check "$name: 2 ranks ran the sleep" '[ "$running" -ge 2 ]'
    check "$name: no command line holds the -x value" '[ -z "$leaks" ]'
    [ -z "$leaks" ] || echo "$leaks" | sed 's/^/#   /'
    check "$name: every rank sees the variable" \
        '[ "$(grep -cxF "$SECRET" "$T/seen.$name" 2>/dev/null)" = 2 ]'
}
secret_case local -L local -H localhost:2
if [ $SSHD_UP = 1 ]; then
    secret_case ssh -L ssh --ssh-port "$TB_PORT" -i "$TB_KEY" --ssh-config "$TB_SSH_CONFIG" --known-hosts "$TB_KNOWN_HOSTS" -H 127.0.0.1,127.0.0.2
else
    skip "-x over ssh: no sshd"
fi
if has_launcher mpi && command -v mpirun > /dev/null; then
    secret_case mpi -L mpi --oversubscribe -H localhost:2
    if [ $SSHD_UP = 1 ] && command -v ssh > /dev/null; then
        secret_case mpi-ssh -L mpi --mpirun-args "--mca plm_rsh_agent 'ssh $TB_SSH_OPTS'" -H 127.0.0.1,127.0.0.2
    else
        skip "-x through mpirun over ssh: no sshd or ssh"
    fi
else
    skip "-x through mpirun: no mpi launcher or mpirun"
fi

# ---- 3. the connect-back listener ----
if has_launcher mpi && command -v mpirun > /dev/null; then
    # the rank's stdout is a connection to dcrun's listener: to 127.0.0.1,
    # and the listener is gone once every rank is connected (where it
    # binds is checked in tests/unit/test_launch_io.c)
    $DCRUN exec -L mpi -H localhost:1 -- /usr/bin/python3 -c '
import os
ino = os.readlink("/proc/self/fd/1")[8:-1]
rows = [l.split() for l in open("/proc/net/tcp").read().splitlines()[1:]]
peer = [r[2] for r in rows if r[9] == ino][0]
port = peer.split(":")[1]
print("peer", peer.split(":")[0], "listeners", len([r for r in rows if r[3] == "0A" and r[1].endswith(":" + port)]))
' > "$T/where.out" 2> "$T/where.err"
    check "local ranks connect to 127.0.0.1; the listener is closed once they all did" \
        'grep -q "^0@localhost: peer 0100007F listeners 0$" "$T/where.out"'
    grep -q peer "$T/where.out" || show "$T/where.err"
    $DCRUN exec -L mpi -H localhost:1 --listen-addr 300.1.1.1 -- true 2> "$T/la.err"
    rc=$?
    check "--listen-addr 300.1.1.1: exit 4 naming it" \
        '[ $rc -eq 4 ] && grep -q "listen-addr .300.1.1.1.: not an IPv4 address" "$T/la.err"'

    if command -v runuser > /dev/null && id nobody > /dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        cp "$DCRUN_SRCDIR/tests/fixtures/connect-back/squat.py" "$TB/squat.py"
        chmod 755 "$TB" "$TB/squat.py"
        for how in default wildcard; do
            extra=
            [ $how = wildcard ] && extra="--listen-addr 0.0.0.0"
            runuser -u nobody -- /usr/bin/python3 "$TB/squat.py" 40 40 > "$T/squat.$how" 2>&1 &
            spid=$!
            sleep 0.5 # squat.py notes the listeners that exist before dcrun
            $DCRUN exec -L mpi $extra -H localhost:2 -- echo hello > "$T/sq.$how.out" 2> "$T/sq.$how.err"
            rc=$?
            check "$how listener, another user squatting: exit 0 and 2 hellos" \
                '[ $rc -eq 0 ] && [ "$(grep -c ": hello$" "$T/sq.$how.out")" = 2 ]'
            [ $rc -eq 0 ] || show "$T/sq.$how.err"
            if [ $how = wildcard ]; then
                check "the squatter held 40 connections to the wildcard listener" \
                    'grep -q "^holding 40 connections" "$T/squat.$how"'
            fi
            for p in $(ps -o pid= --ppid $spid) $spid; do kill "$p" 2>/dev/null; done
            wait $spid 2>/dev/null
        done
    else
        skip "squatter: needs root, runuser and the user nobody"
    fi
else
    skip "connect-back listener: no mpi launcher or mpirun"
fi

echo "1..$n"
[ $fails -eq 0 ] || { echo "# $fails of $n failed"; exit 1; }
exit 0
