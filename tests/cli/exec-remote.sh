#!/bin/sh
# What remote ranks get over the test sshd (tests/testbed/sshd.sh), beyond
# exec-ssh.sh and exec-env.sh: stdin framed on the worker's control channel
# (--stdin rank0|all|none, EOF, binary bytes, a rank that does not read),
# a prompt without newline shown after 100 ms, MASTER_PORT checked on rank
# 0's host, and the caller's folder or --wdir for infer and train ranks.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
$DCRUN --version | grep -q '^launchers:.* ssh' || skip_all "dcrun built without libssh2"
cd "$T_TMP" || exit 1
TB=$(mktemp -d "$T_TMP/tb.XXXXXX")
why=$(sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 3 2>&1)
case $? in
0) ;;
77) skip_all "cannot start sshd: $why" ;;
*) echo "testbed failed: $why"; exit 1 ;;
esac
trap 'sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd"; rm -rf "$T_TMP"' EXIT
. "$TB/sshd/env.sh"
unset SSH_AUTH_SOCK
SSH="-L ssh --ssh-port $TB_PORT -i $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS"
H2=127.0.0.2,127.0.0.3
# processes (not zombies) whose command line holds $1
alive () { ps -eo stat=,args= | awk -v t="$1" '$1 !~ /^Z/ && index($0, t) && !/awk/' | wc -l; }

# ---- stdin ----
printf 'hello\nworld\n' > in.txt
expect_rc 0 "stdin over ssh" $DCRUN exec $SSH -H $H2 -- sh -c 'read x; read y; echo "got:${x:-none}:${y:-none}"; wc -c' < in.txt
expect_eq "$(sort "$T_TMP/out" | tr '\n' '|')" \
    "0@127.0.0.2: 0|0@127.0.0.2: got:hello:world|1@127.0.0.3: 0|1@127.0.0.3: got:none:none|" \
    "stdin goes to remote rank 0 only, then EOF; rank 1 reads nothing"
expect_rc 0 "--stdin all over ssh" $DCRUN exec $SSH -H $H2 --stdin all -- sh -c 'read x; echo "got:${x:-none}"' < in.txt
expect_eq "$(sort "$T_TMP/out" | tr '\n' '|')" "0@127.0.0.2: got:hello|1@127.0.0.3: got:hello|" \
    "--stdin all: every remote rank"
expect_rc 0 "--stdin none over ssh" $DCRUN exec $SSH -H $H2 --stdin none -- sh -c 'read x; echo "got:${x:-none}"' < in.txt
expect_eq "$(sort "$T_TMP/out" | tr '\n' '|')" "0@127.0.0.2: got:none|1@127.0.0.3: got:none|" \
    "--stdin none: no rank reads it"
# 3 MB of every byte value, framed in 32 KiB pieces: the same bytes arrive
head -c 3000000 /dev/urandom > big.bin
sum=$(sha256sum < big.bin | cut -c1-64)
expect_rc 0 "3 MB of binary stdin" $DCRUN exec $SSH -H $H2 --stdin all -- sh -c 'sha256sum | cut -c1-64' < big.bin
expect_eq "$(sort "$T_TMP/out" | tr '\n' '|')" "0@127.0.0.2: $sum|1@127.0.0.3: $sum|" \
    "both ranks got every byte, in order"
# a rank that never reads its stdin: the channel fills, and the job still
# stops (the head closes the channel when SIGKILL cannot get through)
TOKEN=dcrun-stdin-$$-$(date +%s%N)
cp "$(command -v sleep)" "$T_TMP/sleep-$TOKEN"
head -c 20000000 /dev/zero > zero.bin
expect_rc 1 "a rank that does not read 20 MB of stdin: --timeout stops it" \
    $DCRUN exec $SSH -H $H2 --stdin all --timeout 1 --kill-grace 1 -- "$T_TMP/sleep-$TOKEN" 30 < zero.bin
