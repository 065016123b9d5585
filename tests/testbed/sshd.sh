#!/bin/sh
# sshd.sh up DIR N [PORT] | down DIR
#
# A private OpenSSH server for the tests: loopback "hosts" 127.0.0.1..N
# (one sshd per 16 addresses, OpenSSH's listen limit) on PORT (default: a
# random free port from 10000 to 31999, another one when sshd cannot bind
# it: other test beds run on the same machine), generated ed25519 host and user keys, an
# authorized_keys, a known_hosts with "[127.0.0.i]:PORT" for every address,
# an empty ssh client config, and DIR/env.sh exporting TB_PORT TB_KEY
# TB_KNOWN_HOSTS TB_SSH_CONFIG TB_SSH_OPTS TB_N.  Every session of address i
# gets TMPDIR=DIR/nodes/127.0.0.i/tmp (the "hosts" share one /tmp and one
# hostname, which OpenMPI's session directories do not like).  When root's
# ~/.bashrc exists, sshd runs in a private mount namespace where it is empty
# (it costs ~100 ms per remote command on some machines).  `down` stops only
# the daemons whose PID files are in DIR.  With TB_HIDE=FOLDER the hosts
# see an empty tmpfs over FOLDER (hosts that do not share the caller's
# files); DIR must not be under FOLDER.  Exits 77 (after saying why) when
# sshd cannot be started here.  Recipe: /work/shared/testbed/sshd-hosts.sh.
set -u
cmd=${1:-}; D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { echo "usage: $0 up DIR N [PORT] | down DIR" >&2; exit 2; }
SSHD=/usr/sbin/sshd
PER=16

down () {
    for f in "$D"/sshd-*.pid; do
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        if kill "$pid" 2>/dev/null; then
            i=0
            while kill -0 "$pid" 2>/dev/null && [ $i -lt 30 ]; do
                sleep 0.1; i=$((i + 1))
            done
        fi
        rm -f "$f"
    done
}

port_busy () {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

case $cmd in
down) down; exit 0 ;;
up) ;;
*) echo "usage: $0 up DIR N [PORT] | down DIR" >&2; exit 2 ;;
esac

N=${3:-4}
PORT=${4:-}
[ -x $SSHD ] || { echo "sshd not installed (openssh-server)"; exit 77; }
command -v ssh-keygen > /dev/null || { echo "ssh-keygen not installed"; exit 77; }
mkdir -p "$D" 2>/dev/null && chmod 700 "$D" || { echo "cannot create $D"; exit 77; }
mkdir -p /run/sshd 2>/dev/null || { echo "cannot create /run/sshd (not root?)"; exit 77; }
random_port () {
    r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    echo $((10000 + r % 22000))
}

