#!/bin/sh
# dcrun infer and dcrun train against NumPy: a model and a batch made with
# NumPy (examples/make-example.py), outputs compared with NumPy's forward
# pass, the trained model read back, bad inputs refused with exit 3 and
# no output file.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
"$PY" -c 'import numpy' 2>/dev/null || skip_all "$PY cannot import numpy (apt-get install python3-numpy)"
D=$T_TMP
MK=$DCRUN_SRCDIR/examples/make-example.py

# compare.py MODEL X Y [ACT] [FINAL]: max relative error of Y against
# NumPy's float64 forward pass of MODEL (read with NumPy only)
cat > "$D/compare.py" <<'PY'
import json, struct, sys
import numpy as np
model, xf, yf = sys.argv[1:4]
act = sys.argv[4] if len(sys.argv) > 4 else None
raw = open(model, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
meta = hdr.pop("__metadata__", {})
act = act or meta.get("activation", "relu")
final = meta.get("final_activation", "none")
def tensor(name):
    m = hdr[name]; a, b = m["data_offsets"]; buf = raw[8 + n + a:8 + n + b]
    if m["dtype"] == "F32": v = np.frombuffer(buf, "<f4")
    elif m["dtype"] == "F16": v = np.frombuffer(buf, "<f2")
    else: v = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view("<f4")
    return v.astype(np.float64).reshape(m["shape"])
def f(name, z):
    if name == "relu": return np.maximum(z, 0)
    if name == "gelu": return 0.5*z*(1+np.tanh(np.sqrt(2/np.pi)*(z+0.044715*z**3)))
    if name == "tanh": return np.tanh(z)
    return z
stems = sorted((int(k[:-7].split(".")[-1]), k[:-7]) for k in hdr if k.endswith(".weight"))
h = np.load(xf).astype(np.float64)
for i, (_, s) in enumerate(stems):
    h = h @ tensor(s + ".weight").T + tensor(s + ".bias")
    h = f(act if i + 1 < len(stems) else final, h)
y = np.load(yf)
assert y.shape == h.shape, (y.shape, h.shape)
print("%.3g" % (np.abs(y.astype(np.float64) - h).max() / max(np.abs(h).max(), 1e-30)))
PY
# lt A B: A < B as numbers
lt () { "$PY" -c "import sys; sys.exit(0 if float('$1') < float('$2') else 1)"; }

"$PY" "$MK" --out "$D/m" --rows 1000 --sizes 24,64,48,5 --seed 3 >/dev/null \
    && ok "make-example.py writes a model and a batch" \
    || not_ok "make-example.py failed"

# --- infer matches NumPy (f32, relative error < 1e-4) ---
expect_rc 0 "infer runs" $DCRUN infer --device cpu --model "$D/m/model.safetensors" \
    --input "$D/m/X.npy" --output "$D/m/Y.npy" --report "$D/m/r.json"
e=$("$PY" "$D/compare.py" "$D/m/model.safetensors" "$D/m/X.npy" "$D/m/Y.npy")
lt "$e" 1e-4 && ok "infer matches NumPy's forward pass (rel err $e)" \
    || not_ok "infer differs from NumPy: rel err $e"
# the header is NumPy's own, byte for byte
"$PY" -c "
import numpy as np, sys
y = np.load('$D/m/Y.npy'); np.save('$D/np.npy', y)
sys.exit(open('$D/np.npy','rb').read() != open('$D/m/Y.npy','rb').read())" \
    && ok "output file is byte-identical to np.save of the same array" \
    || not_ok "output file differs from np.save's"
# the report: shape, sha256 of the file, phases
"$PY" - "$D/m/r.json" "$D/m/Y.npy" <<'PY' && ok "report has shape, dtype, sha256, phases, versions" || not_ok "report is wrong"
import hashlib, json, sys
r = json.load(open(sys.argv[1]))
assert r["output"]["shape"] == [1000, 5], r["output"]
assert r["output"]["dtype"] == "<f4"
assert r["output"]["sha256"] == hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
assert set(r["phases"]) == {"launch", "load", "copy_in", "compute", "copy_out", "gather", "write"}
assert r["totals"]["rows"] == 1000 and r["totals"]["flop"] == 2 * 1000 * (24*64 + 64*48 + 48*5)
assert r["versions"]["dcrun"] and r["versions"]["hwloc"]
assert r["ranks"][0]["rows"] == 1000
PY

# other activations, the override, f16 and bf16 models, f2/f8 input, f2 output
for act in gelu tanh none; do
    "$PY" "$MK" --out "$D/$act" --rows 300 --sizes 8,32,3 --activation $act --seed 4 >/dev/null
    run $DCRUN infer --device cpu --model "$D/$act/model.safetensors" --input "$D/$act/X.npy" --output "$D/$act/Y.npy"
    e=$("$PY" "$D/compare.py" "$D/$act/model.safetensors" "$D/$act/X.npy" "$D/$act/Y.npy")
    lt "$e" 1e-4 && ok "activation $act from metadata (rel err $e)" || not_ok "activation $act: rel err $e"
done
run $DCRUN infer --device cpu --model "$D/tanh/model.safetensors" --input "$D/tanh/X.npy" --output "$D/o.npy" --activation gelu
e=$("$PY" "$D/compare.py" "$D/tanh/model.safetensors" "$D/tanh/X.npy" "$D/o.npy" gelu)
lt "$e" 1e-4 && ok "--activation overrides the metadata (rel err $e)" || not_ok "--activation: rel err $e"
for dt in F16 BF16; do
    "$PY" "$MK" --out "$D/$dt" --rows 200 --sizes 8,16,4 --dtype $dt --prefix layers. >/dev/null
    run $DCRUN infer --device cpu --model "$D/$dt/model.safetensors" --input "$D/$dt/X.npy" --output "$D/$dt/Y.npy"
    e=$("$PY" "$D/compare.py" "$D/$dt/model.safetensors" "$D/$dt/X.npy" "$D/$dt/Y.npy")
    lt "$e" 1e-4 && ok "$dt model with prefix layers. (rel err $e)" || not_ok "$dt model: rel err $e"
done
"$PY" -c "
import numpy as np
x = np.load('$D/m/X.npy'); np.save('$D/x2.npy', x.astype(np.float16)); np.save('$D/x8.npy', x.astype(np.float64))
np.lib.format.write_array(open('$D/x3.npy', 'wb'), x, version=(3, 0))"
for f in x2 x8 x3; do
    run $DCRUN infer --device cpu --model "$D/m/model.safetensors" --input "$D/$f.npy" --output "$D/y$f.npy" --output-dtype f2
    e=$("$PY" "$D/compare.py" "$D/m/model.safetensors" "$D/$f.npy" "$D/y$f.npy")
    "$PY" -c "import numpy as np; assert np.load('$D/y$f.npy').dtype == np.float16" \
        && lt "$e" 2e-3 && ok "input $f.npy, f2 output (rel err $e)" || not_ok "input $f.npy, f2 output: rel err $e"
done
# small blocks and chunks give the same bytes
run $DCRUN infer --device cpu --model "$D/m/model.safetensors" --input "$D/m/X.npy" --output "$D/c.npy" --chunk-rows 7 --threads 1
e=$("$PY" "$D/compare.py" "$D/m/model.safetensors" "$D/m/X.npy" "$D/c.npy")
lt "$e" 1e-4 && ok "--chunk-rows 7 --threads 1 (rel err $e)" || not_ok "--chunk-rows 7: rel err $e"
run $DCRUN infer --device cpu --model "$D/m/model.safetensors" --input "$D/m/X.npy" --output "$D/p.npy" --progress
expect_err "infer: 1000/1000 rows" "--progress prints a progress line when stderr is not a terminal"
run $DCRUN infer --device cpu --model "$D/m/model.safetensors" --input "$D/m/X.npy" --output "$D/q.npy"
[ -s "$T_TMP/err" ] && not_ok "no progress without a terminal or --progress" || ok "no progress without a terminal or --progress"

# --- train lowers the loss; NumPy reads the model back ---
expect_rc 0 "train runs" $DCRUN train --device cpu --model "$D/m/model.safetensors" \
    --input "$D/m/X.npy" --target "$D/m/T.npy" --output "$D/m/M2.safetensors" \
    --epochs 4 --batch-size 50 --lr 0.05 --momentum 0.9 --log "$D/loss.csv" --report "$D/tr.json"
first=$(sed -n 's/^epoch 1\/4 loss //p' "$T_TMP/out"); last=$(sed -n 's/^epoch 4\/4 loss //p' "$T_TMP/out")
lt "$last" "$first" && ok "train lowers the loss ($first -> $last)" || not_ok "loss did not fall: '$first' -> '$last'"
expect_eq "$(wc -l < "$D/loss.csv")" 81 "--log has a header and one line per step"
"$PY" - "$D/m/model.safetensors" "$D/m/M2.safetensors" "$D/m/X.npy" "$D/m/T.npy" <<'PY' && ok "trained model keeps names, dtypes, shapes; NumPy reads it; its mse is lower" || not_ok "trained model is wrong"
import json, struct, sys
import numpy as np
def load(p):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8+n]); h.pop("__metadata__", None)
    return {k: np.frombuffer(raw[8+n+v["data_offsets"][0]:8+n+v["data_offsets"][1]], "<f4").reshape(v["shape"]) for k, v in h.items()}, h