expect_err "timed out after 1 s" "says it timed out"
i=0
while [ "$(alive "sleep-$TOKEN")" != 0 ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
expect_eq "$(alive "sleep-$TOKEN")" 0 "nothing left on the hosts"
# the rank ends without reading: the rest of this stdin is dropped
expect_rc 0 "a rank that ends without reading its stdin" $DCRUN exec $SSH -H 127.0.0.2 -- head -c 3 < zero.bin
expect_eq "$(wc -c < "$T_TMP/out")" 17 "its 3 bytes, tagged, and the job ends"

# a prompt without newline of remote rank 0 is out before it reads its
# answer: the rank waits for a file that the test makes only once the
# prompt is seen; then the answer typed on the terminal reaches it.
# script(1) gives dcrun a terminal; its input is a FIFO this shell holds.
if command -v script > /dev/null; then
    rm -f seen prompt.out
    mkfifo in.fifo
    exec 9<> in.fifo
    script -qfec "$DCRUN exec $SSH -H 127.0.0.2 -- sh -c 'printf \"Name? \"; while [ ! -e seen ]; do sleep 0.05; done; read n; echo \"hi \$n\"'" prompt.out < in.fifo > /dev/null 2>&1 &
    spid=$!
    i=0
    while [ $i -lt 200 ] && ! grep -q '^0@127.0.0.2: Name? ' prompt.out 2> /dev/null; do sleep 0.05; i=$((i + 1)); done
    if grep -q '^0@127.0.0.2: Name? ' prompt.out; then ok "a remote prompt without newline is shown"
    else not_ok "a remote prompt without newline is shown: $(cat prompt.out 2>&1)"; fi
    : > seen
    echo ada >&9
    i=0
    # the terminal echoes "ada"; the rank's line goes on after its prompt
    while [ $i -lt 200 ] && ! grep -q 'hi ada' prompt.out; do sleep 0.05; i=$((i + 1)); done
    expect_eq "$(tr -d '\r' < prompt.out | grep -c '^hi ada$')" 1 "the answer typed on this terminal reaches the remote rank"
    exec 9>&-
    wait $spid
else
    ok "# SKIP prompt: no script(1) to give dcrun a terminal"
fi

# ---- MASTER_PORT on rank 0's host ----
mkfifo in.fifo2
exec 8<> in.fifo2
expect_rc 0 "MASTER_PORT picked on rank 0's host" $DCRUN exec -v $SSH -H $H2 -- sh -c 'echo "port $MASTER_PORT"'
port=$(sed -n 's/^0@127.0.0.2: port \([0-9]*\)$/\1/p' "$T_TMP/out")
expect_eq "$(grep -c "^[01]@127.0.0.[23]: port $port\$" "$T_TMP/out")" 2 "every rank has the same MASTER_PORT ($port)"
expect_err "127.0.0.2: MASTER_PORT $port, free there \\(rank 0's host\\)" "-v says rank 0's host chose it"
expect_rc 0 "--json names MASTER_PORT" $DCRUN exec --json $SSH -H $H2 -- true
expect_eq "$(tail -n 1 "$T_TMP/out" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["master_port"] > 0)')" True "--json: master_port"
expect_rc 0 "--dry-run" $DCRUN exec --dry-run $SSH -H $H2 -- true
expect_out "^MASTER_PORT: chosen on rank 0's host \\(127.0.0.2\\) before any rank starts\$" "--dry-run says where MASTER_PORT is decided"
# a port that a process listens on at rank 0's address is never handed out
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.2", 0)); s.listen()
print(s.getsockname()[1], flush=True); sys.stdin.read()' > busy.port < in.fifo2 2> /dev/null &
lpid=$!
i=0
while [ ! -s busy.port ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
busy=$(cat busy.port)
expect_rc 4 "--master-port in use on rank 0's host: exit 4" $DCRUN exec $SSH -H $H2 --master-port "$busy" -- true
expect_err "127.0.0.2: MASTER_PORT $busy is in use there" "names rank 0's host and the port"
expect_rc 4 "--master-port in use on this host, rank 0 here: exit 4" $DCRUN exec -L local -H localhost --master-port "$busy" -- true
expect_err "MASTER_PORT $busy is in use on this host" "says so"
kill $lpid 2> /dev/null
wait $lpid 2> /dev/null
expect_rc 0 "--master-port free on rank 0's host" $DCRUN exec $SSH -H $H2 --master-port "$busy" -- sh -c 'echo "port $MASTER_PORT"'
expect_eq "$(grep -c "^[01]@127.0.0.[23]: port $busy\$" "$T_TMP/out")" 2 "every rank has the port given"

# ---- the ranks' folder for infer and train over ssh ----
PY=/usr/bin/python3
if [ -x $PY ] && $PY -c 'import numpy' 2> /dev/null &&
    $PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 2000 --sizes 16,32,8 --seed 3 > /dev/null; then
    A="--model $T_TMP/model.safetensors --input $T_TMP/X.npy --device cpu --threads 1"
    TA="$A --target $T_TMP/T.npy --batch-size 64 --seed 5"
    mkdir -p sub
    expect_rc 0 "infer, 1 process" $DCRUN infer $A --output Y1.npy
    expect_rc 0 "infer over ssh from the caller's folder" $DCRUN infer $SSH -H $H2 $A --output Ys.npy
    expect_eq "$(cmp Y1.npy Ys.npy && echo same)" same "the same bytes"
    expect_rc 0 "infer over ssh --wdir" $DCRUN infer $SSH -H $H2 $A --wdir "$T_TMP/sub" --output Yw.npy
    expect_eq "$(cmp Y1.npy Yw.npy && echo same)" same "--wdir: the same bytes"
    expect_rc 4 "infer --wdir missing on the hosts: exit 4" $DCRUN infer $SSH -H $H2 $A --wdir "$T_TMP/nope" --output Yn.npy
    expect_err "ssh: 127.0.0.[23]: no folder '$T_TMP/nope' there" "names a host and the folder"
    expect_eq "$(ls Yn.npy 2> /dev/null | wc -l)" 0 "no output"
    expect_rc 4 "infer --wdir missing, local ranks: exit 4" $DCRUN infer -L local -H localhost:2 $A --wdir "$T_TMP/nope" --output Yn.npy
    expect_err "infer: --wdir $T_TMP/nope: No such file" "names the folder"
    expect_rc 4 "train --wdir missing on the hosts: exit 4" $DCRUN train $SSH -H $H2 $TA --wdir "$T_TMP/nope" --output Mn.safetensors
    expect_err "ssh: 127.0.0.[23]: no folder '$T_TMP/nope' there" "names a host and the folder"
    expect_rc 0 "train over ssh from the caller's folder" $DCRUN train $SSH -H $H2 $TA --output Ms.safetensors
    # the caller's folder exists here but not on the hosts: a folder in a
    # private mount namespace of dcrun (sshd does not see it)
    if unshare -m true 2> /dev/null; then
        mkdir -p priv
        unshare -m sh -c "mount -t tmpfs t '$T_TMP/priv' && mkdir '$T_TMP/priv/here' && cd '$T_TMP/priv/here' &&
            { $DCRUN infer $SSH -H $H2 $A --output '$T_TMP/Yp.npy'; echo \"rc \$?\"; $DCRUN train $SSH -H $H2 $TA --output '$T_TMP/Mp.safetensors'; echo \"rc \$?\"; }" > priv.out 2>&1
        expect_eq "$(grep -c '^rc 4$' priv.out)" 2 "infer and train from a folder the hosts lack: exit 4"
        expect_eq "$(grep -c "ssh: 127.0.0.[23]: no folder '$T_TMP/priv/here' there" priv.out)" 2 "names the host and the caller's folder"
    else
        ok "# SKIP caller's folder missing on the hosts: no unshare -m here"
    fi
else
    ok "# SKIP infer and train folders: no NumPy for /usr/bin/python3"
fi
done_testing
