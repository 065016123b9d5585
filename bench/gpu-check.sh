#!/bin/sh
# bench/gpu-check.sh OUTDIR - what dcrun does on one NVIDIA GPU, in one run
# of under 8 minutes, from the repository root:
#   gpu_tests    the tests/gpu programs (the gpu suite)
#   device       device 0 (name, SMs, clock) and cudaMemcpy host-to-device
#                from pinned and pageable memory (bench/gpu/h2d.c)
#   gemm_DT      `dcrun bench gemm` f32, tf32, bf16, f16 at 8192^3 against
#                the device's peak (dcrun's, else the H200 table below)
#                and raw cuBLASLt on the same shapes (bench/gpu/cublaslt_gemm.c)
#   infer_MODEL_DT  `dcrun infer --device cuda` on the 1024-4096-4096-1024
#                model (heavy) and the 1024 -> 16 model (light): TFLOP/s
#                against bench gemm, GB/s of input against the pinned
#                host-to-device rate, and the output of the first rows
#                against the cpu back-end's within the dtype's tolerance
#   infer_light_direct2  the light model f32 through 2 local ranks with
#                --io direct (pinned buffers, reads overlapping compute)
#                against one process: both wall times, the outputs within
#                f32's tolerance
#   train        `dcrun train --device cuda` against `--device cpu`: time
#                and the trained weights within tolerance
# It writes OUTDIR/gpu-check.json (every part with "status": "ok", "fail"
# or "skip" and its "reason") and prints a short table (also in
# OUTDIR/gpu-check.txt; the gpu tests' output in OUTDIR/test_*.log).  A
# part that cannot run says SKIP and why (no GPU, no bundle, out of time);
# the JSON is written however the script ends (even on SIGINT/SIGTERM).
#
# The binaries, first found: $DCRUN and its build tree when set;
# gpu-bundle/ (bench/gpu-bundle.sh); gpu-bundle.tar.xz unpacked into a
# temporary folder (what travels to a GPU machine without Debian's
# packages); build/cli/dcrun.  With a build tree, bench/gpu's peers are
# compiled against $CUDA_HOME.  Inputs are made by npytool
# (bench/gpu/npytool.c: seeded, no NumPy).  On a lent GPU machine, after
# `sh bench/gpu-bundle.sh` here: `sh bench/gpu-check.sh $OUT` with
# gpu-bundle.tar.xz carried.
#
# Environment: GPU_CHECK_DEVICE=cpu rehearses the GPU path on the cpu
# back-end (f32 only, small sizes, no peers: the figures mean nothing; the
# script's paths, the report parsing and the comparisons run).
# GPU_CHECK_BUDGET: seconds after which the remaining parts are skipped
# (default 420).  GPU_CHECK_LOADER=1 runs the bundle through its own ld.so
# and C library even where the machine's would do (to test that path).
# TMPDIR: the scratch folder (about 1.5 GiB on a GPU machine; removed at
# the end).
# Exit status: 0 the JSON is written and nothing failed (skips included),
# 1 a part failed, 2 usage.
set -u
[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: bench/gpu-check.sh OUTDIR" >&2; exit 2; }
mkdir -p "$1" || exit 2
outdir=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 2
W=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX") || exit 2
t_start=$(date +%s)
budget=${GPU_CHECK_BUDGET:-420}
json=$outdir/gpu-check.json
dev=${GPU_CHECK_DEVICE:-cuda}
case $dev in
cuda) rehearsal=0 gemm_n=8192 gemm_iters=20 gemm_dts="f32 tf32 bf16 f16" ;;
cpu) rehearsal=1 gemm_n=256 gemm_iters=1 gemm_dts=f32 ;;
*) echo "gpu-check: GPU_CHECK_DEVICE=$dev: not cuda or cpu" >&2; exit 2 ;;
esac
: >"$W/parts"
: >"$W/table"
failed=0

