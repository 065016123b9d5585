#!/bin/sh
# dcrun against PyTorch (Debian's python3-torch, /usr/bin/python3): an
# nn.Sequential saved in safetensors' format runs through dcrun infer with
# PyTorch's outputs; a model trained by dcrun loads back with
# load_state_dict(strict=True); one sgd / adam step equals torch.optim's.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
"$PY" -c 'import torch' 2>/dev/null || skip_all "$PY cannot import torch (apt-get install python3-torch)"
D=$T_TMP
export PYTHONDONTWRITEBYTECODE=1

cat > "$D/tt.py" <<'PY'
"""tt.py save|check|load|step ...: the PyTorch side of the tests."""
import json, struct, sys
import numpy as np
import torch
from torch import nn
sys.path.insert(0, sys.argv[1])
mk = __import__("make-example")
torch.manual_seed(0)

def read_st(path):
    raw = open(path, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n]); meta = h.pop("__metadata__", {})
    out = {}
    for k, v in h.items():
        b = raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
        if v["dtype"] == "F32": a = np.frombuffer(b, "<f4")
        elif v["dtype"] == "F16": a = np.frombuffer(b, "<f2").astype(np.float32)
        else: a = (np.frombuffer(b, "<u2").astype(np.uint32) << 16).view("<f4")
        out[k] = torch.from_numpy(a.reshape(v["shape"]).copy())
    return out, h, meta

def build(kind):
    if kind == "relu":
        return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(), nn.Linear(24, 5)), None
    if kind == "gelu":
        return nn.Sequential(nn.Linear(12, 32), nn.GELU(approximate="tanh"), nn.Linear(32, 5)), "gelu"
    if kind == "tanh":
        return nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 5)), "tanh"

cmd, d = sys.argv[2], sys.argv[3]
if cmd == "save":          # save KIND DTYPE: model.safetensors, X.npy, Y (torch's)
    kind, dtype = sys.argv[4], sys.argv[5]
    m, act = build(kind)
    sd = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    mk.save_safetensors(d + "/model.safetensors", sd, dtype, {"activation": act} if act else None)
    # torch computes with the weights as stored (rounded for F16/BF16)
    w, _, _ = read_st(d + "/model.safetensors")
    m.load_state_dict(w, strict=True)
    x = torch.randn(700, 12)
    np.save(d + "/X.npy", x.numpy())
    with torch.no_grad():
        np.save(d + "/torch.npy", m(x).numpy())
    np.save(d + "/T.npy", torch.randn(700, 5).numpy())
    np.save(d + "/labels.npy", torch.randint(0, 5, (700,)).numpy().astype(np.int64))
elif cmd == "check":       # check Y.npy against torch.npy
    y, t = np.load(d + "/Y.npy"), np.load(d + "/torch.npy")
    e = np.abs(y - t).max() / np.abs(t).max()
    print("%.3g" % e); sys.exit(0 if e < 1e-4 else 1)
elif cmd == "load":        # the trained file loads into the same nn.Sequential
    kind = sys.argv[4]
    m, _ = build(kind)
    w, h, meta = read_st(d + "/trained.safetensors")
    m.load_state_dict(w, strict=True)
    _, h0, meta0 = read_st(d + "/model.safetensors")
    assert {k: (v["dtype"], v["shape"]) for k, v in h.items()} == {k: (v["dtype"], v["shape"]) for k, v in h0.items()}
    assert meta == meta0, (meta, meta0)
elif cmd == "step":        # step KIND OPT LOSS LR: one full-batch step as torch.optim does it
    kind, opt, loss, lr = sys.argv[4], sys.argv[5], sys.argv[6], float(sys.argv[7])
    m, _ = build(kind)
    w, _, _ = read_st(d + "/model.safetensors"); m.load_state_dict(w)
    x = torch.from_numpy(np.load(d + "/X.npy"))
    o = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9) if opt == "sgd" else torch.optim.Adam(m.parameters(), lr=lr)
    for _ in range(2):     # two steps: momentum and Adam's moments matter
        o.zero_grad()
        if loss == "mse":
            l = nn.functional.mse_loss(m(x), torch.from_numpy(np.load(d + "/T.npy")))
        else:
            l = nn.functional.cross_entropy(m(x), torch.from_numpy(np.load(d + "/labels.npy")))
        l.backward(); o.step()
    got, _, _ = read_st(d + "/trained.safetensors")
    worst = max(float((got[k] - v).abs().max() / (v.abs().max() + 1e-12)) for k, v in m.state_dict().items())
    print("%.3g" % worst); sys.exit(0 if worst < 1e-4 else 1)
PY
T="$PY $D/tt.py $DCRUN_SRCDIR/examples"

for kind in relu gelu tanh; do
    for dt in F32 BF16; do
        mkdir -p "$D/$kind$dt"; d=$D/$kind$dt
        $T save "$d" $kind $dt || { not_ok "$kind $dt: torch could not save"; continue; }
        run $DCRUN infer --device cpu --model "$d/model.safetensors" --input "$d/X.npy" --output "$d/Y.npy"
        e=$($T check "$d") && ok "nn.Sequential $kind ($dt): dcrun infer matches PyTorch (rel err $e)" \
            || not_ok "nn.Sequential $kind ($dt): rel err $e against PyTorch"
    done
done

d=$D/reluF32
expect_rc 0 "dcrun train" $DCRUN train --device cpu --model "$d/model.safetensors" --input "$d/X.npy" \
    --target "$d/T.npy" --output "$d/trained.safetensors" --epochs 2 --batch-size 70
$T load "$d" relu && ok "load_state_dict(strict=True) takes the trained model" || not_ok "PyTorch cannot load the trained model"
d=$D/geluBF16
run $DCRUN train --device cpu --model "$d/model.safetensors" --input "$d/X.npy" --target "$d/labels.npy" \
    --loss xent --output "$d/trained.safetensors" --epochs 1
$T load "$d" gelu && ok "a BF16 model trained by dcrun keeps BF16 and its metadata" || not_ok "BF16 trained model is wrong"

# two full-batch steps (batch = all rows: the order does not matter)
for case in "reluF32 relu sgd mse 0.1" "tanhF32 tanh adam mse 0.01" "geluF32 gelu sgd xent 0.5" "reluF32 relu adam xent 0.01"; do
    set -- $case
    d=$D/$1
    if [ "$4" = mse ]; then tgt=$d/T.npy; else tgt=$d/labels.npy; fi
    mom=""; [ "$3" = sgd ] && mom="--momentum 0.9"
    run $DCRUN train --device cpu --model "$d/model.safetensors" --input "$d/X.npy" --target "$tgt" \
        --loss $4 --optimizer $3 --lr $5 $mom --batch-size 700 --epochs 2 --output "$d/trained.safetensors"
    e=$($T step "$d" $2 $3 $4 $5) && ok "two $3 steps on $4 equal torch.optim's ($2, rel err $e)" \
        || not_ok "$3 on $4 ($2) differs from torch.optim: rel err $e"
done
done_testing
