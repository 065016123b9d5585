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

# bench comm: the stream comm to 2 local `dcrun serve` ranks in echo mode
expect_rc 0 "bench comm over 2 local ranks --json" $DCRUN bench comm -n 2 --bytes 4M --frame 256K --iters 2 --json
# the launch's error text was printed uninitialised on success ("dcrun: bench: <bytes>")
if [ -s "$T_TMP/err" ]; then not_ok "comm: nothing on stderr when it works"; sed 's/^/#   /' "$T_TMP/err" | head -3
else ok "comm: nothing on stderr when it works"; fi
if "$py" - "$T_TMP/out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["benchmark"] == "comm" and j["comm"] == "stream", j
assert j["launcher"] == "local" and j["ranks"] == 2, j
assert (j["bytes_per_rank"], j["frame_bytes"], j["iters"]) == (4 << 20, 256 << 10, 2), j
assert len(j["seconds_all"]) == 2 and j["seconds"] > 0, j
want = 2 * (4 << 20) / j["seconds"] / 1e9
assert j["to_ranks_gbps"] > 0 and abs(j["to_ranks_gbps"] - want) < 1e-9 * want, j
assert abs(j["total_gbps"] - 2 * j["to_ranks_gbps"]) < 1e-9 * j["total_gbps"], j
PY
then ok "comm json: 2 ranks, positive GB/s consistent with bytes and seconds"
else not_ok "comm json fields"; fi
# a frame size that does not divide the bytes: the last frame is shorter
expect_rc 0 "bench comm text, uneven frames" $DCRUN bench comm -H localhost:1 --bytes 1000K --frame 300K --iters 1
expect_out '^to ranks +[0-9.]+ GB/s' "text output has the rate to the ranks"
expect_out '^total +[0-9.]+ GB/s' "text output has the total"
expect_rc 2 "comm --bytes 0" $DCRUN bench comm --bytes 0
expect_err "--bytes '0'" "names the bad --bytes"
expect_rc 2 "comm --frame not a size" $DCRUN bench comm --frame 1x
expect_rc 2 "comm --frame above 64M" $DCRUN bench comm --frame 65M
expect_rc 2 "comm --iters 0" $DCRUN bench comm --iters 0
expect_rc 3 "comm over a bad host list" $DCRUN bench comm -H 'a[3-1]'

# bench launch: dcrun exec -- true over the host list
expect_rc 0 "bench launch over 2 local ranks --json" $DCRUN bench launch -H localhost:2 --iters 2 --json
if "$py" - "$T_TMP/out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["benchmark"] == "launch" and j["launcher"] == "local", j
assert (j["hosts"], j["ranks"], j["iters"]) == (1, 2, 2), j
assert 0 < j["min_seconds"] <= j["seconds"] <= j["max_seconds"] < 60, j
PY
then ok "launch json: ranks, hosts, ordered times"
else not_ok "launch json fields"; fi
expect_rc 0 "bench launch --dry-run shows the exec command" $DCRUN bench launch -H localhost:2 --iters 3 --dry-run
expect_out ' exec -H localhost:2 -- true$' "exec gets the host list, not bench's own options"
expect_rc 2 "launch with an unknown launcher" $DCRUN bench launch -L nosuch
expect_rc 2 "launch --iters x" $DCRUN bench launch --iters x
done_testing
