#!/bin/sh
# Files never lost or clobbered: an output that is an input or the model
# (same inode, through hard and symbolic links) is exit 3 before any work;
# devices, FIFOs and /dev/stdout are written in place (a device node stays
# one); a symlink output replaces its target and stays a link; FIFO inputs
# are exit 3 at once; --log and --report fail at start, a log that cannot
# be written stops the training at that step; fsync before the rename; the
# same exit status in every mode (missing output folder, 0 rows); no
# dcrun-mpi.* folder left after SIGKILL of the head.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
TOKEN=files$$x$(date +%s%N)
D=$T_TMP/dcrun-$TOKEN
cp "$DCRUN" "$D"
cd "$T_TMP" || exit 1
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 300 \
    --sizes 8,16,4 --seed 3 > /dev/null || skip_all "make-example.py failed"
$PY -c "import numpy; numpy.save('X0.npy', numpy.zeros((0, 8), numpy.float32))"
M="--model model.safetensors --device cpu --threads 1"
TR="--model model.safetensors --input X.npy --target T.npy --device cpu --threads 1"
# timeout: a FIFO must not block (124 would be the old behaviour)
TO="timeout 20"

expect_rc 0 "reference output" $D infer $M --input X.npy --output Yref.npy

# 1. an output that is an input or the model: exit 3, naming both, nothing touched
cp X.npy Xc.npy; ln Xc.npy Xh.npy; ln -s Xc.npy Xs.npy
sum0=$(cksum < Xc.npy)
for mode in "" "-H localhost:2" "-H localhost:2 --split layers"; do
    expect_rc 3 "infer ${mode:-1 process}: --output is --input" $D infer $mode $M --input Xc.npy --output Xc.npy
    expect_err "--output Xc.npy and --input Xc.npy are the same file" "names both files"
    expect_rc 3 "infer ${mode:-1 process}: --output a hard link of --input" $D infer $mode $M --input Xc.npy --output Xh.npy
    expect_rc 3 "infer ${mode:-1 process}: --input a symlink to --output" $D infer $mode $M --input Xs.npy --output Xc.npy
    expect_rc 3 "infer ${mode:-1 process}: --report is the model" $D infer $mode $M --input X.npy --output Yx.npy --report model.safetensors
    expect_err "--report model.safetensors and --model model.safetensors are the same file" "names the report and the model"
done
expect_eq "$(cksum < Xc.npy)" "$sum0" "the input is untouched"
expect_eq "$(ls Yx.npy 2>/dev/null)" "" "no output written"
msum=$(cksum < model.safetensors)
for mode in "" "-H localhost:2"; do
    expect_rc 3 "train ${mode:-1 process}: --output is --model" $D train $mode $TR --output model.safetensors
    expect_err "--output model.safetensors and --model model.safetensors are the same file" "train names both"
    expect_rc 3 "train ${mode:-1 process}: --log is --target" $D train $mode $TR --output M2.safetensors --log T.npy
    expect_err "--log T.npy and --target T.npy are the same file" "names the log and the target"
done
mkdir ck; ln -s ../model.safetensors ck/checkpoint.safetensors
expect_rc 3 "train: the checkpoint is the model (through a link)" $D train $TR --output M2.safetensors --checkpoint-dir ck
expect_err "--checkpoint-dir ck/checkpoint.safetensors and --model model.safetensors are the same file" "names the checkpoint and the model"
rm ck/checkpoint.safetensors
expect_eq "$(cksum < model.safetensors)" "$msum" "the model is untouched"
expect_eq "$(ls M2.safetensors 2>/dev/null)" "" "no trained model written"

# 2. outputs that are not regular files: written in place
if mknod "$T_TMP/null" c 1 3 2>/dev/null; then
    for mode in "" "-H localhost:2" "-H localhost:2 --split layers"; do
        expect_rc 0 "infer ${mode:-1 process} --output a device node" $D infer $mode $M --input X.npy --output null --report null
        expect_eq "$(stat -c %F null)" "character special file" "${mode:-1 process}: the device node stays one"
    done
    expect_rc 0 "train --output, --log, --report a device node" $D train $TR --output null --log null --report null -q
    expect_eq "$(stat -c %F null)" "character special file" "train: the device node stays one"
