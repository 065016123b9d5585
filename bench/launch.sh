#!/bin/sh
# bench/launch.sh [DCRUN] [RUNS]: `true` on 8 and 32 loopback hosts through a
# private sshd (tests/testbed/sshd.sh), launched by dcrun exec -L ssh,
# pdsh -R ssh, clush and mpirun; median wall seconds of RUNS runs (default 7)
# and each peer's median divided by dcrun's.  Peers that are not installed
# are left out.  The ssh clients get -o KexAlgorithms=curve25519-sha256
# (libssh2 1.10's best kex) in a second row, for a like-for-like handshake.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
DCRUN=${1:-$SRC/build/cli/dcrun}
RUNS=${2:-7}
TB=$(mktemp -d "${TMPDIR:-/tmp}/dcrun-bench.XXXXXX")
trap 'sh "$SRC/tests/testbed/sshd.sh" down "$TB/sshd"; rm -rf "$TB"' EXIT
sh "$SRC/tests/testbed/sshd.sh" up "$TB/sshd" 32 || { echo "cannot start sshd"; exit 1; }
. "$TB/sshd/env.sh"
unset SSH_AUTH_SOCK
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
KEX="-o KexAlgorithms=curve25519-sha256"

median () { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
timeit () { # timeit CMD...: median seconds of RUNS runs (-1 if one failed)
    i=0
    while [ $i -lt "$RUNS" ]; do
        s=$(date +%s.%N)
        if ! "$@" > /dev/null 2>&1; then echo -1; return; fi
        e=$(date +%s.%N)
        echo "$e - $s" | bc -l
        i=$((i + 1))
    done | median
}

printf '%-28s %8s %8s %8s %8s\n' launcher "8 s" "ratio" "32 s" "ratio"
for n in 8 32; do
    hosts=$(i=1; while [ $i -le $n ]; do printf '127.0.0.%d,' $i; i=$((i+1)); done | sed 's/,$//')
    : > "$TB/mpi-$n"
    i=1; while [ $i -le $n ]; do echo "127.0.0.$i slots=1" >> "$TB/mpi-$n"; i=$((i+1)); done
    eval "d_$n=\$(timeit $DCRUN exec -L ssh -H $hosts --ssh-port $TB_PORT -i $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS -- true)"
    if command -v pdsh > /dev/null; then
        eval "p_$n=\$(PDSH_SSH_ARGS='$TB_SSH_OPTS' timeit pdsh -R ssh -f 64 -w $hosts true)"
        eval "pk_$n=\$(PDSH_SSH_ARGS='$TB_SSH_OPTS $KEX' timeit pdsh -R ssh -f 64 -w $hosts true)"
    fi
    if command -v clush > /dev/null; then
        eval "c_$n=\$(timeit clush -f 64 -o '$TB_SSH_OPTS' -w $hosts true)"
        eval "ck_$n=\$(timeit clush -f 64 -o '$TB_SSH_OPTS $KEX' -w $hosts true)"
    fi
    if command -v mpirun > /dev/null; then
        eval "m_$n=\$(timeit mpirun --hostfile $TB/mpi-$n -np $n --mca plm_rsh_agent 'ssh $TB_SSH_OPTS' --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo true)"
    fi
done
row () { # row NAME VAR8 VAR32
    eval "a=\${$2:-}; b=\${$3:-}"
    [ -n "$a" ] || return 0
    ra=$(echo "$a / $d_8" | bc -l); rb=$(echo "$b / $d_32" | bc -l)
    printf '%-28s %8.3f %8.2f %8.3f %8.2f\n' "$1" "$a" "$ra" "$b" "$rb"
}
row "dcrun exec -L ssh" d_8 d_32
row "pdsh -R ssh" p_8 p_32
row "pdsh -R ssh (curve25519)" pk_8 pk_32
row "clush" c_8 c_32
row "clush (curve25519)" ck_8 ck_32
row "mpirun (ssh agent)" m_8 m_32
echo "(median of $RUNS runs, seconds; ratio = launcher / dcrun, > 1 means dcrun is faster)"
