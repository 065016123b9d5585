#!/bin/sh
# dcrun map: a persistent NumPy worker over 3 local ranks gives NumPy's
# single-process result; per-chunk mode (shell and python, any dtype and
# trailing shape, the chunk variables); a worker killed mid-run: the same
# output, the rank named; wrong rows or dtypes: retried, then exit 1 with
# the reason and no output; every worker dead: exit 1, no output; a chunk
# past --chunk-timeout; Ctrl-C: exit 130, no output, no rank, no chunk
# files; usage and input errors; a PyTorch model (examples/map_torch.py)
# over 3 local ranks and 2 ssh hosts equals PyTorch in one process.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
TOKEN=map$$x$(date +%s%N)
# a copy of dcrun with a unique name: ranks run "$D serve", easy to find
D=$T_TMP/dcrun-$TOKEN
cp "$DCRUN" "$D"
cd "$T_TMP" || exit 1
# the ranks' temporary folder, where their chunk folders live
RT=$T_TMP/rt
mkdir "$RT"
export TMPDIR="$RT"
ranks () { pgrep -f "dcrun-$TOKEN serve" | wc -l; }
# the workers (not this dcrun, whose command line names them too)
workers () { pgrep -f "^$PY [^ ]*$TOKEN.py" | wc -l; }
# wait until N workers run (at most 20 s)
wait_workers () {
    i=0
    while [ "$(workers)" -lt "$1" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
}
# the ranks' chunk folders (mpirun keeps its own session folder there)
chunk_files () { find "$RT" -name 'dcrun-map-*' | wc -l; }
same () { # same A.npy B.npy: equal arrays, dtype and shape
    $PY -c "
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
print('same' if a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b) else 'differ %s %s %s %s' % (a.dtype, a.shape, b.dtype, b.shape))" "$1" "$2" 2>&1
}

$PY -c "
import numpy as np
np.save('X.npy', np.arange(3000, dtype=np.float32).reshape(1000, 3) / 7)
np.save('R.npy', (np.arange(3000, dtype=np.float32).reshape(1000, 3) / 7 * 2 + 1).astype(np.float64))
np.save('I.npy', np.arange(3000, dtype='<i2').reshape(500, 2, 3))
np.save('IS.npy', np.arange(3000, dtype='<i2').reshape(500, 2, 3).sum(axis=2).astype('>i4'))
"
# the persistent worker of the issue: float32 in, float64 out; one line
# of its own on stdout per chunk
cat > w$TOKEN.py <<'EOF'
import os, sys, time
import numpy as np
slow = float(os.environ.get("SLOW", "0"))
for line in sys.stdin:
    i, o = line.split()
    time.sleep(slow)
    x = np.load(i)
    print("chunk of %d rows" % len(x), flush=True)
    np.save(o, (x * 2 + 1).astype(np.float64))
    print("done", flush=True)
EOF
W="$PY $T_TMP/w$TOKEN.py"

expect_rc 0 "persistent worker, 3 local ranks" $D map -H localhost:3 --input X.npy --output Y.npy --report r.json -- $W
expect_eq "$(same Y.npy R.npy)" same "3 ranks: NumPy's single-process result (float64 from float32)"
expect_err "^[0-2]@localhost: chunk of [0-9]+ rows$" "the worker's own stdout lines come tagged"
expect_eq "$($PY -c "import json; r=json.load(open('r.json')); print(len(r['ranks']), sum(x['rows'] for x in r['ranks']), r['map']['mode'], r['output']['dtype'], r['output']['shape'])")" \
    "3 1000 persistent <f8 [1000, 3]" "report: 3 ranks, every row once, the output's dtype and shape"
expect_eq "$(chunk_files)" 0 "no chunk files left in the ranks' temporary folder"
expect_rc 0 "-n 2, odd chunks of 333 rows" $D map -n 2 --oversubscribe --chunk-rows 333 --input X.npy --output Y2.npy -- $W
expect_eq "$(same Y2.npy R.npy)" same "chunks of 333: the same output"

