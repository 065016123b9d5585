#!/bin/sh
# The options of train, infer, map and bench that set one field each
# (cli/fields.c) and the combinations lib/run refuses (dc_train_check,
# dc_infer_check, dc_map_check): a table of bad command lines, each with
# exit 2 and its exact message, empty and hostile values included; then
# good values, aliases and defaults that get past the options (to the
# files, exit 3, or a --dry-run plan).
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
cd "$T_TMP" || exit 1

# ARGS | the first line of stderr (ARGS through eval: '' is an empty word)
T="--model m --input x --target t --output o"
I="--model m --input x --output o"
M="--input x --output y"
while IFS='|' read -r args want; do
    [ -z "$args" ] && continue
    eval "set -- $args"
    run $DCRUN "$@"
    first=$(head -n 1 "$T_TMP/err")
    if [ "$RC" -eq 2 ] && [ "$first" = "$want" ]; then ok "$args: $want"
    else not_ok "$args: exit $RC, '$first'; expected exit 2, '$want'"; fi
done <<EOF2
train --model m|dcrun: train: --model, --input, --target and --output are required
train --model '' --input '' --target ''|dcrun: train: --model, --input, --target and --output are required
train $T --resume|dcrun: train: --resume needs --checkpoint-dir
train $T --checkpoint-every 3 --resume|dcrun: train: --resume needs --checkpoint-dir
train $T --checkpoint-every 3|dcrun: train: --checkpoint-every needs --checkpoint-dir
train $T --optimizer adam --momentum 0.5|dcrun: train: --momentum applies to sgd; adam has its own
train $T --epochs 0|dcrun: train: --epochs '0': expected a number from 1 to 1099511627776
train $T --epochs 1099511627777|dcrun: train: --epochs '1099511627777': expected a number from 1 to 1099511627776
train $T --epochs 99999999999999999999|dcrun: train: --epochs '99999999999999999999': expected a number from 1 to 1099511627776
train $T --epochs ''|dcrun: train: --epochs '': expected a number from 1 to 1099511627776
train $T --batch-size 16777217|dcrun: train: --batch-size '16777217': expected a number from 1 to 16777216
train $T --batch-size 2x|dcrun: train: --batch-size '2x': expected a number from 1 to 16777216
train $T --checkpoint-every -1|dcrun: train: --checkpoint-every '-1': expected a number from 1 to 1099511627776
train $T --momentum 1|dcrun: train: --momentum '1': expected a number from 0 to 0.999999
train $T --momentum nan|dcrun: train: --momentum 'nan': expected a number from 0 to 0.999999
train $T --lr 0|dcrun: train: --lr must be above 0
train $T --lr inf|dcrun: train: --lr 'inf': expected a number from 0 to 1e+06
train $T --optimizer SGD|dcrun: train: --optimizer 'SGD': expected sgd or adam
train $T --optimizer ''|dcrun: train: --optimizer '': expected sgd or adam
train $T --loss mse,xent|dcrun: train: --loss 'mse,xent': expected mse or xent
train $T --io relay2|dcrun: train: --io 'relay2': expected direct, relay or auto
train $T --seed -1|dcrun: train: --seed '-1': expected a non-negative integer
train $T stray|dcrun: train: unexpected argument 'stray'
infer --model m --input x|dcrun: infer: --model, --input and --output are required
infer $I --chunk-rows 0|dcrun: infer: --chunk-rows '0': expected a number from 1 to 1073741824
infer $I --chunk-rows 1073741825|dcrun: infer: --chunk-rows '1073741825': expected a number from 1 to 1073741824
infer $I --output-dtype f8|dcrun: infer: --output-dtype 'f8': expected f4 or f2
infer $I --output-dtype F4|dcrun: infer: --output-dtype 'F4': expected f4 or f2
infer $I --io ''|dcrun: infer: --io '': expected direct, relay or auto
infer $I --io direct --split layers -n 2|dcrun: infer: --io direct: not with --split layers (the micro-batches pass through this process)
infer $I --io direct --split hybrid -n 2|dcrun: infer: --io direct: not with --split hybrid (the micro-batches pass through this process)
infer $I --io direct --split layers|dcrun: infer: --split layers needs ranks (-H, -f or -n)
map --input x|dcrun: map: --input and --output are required
map $M|dcrun: map: no command to run: dcrun map [options] -- CMD ARGS...
map --output y -- cat|dcrun: map: --input and --output are required
map $M --files --io direct -- cat|dcrun: map: --io direct: not with --files (the files travel through this process)
map $M --chunk-rows 67108865 -- cat|dcrun: map: --chunk-rows '67108865': expected a number from 1 to 67108864
map $M --retries -1 -- cat|dcrun: map: --retries '-1': expected a number from 0 to 1000
map $M --retries 1001 -- cat|dcrun: map: --retries '1001': expected a number from 0 to 1000
map $M --chunk-timeout 0 -- cat|dcrun: map: --chunk-timeout '0': expected a number from 0.001 to 1e+07
map $M --heartbeat-timeout 0.01 -- cat|dcrun: map: --heartbeat-timeout '0.01': expected a number from 0.1 to 1e+06
map $M --io DIRECT -- cat|dcrun: map: --io 'DIRECT': expected direct, relay or auto
bench gemm --m 0|dcrun: bench: --m '0': expected a number from 1 to 1048576
bench gemm --k 1048577|dcrun: bench: --k '1048577': expected a number from 1 to 1048576
bench gemm --iters 100001|dcrun: bench: --iters '100001': expected a number from 1 to 100000
bench gemm --threads 0|dcrun: bench: --threads '0': expected a number from 1 to 4096
bench comm --bytes 0|dcrun: bench: --bytes '0': expected a size from 1 to 16G (suffixes K, M, G)
bench comm --bytes 16777217K|dcrun: bench: --bytes '16777217K': expected a size from 1 to 16G (suffixes K, M, G)
bench comm --bytes ''|dcrun: bench: --bytes '': expected a size from 1 to 16G (suffixes K, M, G)
bench comm --frame 1G|dcrun: bench: --frame '1G': expected a size from 1 to 64M (suffixes K, M)
bench comm --frame -1M|dcrun: bench: --frame '-1M': expected a size from 1 to 64M (suffixes K, M)
EOF2