# ---------------------------------------------------------------- output
esc () { # a JSON string's inside: no quotes, backslashes or control bytes
    printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g' | cut -c1-400
}
# part NAME ok|fail|skip REASON [JSON-FIELDS]
part () {
    [ "$2" = fail ] && failed=1
    # one line a part (the JSON of dcrun's reports spans many)
    { printf '"%s":{"status":"%s","reason":"%s","at_seconds":%d%s}' "$1" "$2" "$(esc "$3")" \
        $(($(date +%s) - t_start)) "${4:+,$4}" | tr '\n\t' '  '; echo; } >>"$W/parts"
    printf '%-18s %-5s %s\n' "$1" "$(echo "$2" | tr a-z A-Z)" "$3" >>"$W/table"
}
finish () {
    trap - EXIT INT TERM
    now=$(date +%s)
    {
        printf '{"script":"bench/gpu-check.sh","format":1,"date":"%s",' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        printf '"host":"%s","seconds":%d,"failed":%s,' "$(esc "$(uname -n)")" \
            $((now - t_start)) "$([ $failed = 1 ] && echo true || echo false)"
        printf '"device":"%s",' "$([ $rehearsal = 1 ] && echo 'cpu (rehearsal: the figures mean nothing)' || echo cuda)"
        printf '"binaries":"%s","parts":{' "$(esc "${how:-none}")"
        sed '$!s/$/,/' "$W/parts"
        printf '}}\n'
    } >"$json.tmp"
    # a figure that came out wrong must not cost the whole JSON
    if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$json.tmp" 2>"$W/json.err"; then
        mv "$json.tmp" "$outdir/gpu-check.invalid.json"
        failed=1
        printf '{"script":"bench/gpu-check.sh","format":1,"failed":true,"error":"%s","invalid":"gpu-check.invalid.json"}\n' \
            "$(esc "$(lastline "$W/json.err")")" >"$json.tmp"
        echo "bench/gpu-check.sh: the JSON came out invalid: see $outdir/gpu-check.invalid.json" >&2
    fi
    mv "$json.tmp" "$json"
    { echo "bench/gpu-check.sh: $((now - t_start)) s, binaries: ${how:-none}"
        cat "$W/table"; } | tee "$outdir/gpu-check.txt"
    echo "JSON: $json"
    rm -rf "$W"
    exit $failed
}
trap finish EXIT
trap 'part interrupted fail "stopped by a signal"; exit 1' INT TERM

left () { echo $((budget - ($(date +%s) - t_start))); }
# num FILE KEY: the last "KEY": number in FILE (dcrun's JSON: totals last)
num () {
    v=$(grep -o "\"$2\":[[:space:]]*-\?[0-9][0-9.eE+-]*" "$1" 2>/dev/null | tail -1 | sed 's/.*:[[:space:]]*//')
    echo "${v:-null}"
}
calc () { # an awk expression, or null (never inf or nan: not JSON)
    awk "BEGIN { x = $1; if (x != x || x == x + 1 && x != 0) print \"null\"; else printf \"%.4g\", x }" 2>/dev/null || echo null
}
div () { # A / B, or null when either is missing or B is 0
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "null" || b == "" || b == "null" || b + 0 == 0) print "null"; else printf "%.4g", a / b }'
}
f4 () { case $1 in '' | null) echo '?' ;; *) calc "$1" ;; esac; } # for the table
now_s () { date +%s.%N; }
lastline () { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -1; }
to () { timeout "$@"; } # timeout SECONDS CMD...

# ---------------------------------------------------------------- binaries
cudalibs=
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [ -d "$d" ] && cudalibs=$cudalibs:$d
done
loader=
bundle=
if [ -n "${DCRUN:-}" ]; then
    : # that binary and its build tree
elif [ -x gpu-bundle/bin/dcrun ]; then
    bundle=$here/gpu-bundle
elif [ -f gpu-bundle.tar.xz ]; then
    mkdir -p "$W/bundle"
    if tar -C "$W/bundle" -xJf gpu-bundle.tar.xz 2>"$W/tar.err" ||
        python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
            gpu-bundle.tar.xz "$W/bundle" 2>>"$W/tar.err"; then
        bundle=$W/bundle
    else
        part setup fail "cannot unpack gpu-bundle.tar.xz: $(lastline "$W/tar.err")"
    fi
