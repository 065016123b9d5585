#!/bin/sh
# Lazy loading: dcrun links neither the CUDA libraries nor OpenBLAS; the
# CUDA module dcrun_cuda.so is opened only when a CUDA device is asked for
# or probed, OpenBLAS on the first use of the cpu back-end.  A module or
# library that cannot be loaded is a reason (exit 5), never a crash.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"

# What dcrun needs at start
if command -v readelf >/dev/null 2>&1; then
    readelf -d "$DCRUN" >"$T_TMP/dyn"
    if grep -Eq 'NEEDED.*lib(cudart|cublas|cublasLt)\.' "$T_TMP/dyn"; then
        not_ok "dcrun links CUDA libraries"
    else ok "dcrun does not link libcudart, libcublas, libcublasLt"; fi
fi

# What launchers start on every host (and --version) loads neither the
# module nor the libraries
for cmd in "--version" "worker --control none -- true"; do
    run env LD_DEBUG=files $DCRUN $cmd
    if [ "$RC" -ne 0 ]; then
        not_ok "dcrun $cmd: exit $RC"
    elif grep -Eq 'file=(.*/)?(dcrun_cuda\.so|libcudart|libcublas|libopenblas|libblas)' "$T_TMP/err"; then
        not_ok "dcrun $cmd loads compute libraries"
        grep -E 'file=.*(dcrun_cuda|cudart|cublas|blas)' "$T_TMP/err" | head -3 | sed 's/^/#   /'
    else ok "dcrun $cmd loads no compute library"; fi
done

if $DCRUN --version | grep -q 'cuda'; then
    empty=$T_TMP/empty bad=$T_TMP/bad
    mkdir "$empty" "$bad"
    printf 'not a shared object\n' >"$bad/dcrun_cuda.so"
    printf 'not a shared object\n' >"$bad/dcrun_cudart.so"

    expect_rc 5 "--device cuda, no module in DCRUN_MODULE_DIR" \
        env DCRUN_MODULE_DIR="$empty" $DCRUN bench gemm --device cuda --m 32 --iters 1
    expect_err "^dcrun: bench: cuda: not available: dcrun_cuda\.so not found in $empty\$" \
        "says where the module was looked for"
    expect_rc 5 "--device cuda, a module that is not one" \
        env DCRUN_MODULE_DIR="$bad" $DCRUN bench gemm --device cuda --m 32 --iters 1
    expect_err "^dcrun: bench: cuda: not available: $bad/dcrun_cuda\.so: " \
        "gives dlopen's reason"
    expect_rc 0 "--device auto falls back to cpu without the module" \
        env DCRUN_MODULE_DIR="$bad" $DCRUN -v bench gemm --device auto --m 32 --iters 1 --threads 1
    expect_out 'OpenBLAS' "the cpu back-end ran"
    expect_err 'cuda: not available: ' "-v says why cuda was not used"
    expect_rc 0 "probe without the module" env DCRUN_MODULE_DIR="$bad" $DCRUN -v probe
    expect_err "cuda: not available: $bad/dcrun_cudart\\.so: " \
        "probe -v says why there is no CUDA runtime"

    # The module of this build tree, found without DCRUN_MODULE_DIR
    if [ -n "${DCRUN_BUILDDIR:-}" ] && [ -f "$DCRUN_BUILDDIR/gpu/dcrun_cuda.so" ]; then
        run env -u DCRUN_MODULE_DIR $DCRUN bench gemm --device cuda --m 256 --iters 1
        if [ "$RC" -eq 0 ] || { [ "$RC" -eq 5 ] && ! grep -q 'not available' "$T_TMP/err"; }; then
            ok "the build tree's module is found (exit $RC)"
        else
            not_ok "the build tree's module: exit $RC"
            sed 's/^/#   stderr: /' "$T_TMP/err" | head -3
        fi
        if command -v nm >/dev/null 2>&1; then
            syms=$(nm -D --defined-only "$DCRUN_BUILDDIR/gpu/dcrun_cuda.so" | awk '{print $3}')
            expect_eq "$syms" "dc_compute_cuda_module" "dcrun_cuda.so exports one symbol"
            syms=$(nm -D --defined-only "$DCRUN_BUILDDIR/gpu/dcrun_cudart.so" | awk '{print $3}')
            expect_eq "$syms" "dc_probe_cudart_module" "dcrun_cudart.so exports one symbol"
        fi
        # probing needs the runtime only: cuBLAS is not mapped
        run env -u DCRUN_MODULE_DIR LD_DEBUG=files $DCRUN -v probe
        if [ "$RC" -eq 0 ] && grep -q 'file=.*dcrun_cudart\.so' "$T_TMP/err" &&
            ! grep -q 'file=libcublas' "$T_TMP/err"; then
            ok "probe opens dcrun_cudart.so, not cuBLAS"
        else not_ok "probe: exit $RC, or cuBLAS mapped, or no runtime module"; fi
        if ! grep -q 'cuda: [0-9]* device' "$T_TMP/err"; then
            # no usable GPU here: auto picks cpu without mapping cuBLAS
            run env -u DCRUN_MODULE_DIR LD_DEBUG=files $DCRUN bench gemm --device auto --m 32 --iters 1 --threads 1
            if [ "$RC" -eq 0 ] && ! grep -q 'file=libcublas' "$T_TMP/err"; then
                ok "--device auto without a GPU does not map cuBLAS"
            else not_ok "--device auto without a GPU: exit $RC or cuBLAS mapped"; fi
        fi
    fi
else
    expect_rc 5 "--device cuda in a build without CUDA" $DCRUN bench gemm --device cuda
    expect_err 'cuda' "names cuda"
fi

# OpenBLAS, opened on the first use of the cpu back-end ($DCRUN_BLAS
# overrides the library)
expect_rc 5 "--device cpu, a BLAS that cannot be loaded" \
    env DCRUN_BLAS="$T_TMP/libnothere.so" $DCRUN bench gemm --device cpu --m 32 --iters 1
expect_err "^dcrun: bench: cpu: cannot load BLAS \\(DCRUN_BLAS=$T_TMP/libnothere\\.so\\): " \
    "gives dlopen's reason"
expect_rc 5 "--device cpu, a library without cblas_sgemm" \
    env DCRUN_BLAS=libc.so.6 $DCRUN bench gemm --device cpu --m 32 --iters 1
expect_err "cpu: libc\\.so\\.6 has no cblas_sgemm" "says cblas_sgemm is missing"
expect_rc 5 "--device auto, no usable back-end" \
    env DCRUN_MODULE_DIR="$T_TMP" DCRUN_BLAS=libc.so.6 $DCRUN bench gemm --device auto --m 32 --iters 1
expect_err "no usable compute back-end" "says no back-end is usable"
expect_rc 0 "--device cpu with the default OpenBLAS" \
    $DCRUN bench gemm --device cpu --m 32 --iters 1 --threads 1
expect_out 'OpenBLAS \(.*\), 1 threads' "OpenBLAS found and its threads set"
run env LD_DEBUG=files $DCRUN bench gemm --device cpu --m 32 --iters 1 --threads 1
if grep -q 'file=libopenblas.so.0 .*dynamically loaded' "$T_TMP/err"; then
    ok "OpenBLAS is opened at run time"
else not_ok "OpenBLAS is not dlopen'ed"; fi

done_testing