# per-chunk mode: a shell command, then Python on int16 rows of (2, 3)
expect_rc 0 "per-chunk shell command" $D map -H localhost:2 --chunk-rows 300 --input X.npy --output C.npy -- \
    sh -c 'echo "chunk $DCRUN_CHUNK row0 $DCRUN_CHUNK_ROW0 rows $DCRUN_CHUNK_ROWS of $DCRUN_MAP_ROWS" >&2; cp "$1" "$2"' sh {in} {out}
expect_eq "$(same C.npy X.npy)" same "per-chunk cp: the input back"
expect_err "^[01]@localhost: chunk 3 row0 900 rows 100 of 1000$" "DCRUN_CHUNK, DCRUN_CHUNK_ROW0, DCRUN_CHUNK_ROWS, DCRUN_MAP_ROWS"
expect_rc 0 "per-chunk python, int16 rows of (2, 3)" $D map -H localhost:3 --input I.npy --output IO.npy -- \
    $PY -c 'import sys, numpy as np; x = np.load(sys.argv[1]); np.save(sys.argv[2], x.sum(axis=2).astype(">i4"))' {in} {out}
expect_eq "$(same IO.npy IS.npy)" same "any dtype and trailing shape: big-endian int32 (rows, 2) out"

# a worker killed with SIGKILL in the middle: the same output
export SLOW=0.3
$D map -H localhost:3 --chunk-rows 20 --input X.npy --output Yk.npy --report rk.json -- $W 2> err.k &
P=$!
wait_workers 3
sleep 1
kill -KILL "$(pgrep -f "^$PY [^ ]*w$TOKEN.py" | head -n 1)"
wait $P
expect_eq "$?" 0 "one of 3 workers killed: the job completes"
expect_eq "$(same Yk.npy R.npy)" same "killed worker: the same output"
expect_eq "$($PY -c "import json; r=json.load(open('rk.json')); l=r['distributed']['lost_workers']; print(len(l), l[0]['host'], 'killed by SIGKILL with chunk' in l[0]['reason'])")" \
    "1 localhost True" "the report names the lost rank, its host and why"
expect_rc 0 "dcrun report reads the map's report" $D report rk.json
expect_out "^lost: rank [0-2] on localhost \([^ ]*python3 was killed by SIGKILL" "dcrun report names the lost rank"
RC=0; mv err.k "$T_TMP/err"
expect_err "lost on the way: rank [0-2] on localhost \([^ ]*python3 was killed by SIGKILL with chunk [0-9]+ in hand\)" "the last line names the lost rank"

# every worker killed: exit 1, no output
$D map -H localhost:3 --chunk-rows 20 --input X.npy --output Ya.npy -- $W 2> "$T_TMP/err" &
P=$!
wait_workers 3
sleep 0.5
pkill -KILL -f "^$PY [^ ]*w$TOKEN.py"
wait $P
expect_eq "$?" 1 "every worker killed: exit 1"
expect_eq "$(ls -a | grep -c 'Ya')" 0 "every worker killed: no output, no temporary file"
expect_err "every rank was lost|killed by SIGKILL" "says why"

# Ctrl-C: exit 130, no output, no rank, no worker, no chunk file
$D map -H localhost:3 --chunk-rows 20 --input X.npy --output Yc.npy -- $W 2> "$T_TMP/err" &
P=$!
wait_workers 3
sleep 0.5
kill -INT $P
wait $P
expect_eq "$?" 130 "Ctrl-C: exit 130"
expect_eq "$(ls -a | grep -c 'Yc')" 0 "Ctrl-C: no output, no temporary file"
sleep 0.3
expect_eq "$(ranks) $(workers)" "0 0" "Ctrl-C: no rank and no worker left"
expect_eq "$(chunk_files)" 0 "Ctrl-C: no chunk folder or file left"
unset SLOW

# a worker that writes one row short: retried elsewhere, then exit 1
cat > bad$TOKEN.py <<'EOF'
import sys
import numpy as np
for line in sys.stdin:
    i, o = line.split()
    np.save(o, np.load(i)[:-1])
    print("done", flush=True)