fi
if [ -n "$bundle" ]; then
    B=$bundle/bin
    dcrun=$B/dcrun
    tests=$bundle/tests
    export LD_LIBRARY_PATH="$bundle/lib$cudalibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    DCRUN_MODULE_DIR="$bundle/$(cat "$bundle/MODULE_DIR" 2>/dev/null || echo lib/dcrun)"
    export DCRUN_MODULE_DIR
    how="bundle $bundle"
    if [ "${GPU_CHECK_LOADER:-0}" = 1 ] || ! "$dcrun" --version >"$W/ver" 2>&1; then
        # an older C library than the bundle's (GLIBC_NEEDED): its own
        if [ -x "$bundle/glibc/ld-linux-x86-64.so.2" ] &&
            "$bundle/glibc/ld-linux-x86-64.so.2" --library-path "$bundle/lib:$bundle/glibc$cudalibs" \
                "$dcrun" --version >"$W/ver" 2>&1; then
            loader=$bundle/glibc/ld-linux-x86-64.so.2
            how="$how with its own ld.so and C library (it needs glibc $(cat "$bundle/GLIBC_NEEDED" 2>/dev/null); this machine has $(getconf GNU_LIBC_VERSION 2>/dev/null || echo '?'))"
        else
            part setup fail "the bundled dcrun does not run: $(head -1 "$W/ver")"
            dcrun=
        fi
    fi
else
    dcrun=${DCRUN:-$here/build/cli/dcrun}
    tests=$(dirname "$(dirname "$dcrun")")/tests/gpu
    B=$W/bin
    mkdir -p "$B"
    how="build tree $dcrun"
    [ -x "$dcrun" ] || { part setup fail "no gpu-bundle/, gpu-bundle.tar.xz nor $dcrun (sh scripts/build.sh or sh bench/gpu-bundle.sh)"; dcrun=; }
    cuda=${CUDA_HOME:-/usr/local/cuda}
    cc=$(command -v cc || command -v gcc || true)
    if [ -n "$cc" ]; then
        "$cc" -O2 -std=c99 -o "$B/npytool" bench/gpu/npytool.c -lm 2>"$W/cc.err" || true
        if [ -f "$cuda/include/cublasLt.h" ]; then
            "$cc" -O2 -std=c11 -I"$cuda/include" -o "$B/h2d" bench/gpu/h2d.c -L"$cuda/lib64" -lcudart 2>>"$W/cc.err" || true
            "$cc" -O2 -std=c11 -I"$cuda/include" -o "$B/cublaslt_gemm" bench/gpu/cublaslt_gemm.c \
                -L"$cuda/lib64" -lcublasLt -lcudart 2>>"$W/cc.err" || true
        fi
    fi
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}$cudalibs"
fi
# X PROGRAM ARGS...: a bundled program, through the bundle's loader if
# needed; a script, so that timeout can run it too
if [ -n "$loader" ]; then
    printf '#!/bin/sh\nexec "%s" --library-path "%s" "$@"\n' "$loader" \
        "$bundle/lib:$bundle/glibc$cudalibs" >"$W/x"
else
    printf '#!/bin/sh\nexec "$@"\n' >"$W/x"
fi
chmod +x "$W/x"
X () { "$W/x" "$@"; }
[ -n "$dcrun" ] && [ -z "$(sed -n 1p "$W/parts")" ] && part setup ok "$how" "\"version\":\"$(esc "$(X "$dcrun" --version 2>&1 | tr '\n' ';')")\""

# ---------------------------------------------------------------- the GPU
gpu=0
why_nogpu="no dcrun"
if [ -n "$dcrun" ]; then
    if X "$dcrun" bench gemm --device $dev --m 256 --iters 1 --json >"$W/g0" 2>"$W/g0.err"; then
        gpu=1
    else
        why_nogpu=$(lastline "$W/g0.err")
        [ -n "$why_nogpu" ] || why_nogpu="dcrun bench gemm --device $dev failed"
    fi
fi
h2d_gbs=
if [ $rehearsal = 1 ]; then
    part device skip "cpu rehearsal: no GPU to look at"
