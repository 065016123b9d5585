#!/bin/sh
# dcrun infer --io direct reads a chunk's rows into one of two host_alloc
# slots while the other chunk computes (gpu/compute.h mlp_submit/mlp_wait):
# inputs that are not <f4 (f2, f8: read with pread, not mapped) and odd
# chunk sizes give the bytes of one process, with 1, 2 and 3 ranks; the
# report says the ranks used pread, and each rank's phases still make up
# its wall time.  The look-ahead runs where the back-end computes on its
# own (CUDA); DCRUN_TEST_OVERLAP=1 makes the cpu back-end's ranks use it
# too, so that its loop is tested here.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
export DCRUN_TEST_OVERLAP=1
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
mkdir -p "$T_TMP/data"
cd "$T_TMP/data" || exit 1
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 4100 \
    --sizes 48,96,12 --seed 5 > /dev/null || skip_all "make-example.py failed"
$PY -c "
import numpy as np
x = np.load('X.npy')
np.save('X2.npy', x.astype(np.float16))
np.save('X8.npy', x.astype(np.float64))
np.save('X1.npy', x[:1])" || skip_all "numpy could not write the inputs"
q () { $PY -c "import json,sys; r=json.load(open(sys.argv[1])); $2" "$1" 2>&1 | tail -n 1; }
A="--model model.safetensors --device cpu --threads 1"

for f in X X2 X8 X1; do
    expect_rc 0 "$f: one process" $DCRUN infer $A --input $f.npy --output Y1-$f.npy
    for n in 1 2 3; do
        for c in 7 97 1024 5000; do
            [ $f = X1 ] && [ $c != 7 ] && continue
            expect_rc 0 "$f: $n ranks, --io direct, chunks of $c" $DCRUN infer \
                -H localhost:$n --oversubscribe --io direct --chunk-rows $c $A \
                --input $f.npy --output Y-$f-$n-$c.npy --report r-$f-$n-$c.json
            expect_eq "$(cmp Y1-$f.npy Y-$f-$n-$c.npy && echo same)" same \
                "$f: $n ranks, chunks of $c: the bytes of one process"
        done
    done
done
expect_eq "$(q r-X2-3-97.json "d=r['distributed']; print(d['io'], sorted(set(x.get('engine') for x, n in zip(d['rank_io'], d['rank_chunks']) if n)))")" \
    "direct ['pread']" "f2 input: the ranks read it with pread"
expect_eq "$(q r-X-3-97.json "d=r['distributed']; print(d['io'], sorted(set(x.get('engine') for x, n in zip(d['rank_io'], d['rank_chunks']) if n)))")" \
    "direct ['mmap']" "f4 input on the cpu back-end: computed in place (mapped)"
for f in X2-3-97 X8-2-97; do
    expect_eq "$(q r-$f.json "print(all(abs(x['read'] + x['compute'] + x['write'] + x['wait'] - x['wall']) <= 0.05 * x['wall'] and x['read'] > 0 for x, n in zip(r['distributed']['rank_io'], r['distributed']['rank_chunks']) if n))")" \
        True "$f: each rank's read, compute, write and wait make its wall time (5%)"
done
expect_eq "$(ls -a | grep -c 'dcrun-')" 0 "no temporary or token file left"
done_testing
