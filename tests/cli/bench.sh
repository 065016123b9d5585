#!/bin/sh
# dcrun bench gemm: figures from the cpu back-end, usage and device errors.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
py=/usr/bin/python3

expect_rc 0 "bench gemm on cpu" $DCRUN bench gemm --device cpu --m 96 --n 80 --k 64 --iters 2 --threads 1
expect_out '^gemm +[0-9.]+ TFLOP/s' "text output has the GEMM rate"
expect_out '^linear_fwd +[0-9.]+ TFLOP/s' "text output has the fused layer rate"
expect_out 'OpenBLAS' "text output names the back-end"

expect_rc 0 "bench gemm --json (options after the kind)" $DCRUN bench gemm --json --device cpu --m 64 --iters 1
if "$py" - "$T_TMP/out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["benchmark"] == "gemm" and j["backend"] == "cpu", j
assert (j["m"], j["n"], j["k"], j["iters"]) == (64, 64, 64, 1), j
assert j["gemm_tflops"] > 0 and j["linear_fwd_tflops"] > 0, j
assert abs(j["gemm_tflops"] - 2 * 64**3 / j["gemm_seconds"] / 1e12) < 1e-9 * j["gemm_tflops"] + 1e-12, j
assert j["peak_tflops"] is None, j
PY
then ok "json has the shape, rates consistent with the times, no cpu peak"
else not_ok "json fields"; fi

expect_rc 0 "options before the kind" $DCRUN bench --device cpu --m 32 --iters 1 gemm

expect_rc 2 "no benchmark named" $DCRUN bench
expect_err 'which benchmark' "says a benchmark is needed"
expect_rc 2 "unknown benchmark" $DCRUN bench fft
expect_err "unknown benchmark 'fft'" "names the unknown benchmark"
expect_rc 2 "--m 0" $DCRUN bench gemm --device cpu --m 0
expect_rc 2 "--m not a number" $DCRUN bench gemm --device cpu --m 1e3x
expect_rc 2 "bad dtype" $DCRUN bench gemm --dtype f64
expect_rc 2 "bad device" $DCRUN bench gemm --device tpu
expect_rc 2 "bf16 on the cpu back-end" $DCRUN bench gemm --device cpu --dtype bf16
expect_err 'computes in f32' "says the cpu back-end is f32 only"
expect_rc 2 "extra operand" $DCRUN bench gemm extra

# --device cuda: exit 5 with the reason where no GPU is usable
if $DCRUN --version | grep -q 'cuda'; then
    run $DCRUN bench gemm --device cuda --m 256 --iters 1
    if [ "$RC" -eq 5 ]; then
        ok "cuda without a usable GPU: exit 5"
        expect_err '^dcrun: bench: cuda: ' "the message names the back-end and why"
    elif [ "$RC" -eq 0 ]; then
        ok "cuda with a GPU: exit 0"
        expect_out 'cuda device' "names the device"
    else
        not_ok "bench gemm --device cuda: exit $RC"
    fi
fi
done_testing
