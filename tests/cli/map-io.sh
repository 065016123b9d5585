#!/bin/sh
# dcrun map --io direct|relay|auto: persistent and per-chunk workers over
# 3 local ranks give the relay output's bytes, with the report saying
# direct and 0 relayed bytes; the first results wait on the ranks until
# the output is made (every direct run here); a killed worker under
# direct: the same bytes; Ctrl-C: exit 130, nothing left; a SIGKILLed head
# leaves its named temporary files, which the next run sweeps; a device
# output: relayed under auto, refused under direct; ssh hosts that do not
# see the files: relayed under auto (and why), refused under direct; under
# mpirun, direct.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
TOKEN=mapio$$x$(date +%s%N)
D=$T_TMP/dcrun-$TOKEN
cp "$DCRUN" "$D"
cd "$T_TMP" || exit 1
RT=$T_TMP/rt
mkdir "$RT" data
export TMPDIR="$RT"
ranks () { pgrep -f "dcrun-$TOKEN serve" | wc -l; }
workers () { pgrep -f "^$PY [^ ]*$TOKEN.py" | wc -l; }
wait_workers () {
    i=0
    while [ "$(workers)" -lt "$1" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
}
chunk_files () { find "$RT" -name 'dcrun-map-*' | wc -l; }
left () { ls -a | grep -c "$1" ; }
q () { $PY -c "import json,sys; r=json.load(open(sys.argv[1])); $2" "$1" 2>&1 | tail -n 1; }

$PY -c "
import numpy as np
np.save('data/X.npy', np.arange(3000, dtype=np.float32).reshape(1000, 3) / 7)
np.save('data/I.npy', np.arange(3000, dtype='<i2').reshape(500, 2, 3))
"
cat > w$TOKEN.py <<'EOF'
import os, sys, time
import numpy as np
slow = float(os.environ.get("SLOW", "0"))
for line in sys.stdin:
    i, o = line.split()
    time.sleep(slow)
    np.save(o, (np.load(i) * 2 + 1).astype(np.float64))
    print("done", flush=True)
EOF
W="$PY $T_TMP/w$TOKEN.py"
X=data/X.npy

# persistent worker: relay, direct, auto give the same bytes
for io in relay direct auto; do
    expect_rc 0 "persistent, 3 local ranks, --io $io" $D map -H localhost:3 --io $io --chunk-rows 90 --input $X --output Y-$io.npy --report r-$io.json -- $W
done
expect_eq "$(cmp Y-relay.npy Y-direct.npy && cmp Y-relay.npy Y-auto.npy && echo same)" same "direct and auto: the relay output's bytes"
for io in direct auto; do
    # (a rank that started after the end, on a slow machine, says "none")
    expect_eq "$(q r-$io.json "d=r['distributed']; print(d['io_mode'], d['io'], sorted(set(x['io'] for x, n in zip(d['rank_io'], d['rank_chunks']) if n)), sum(x['relayed_bytes'] for x in d['rank_io']))")" \
        "$io direct ['direct'] 0" "--io $io: the report says direct for the ranks that worked, 0 bytes relayed"
done
expect_eq "$(q r-relay.json "d=r['distributed']; print(d['io_mode'], d['io'], sum(x['relayed_bytes'] for x in d['rank_io']))")" \
    "relay relay 36000" "--io relay: every row through the head (12 bytes in, 24 out, 1000 rows)"
expect_eq "$(q r-direct.json "print(r['output']['dtype'], r['output']['shape'], sum(x['rows'] for x in r['ranks']))")" \
    "<f8 [1000, 3] 1000" "direct: the output's dtype and shape from the first chunk, every row once"
expect_eq "$(chunk_files) $(left '^\.Y-')" "0 0" "no chunk file, no temporary output left"

# per-chunk mode, int16 rows of (2, 3) in, big-endian int32 rows of 2 out
PC='import sys, numpy as np; x = np.load(sys.argv[1]); np.save(sys.argv[2], x.sum(axis=2).astype(">i4"))'
for io in relay direct auto; do
    expect_rc 0 "per-chunk, 3 local ranks, --io $io" $D map -H localhost:3 --io $io --input data/I.npy --output P-$io.npy --report p-$io.json -- $PY -c "$PC" {in} {out}
done
expect_eq "$(cmp P-relay.npy P-direct.npy && cmp P-relay.npy P-auto.npy && echo same)" same "per-chunk direct and auto: the relay output's bytes"
expect_eq "$(q p-direct.json "d=r['distributed']; print(d['io'], sum(x['relayed_bytes'] for x in d['rank_io']))")" \
    "direct 0" "per-chunk direct: nothing relayed"

# chunks that disagree on the dtype: the ranks see it and the job fails
expect_rc 1 "direct, odd chunks float32, even float64" $D map -H localhost:2 --io direct --chunk-rows 100 --input $X --output Yd.npy -- \
    $PY -c 'import os, sys, numpy as np; np.save(sys.argv[2], np.load(sys.argv[1]).astype("<f4" if int(os.environ["DCRUN_CHUNK"]) % 2 else "<f8"))' {in} {out}
expect_err "output of dtype <f[48] and shape \(rows, 3\), but the first chunk's is <f[48] \(rows, 3\)" "the disagreement named"
expect_eq "$(left Yd)" 0 "disagreeing chunks: no output, no temporary file"

# a worker killed with SIGKILL in the middle: the same bytes
export SLOW=0.2
$D map -H localhost:3 --io direct --chunk-rows 20 --input $X --output Yk.npy --report rk.json -- $W 2> err.k &
P=$!
wait_workers 3
sleep 1
kill -KILL "$(pgrep -f "^$PY [^ ]*w$TOKEN.py" | head -n 1)"
wait $P
expect_eq "$?" 0 "direct, one of 3 workers killed: the job completes"
expect_eq "$(cmp Y-relay.npy Yk.npy && echo same)" same "direct, killed worker: the relay output's bytes"
expect_eq "$(q rk.json "d=r['distributed']; print(len(d['lost_workers']), d['io'])")" "1 direct" "the report names the lost worker"

# Ctrl-C: exit 130, no output, no temporary file, no rank, worker or chunk file
$D map -H localhost:3 --io direct --chunk-rows 20 --input $X --output Yc.npy -- $W 2> "$T_TMP/err" &
P=$!
wait_workers 3
sleep 0.5
kill -INT $P
wait $P
expect_eq "$?" 130 "direct, Ctrl-C: exit 130"
expect_eq "$(left Yc)" 0 "direct, Ctrl-C: no output, no temporary file"
sleep 0.3
expect_eq "$(ranks) $(workers) $(chunk_files)" "0 0 0" "direct, Ctrl-C: no rank, worker or chunk file left"

# SIGKILL of the head: its temporary output and token stay; the next run
# removes them and says so
$D map -H localhost:3 --io direct --chunk-rows 20 --input $X --output Ys.npy -- $W 2> err.s &
P=$!
wait_workers 3
sleep 0.5
kill -KILL $P
wait $P 2> /dev/null
expect_eq "$(ls -a | grep -c '^\.Ys\.npy\.dcrun-......$')" 2 "SIGKILLed head: its temporary output and token are left"
i=0
while [ "$(ranks)$(workers)" != 00 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_eq "$(ranks) $(workers)" "0 0" "SIGKILLed head: its ranks and workers are gone too"
unset SLOW
RC=0
$D map -H localhost:2 --io direct --input $X --output Ys.npy -- $W 2> "$T_TMP/err" || RC=$?
expect_eq "$RC" 0 "the next run writing the same output"
expect_err "Ys.npy: removed what a killed run left next to it: \.Ys\.npy\.dcrun-......, \.Ys\.npy\.dcrun-......$" "says what it removed"
expect_eq "$(cmp Y-relay.npy Ys.npy && echo same) $(left '^\.Ys')" "same 0" "the same bytes, nothing else left"

# a device cannot be written by the ranks; usage errors
expect_rc 0 "--io auto to /dev/null: relayed" $D map -H localhost:2 --input $X --output /dev/null -- $W
expect_rc 3 "--io direct to /dev/null: refused" $D map -H localhost:2 --io direct --input $X --output /dev/null -- $W
expect_err "--io direct: /dev/null: a device, FIFO or descriptor" "says why"
expect_rc 2 "--io bogus" $D map -H localhost:2 --io bogus --input $X --output Yu.npy -- $W
expect_err "--io 'bogus': expected direct, relay or auto" "says what is expected"
mkdir fin && echo a > fin/a.txt
expect_rc 2 "--io direct --files" $D map -H localhost:2 --io direct --files --input fin --output fout -- $W
expect_err "--io direct: not with --files" "says why"
expect_rc 0 "--dry-run" $D map -H localhost:2 --dry-run --input $X --output Yu.npy -- $W
expect_out "^io: auto: each rank copies its chunks' rows" "the dry run names the data path"
expect_eq "$(left Yu) $(left fout)" "0 0" "usage errors and the dry run: no output"

# under mpirun: every process one rank (rank 0 also the hub), direct
if $D --version | grep -q '^launchers:.* mpi' && command -v mpirun > /dev/null; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    SAVED_ASAN=${ASAN_OPTIONS-}
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    MPI="mpirun --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
    expect_rc 0 "mpirun -np 3 dcrun map --io direct" timeout 120 $MPI -x TMPDIR -np 3 $D map --io direct --chunk-rows 90 --input $X --output Ym.npy --report rm.json -- $W
    expect_eq "$(cmp Y-relay.npy Ym.npy && echo same) $(q rm.json "d=r['distributed']; print(d['io'], sum(x['relayed_bytes'] for x in d['rank_io']))")" \
        "same direct 0" "mpirun, direct: the relay output's bytes, nothing relayed"
    export ASAN_OPTIONS="$SAVED_ASAN"
    [ -n "$ASAN_OPTIONS" ] || unset ASAN_OPTIONS
else
    echo "# mpirun part skipped: no mpirun or dcrun without MPI"
fi

# over ssh: hosts that share the files write them; hosts that do not get rows
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
        SSH="-L ssh --ssh-port $TB_PORT --ssh-key $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS --wdir $T_TMP -x TMPDIR"
        expect_rc 0 "2 ssh hosts (files hidden: $hide), --io auto" $D map $SSH -H 127.0.0.1,127.0.0.2 \
            --chunk-rows 90 --input "$T_TMP/$X" --output "$T_TMP/data/Yh-$hide.npy" --report "$T_TMP/data/rh-$hide.json" -- $W
        expect_eq "$(cmp Y-relay.npy data/Yh-$hide.npy && echo same)" same "ssh (files hidden: $hide): the same bytes"
        if [ $hide = yes ]; then
            expect_eq "$(q data/rh-yes.json "d=r['distributed']; print(d['io'], all('not shared' in x['why'] for x, n in zip(d['rank_io'], d['rank_chunks']) if n))")" \
                "relay True" "hosts without the files: relayed rows, and why"
            RC=0
            $D map $SSH -H 127.0.0.1,127.0.0.2 --io direct --input "$T_TMP/$X" --output "$T_TMP/data/Yn.npy" -- $W 2> "$T_TMP/err" || RC=$?
            expect_eq "$RC" 1 "--io direct where no host sees the files: exit 1"
            expect_err "--io direct: .*not shared" "names why"
            expect_eq "$(cd data && left Yn)" 0 "no output, no temporary file"
        else
            expect_eq "$(q data/rh-no.json "d=r['distributed']; print(d['io'], sum(x['relayed_bytes'] for x in d['rank_io']))")" \
                "direct 0" "hosts that share the files: direct, nothing relayed"
        fi
        sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd" > /dev/null 2>&1
    done
fi
i=0
while [ "$(chunk_files)" -gt 0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
expect_eq "$(chunk_files)" 0 "at the end: no chunk folder in the ranks' temporary folder"
done_testing