a, ha = load(sys.argv[1]); b, hb = load(sys.argv[2])
assert sorted(ha) == sorted(hb) and all(ha[k]["dtype"] == hb[k]["dtype"] and ha[k]["shape"] == hb[k]["shape"] for k in ha)
x = np.load(sys.argv[3]).astype(np.float64); t = np.load(sys.argv[4])
def mse(p):
    h = x
    for i, s in enumerate(["0", "2", "4"]):
        h = h @ p[s + ".weight"].T + p[s + ".bias"]
        if i < 2: h = np.maximum(h, 0)
    return ((h - t) ** 2).mean()
assert mse(b) < mse(a), (mse(a), mse(b))
PY
expect_rc 0 "train with adam and cross-entropy" $DCRUN train --device cpu --model "$D/m/model.safetensors" \
    --input "$D/m/X.npy" --target "$D/m/labels.npy" --loss xent --optimizer adam --output "$D/m/M3.safetensors" --epochs 2

# --- resume: 2 epochs + 2 more from the checkpoint == 4 in one run ---
TR="$DCRUN train --device cpu --model $D/m/model.safetensors --input $D/m/X.npy --target $D/m/T.npy --batch-size 64 --optimizer adam --seed 9"
run $TR --epochs 4 --output "$D/full.safetensors"
run $TR --epochs 2 --output "$D/half.safetensors" --checkpoint-dir "$D/ck" --checkpoint-every 5
[ -f "$D/ck/checkpoint.safetensors" ] && ok "checkpoint written" || not_ok "no checkpoint"
expect_rc 0 "train --resume" $TR --epochs 4 --output "$D/resumed.safetensors" --checkpoint-dir "$D/ck" --resume
expect_err "resuming from .* at epoch 3, step 32" "resume says where it continues"
cmp -s "$D/full.safetensors" "$D/resumed.safetensors" && ok "resumed run ends with the same bytes as one run" \
    || not_ok "resumed model differs from the uninterrupted one"