EOF
expect_rc 1 "a row short in every chunk" $D map -H localhost:3 --input X.npy --output Yb.npy -- $PY $T_TMP/bad$TOKEN.py
expect_err "failed 3 times, last on rank [0-2] on localhost: output has 83 rows, expected 84: no output written" "the job fails naming the chunk, rank, host and reason"
expect_err "warning: map: chunk [0-9]+ \(rows [0-9]+-[0-9]+\) failed on rank [0-2] on localhost: output has [0-9]+ rows, expected [0-9]+: retried elsewhere" "each failure is retried elsewhere"
expect_eq "$(ls -a | grep -c 'Yb')" 0 "failed chunks: no output, no temporary file"
expect_rc 1 "--retries 0" $D map -H localhost:2 --retries 0 --input X.npy --output Yb.npy -- $PY $T_TMP/bad$TOKEN.py
expect_err "failed 1 time, last" "--retries 0: the first failure ends the job"
# chunks that disagree on the dtype
expect_rc 1 "odd chunks in float32, even in float64" $D map -H localhost:2 --chunk-rows 100 --input X.npy --output Yd.npy -- \
    $PY -c 'import os, sys, numpy as np; np.save(sys.argv[2], np.load(sys.argv[1]).astype("<f4" if int(os.environ["DCRUN_CHUNK"]) % 2 else "<f8"))' {in} {out}
expect_err "output of dtype <f[48] and shape \(rows, 3\), but the first chunk's is <f[48] \(rows, 3\)" "the disagreement named"
expect_eq "$(ls -a | grep -c 'Yd')" 0 "disagreeing chunks: no output"
expect_rc 1 "a per-chunk command that fails" $D map -H localhost:2 --input X.npy --output Yf.npy -- sh -c 'exit 4' sh {in} {out}
expect_err "sh exited with status 4" "the command's exit status is the reason"
expect_rc 1 "a command that writes no output" $D map -H localhost:2 --input X.npy --output Yf.npy -- true {in} {out}
expect_err "no output: true did not write" "a missing output is the reason"
expect_rc 1 "a command that writes no .npy" $D map -H localhost:2 --input X.npy --output Yf.npy -- sh -c 'echo hi > "$2"' sh {in} {out}
expect_err "output is not a valid .npy" "an invalid .npy is the reason"
# every worker dead at its first chunk
expect_rc 1 "every worker exits at once" $D map -H localhost:3 --input X.npy --output Ye.npy -- $PY -c 'import sys; sys.stdin.readline(); sys.exit(3)'
expect_err "python3 exited with status 3 with chunk [0-9]+ in hand: no output written" "says the workers died with their chunks"
expect_eq "$(ls -a | grep -c 'Ye')" 0 "every worker dead: no output"
expect_rc 1 "a command that does not exist" $D map -H localhost:2 --input X.npy --output Ye.npy -- ./no-such-$TOKEN
expect_err "no-such-$TOKEN: No such file or directory" "says so"
expect_rc 1 "--chunk-timeout 0.5 with chunks of 30 s" $D map -H localhost:2 --chunk-timeout 0.5 --input X.npy --output Ye.npy -- \
    $PY -c 'import sys, time; sys.stdin.readline(); time.sleep(30)'
expect_err "ran past --chunk-timeout 0.5 s" "the timeout is the reason"
sleep 0.2
expect_eq "$(ranks) $(chunk_files)" "0 0" "after failures: no rank, no chunk file left"

