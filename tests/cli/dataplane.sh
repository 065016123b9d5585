#!/bin/sh
# dcrun infer --io: ranks that read and write their own rows (direct),
# rows through the head (relay), or each rank as it can (auto) give the
# bytes of one process; a killed direct worker is survived; Ctrl-C leaves no
# temporary output and the next run removes what a SIGKILLed head left; an
# output the ranks cannot open (a device) is relayed under auto and refused
# under direct; ssh hosts that see the same files read them directly, hosts
# that do not (a private tmpfs over the data folder) get relayed rows.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
TOKEN=dio$$x$(date +%s%N)
D=$T_TMP/dcrun-$TOKEN
cp "$DCRUN" "$D"
mkdir -p "$T_TMP/data"
cd "$T_TMP/data" || exit 1
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 6000 \
    --sizes 64,128,16 --seed 11 > /dev/null || skip_all "make-example.py failed"
ranks () { pgrep -f "dcrun-$TOKEN serve" | wc -l; }
wait_ranks () {
    i=0
    while [ "$(ranks)" -lt "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
# leftovers of an output: the file and its temporary files
left () { ls -a | grep -c "$1" ; }
q () { $PY -c "import json,sys; r=json.load(open(sys.argv[1])); $2" "$1" 2>&1 | tail -n 1; }
ARGS="--model model.safetensors --input X.npy --device cpu --threads 1"

expect_rc 0 "single process" $D infer $ARGS --output Y1.npy
for io in relay direct auto; do
    expect_rc 0 "3 local ranks, --io $io" $D infer -H localhost:3 --io $io $ARGS \
        --chunk-rows 333 --output Y-$io.npy --report r-$io.json
    expect_eq "$(cmp Y1.npy Y-$io.npy && echo same)" same "--io $io: the bytes of 1 process"
done
expect_eq "$(q r-direct.json "d=r['distributed']; print(d['io'], d['io_mode'], sum(x['relayed_bytes'] for x in d['rank_io']))")" \
    "direct direct 0" "direct: the report says so, no byte relayed"
expect_eq "$(q r-auto.json "d=r['distributed']; print(d['io'], d['io_mode'])")" \
    "direct auto" "auto with local ranks: direct"
expect_eq "$(q r-relay.json "d=r['distributed']; print(d['io'], sum(x['relayed_bytes'] for x in d['rank_io']))")" \
    "relay $((6000 * (64 + 16) * 4))" "relay: every input and output byte through the head"
expect_eq "$(q r-direct.json "print(all(x['read'] > 0 and x['write'] > 0 for x, n in zip(r['distributed']['rank_io'], r['distributed']['rank_chunks']) if n))")" \
    True "direct: the ranks that worked measured their reads and writes"
expect_eq "$(ls -a | grep -c 'dcrun-')" 0 "no temporary or token file left"
for io in relay direct; do
    expect_eq "$(q r-$io.json "print(all(abs(x['read'] + x['compute'] + x['write'] + x['wait'] - x['wall']) <= 0.05 * x['wall'] for x, n in zip(r['distributed']['rank_io'], r['distributed']['rank_chunks']) if n))")" \
        True "--io $io: each rank's read, compute, write and wait make its wall time (5%)"
done

# f2 output written by the ranks
expect_rc 0 "f2 output, 1 process" $D infer $ARGS --output-dtype f2 --output H1.npy
expect_rc 0 "f2 output, direct" $D infer -H localhost:2 --io direct $ARGS --output-dtype f2 --output H2.npy
expect_eq "$(cmp H1.npy H2.npy && echo same)" same "f2 output written by the ranks: the same bytes"

expect_rc 0 "--dry-run" $D infer -H localhost:2 $ARGS --output Yd.npy --dry-run
expect_out '^io: auto' "the dry run names the I/O mode"
expect_rc 2 "--io bogus" $D infer -H localhost:2 --io bogus $ARGS --output Yb.npy
expect_err "--io 'bogus': expected direct, relay or auto" "the usage error names the values"

expect_rc 2 "--io direct --split layers" $D infer -H localhost:2 --io direct --split layers $ARGS --output Yb.npy
expect_err "--io direct: not with --split layers" "says why"

# a device cannot be written by the ranks
expect_rc 0 "--io auto to /dev/null: relayed" $D infer -H localhost:2 $ARGS --output /dev/null
expect_rc 3 "--io direct to /dev/null: refused" $D infer -H localhost:2 --io direct $ARGS --output /dev/null
expect_err "--io direct: /dev/null: a device, FIFO or descriptor" "says why"

# a worker killed in the middle: its chunks are redone, same bytes
export DCRUN_TEST_CHUNK_DELAY_MS=150
$D infer -H localhost:3 --io direct $ARGS --output Yk.npy --chunk-rows 300 --report rk.json 2> err.k &
P=$!
wait_ranks 3
sleep 0.5
kill -KILL "$(pgrep -f "dcrun-$TOKEN serve" | head -n 1)"
wait $P
expect_eq "$?" 0 "direct, one of 3 workers killed: the job completes"
expect_eq "$(cmp Y1.npy Yk.npy && echo same)" same "direct, killed worker: the same bytes"
expect_eq "$(q rk.json "print(len(r['distributed']['lost_workers']))")" 1 "the report names the lost worker"

# Ctrl-C: exit 130, no output, no temporary file, no rank
$D infer -H localhost:3 --io direct $ARGS --output Yc.npy --chunk-rows 300 2> err.c &
P=$!
wait_ranks 3
sleep 0.4
kill -INT $P
wait $P
expect_eq "$?" 130 "direct, Ctrl-C: exit 130"
expect_eq "$(left Yc)" 0 "direct, Ctrl-C: no output, no temporary file"
sleep 0.3
expect_eq "$(ranks)" 0 "direct, Ctrl-C: no rank left"

# SIGKILL of the head: its named temporary files (the output and the token)
# stay; the next run writing that output removes them and says so, but not
# the temporary file of a live run (locked)
$D infer -H localhost:3 --io direct $ARGS --output Ys.npy --chunk-rows 300 2> err.s &
P=$!
wait_ranks 3
sleep 0.5
kill -KILL $P
wait $P 2> /dev/null
expect_eq "$(ls -a | grep -c '^\.Ys\.npy\.dcrun-......$')" 2 "SIGKILLed head: its temporary output and token are left"
expect_eq "$(ls Ys.npy 2> /dev/null)" "" "SIGKILLed head: no output"
i=0
while [ "$(ranks)" -gt 0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_eq "$(ranks)" 0 "SIGKILLed head: its ranks are gone too"
unset DCRUN_TEST_CHUNK_DELAY_MS
echo live > .Ys.npy.dcrun-live00
flock .Ys.npy.dcrun-live00 sleep 30 &
F=$!
sleep 0.2
RC=0
$D infer -H localhost:2 --io direct $ARGS --output Ys.npy 2> "$T_TMP/err" || RC=$?
expect_eq "$RC" 0 "the next run writing the same output"
expect_err "Ys.npy: removed what a killed run left next to it: \.Ys\.npy\.dcrun-......, \.Ys\.npy\.dcrun-......$" "says what it removed"
expect_eq "$(ls -a | grep '^\.Ys' | tr '\n' ' ')" ".Ys.npy.dcrun-live00 " "a live run's temporary file is kept"
kill $F 2> /dev/null
wait $F 2> /dev/null
rm -f .Ys.npy.dcrun-live00
expect_eq "$(cmp Y1.npy Ys.npy && echo same)" same "the same bytes"

# ranks of mpirun read and write through MPI-IO
if mpi_ok; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    MPI="mpirun --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
    expect_rc 0 "mpirun -np 3, --io direct" timeout 120 $MPI -np 3 $D infer --io direct $ARGS \
        --chunk-rows 333 --output Ym.npy --report rm.json
    expect_eq "$(cmp Y1.npy Ym.npy && echo same)" same "MPI-IO: the bytes of 1 process"
    expect_eq "$(q rm.json "d=r['distributed']; print(d['io'], sorted(set(x.get('engine', '-') for x, n in zip(d['rank_io'], d['rank_chunks']) if n)))")" \
        "direct ['mpi-io']" "the ranks of mpirun use MPI-IO"
    expect_rc 0 "-L mpi, f2 output through MPI-IO" $D infer -L mpi -H localhost:2 --io direct $ARGS \
        --output-dtype f2 --output Hm.npy
    expect_eq "$(cmp H1.npy Hm.npy && echo same)" same "MPI-IO f2 output: the same bytes"
    expect_eq "$(ls -a | grep -c 'dcrun-')" 0 "MPI: no temporary or token file left"
else
    echo "# MPI part skipped: $MPI_WHY"
fi

# over ssh: hosts that share the files read them; hosts that do not get rows
if $D --version | grep -q '^launchers:.* ssh'; then
    for hide in no yes; do
        TB=$T_TMP/tb-$hide
        if [ $hide = yes ]; then export TB_HIDE="$T_TMP/data"; else unset TB_HIDE; fi
        if ! sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 2 > "$T_TMP/tb.log" 2>&1; then
            echo "# ssh part (hidden files: $hide) skipped: $(tail -n 1 "$T_TMP/tb.log")"
            continue
        fi
        unset TB_HIDE
        . "$TB/sshd/env.sh"
        unset SSH_AUTH_SOCK
        SSH="-L ssh --ssh-port $TB_PORT --ssh-key $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS --wdir $T_TMP"
        for v in $(env | sed -n 's/^\(OPENBLAS_[A-Z_]*\)=.*/\1/p'); do SSH="$SSH -x $v"; done
        A="--model $T_TMP/data/model.safetensors --input $T_TMP/data/X.npy --device cpu --threads 1"
        expect_rc 0 "2 ssh hosts (files hidden: $hide), --io auto" $D infer $SSH -H 127.0.0.1,127.0.0.2 \
            $A --chunk-rows 500 --output "$T_TMP/data/Yh-$hide.npy" --report "$T_TMP/data/rh-$hide.json"
        expect_eq "$(cmp Y1.npy Yh-$hide.npy && echo same)" same "ssh (files hidden: $hide): the same bytes"
        if [ $hide = yes ]; then
            expect_eq "$(q rh-yes.json "d=r['distributed']; print(d['io'], all('not shared' in x['why'] for x, n in zip(d['rank_io'], d['rank_chunks']) if n))")" \
                "relay True" "hosts without the files: relayed rows, and why"
            RC=0
            $D infer $SSH -H 127.0.0.1,127.0.0.2 --io direct $A --output "$T_TMP/data/Yn.npy" 2> "$T_TMP/err" || RC=$?
            expect_eq "$RC" 1 "--io direct where no host sees the files: exit 1"
            expect_err "--io direct: .*not shared" "names why"
            expect_eq "$(left Yn)" 0 "no output, no temporary file"
        else
            expect_eq "$(q rh-no.json "print(r['distributed']['io'])")" direct "hosts that share the files: direct"
        fi
        sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd" > /dev/null 2>&1
    done
fi
done_testing
