# gpu-check.sh - bench/gpu-check.sh where there is no GPU: it writes a valid
# JSON whose GPU parts say SKIP and why; the cpu rehearsal
# (GPU_CHECK_DEVICE=cpu) runs every part's path (report parsing, the
# comparer, training) and compares outputs; bad arguments are usage errors.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"

script=$DCRUN_SRCDIR/bench/gpu-check.sh
command -v gcc >/dev/null || command -v cc >/dev/null || skip_all "no C compiler for bench/gpu/npytool.c"
$PY -c 'import json' 2>/dev/null || skip_all "no $PY"
# a GPU here: the check would run for minutes; it is bench/, not a test
if "$DCRUN" bench gemm --device cuda --m 64 --iters 1 >/dev/null 2>&1; then
    skip_all "a GPU is usable here: run bench/gpu-check.sh OUTDIR itself"
fi

# jq-less JSON reading: json FILE EXPR (EXPR on j, the parsed file)
json () { $PY -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>&1; }

# usage: no OUTDIR, two, an OUTDIR that is a file; nothing written
expect_rc 2 "no OUTDIR" sh "$script"
expect_err 'usage: bench/gpu-check.sh OUTDIR' "no OUTDIR: usage line"
expect_rc 2 "two arguments" sh "$script" "$T_TMP/a" "$T_TMP/b"
: >"$T_TMP/file"
expect_rc 2 "OUTDIR is a file" sh "$script" "$T_TMP/file/out"
expect_rc 2 "GPU_CHECK_DEVICE=tpu" env GPU_CHECK_DEVICE=tpu sh "$script" "$T_TMP/tpu"
expect_err 'GPU_CHECK_DEVICE=tpu: not cuda or cpu' "GPU_CHECK_DEVICE=tpu: says why"
[ ! -e "$T_TMP/tpu/gpu-check.json" ] && ok "usage error: no JSON" || not_ok "usage error wrote a JSON"

# no GPU: exit 0, valid JSON, every GPU part a skip with the CUDA reason
out=$T_TMP/nogpu
expect_rc 0 "no GPU: the check ends well" env DCRUN="$DCRUN" TMPDIR="$T_TMP" sh "$script" "$out"
j=$out/gpu-check.json
expect_eq "$(json "$j" 'j["format"], j["failed"], j["device"]')" "(1, False, 'cuda')" "no GPU: valid JSON, nothing failed"
for p in device gpu_tests gemm_f32 gemm_tf32 gemm_bf16 gemm_f16 infer_heavy infer_light infer_light_direct2 train; do
    expect_eq "$(json "$j" "j['parts']['$p']['status']")" skip "no GPU: $p is skipped"
done
reason=$(json "$j" "j['parts']['gemm_bf16']['reason']")
case $reason in
*"no usable GPU: "*CUDA*) ok "no GPU: the reason is CUDA's ($reason)" ;;
*) not_ok "no GPU: gemm_bf16's reason: $reason" ;;
esac
expect_eq "$(json "$j" "j['parts']['gpu_tests']['tests']['compute_cuda']['exit']")" 77 "no GPU: test_compute_cuda skipped itself (77)"
expect_eq "$(json "$j" "j['parts']['inputs']['status'], j['parts']['setup']['status']")" "('ok', 'ok')" "no GPU: setup and inputs ran"
expect_eq "$(json "$j" "j['parts']['infer_heavy']['cpu_reference']['rows']")" 256 "no GPU: the cpu reference ran"
expect_out 'gemm_f32 +SKIP +no usable GPU' "no GPU: the table says SKIP"
[ -z "$(ls "$T_TMP" | grep gpu-check)" ] && ok "no GPU: scratch folder removed" || not_ok "scratch left: $(ls "$T_TMP")"

# the cpu rehearsal: every path that the GPU takes, with cpu outputs
out=$T_TMP/rehearsal
expect_rc 0 "cpu rehearsal ends well" env DCRUN="$DCRUN" TMPDIR="$T_TMP" GPU_CHECK_DEVICE=cpu sh "$script" "$out"
j=$out/gpu-check.json
expect_eq "$(json "$j" "[k for k, v in j['parts'].items() if v['status'] == 'ok']")" \
    "['setup', 'gemm_f32', 'inputs', 'infer_heavy_f32', 'infer_light_f32', 'infer_light_direct2', 'train']" "rehearsal: these parts ran"
expect_eq "$(json "$j" "[(p['vs_one_process']['ok'], p['ratio'] > 0, p['report']['distributed']['io']) for p in [j['parts']['infer_light_direct2']]][0]")" \
    "(True, True, 'direct')" "rehearsal: 2 ranks with --io direct timed against one process, the same outputs"
expect_eq "$(json "$j" "j['parts']['infer_heavy_f32']['vs_cpu']['ok'], j['parts']['infer_light_f32']['rows'], j['parts']['train']['weights_vs_cpu']['ok']")" \
    "(True, 8192, True)" "rehearsal: outputs and weights compared, rows from the report"
expect_eq "$(json "$j" "j['parts']['infer_light_f32']['gbs_input_compute'] > 0 and j['parts']['infer_light_f32']['of_bench_gemm'] > 0")" True \
    "rehearsal: GB/s and the ratio to bench gemm are figures"

# an interrupted check still leaves a JSON that says so
out=$T_TMP/int
env DCRUN="$DCRUN" TMPDIR="$T_TMP" GPU_CHECK_DEVICE=cpu sh "$script" "$out" >"$T_TMP/int.out" 2>&1 &
pid=$!
i=0
while [ $i -lt 100 ] && ! grep -q '"inputs"' "$T_TMP"/gpu-check.*/parts 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid
wait $pid
rc=$?
expect_eq "$rc" 1 "SIGTERM: exit 1"
expect_eq "$(json "$out/gpu-check.json" "j['failed'], j['parts']['interrupted']['reason']")" "(True, 'stopped by a signal')" "SIGTERM: the JSON says it was stopped"
done_testing