# usage and input errors, before anything starts
expect_rc 2 "no command" $D map -H localhost:2 --input X.npy --output Yu.npy
expect_rc 2 "no --output" $D map --input X.npy -- true
expect_rc 2 "{in} without {out}" $D map -H localhost:2 --input X.npy --output Yu.npy -- cat {in}
expect_err "holds \{in\} but not \{out\}" "says per-chunk mode needs both"
expect_rc 2 "--io bogus" $D map --io bogus --input X.npy --output Yu.npy -- true
expect_rc 2 "--retries -1" $D map --retries -1 --input X.npy --output Yu.npy -- true
echo "not an array" > bad.npy
expect_rc 3 "an input that is not an .npy" $D map -H localhost:2 --input bad.npy --output Yu.npy -- true
expect_err "bad.npy: not an .npy file" "names the file"
expect_rc 3 "the output is the input" $D map -H localhost:2 --input X.npy --output X.npy -- true
$PY -c "import numpy as np; np.save('E.npy', np.zeros((0, 3), np.float32)); np.save('O.npy', np.array([{}, 1], dtype=object))"
expect_rc 3 "an input of no rows" $D map -H localhost:2 --input E.npy --output Yu.npy -- true
expect_rc 3 "an object array" $D map -H localhost:2 --input O.npy --output Yu.npy -- true
expect_err "object arrays are pickled" "says why"
expect_eq "$(ls -a | grep -c 'Yu')" 0 "usage and input errors: no output"
expect_rc 0 "--dry-run" $D map -H localhost:3 --dry-run --input X.npy --output Yu.npy -- $W
expect_out "^rank 2 on localhost" "the dry run lists the ranks"
expect_eq "$(ls -a | grep -c 'Yu')" 0 "the dry run writes nothing"

# --files: chunks of files; CMD writes files into OUT_DIR; the output is
# a new folder, complete or absent
mkdir fin
i=0
while [ $i -lt 12 ]; do echo "file number $i" > fin/f$i.txt; i=$((i + 1)); done
cat > fw$TOKEN.py <<'EOF'
import os, sys, time
slow = float(os.environ.get("SLOW", "0"))
for line in sys.stdin:
    lst, out = line.split()
    time.sleep(slow)
    for p in open(lst).read().splitlines():
        with open(os.path.join(out, os.path.basename(p) + ".up"), "w") as f:
            f.write(open(p).read().upper())
    print("done", flush=True)
EOF
FW="$PY $T_TMP/fw$TOKEN.py"
expect_rc 0 "--files, a folder, persistent worker, 3 ranks" $D map -H localhost:3 --files --input fin --output fout --report rf.json -- $FW
expect_eq "$(ls fout | wc -l) $(cat fout/f7.txt.up)" "12 FILE NUMBER 7" "every file's output, from its own input"
expect_eq "$($PY -c "import json; r=json.load(open('rf.json')); m=r['map']; print(m['input_files'], m['output_files'], r['output']['shape'])")" \
    "12 12 [12]" "report: input and output files"