elif [ $gpu = 1 ] && [ -x "$B/h2d" ]; then
    if X "$B/h2d" 256 10 >"$W/h2d" 2>"$W/h2d.err"; then
        h2d_gbs=$(num "$W/h2d" h2d_pinned_gbs)
        smi=
        command -v nvidia-smi >/dev/null 2>&1 &&
            smi=$(to 20 nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv,noheader 2>&1 | head -1)
        part device ok "$(sed -n 's/.*"device":"\([^"]*\)".*/\1/p' "$W/h2d"); pinned H2D $h2d_gbs GB/s" \
            "\"h2d\":$(cat "$W/h2d"),\"nvidia_smi\":\"$(esc "$smi")\""
    else
        part device fail "h2d: $(lastline "$W/h2d.err")"
    fi
elif [ $gpu = 1 ]; then
    part device skip "no bench/gpu/h2d binary (no gcc or CUDA headers here, and no bundle)"
else
    part device skip "no usable GPU: $why_nogpu"
fi
devname=$(sed -n 's/.*"device":"\([^"]*\)".*/\1/p' "$W/h2d" 2>/dev/null)

# ---------------------------------------------------------------- gpu tests
if [ -z "$dcrun" ]; then
    part gpu_tests skip "no dcrun"
elif [ ! -x "$tests/test_compute_cuda" ]; then
    part gpu_tests skip "no tests/gpu programs in $tests (meson builds them with CUDA)"
else
    # test_probe_cuda runs DCRUN_BUILDDIR/cli/dcrun: that is ours here
    mkdir -p "$W/fake/cli"
    printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$W/x" "$dcrun" >"$W/fake/cli/dcrun"
    chmod +x "$W/fake/cli/dcrun"
    res='' st=ok why=''
    for t in compute_cuda probe_cuda; do
        (cd "$W" && CK_DEFAULT_TIMEOUT=120 DCRUN_SRCDIR=$here DCRUN_BUILDDIR=$W/fake \
            to 170 "$W/x" "$tests/test_$t") >"$W/t_$t" 2>&1
        rc=$?
        case $rc in
        0) s=pass ;;
        77) s=skip; [ $st = ok ] && st=skip; why="$why test_$t: $(grep -m1 'SKIP' "$W/t_$t" | sed 's/.*SKIP *//');" ;;
        124) s=timeout; st=fail; why="$why test_$t: timed out after 170 s;" ;;
        *) s=fail; st=fail; why="$why test_$t: exit $rc, $(grep -m1 -E 'fail|error|Error' "$W/t_$t" | cut -c1-200);" ;;
        esac
        res="$res${res:+,}\"$t\":{\"result\":\"$s\",\"exit\":$rc,\"summary\":\"$(esc "$(grep -E '^[0-9]+%|Checks' "$W/t_$t" | tail -1)")\"}"
        cp "$W/t_$t" "$outdir/test_$t.log" 2>/dev/null
    done
    [ $st = ok ] && why="every test passed"
    why=${why# }
    part gpu_tests $st "$why" "\"tests\":{$res}"
fi

# ---------------------------------------------------------------- gemm
# H200 SXM dense peaks, TFLOP/s (datasheet): where dcrun knows none
peak_table () {
    case $1 in f32) echo 66.9 ;; tf32) echo 494.7 ;; *) echo 989.4 ;; esac
}
for dt in $gemm_dts; do
    eval "gemm_$dt="
    if [ $gpu = 0 ]; then part gemm_$dt skip "no usable GPU: $why_nogpu"; continue; fi
    if [ "$(left)" -lt 30 ]; then part gemm_$dt skip "out of time (GPU_CHECK_BUDGET=$budget s)"; continue; fi
    if ! X "$dcrun" bench gemm --device $dev --dtype $dt --m $gemm_n --n $gemm_n --k $gemm_n --iters $gemm_iters --json \
        >"$W/gemm_$dt" 2>"$W/gemm_$dt.err"; then
        part gemm_$dt fail "dcrun bench gemm: $(lastline "$W/gemm_$dt.err")"
        continue
    fi
    tf=$(num "$W/gemm_$dt" gemm_tflops)
    eval "gemm_$dt=$tf"
    pk=$(num "$W/gemm_$dt" peak_tflops)
    src=dcrun
    case $pk in '' | null | 0) pk=; esac
    if [ -z "$pk" ]; then
        case $devname in *H200*|*H100*) pk=$(peak_table $dt); src="H200 table" ;; esac
    fi
    tab=null
    case $devname in *H200*|*H100*) tab=$(peak_table $dt) ;; esac
    raw=null
    if [ $rehearsal = 0 ] && [ -x "$B/cublaslt_gemm" ] && X "$B/cublaslt_gemm" $gemm_n $gemm_n $gemm_n $dt $gemm_iters >"$W/lt_$dt" 2>"$W/lt_$dt.err"; then
        raw=$(num "$W/lt_$dt" gemm_tflops)
    fi
    part gemm_$dt ok "dcrun $(f4 "$tf") TFLOP/s, cuBLASLt $(f4 "$raw") TFLOP/s, peak $(f4 "$pk") ($src)" \
        "\"dcrun_tflops\":${tf:-null},\"cublaslt_tflops\":${raw:-null},\"peak_tflops\":${pk:-null},\"peak_source\":\"$src\",\"peak_datasheet_tflops\":$tab,\"of_peak\":$(div "$tf" "${pk:-}"),\"of_cublaslt\":$(div "$tf" "$raw"),\"dcrun\":$(cat "$W/gemm_$dt"),\"cublaslt_error\":\"$(esc "$(lastline "$W/lt_$dt.err")")\""