expect_rc 3 "resume with another batch size is refused" $DCRUN train --device cpu --model "$D/m/model.safetensors" \
    --input "$D/m/X.npy" --target "$D/m/T.npy" --batch-size 32 --optimizer adam --seed 9 --epochs 4 \
    --output "$D/bs.safetensors" --checkpoint-dir "$D/ck" --resume
[ ! -e "$D/bs.safetensors" ] && ok "no output after a refused resume" || not_ok "output written after a refused resume"

# --- bad inputs: exit 3, no output file ---
printf 'not a model at all' > "$D/junk.safetensors"
"$PY" -c "
import numpy as np
np.save('$D/wide.npy', np.zeros((4, 25), np.float32))
np.save('$D/ints.npy', np.zeros((4, 24), np.int64))
np.save('$D/big.npy', np.zeros((4, 24), '>f4'))
np.save('$D/fort.npy', np.asfortranarray(np.zeros((4, 24), np.float32)))
np.save('$D/i32.npy', np.zeros((4, 24), np.int32))
open('$D/trunc.npy', 'wb').write(open('$D/m/X.npy', 'rb').read()[:500])"
mkdir -p "$D/nochain"
"$PY" -B - "$DCRUN_SRCDIR/examples" "$D/nochain/model.safetensors" <<'PY'
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
mk = __import__("make-example")
z = lambda *s: np.zeros(s, np.float32)
mk.save_safetensors(sys.argv[2], {"0.weight": z(8, 24), "0.bias": z(8),
                                  "2.weight": z(3, 6), "2.bias": z(3)})
