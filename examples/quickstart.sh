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
    echo "== dcrun infer -H localhost:2 ... --output $out/Y2.npy (the same across 2 local ranks)"
    $DCRUN infer -H localhost:2 --oversubscribe --device cpu --threads 1 \
        --model "$out/model.safetensors" --input "$out/X.npy" \
        --output "$out/Y2.npy" --report "$out/infer2.json"
    if $DCRUN infer --device cpu --threads 1 --model "$out/model.safetensors" \
        --input "$out/X.npy" --output "$out/Y1.npy" && cmp -s "$out/Y1.npy" "$out/Y2.npy"; then
        echo "2 ranks wrote the bytes of 1 process"
    fi
    echo "== dcrun train --model $out/model.safetensors --input $out/X.npy --target $out/T.npy --output $out/trained.safetensors --epochs 3"
    $DCRUN train --model "$out/model.safetensors" --input "$out/X.npy" \
        --target "$out/T.npy" --output "$out/trained.safetensors" \
        --epochs 3 --batch-size 64 --lr 0.05 --momentum 0.9 \
        --log "$out/loss.csv" --report "$out/train.json"
    echo "outputs: $out/Y.npy (inference, np.load reads it), $out/trained.safetensors (trained model, PyTorch loads it)"
    echo "reports: $out/infer.json, $out/train.json; loss per step: $out/loss.csv"
fi