# good values get past the options: to the files (exit 3, the model named)
for args in "--output-dtype f32" "--output-dtype f16" "--output-dtype f2" \
            "--io direct" "--chunk-rows 1073741824"; do
    expect_rc 3 "infer $args: past the options" $DCRUN infer $I $args
    expect_err "^dcrun: .*m" "infer $args: the files are checked next"
done
expect_rc 3 "train: every option at its bounds" $DCRUN train $T --epochs 1099511627776 \
    --batch-size 16777216 --momentum 0.999999 --lr 1e6 --optimizer sgd --loss xent \
    --seed 18446744073709551615 --checkpoint-dir d --checkpoint-every 1 --resume --io relay
expect_rc 3 "map: its bounds" $DCRUN map $M --chunk-rows 67108864 --retries 0 \
    --chunk-timeout 0.001 --heartbeat-timeout 0.1 --io auto --files -- cat
expect_rc 0 "bench comm: the largest sizes" $DCRUN bench comm --bytes 16G --frame 64M --dry-run
expect_out "ranks: 2, each" "bench comm: 2 local ranks by default"
# --dry-run shows the data path lib/run decided (x.npy: 8 rows of 2 f4,
# written by hand)
/usr/bin/python3 -c "
import sys
h = \"{'descr': '<f4', 'fortran_order': False, 'shape': (8, 2), }\"
h += ' ' * (63 - (10 + len(h)) % 64) + chr(10)
sys.stdout.buffer.write(b'\\x93NUMPY\\x01\\x00' + len(h).to_bytes(2, 'little') + h.encode() + bytes(64))" > x.npy
expect_rc 0 "map --dry-run" $DCRUN map --input x.npy --output y.npy -H localhost:2 --dry-run -- cat
expect_out "^io: auto: each rank copies its chunks' rows" "map: auto, and how it is decided"
expect_rc 0 "map --io relay --dry-run" $DCRUN map --input x.npy --output y.npy -H localhost:2 --io relay --dry-run -- cat
expect_out "^io: relay$" "map: relay"
expect_eq "$(ls y.npy 2>/dev/null)" "" "map --dry-run: no output"
done_testing
