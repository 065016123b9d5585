#!/bin/sh
# dcrun infer across ranks: 4 local ranks and 3 ssh hosts give the bytes of
# the single-process run; a killed worker is survived with the same bytes
# and named in the report; all killed: exit 1 and no output; Ctrl-C: exit
# 130, no output, no rank left on any host.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
TOKEN=dist$$x$(date +%s%N)
# a copy of dcrun with a unique name: ranks run "$D serve", easy to find
D=$T_TMP/dcrun-$TOKEN
cp "$DCRUN" "$D"
cd "$T_TMP" || exit 1
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 10000 \
    --sizes 64,128,32 --seed 7 > /dev/null || skip_all "make-example.py failed"
ranks () { pgrep -f "dcrun-$TOKEN serve" | wc -l; }
# wait until N ranks run (at most 10 s)
wait_ranks () {
    i=0
    while [ "$(ranks)" -lt "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
ARGS="--model model.safetensors --input X.npy --device cpu --threads 1"

expect_rc 0 "single process" $D infer $ARGS --output Y1.npy
expect_rc 0 "4 local ranks" $D infer -H localhost:4 $ARGS --output Y4.npy --report r4.json
expect_eq "$(cmp Y1.npy Y4.npy && echo same)" same "4 ranks: the same bytes as 1 process"
expect_eq "$($PY -c "import json; r=json.load(open('r4.json')); print(len(r['ranks']), sum(x['rows'] for x in r['ranks']), r['layout'])")" \
    "4 10000 data" "report: 4 ranks, every row counted once"
expect_rc 0 "-n 2 on this host (oversubscribed)" $D infer -n 2 --oversubscribe $ARGS --output Y2.npy --chunk-rows 333
expect_eq "$(cmp Y1.npy Y2.npy && echo same)" same "2 ranks, odd chunks: the same bytes"
expect_rc 0 "--dry-run" $D infer -H localhost:3 $ARGS --output Yd.npy --dry-run
expect_out '^rank 2 on localhost' "dry run lists the ranks"
expect_eq "$(ls Yd.npy 2>/dev/null)" "" "dry run writes nothing"

# a worker killed in the middle: slow chunks make the timing certain
export DCRUN_TEST_CHUNK_DELAY_MS=150
$D infer -H localhost:3 $ARGS --output Yk.npy --chunk-rows 500 --report rk.json 2> err.k &
P=$!
wait_ranks 3
sleep 0.4
victim=$(pgrep -f "dcrun-$TOKEN serve" | head -n 1)
kill -KILL "$victim"
wait $P
expect_eq "$?" 0 "one of 3 workers killed: the job completes"
expect_eq "$(cmp Y1.npy Yk.npy && echo same)" same "killed worker: the same bytes"
# the hub may see the killed rank's channel close before its exit status
expect_eq "$($PY -c "import json; r=json.load(open('rk.json')); l=r['distributed']['lost_workers']; print(len(l), l[0]['reason'].replace('channel closed (Broken pipe)', 'killed by signal 9'))")" \
    "1 killed by signal 9" "the report names the lost worker"
RC=0; mv err.k "$T_TMP/err"
expect_err "lost on the way: rank [0-2] on localhost \((killed by signal 9|channel closed \(Broken pipe\))\)" "the last line names the lost rank"

# every worker killed: exit 1 and no output file
$D infer -H localhost:3 $ARGS --output Ya.npy --chunk-rows 500 2> "$T_TMP/err" &
P=$!
wait_ranks 3
sleep 0.3
pkill -KILL -f "dcrun-$TOKEN serve"
wait $P
expect_eq "$?" 1 "all workers killed: exit 1"
expect_eq "$(ls -a | grep -c 'Ya')" 0 "all workers killed: no output, no temporary file"
expect_err "every rank was lost" "says every rank was lost"

# Ctrl-C: exit 130, no output, nothing left
$D infer -H localhost:3 $ARGS --output Yc.npy --chunk-rows 500 2> "$T_TMP/err" &
P=$!
wait_ranks 3
sleep 0.3
kill -INT $P
wait $P
expect_eq "$?" 130 "Ctrl-C: exit 130"
expect_eq "$(ls -a | grep -c 'Yc')" 0 "Ctrl-C: no output, no temporary file"
sleep 0.2
expect_eq "$(ranks)" 0 "Ctrl-C: no rank left"
unset DCRUN_TEST_CHUNK_DELAY_MS

# bad input before anything starts: exit 3, no output
expect_rc 3 "input of the wrong width" $D infer -H localhost:2 --model model.safetensors --input T.npy --output Yb.npy --device cpu
expect_eq "$(ls -a | grep -c 'Yb')" 0 "bad input: no output"
expect_rc 2 "unknown launcher" $D infer -L frob -H localhost:2 $ARGS --output Yb.npy

# over ssh: 3 loopback hosts of the test sshd
if $D --version | grep -q '^launchers:.* ssh'; then
    TB=$T_TMP/tb
    if sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 3 > "$T_TMP/tb.log" 2>&1; then
        . "$TB/sshd/env.sh"
        unset SSH_AUTH_SOCK
        SSH="-L ssh --ssh-port $TB_PORT --ssh-key $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS"
        # ssh ranks do not inherit the environment: the same BLAS kernel
        for v in $(env | sed -n 's/^\(OPENBLAS_[A-Z_]*\)=.*/\1/p'); do SSH="$SSH -x $v"; done
        H=127.0.0.1,127.0.0.2,127.0.0.3
        expect_rc 0 "3 ssh hosts" $D infer $SSH -H $H $ARGS --output Ys.npy --chunk-rows 250 --report rs.json
        expect_eq "$(cmp Y1.npy Ys.npy && echo same)" same "3 ssh hosts: the same bytes"
        expect_eq "$($PY -c "import json; r=json.load(open('rs.json')); print(sorted(x['host'] for x in r['ranks']))")" \
            "['127.0.0.1', '127.0.0.2', '127.0.0.3']" "one rank on each host"
        export DCRUN_TEST_CHUNK_DELAY_MS=150
        $D infer $SSH -H $H $ARGS --output Ysc.npy --chunk-rows 500 2> "$T_TMP/err" &
        P=$!
        wait_ranks 3
        sleep 0.3
        kill -INT $P
        wait $P
        expect_eq "$?" 130 "ssh, Ctrl-C: exit 130"
        sleep 0.5
        expect_eq "$(ranks)" 0 "ssh, Ctrl-C: no rank left on any host"
        expect_eq "$(ls -a | grep -c 'Ysc')" 0 "ssh, Ctrl-C: no output"
        unset DCRUN_TEST_CHUNK_DELAY_MS
        sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd" > /dev/null 2>&1
    else
        echo "# ssh part skipped: cannot start the test sshd: $(tail -n 1 "$T_TMP/tb.log")"
    fi
fi
done_testing