PY
bad () { # bad WHAT PATTERN MODEL INPUT
    what=$1; pat=$2; shift 2
    rm -f "$D/bad.npy"
    expect_rc 3 "$what" $DCRUN infer --device cpu --model "$1" --input "$2" --output "$D/bad.npy"
    expect_err "$pat" "$what: says why"
    if [ -e "$D/bad.npy" ] || ls -a "$D" | grep -q '^\.bad\.npy'; then not_ok "$what: left an output file"
    else ok "$what: no output file"; fi
}
bad "junk model" "header length|not a safetensors" "$D/junk.safetensors" "$D/m/X.npy"
bad "missing model" "No such file" "$D/none.safetensors" "$D/m/X.npy"
bad "layers that do not chain" "layers '0' and '2' do not chain" "$D/nochain/model.safetensors" "$D/m/X.npy"
bad "wrong input width" "expected \(rows, 24\)" "$D/m/model.safetensors" "$D/wide.npy"
bad "int64 input" "dtype <i8" "$D/m/model.safetensors" "$D/ints.npy"
bad "big-endian input" "big-endian" "$D/m/model.safetensors" "$D/big.npy"
bad "Fortran-order input" "Fortran" "$D/m/model.safetensors" "$D/fort.npy"
bad "int32 input" "unsupported dtype '<i4'" "$D/m/model.safetensors" "$D/i32.npy"
bad "truncated input" "needs .* bytes of data" "$D/m/model.safetensors" "$D/trunc.npy"
bad "model as input" "bad magic" "$D/m/model.safetensors" "$D/m/model.safetensors"
expect_rc 3 "train: labels out of range" $DCRUN train --device cpu --model "$D/m/model.safetensors" \
    --input "$D/m/X.npy" --target "$D/m/T.npy" --loss xent --output "$D/bad.safetensors"
expect_rc 3 "train: targets of the wrong shape" $DCRUN train --device cpu --model "$D/m/model.safetensors" \
    --input "$D/m/X.npy" --target "$D/m/labels.npy" --output "$D/bad.safetensors"
[ ! -e "$D/bad.safetensors" ] && ok "train: no output after bad input" || not_ok "train: output after bad input"
expect_rc 2 "infer without --output is a usage error" $DCRUN infer --model "$D/m/model.safetensors" --input "$D/m/X.npy"
expect_rc 2 "unknown --device" $DCRUN infer --device tpu --model "$D/m/model.safetensors" --input "$D/m/X.npy" --output "$D/u.npy"
expect_rc 2 "unknown --activation" $DCRUN infer --activation swish --model "$D/m/model.safetensors" --input "$D/m/X.npy" --output "$D/u.npy"
expect_rc 5 "cpu with --dtype bf16 is a compute failure" $DCRUN infer --device cpu --dtype bf16 --model "$D/m/model.safetensors" --input "$D/m/X.npy" --output "$D/u.npy"
expect_rc 3 "output folder that does not exist (bad input, as with ranks)" $DCRUN infer --device cpu --model "$D/m/model.safetensors" --input "$D/m/X.npy" --output "$D/no/such/y.npy"
done_testing
