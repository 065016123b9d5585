#!/bin/sh
# The README's first run: dcrun on this machine, with examples it makes itself.
set -e
cd "$(dirname "$0")/.."
DCRUN=${DCRUN:-./build/cli/dcrun}
echo "== dcrun hosts -f hostfiles/cluster.hosts -n 10 (the rank map of an example cluster)"
$DCRUN hosts -f hostfiles/cluster.hosts -n 10
if $DCRUN --help | grep -q '^  probe '; then
    echo "== dcrun probe (this machine's GPUs, NUMA nodes and cores)"
    $DCRUN probe
fi
if $DCRUN --help | grep -q '^  infer '; then
    out=${DCRUN_EXAMPLE_DIR:-example}
    echo "== examples/make-example.py --out $out (a small MLP in safetensors, a batch X.npy, targets T.npy)"
    /usr/bin/python3 -B examples/make-example.py --out "$out"
    echo "== dcrun infer --model $out/model.safetensors --input $out/X.npy --output $out/Y.npy --report $out/infer.json"
    $DCRUN infer --model "$out/model.safetensors" --input "$out/X.npy" \
        --output "$out/Y.npy" --report "$out/infer.json"
    echo "== dcrun train --model $out/model.safetensors --input $out/X.npy --target $out/T.npy --output $out/trained.safetensors --epochs 3"
    $DCRUN train --model "$out/model.safetensors" --input "$out/X.npy" \
        --target "$out/T.npy" --output "$out/trained.safetensors" \
        --epochs 3 --batch-size 64 --lr 0.05 --momentum 0.9 \
        --log "$out/loss.csv" --report "$out/train.json"
    echo "outputs: $out/Y.npy (inference, np.load reads it), $out/trained.safetensors (trained model, PyTorch loads it)"
    echo "reports: $out/infer.json, $out/train.json; loss per step: $out/loss.csv"
fi