done

# ---------------------------------------------------------------- inputs
# cpu references (small row counts) run everywhere: they prove the
# generator, the cpu back-end and the comparer; the cuda side needs a GPU
tol () { case $1 in f32) echo 1e-4 ;; tf32) echo 1e-2 ;; *) echo 2e-2 ;; esac; }
D=$W/data
mkdir -p "$D"
have_data=0
if [ -z "$dcrun" ] || [ ! -x "$B/npytool" ]; then
    part inputs fail "no npytool (bench/gpu/npytool.c) to make the inputs"
else
    t0=$(now_s)
    heavy_rows=32768 light_rows=262144 small_rows=2048 train_rows=8192
    # no GPU: no big inputs, and a short cpu training (only its path is shown)
    [ $gpu = 1 ] || { heavy_rows=0 light_rows=0 train_rows=512 small_rows=256; }
    [ $rehearsal = 0 ] || { heavy_rows=256 light_rows=8192 train_rows=512 small_rows=256; }
    if X "$B/npytool" mlp "$D/heavy.safetensors" 1024,4096,4096,1024 1 2>"$W/gen.err" &&
        X "$B/npytool" mlp "$D/light.safetensors" 1024,16 2 2>>"$W/gen.err" &&
        X "$B/npytool" rows "$D/small.npy" $small_rows 1024 3 2>>"$W/gen.err" &&
        X "$B/npytool" mlp "$D/train.safetensors" 512,2048,2048,512 4 2>>"$W/gen.err" &&
        X "$B/npytool" rows "$D/tx.npy" $train_rows 512 5 2>>"$W/gen.err" &&
        X "$B/npytool" rows "$D/tt.npy" $train_rows 512 6 2>>"$W/gen.err" &&
        { [ $gpu = 0 ] || { X "$B/npytool" rows "$D/heavy.npy" $heavy_rows 1024 7 &&
            X "$B/npytool" rows "$D/light.npy" $light_rows 1024 8; } 2>>"$W/gen.err"; }; then
        have_data=1
        part inputs ok "models heavy 1024-4096-4096-1024, light 1024-16, train 512-2048-2048-512; rows heavy $heavy_rows, light $light_rows, compare $small_rows" \
            "\"seconds\":$(calc "$(now_s) - $t0")"
    else
        part inputs fail "npytool: $(lastline "$W/gen.err")"
    fi
fi