ls fin/* | sed 's/^/ /' > list.txt
printf '\n' >> list.txt
expect_rc 0 "--files, a list, per-chunk shell command" $D map -H localhost:2 --files --chunk-rows 5 --input list.txt --output fout2 -- \
    sh -c 'while read p; do wc -c < "$p" > "$2/$(basename "$p").n"; done < "$1"; echo "files $DCRUN_CHUNK_ROW0+$DCRUN_CHUNK_ROWS of $DCRUN_MAP_ROWS" >&2' sh {in} {out}
expect_eq "$(ls fout2 | wc -l) $(cat fout2/f9.txt.n)" "12 14" "per-chunk: every file's output"
expect_err "^[01]@localhost: files 10\+2 of 12$" "the chunk variables count files"
expect_rc 1 "--files, two chunks write the same name" $D map -H localhost:2 --files --input fin --output fout3 -- sh -c 'echo x > "$2/same"' sh {in} {out}
expect_err "output file same: another chunk wrote one of that name: no output written" "the collision is the reason"
expect_eq "$(ls -a | grep -c 'fout3')" 0 "no output folder, no temporary folder"
expect_rc 3 "--files, the output exists" $D map -H localhost:2 --files --input fin --output fout -- $FW
expect_err "fout: exists: --files writes a new folder" "says so"
printf 'fin/f1.txt\nfin/nope.txt\n' > badlist.txt
expect_rc 3 "--files, a list naming a missing file" $D map -H localhost:2 --files --input badlist.txt --output fout4 -- $FW
expect_err "badlist.txt: line 2: fin/nope.txt: No such file or directory" "names the line and the file"
SLOW=0.5 $D map -H localhost:2 --files --input fin --output fout5 -- $FW 2> "$T_TMP/err" &
P=$!
wait_workers 2
sleep 0.8
kill -INT $P
wait $P
expect_eq "$?" 130 "--files, Ctrl-C: exit 130"
sleep 0.3
expect_eq "$(ls -a | grep -c 'fout5') $(workers) $(chunk_files)" "0 0 0" "--files, Ctrl-C: no output or temporary folder, no worker, no chunk folder"

# under mpirun: every process one rank, rank 0 also the hub; and -L mpi
if $D --version | grep -q '^launchers:.* mpi' && command -v mpirun > /dev/null; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    # under the sanitizers: Open MPI's own allocations are never freed
    SAVED_ASAN=${ASAN_OPTIONS-}
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    MPI="mpirun --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
    expect_rc 0 "mpirun -np 3 dcrun map" timeout 120 $MPI -x TMPDIR -np 3 $D map --input X.npy --output Ym.npy -- $W
    expect_eq "$(same Ym.npy R.npy)" same "mpirun: NumPy's single-process result"
    expect_rc 0 "dcrun map -L mpi -H localhost:3" $D map -L mpi -H localhost:3 --input X.npy --output Yl.npy -- $W
    expect_eq "$(same Yl.npy R.npy)" same "-L mpi: NumPy's single-process result"
    expect_rc 0 "-L mpi --dry-run" $D map -L mpi -H localhost:3 --dry-run --input X.npy --output Yl.npy -- $W
    expect_out "exec -L mpi -H localhost:3 -- .* map --input X.npy --output Yl.npy -- $PY " "the dry run shows the mpirun job with CMD"
    SLOW=0.3 $MPI -x SLOW -x TMPDIR -np 3 $D map --chunk-rows 20 --input X.npy --output Ymc.npy -- $W > /dev/null 2>&1 &
    P=$!
    wait_workers 3
    sleep 0.5
    kill -INT $P
    wait $P
    expect_eq "$([ $? -ne 0 ] && echo failed)" failed "mpirun, Ctrl-C: the job fails"
    # mpirun may return before its ranks have finished stopping: wait for
    # them, 10 s.  mpirun's own job kill may SIGKILL rank 0 without a
    # SIGTERM first (a loaded machine: another rank ended first), so its
    # temporaries (.Ymc.npy.dcrun-*) and a rank's chunk folder may stay;
    # never the output, never a worker
    i=0
    while [ "$(ls -a | grep -c 'Ymc') $(workers) $(chunk_files)" != "0 0 0" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    expect_eq "$(ls Ymc.npy 2> /dev/null | wc -l) $(workers)" "0 0" "mpirun, Ctrl-C: no output, no worker"
    ls -a | grep Ymc | sed 's/^/#   left for the next run: /'
    find "$RT" -name 'dcrun-map-*' | sed 's/^/#   left for the next run: /'
    # ... and the next run that writes the same output removes them (and
    # the chunk folder of any rank killed before, held by none: this one)
    mkdir "$RT/dcrun-map-Stale1" "$RT/dcrun-map-Stale1/out"
    echo 1 > "$RT/dcrun-map-Stale1/owner"
    echo x > "$RT/dcrun-map-Stale1/out/part"
    expect_rc 0 "mpirun, after the Ctrl-C: the same map again" timeout 120 $MPI -x TMPDIR -np 3 $D map --input X.npy --output Ymc.npy -- $W
    expect_eq "$(same Ymc.npy R.npy) $(ls -a | grep -c '\.Ymc') $(chunk_files)" "same 0 0" "mpirun, the next run: NumPy's result, no temporary or chunk folder left"
    export ASAN_OPTIONS="$SAVED_ASAN"
    [ -n "$ASAN_OPTIONS" ] || unset ASAN_OPTIONS
else
    echo "# mpirun part skipped: no mpirun or dcrun without MPI"
fi

# a PyTorch model dcrun's MLP cannot run: 3 local ranks against PyTorch
# in one process, with one BLAS thread each (the split of rows between
# threads moves the last bits): the same bytes for the same chunk rows
EX=$DCRUN_SRCDIR/examples/map_torch.py
if $PY -c 'import torch' 2>/dev/null; then
    export MAP_TORCH_THREADS=1
    $PY "$EX" make --rows 3000 --out TX.npy
    $PY "$EX" single --input TX.npy --output TY1.npy --chunk-rows 250
    expect_rc 0 "map_torch.py over 3 local ranks" $D map -H localhost:3 --chunk-rows 250 --input TX.npy --output TY3.npy -- $PY "$EX" worker
    expect_eq "$(cmp TY1.npy TY3.npy && echo same)" same "PyTorch over 3 ranks: the bytes of one PyTorch process"
    $PY "$EX" single --input TX.npy --output TYall.npy
    expect_eq "$($PY -c "import numpy as np; a, b = np.load('TYall.npy'), np.load('TY3.npy'); print(a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=1e-6)))")" \
        True "PyTorch over 3 ranks: within 1e-6 of the whole batch in one call"
    if $D --version | grep -q '^launchers:.* mpi' && command -v mpirun > /dev/null; then
        SAVED_ASAN=${ASAN_OPTIONS-}
        export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
        expect_rc 0 "map_torch.py under mpirun -np 3" timeout 120 mpirun --oversubscribe --mca btl self,tcp \
            --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -x TMPDIR -x MAP_TORCH_THREADS -np 3 \
            $D map --chunk-rows 250 --input TX.npy --output TYm.npy -- $PY "$EX" worker
        expect_eq "$(cmp TY1.npy TYm.npy && echo same)" same "PyTorch under mpirun: the bytes of one PyTorch process"
        export ASAN_OPTIONS="$SAVED_ASAN"
        [ -n "$ASAN_OPTIONS" ] || unset ASAN_OPTIONS
    fi
    if $D --version | grep -q '^launchers:.* ssh'; then
        TB=$T_TMP/tb
        if sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 2 > "$T_TMP/tb.log" 2>&1; then
            . "$TB/sshd/env.sh"
            unset SSH_AUTH_SOCK
            SSH="-L ssh --ssh-port $TB_PORT --ssh-key $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS -x TMPDIR -x MAP_TORCH_THREADS"
            expect_rc 0 "map_torch.py over 2 ssh hosts" $D map $SSH -H 127.0.0.1,127.0.0.2 --chunk-rows 250 --input TX.npy --output TYs.npy --report rs.json -- $PY "$EX" worker
            expect_eq "$(cmp TY1.npy TYs.npy && echo same)" same "2 ssh hosts: the bytes of one PyTorch process"
            expect_eq "$($PY -c "import json; r=json.load(open('rs.json')); print(sorted(x['host'] for x in r['ranks']))")" \
                "['127.0.0.1', '127.0.0.2']" "one rank on each host"
            export SLOW=0.3
            $D map $SSH -x SLOW -H 127.0.0.1,127.0.0.2 --chunk-rows 20 --input X.npy --output Ysc.npy -- $W 2> "$T_TMP/err" &
            P=$!
            wait_workers 2
            sleep 0.5
            kill -INT $P
            wait $P
            expect_eq "$?" 130 "ssh, Ctrl-C: exit 130"
            # the remote agents stop their ranks after dcrun is gone (the
            # ssh channel closed): wait for them, 10 s
            i=0
            while [ "$(ranks) $(workers) $(chunk_files)" != "0 0 0" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
            expect_eq "$(ranks) $(workers) $(chunk_files)" "0 0 0" "ssh, Ctrl-C: no rank, worker or chunk file left on any host"
            expect_eq "$(ls -a | grep -c 'Ysc')" 0 "ssh, Ctrl-C: no output"
            unset SLOW
            sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd" > /dev/null 2>&1
        else
            echo "# ssh part skipped: cannot start the test sshd: $(tail -n 1 "$T_TMP/tb.log")"
        fi
    fi
    unset MAP_TORCH_THREADS
else
    echo "# PyTorch part skipped: no torch for $PY"
fi
# ranks still stopping (a loaded machine) take their folders with them
i=0
while [ "$(chunk_files)" -gt 0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
expect_eq "$(chunk_files)" 0 "at the end: no chunk folder in the ranks' temporary folder"
find "$RT" -name 'dcrun-map-*' | sed 's/^/#   left: /'

done_testing