# Write the configuration for $PORT and start the daemons: 0, or 1 when one
# could not bind its port (the caller tries another), or exit 77.
start () {
    : > "$D/known_hosts"
    i=1
    while [ $i -le "$N" ]; do
        mkdir -p "$D/nodes/127.0.0.$i/tmp"
        echo "[127.0.0.$i]:$PORT $hostpub" >> "$D/known_hosts"
        i=$((i + 1))
    done
    k=0
    while [ $((k * PER)) -lt "$N" ]; do
        first=$((k * PER + 1))
        last=$(( (k + 1) * PER < N ? (k + 1) * PER : N ))
        conf=$D/sshd-$k.conf
        {
            echo "Port $PORT"
            i=$first
            while [ $i -le $last ]; do echo "ListenAddress 127.0.0.$i"; i=$((i + 1)); done
            cat <<EOC
HostKey $D/ssh_host_ed25519_key
PidFile $D/sshd-$k.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $D/authorized_keys
StrictModes no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 200:30:400
MaxSessions 100
LogLevel ERROR
EOC
            i=$first
            while [ $i -le $last ]; do
                printf 'Match LocalAddress 127.0.0.%d\n  SetEnv TMPDIR=%s TESTBED_NODE=127.0.0.%d%s\n' \
                    $i "$D/nodes/127.0.0.$i/tmp" $i "$san_env"
                i=$((i + 1))
            done
        } > "$conf"
        $SSHD -t -f "$conf" 2> "$D/sshd-$k.log" || { echo "sshd rejects its config: $(cat "$D/sshd-$k.log")"; exit 77; }
        rm -f "$D/sshd-$k.pid"
        # sshd binds before it detaches: a taken port fails here
        if [ -n "${TB_HIDE:-}" ]; then
            # hosts without the caller's files: an empty tmpfs over TB_HIDE
            command -v unshare > /dev/null && unshare -m true 2>/dev/null \
                || { echo "no private mount namespace here (unshare -m) for TB_HIDE"; exit 77; }
            unshare -m --propagation private -- sh -c 'mount -t tmpfs -o mode=0755 none "$1" && exec "$2" -f "$3" -E "$4"' \
                sh "$TB_HIDE" "$SSHD" "$conf" "$D/sshd-$k.log"
        elif [ -e "$home/.bashrc" ] && command -v unshare > /dev/null \
            && unshare -m true 2>/dev/null; then
            unshare -m --propagation private -- sh -c 'mount --bind "$1" "$2" && exec "$3" -f "$4" -E "$5"' \
                sh "$D/empty-bashrc" "$home/.bashrc" "$SSHD" "$conf" "$D/sshd-$k.log"
        else
            $SSHD -f "$conf" -E "$D/sshd-$k.log"
        fi
        rc=$?
        i=0
        while [ $rc -eq 0 ] && ! [ -s "$D/sshd-$k.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        if [ $rc -ne 0 ] || ! [ -s "$D/sshd-$k.pid" ] \
            || grep -qi "bind to port\|cannot bind\|address already in use" "$D/sshd-$k.log"; then
            if grep -qi "bind\|address already in use" "$D/sshd-$k.log"; then
                down
                return 1
            fi
            echo "sshd did not start: $(cat "$D/sshd-$k.log")"; down; exit 77
        fi
        k=$((k + 1))
    done
    return 0
}

[ -f "$D/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C dcrun-test-host -f "$D/ssh_host_ed25519_key"
[ -f "$D/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C dcrun-test-user -f "$D/id_ed25519"
cp "$D/id_ed25519.pub" "$D/authorized_keys"
chmod 600 "$D/authorized_keys"
: > "$D/ssh_config"
: > "$D/empty-bashrc"
hostpub=$(cut -d' ' -f1,2 "$D/ssh_host_ed25519_key.pub")
home=$(getent passwd "$(id -un)" | cut -d: -f6)
# a sanitizer build's settings reach the remote ranks too (sshd passes no
# environment of its own)
san_env=
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS HWLOC_COMPONENTS; do
    eval "val=\${$v:-}"
    case $val in
    '') ;;
    *[!A-Za-z0-9_./:=,+-]*) echo "sshd.sh: $v has characters SetEnv cannot pass" >&2 ;;
    *) san_env="$san_env $v=$val" ;;
    esac
done
if [ -n "$PORT" ]; then
    port_busy "$PORT" && { echo "port $PORT is taken"; exit 77; }
    start || { echo "sshd cannot bind port $PORT: $(cat "$D"/sshd-*.log)"; exit 77; }
else
    tries=0
    while :; do
        PORT=$(random_port)
        if ! port_busy "$PORT" && start; then
            break
        fi
        tries=$((tries + 1))
        [ $tries -lt 20 ] || { echo "sshd found no free port in 20 tries"; exit 77; }
    done
fi
cat > "$D/env.sh" <<EOE
TB_DIR=$D
TB_N=$N
TB_PORT=$PORT
TB_KEY=$D/id_ed25519
TB_KNOWN_HOSTS=$D/known_hosts
TB_SSH_CONFIG=$D/ssh_config
TB_SSH_OPTS="-p $PORT -i $D/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=$D/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR -F $D/ssh_config"
EOE
exit 0