# ---------------------------------------------------------------- infer
cpu_ref () { # MODEL: the cpu back-end's output of small.npy
    [ -f "$D/ref_$1.npy" ] && return 0
    to 120 "$W/x" "$dcrun" infer --device cpu --model "$D/$1.safetensors" --input "$D/small.npy" \
        --output "$D/ref_$1.npy" --report "$D/ref_$1.json" >/dev/null 2>"$W/ref_$1.err"
}
for m in heavy light; do
    if [ $have_data = 0 ]; then part infer_${m} skip "no inputs"; continue; fi
    if ! cpu_ref $m; then
        part infer_${m}_cpu fail "dcrun infer --device cpu: $(lastline "$W/ref_$m.err")"
        continue
    fi
    if [ $gpu = 0 ]; then
        part infer_${m} skip "no usable GPU: $why_nogpu" \
            "\"cpu_reference\":{\"rows\":$small_rows,\"tflops\":$(num "$D/ref_$m.json" tflops),\"seconds\":$(num "$D/ref_$m.json" seconds)}"
        continue
    fi
    dts="f32 tf32 bf16 f16"
    [ $m = light ] && dts="f32 bf16"
    [ $rehearsal = 0 ] || dts=f32
    for dt in $dts; do
        name=infer_${m}_$dt
        if [ "$(left)" -lt 40 ]; then part $name skip "out of time (GPU_CHECK_BUDGET=$budget s)"; continue; fi
        t0=$(now_s)
        if ! to 150 "$W/x" "$dcrun" infer --device $dev --dtype $dt --model "$D/$m.safetensors" \
            --input "$D/$m.npy" --output "$D/y.npy" --report "$D/r_$name.json" >/dev/null 2>"$W/$name.err"; then
            part $name fail "dcrun infer --device cuda: $(lastline "$W/$name.err")"
            continue
        fi
        wall=$(calc "$(now_s) - $t0")
        r=$D/r_$name.json
        rows=$(num "$r" rows)
        tf=$(num "$r" tflops)
        tfe=$(num "$r" tflops_end_to_end)
        tot=$(num "$r" seconds)
        comp=$(awk -v RS='"phases"' 'END { if (match($0, /"compute":[[:space:]]*[0-9.eE+-]+/)) { s = substr($0, RSTART, RLENGTH); sub(/.*:[[:space:]]*/, "", s); print s } }' "$r")
        gb=$(calc "$rows * 1024 * 4 / 1e9")
        gbs=$(div "$gb" "$comp")
        gbs_e=$(div "$gb" "$tot")
        eval "g=\${gemm_$dt:-}"
        # the first rows again, against the cpu back-end
        cmpj=null st=ok why=
        if to 60 "$W/x" "$dcrun" infer --device $dev --dtype $dt --model "$D/$m.safetensors" \
            --input "$D/small.npy" --output "$D/yc.npy" >/dev/null 2>"$W/$name.c.err"; then
            cmpj=$(X "$B/npytool" cmp "$D/yc.npy" "$D/ref_$m.npy" "$(tol $dt)" 2>"$W/$name.cmp.err")
            case $? in 0) ;; 1) st=fail; why="output differs from the cpu back-end's over $(tol $dt): " ;;
                *) st=fail; why="npytool cmp: $(lastline "$W/$name.cmp.err"): "; cmpj=null ;; esac
        else
            st=fail
            why="dcrun infer --device cuda on $small_rows rows: $(lastline "$W/$name.c.err"): "
        fi
        part $name $st "${why}$(f4 "$tf") TFLOP/s compute ($(div "$tf" "${g:-}") of bench gemm), $gbs GB/s input ($(div "$gbs" "${h2d_gbs:-}") of pinned H2D)" \
            "\"rows\":$rows,\"wall_seconds\":$wall,\"seconds\":$tot,\"compute_seconds\":${comp:-null},\"tflops\":${tf:-null},\"tflops_end_to_end\":${tfe:-null},\"gbs_input_compute\":$gbs,\"gbs_input_end_to_end\":$gbs_e,\"of_bench_gemm\":$(div "$tf" "${g:-}"),\"of_h2d_pinned\":$(div "$gbs" "${h2d_gbs:-}"),\"vs_cpu\":${cmpj:-null},\"report\":$(cat "$r")"
    done
done

# ---------------------------------------------------------------- infer, 2 ranks
# The light model through 2 local ranks that read and write their own rows
# (--io direct: pread into pinned buffers, chunk k+1 read while chunk k
# computes, gpu/compute.h mlp_submit) against one process, the same dtype
# (issue 13's goal on the cpu: at most 1.3x one process).
name=infer_light_direct2
if [ $have_data = 0 ]; then
    part $name skip "no inputs"
elif [ $gpu = 0 ]; then
    part $name skip "no usable GPU: $why_nogpu"
elif [ -n "$loader" ]; then
    # ranks start /proc/self/exe, which is then the bundle's ld.so
    part $name skip "ranks cannot start through the bundle's ld.so (dcrun runs as /proc/self/exe)"
elif [ "$(left)" -lt 40 ]; then
    part $name skip "out of time (GPU_CHECK_BUDGET=$budget s)"