else
    ok "# SKIP mknod not permitted (not root)"
fi
$D infer $M --input X.npy --output /dev/stdout > Ystd.npy 2> "$T_TMP/err"
expect_eq "$?" 0 "--output /dev/stdout redirected to a file"
expect_eq "$(cmp Yref.npy Ystd.npy && echo same)" same "/dev/stdout: the bytes of the file output"
expect_eq "$($D infer $M --input X.npy --output /dev/stdout | $PY -c 'import io, sys, numpy; print(numpy.load(io.BytesIO(sys.stdin.buffer.read())).shape)')" \
    "(300, 4)" "--output /dev/stdout into a pipe: NumPy reads it"
mkfifo fifo.out
cat fifo.out > from-fifo.npy &
CP=$!
expect_rc 0 "--output a FIFO" $TO $D infer $M --input X.npy --output fifo.out
wait $CP
expect_eq "$(cmp Yref.npy from-fifo.npy && echo same)" same "FIFO: the reader got the whole output"
expect_eq "$(stat -c %F fifo.out)" "fifo" "the FIFO stays a FIFO"
expect_rc 1 "--output /dev/full: the write fails" $D infer $M --input X.npy --output /dev/full
expect_err "/dev/full: write: No space left on device" "says why"
# a symlink output: its target replaced atomically, the link stays
cp X.npy target.npy; ln -s target.npy link.npy
expect_rc 0 "--output a symlink to a file" $D infer $M --input X.npy --output link.npy
expect_eq "$(stat -c %F link.npy)" "symbolic link" "the link stays a link"
expect_eq "$(cmp Yref.npy target.npy && echo same)" same "its target holds the output"
ln -s nothere.npy dangling.npy
expect_rc 3 "--output a dangling symlink" $D infer $M --input X.npy --output dangling.npy
expect_err "does not exist" "says the link leads nowhere"
expect_eq "$(ls nothere.npy 2>/dev/null)" "" "nothing created through the link"

# 3. inputs that are not regular files: exit 3 at once
mkfifo fifo.in
expect_rc 3 "--input a FIFO" $TO $D infer $M --input fifo.in --output Yf.npy
expect_err "fifo.in: not a regular file" "says not a regular file"
expect_rc 3 "--input a FIFO, 2 ranks" $TO $D infer -H localhost:2 $M --input fifo.in --output Yf.npy
expect_rc 3 "--model a FIFO" $TO $D infer --model fifo.in --input X.npy --output Yf.npy --device cpu
expect_rc 3 "--target a FIFO" $TO $D train --model model.safetensors --input X.npy --target fifo.in --output M2.safetensors --device cpu
expect_rc 3 "--input /dev/zero" $TO $D infer $M --input /dev/zero --output Yf.npy
expect_eq "$(ls Yf.npy M2.safetensors 2>/dev/null)" "" "nothing written"

# 4. --log and --report fail at start; a log that fails stops the run
expect_rc 3 "--log /dev/full: at start" $D train $TR --output M2.safetensors --log /dev/full
expect_err "/dev/full: write: No space left on device" "names the log"
expect_rc 3 "--report in a missing folder: at start" $D train $TR --output M2.safetensors --report nodir/r.json
expect_rc 3 "--log in a missing folder: at start" $D train $TR --output M2.safetensors --log nodir/l.csv
expect_rc 3 "--log a dangling symlink" $D train $TR --output M2.safetensors --log dangling.npy
expect_eq "$(ls nothere.npy M2.safetensors 2>/dev/null)" "" "nothing created"
# a log that fills up in the middle (ulimit -f, SIGXFSZ ignored: EFBIG):
# stopped at that step, not after every epoch; no trained model
for mode in "" "-H localhost:2"; do
    rm -f big.csv
    run sh -c "ulimit -f 16; trap '' XFSZ; exec $D train $mode $TR --output M3.safetensors --log big.csv --batch-size 1 --epochs 50 -q"
    expect_eq "$RC" 1 "${mode:-1 process}: a log that cannot be written: exit 1"
    expect_err "big.csv: write: File too large: stopped at step [0-9]+" "names the log and the step"
    step=$(sed -n 's/.*stopped at step \([0-9]*\).*/\1/p' "$T_TMP/err")
    [ "${step:-15000}" -lt 15000 ] && ok "stopped early (step $step of 15000)" || not_ok "ran to the end: step ${step:-?}"
    expect_eq "$(ls M3.safetensors 2>/dev/null)" "" "no trained model written"
