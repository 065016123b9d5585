#!/bin/sh
# Processes: nothing left behind, ever.  Every rank, local or over ssh, runs
# under an agent that is a child subreaper and dies with dcrun: descendants
# that call setsid or daemonize are killed when the rank ends, after Ctrl-C
# and after SIGKILL of dcrun; over ssh a daemon that keeps the rank's stdout
# does not hold dcrun, and a rank declared lost (SIGSTOPped, no heartbeat)
# is killed on its host, not left stopped.
#
# Every process of this test carries a tag unique to this run in its command
# line (copies of sleep and dcrun named after it); only those are counted.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
TAG=orphans$$x$(date +%s%N)
SLEEP=$T_TMP/sleep-$TAG
cp "$(command -v sleep)" "$SLEEP"
cd "$T_TMP" || exit 1

# live (not zombie) processes whose program is $1 (default: the tagged sleep)
count () {
    ps -eo stat=,args= | awk -v p="${1:-$SLEEP}" '$1 !~ /^Z/ && $2 == p' | wc -l
}
# live processes with the tag anywhere in their command line; stopped ones
tagged () { ps -eo stat=,args= | awk -v t="$TAG" '$1 !~ /^Z/ && index($0, t) && !/awk/' | wc -l; }
stopped () { ps -eo stat=,args= | awk -v t="$TAG" '$1 ~ /^T/ && index($0, t) && !/awk/' | wc -l; }
# wait until at least N tagged sleeps run (at most 10 s)
wait_count () {
    i=0
    while [ "$(count)" -lt "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
# wait until nothing tagged is left (at most 5 s: the agents' grace is 1 s)
wait_gone () {
    i=0
    while [ "$(tagged)" -gt 0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}
# A rank that starts a daemon: setsid, double fork, its output closed, then
# says so through a file (so that it surely runs before the rank goes on).
daemon='(setsid sh -c "exec > /dev/null 2>&1; echo > up.$DCRUN_RANK; exec '$SLEEP' 300" &)
while [ ! -e up.$DCRUN_RANK ]; do sleep 0.02; done'

# 1. the rank ends: its daemon goes with it
rm -f up.*
expect_rc 0 "local: ranks that leave a setsid daemon behind" \
    $DCRUN exec -H localhost:2 -- sh -c "$daemon; echo hi"
expect_eq "$(grep -c ': hi$' "$T_TMP/out")" 2 "local: both ranks said hi"
expect_eq "$(count)" 0 "local: no daemon left once dcrun returned"

# 2. Ctrl-C of dcrun: every rank and its daemon are gone
rm -f up.*
$DCRUN exec -H localhost:2 -- sh -c "$daemon; exec $SLEEP 301" > /dev/null 2> err.int &
P=$!
wait_count 4
expect_eq "$(count)" 4 "local: 2 ranks and 2 daemons run"
kill -INT $P
wait $P
expect_eq "$?" 130 "local, Ctrl-C: exit 130"
wait_gone
expect_eq "$(tagged)" 0 "local, Ctrl-C: nothing left, daemons included"

# 3. SIGKILL of dcrun: the agents see it and kill every rank's tree
rm -f up.*
$DCRUN exec -H localhost:2 -- sh -c "$daemon; $SLEEP 302; true" > /dev/null 2>&1 &
P=$!
wait_count 4
expect_eq "$(count)" 4 "local: 2 ranks and 2 daemons run"
kill -KILL $P
wait $P 2> /dev/null
wait_gone
expect_eq "$(tagged)" 0 "local, SIGKILL of dcrun: nothing left, daemons included"
ps -eo pid=,ppid=,stat=,args= | awk -v t="$TAG" 'index($0, t) && !/awk/' | sed 's/^/#   left: /'

# 4. the same with a command that cannot run: the agent reports it
expect_rc 127 "local: a missing command" $DCRUN exec -H localhost:2 -- ./no-such-$TAG
expect_err "no-such-$TAG: No such file or directory" "local: the exec error comes back"

# over ssh: the test sshd on 127.0.0.1-2
if $DCRUN --version | grep -q '^launchers:.* ssh'; then
    TB=$T_TMP/tb
    if sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 2 > "$T_TMP/tb.log" 2>&1; then
        trap 'sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd" > /dev/null 2>&1; rm -rf "$T_TMP"' EXIT
        . "$TB/sshd/env.sh"
        unset SSH_AUTH_SOCK
        SSH="-L ssh --ssh-port $TB_PORT --ssh-key $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS"
        H=127.0.0.1,127.0.0.2

        # 5. a daemon that keeps the rank's stdout: dcrun returns, the daemon
        # is gone (the bound is a guard against a hang, not a measure)
        expect_rc 0 "ssh: ranks whose daemon keeps stdout open" \
            timeout -s KILL 60 $DCRUN exec $SSH -H $H -- sh -c "(setsid $SLEEP 303 &) ; echo hi"
        expect_eq "$(grep -c ': hi$' "$T_TMP/out")" 2 "ssh: both ranks said hi"
        wait_gone
        expect_eq "$(count)" 0 "ssh: no daemon left on any host"

        # 6. SIGKILL of dcrun: the remote agents kill every rank's tree
        $DCRUN exec $SSH -H $H -- sh -c "(setsid $SLEEP 304 &) ; exec $SLEEP 305" > /dev/null 2>&1 &
        P=$!
        wait_count 4
        expect_eq "$(count)" 4 "ssh: 2 ranks and 2 daemons run"
        kill -KILL $P
        wait $P 2> /dev/null
        wait_gone
        expect_eq "$(tagged)" 0 "ssh, SIGKILL of dcrun: nothing left on any host"

        # 7. infer: a worker stopped (SIGSTOP) misses its heartbeats; it is
        # declared lost, the job completes, and it is killed on its host
        if [ -x "$PY" ] && $PY -c 'import numpy' 2> /dev/null \
            && $PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 10000 \
                --sizes 64,128,32 --seed 7 > /dev/null 2>&1; then
            D=$T_TMP/dcrun-$TAG
            cp "$DCRUN" "$D"
            ARGS="--model model.safetensors --input X.npy --device cpu --threads 1"
            # 50 chunks of 150 ms: the other rank alone needs 7.5 s, well
            # past the 3 s heartbeat timeout, however slow the start
            DCRUN_TEST_CHUNK_DELAY_MS=150 $D infer $SSH -H $H $ARGS --chunk-rows 200 \
                --heartbeat-timeout 3 --output Ys.npy --report rs.json 2> err.stop &
            P=$!
            # wait for both `serve` ranks (the hosts' slot probes run the
            # same binary first)
            serves () { ps -eo pid=,args= | awk -v p="$D" '$2 == p && $3 == "serve"' | wc -l; }
            i=0
            while [ "$(serves)" -lt 2 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
            sleep 0.3
            victim=$(ps -eo pid=,args= | awk -v p="$D" '$2 == p && $3 == "serve" { print $1; exit }')
            kill -STOP "$victim"
            wait $P
            expect_eq "$?" 0 "infer: one worker stopped, the job completes"
            expect_eq "$($PY -c "import json; r=json.load(open('rs.json')); l=r['distributed']['lost_workers']; print(len(l), l[0]['reason'])")" \
                "1 no heartbeat for 3 s" "infer: the stopped worker is named lost"
            grep -q "no heartbeat" rs.json || sed 's/^/#   err.stop: /' err.stop | head -20
            wait_gone
            expect_eq "$(stopped)" 0 "infer: no stopped worker left on its host"
            expect_eq "$(tagged)" 0 "infer: no worker left at all"
            [ "$(tagged)" = 0 ] || kill -KILL "$victim" 2> /dev/null
        else
            echo "# infer part skipped: no NumPy for /usr/bin/python3"
        fi
    else
        echo "# ssh part skipped: cannot start the test sshd: $(tail -n 1 "$T_TMP/tb.log")"
    fi
fi
done_testing