else
    la="--device $dev --dtype f32 --model $D/light.safetensors --input $D/light.npy"
    t0=$(now_s)
    # shellcheck disable=SC2086
    if ! to 150 "$W/x" "$dcrun" infer $la --output "$D/y1.npy" >/dev/null 2>"$W/$name.1.err"; then
        part $name fail "dcrun infer --device $dev (1 process): $(lastline "$W/$name.1.err")"
    else
        t1=$(calc "$(now_s) - $t0")
        t0=$(now_s)
        # shellcheck disable=SC2086
        if ! to 150 "$W/x" "$dcrun" infer -H localhost:2 --io direct $la --output "$D/yd.npy" \
            --report "$D/r_$name.json" >/dev/null 2>"$W/$name.err"; then
            part $name fail "dcrun infer -H localhost:2 --io direct: $(lastline "$W/$name.err")"
        else
            t2=$(calc "$(now_s) - $t0")
            cmpj=$(X "$B/npytool" cmp "$D/yd.npy" "$D/y1.npy" "$(tol f32)" 2>"$W/$name.cmp.err")
            case $? in 0) st=ok why= ;; 1) st=fail why="2 ranks differ from 1 process over $(tol f32): " ;;
                *) st=fail why="npytool cmp: $(lastline "$W/$name.cmp.err"): " cmpj=null ;; esac
            gb=$(calc "$light_rows * 1024 * 4 / 1e9")
            part $name $st "${why}2 ranks --io direct $(f4 "$t2") s, 1 process $(f4 "$t1") s ($(div "$t2" "$t1")x), $(div "$gb" "$t2") GB/s input" \
                "\"rows\":$light_rows,\"one_process_seconds\":$t1,\"direct2_seconds\":$t2,\"ratio\":$(div "$t2" "$t1"),\"gbs_input\":$(div "$gb" "$t2"),\"vs_one_process\":${cmpj:-null},\"report\":$(cat "$D/r_$name.json")"
        fi
    fi
fi

# ---------------------------------------------------------------- train
if [ $have_data = 0 ]; then
    part train skip "no inputs"
else
    targs="--model $D/train.safetensors --input $D/tx.npy --target $D/tt.npy --epochs 1 --batch-size 256 --lr 0.01"
    t0=$(now_s)
    # shellcheck disable=SC2086
    if ! to 120 "$W/x" "$dcrun" train --device cpu $targs --output "$D/cpu.safetensors" --report "$D/tcpu.json" \
        >/dev/null 2>"$W/tcpu.err"; then
        part train fail "dcrun train --device cpu: $(lastline "$W/tcpu.err")"
    else
        tc=$(calc "$(now_s) - $t0")
        if [ $gpu = 0 ]; then
            part train skip "no usable GPU: $why_nogpu" "\"rows\":$train_rows,\"cpu_wall_seconds\":$tc"
        elif [ "$(left)" -lt 20 ]; then
            part train skip "out of time (GPU_CHECK_BUDGET=$budget s)" "\"cpu_wall_seconds\":$tc"
        else
            t0=$(now_s)
            # shellcheck disable=SC2086
            if to 120 "$W/x" "$dcrun" train --device $dev $targs --output "$D/gpu.safetensors" --report "$D/tgpu.json" \
                >/dev/null 2>"$W/tgpu.err"; then
                tg=$(calc "$(now_s) - $t0")
                cmpj=$(X "$B/npytool" cmp "$D/gpu.safetensors" "$D/cpu.safetensors" 1e-3 2>"$W/tcmp.err")
                case $? in 0) st=ok why= ;; 1) st=fail why="weights differ over 1e-3: " ;;
                    *) st=fail why="npytool cmp: $(lastline "$W/tcmp.err"): " cmpj=null ;; esac
                part train $st "${why}512-2048-2048-512, $train_rows rows, batch 256: $dev ${tg} s, cpu ${tc} s ($(div "$tc" "$tg")x)" \
                    "\"cpu_wall_seconds\":$tc,\"device_wall_seconds\":$tg,\"speedup\":$(div "$tc" "$tg"),\"weights_vs_cpu\":${cmpj:-null}"
            else
                part train fail "dcrun train --device cuda: $(lastline "$W/tgpu.err")" "\"cpu_wall_seconds\":$tc"
            fi
        fi
    fi
fi
exit $failed