done
expect_eq "$(pgrep -f "dcrun-$TOKEN serve" | wc -l)" 0 "no rank left"
# exec --output-dir: rank files never created through a link
mkdir od; ln -s ../victim od/rank-0.out
expect_rc 3 "exec --output-dir with a planted link" $D exec -n 1 --output-dir od -- true
expect_eq "$(ls victim 2>/dev/null)" "" "nothing created through the link"

# 5. fsync of the file before the rename, of the folder after
if command -v strace > /dev/null; then
    strace -f -o trace.txt -e trace=fsync,rename,renameat,renameat2 \
        $D infer $M --input X.npy --output Ys.npy > /dev/null 2>&1
    expect_eq "$(grep -E 'fsync|rename' trace.txt | sed -E 's/^[0-9]+ +//; s/\(.*//' | tr '\n' ' ')" \
        "fsync rename fsync " "infer: fsync, rename, fsync of the folder"
    strace -f -o trace2.txt -e trace=fsync,rename,renameat,renameat2 \
        $D train $TR --output Ms.safetensors --checkpoint-dir ck2 -q > /dev/null 2>&1
    expect_eq "$(grep -E 'fsync|rename' trace2.txt | sed -E 's/^[0-9]+ +//; s/\(.*//' | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" \
        "fsync=4 rename=2 " "train: the checkpoint and the model, each fsync'd"
else
    ok "# SKIP strace not installed"
fi

# 6. the same exit status in every mode
for mode in "" "-H localhost:2" "-H localhost:2 --split layers"; do
    expect_rc 3 "infer ${mode:-1 process}: missing output folder" $D infer $mode $M --input X.npy --output nodir/Y.npy
    expect_err "nodir/Y.npy: cannot create a file in nodir" "says the folder"
    rm -f Y0.npy
    expect_rc 0 "infer ${mode:-1 process}: 0 rows" $D infer $mode $M --input X0.npy --output Y0.npy
    expect_eq "$($PY -c "import numpy; a=numpy.load('Y0.npy'); print(a.shape, a.dtype)")" \
        "(0, 4) float32" "${mode:-1 process}: a (0, outputs) output"
done
expect_eq "$(pgrep -f "dcrun-$TOKEN serve" | wc -l)" 0 "no rank left"

# 7. no dcrun-mpi.* folder left after SIGKILL of the head
if $D --version | grep -q '^launchers:.* mpi' && command -v mpirun > /dev/null; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    mkdir tmpd
    SLEEP=$T_TMP/sleep-$TOKEN
    cp "$(command -v sleep)" "$SLEEP"
    TMPDIR=$T_TMP/tmpd $D exec -L mpi -H localhost:2 -- "$SLEEP" 30 > /dev/null 2>&1 &
    P=$!
    i=0
    while [ "$(pgrep -f "sleep-$TOKEN" | wc -l)" -lt 2 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    first=$(ls tmpd | grep '^dcrun-mpi\.' | tr '\n' ' ')
    [ -n "$first" ] && ok "the run has its folder ($first)" || not_ok "no dcrun-mpi.* folder seen"
    kill -KILL $P
    wait $P 2>/dev/null
    expect_eq "$(ls tmpd | grep -c '^dcrun-mpi\.')" 1 "after SIGKILL the folder is still there"
    # the ranks and mpirun are another story: end them (by their unique name)
    pkill -KILL -f "sleep-$TOKEN"
    i=0
    while pgrep -f "mpirun.*sleep-$TOKEN" > /dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    pkill -KILL -f "mpirun.*sleep-$TOKEN"
    expect_rc 0 "a second run" env TMPDIR=$T_TMP/tmpd $D exec -L mpi -H localhost:2 -- true
    left=0
    for f in $first; do [ -e "tmpd/$f" ] && left=$((left + 1)); done
    expect_eq "$left" 0 "the second run removed the first's folder"
    expect_eq "$(ls tmpd | grep -c '^dcrun-mpi\.')" 0 "and left none of its own"
else
    ok "# SKIP no mpi launcher or mpirun"
fi
done_testing
