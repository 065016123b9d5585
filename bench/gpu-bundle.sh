#!/bin/sh
# bench/gpu-bundle.sh [--with-cudart] - dcrun, its CUDA modules, the gpu
# test programs and bench/gpu's peers with every shared library they need,
# for a GPU machine without Debian's packages (no cJSON, OpenBLAS, hwloc,
# libssh2, OpenMPI, Check there).  Run it here, from the repository root:
#
#   gpu-bundle/bin/      dcrun, cublaslt_gemm, h2d, npytool
#   gpu-bundle/lib/      every library of `ldd` that is not the C library
#                        or CUDA's (libcjson, libopenblas.so.0 as dcrun
#                        opens it, libhwloc, libssh2, libmpi, libxml2 and
#                        their own needs)
#   gpu-bundle/lib/x86_64-linux-gnu/dcrun/  dcrun_cuda.so, dcrun_cudart.so,
#                        where bin/dcrun looks for them (DCRUN_MODULE_RELDIR)
#   gpu-bundle/tests/    the tests/gpu programs (Check is linked in)
#   gpu-bundle/glibc/    this machine's ld.so, libc, libm, libpthread, libdl,
#                        librt: used by bench/gpu-check.sh only where the GPU
#                        machine's C library is older than GLIBC_NEEDED
#   gpu-bundle/GLIBC_NEEDED, MODULE_DIR, MANIFEST
# and gpu-bundle.tar.xz, the same tree packed (about a third of its size):
# what travels to the GPU machine (bench/gpu-check.sh unpacks it when
# gpu-bundle/ is not there).  CUDA's libcudart, libcublas, libcublasLt and
# the driver's libcuda are the GPU machine's own; --with-cudart adds
# libcudart (0.7 MB; libcublasLt is 500 MB and never travels).
#
# BUILD: the meson build folder (default build-bundle; configured here
# with -Dcuda=enabled when absent; an existing one must have CUDA).
# Exit status: 0 ok, 1 the bundle does not run here, 2 usage or no CUDA.
set -eu
with_cudart=0
for a in "$@"; do
    case $a in
    --with-cudart) with_cudart=1 ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "gpu-bundle: unknown argument $a (--with-cudart)" >&2; exit 2 ;;
    esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build=${BUILD:-build-bundle}
cuda=${CUDA_HOME:-/usr/local/cuda}
out=gpu-bundle
[ -x "$cuda/bin/nvcc" ] || { echo "gpu-bundle: no nvcc under $cuda (set CUDA_HOME)" >&2; exit 2; }

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dcuda=enabled --buildtype=release >/dev/null
fi
grep -q '#define HAVE_CUDA 1' "$build/config.h" \
    || { echo "gpu-bundle: $build has no CUDA back-end (meson configure $build -Dcuda=enabled)" >&2; exit 2; }
ninja -C "$build" cli/dcrun gpu/dcrun_cuda.so gpu/dcrun_cudart.so \
    tests/gpu/test_compute_cuda tests/gpu/test_probe_cuda >/dev/null

# the modules where a moved install looks: bin/ + DCRUN_MODULE_RELDIR
reldir=$(sed -n 's/^#define DCRUN_MODULE_RELDIR "\(.*\)"$/\1/p' "$build/config.h")
case $reldir in ../lib/*) mods=$out/${reldir#../} ;; *) mods=$out/lib/dcrun ;; esac
rm -rf "$out" "$out.tar.xz"
mkdir -p "$out/bin" "$mods" "$out/tests" "$out/glibc"
cp "$build/cli/dcrun" "$out/bin/"
cp "$build/gpu/dcrun_cuda.so" "$build/gpu/dcrun_cudart.so" "$mods/"
echo "${mods#$out/}" >"$out/MODULE_DIR"
cp "$build/tests/gpu/test_compute_cuda" "$build/tests/gpu/test_probe_cuda" "$out/tests/"
gcc -O2 -std=c11 -Wall -Wextra -Werror -I"$cuda/include" -o "$out/bin/cublaslt_gemm" \
    bench/gpu/cublaslt_gemm.c -L"$cuda/lib64" -lcublasLt -lcudart
gcc -O2 -std=c11 -Wall -Wextra -Werror -I"$cuda/include" -o "$out/bin/h2d" \
    bench/gpu/h2d.c -L"$cuda/lib64" -lcudart
gcc -O2 -std=c99 -Wall -Wextra -Werror -o "$out/bin/npytool" bench/gpu/npytool.c -lm
strip --strip-debug "$out"/bin/* "$mods"/*.so "$out"/tests/*

# The C library and CUDA stay the GPU machine's: never in lib/.
system='^(linux-vdso|libc|libm|libpthread|libdl|librt|ld-linux-x86-64|libcuda|libcudart|libcublas|libcublasLt)\.so'
openblas=$(ldconfig -p | awk '$1 == "libopenblas.so.0" { print $NF; exit }')
[ -n "$openblas" ] || { echo "gpu-bundle: no libopenblas.so.0 here (apt-get install libopenblas0)" >&2; exit 2; }
cp -L "$openblas" "$out/lib/libopenblas.so.0"
# ldd lists every library a file needs, its needs' needs too
for f in "$out"/bin/* "$mods"/*.so "$out"/tests/* "$out/lib/libopenblas.so.0"; do
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r name path; do
    if echo "$name" | grep -Eq "$system"; then
        [ $with_cudart = 1 ] && echo "$name" | grep -q '^libcudart\.so' \
            && cp -L "$path" "$out/lib/$name"
        continue
    fi
    [ -e "$out/lib/$name" ] || cp -L "$path" "$out/lib/$name"
done
for name in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1; do
    path=$(ldconfig -p | awk -v n="$name" '$1 == n && /x86-64/ { print $NF; exit }')
    [ -n "$path" ] && cp -L "$path" "$out/glibc/$name"
done

# The newest GLIBC_2.N symbol version any bundled file asks for: where the
# GPU machine's C library is older, gpu-check.sh runs with glibc/.
find "$out/bin" "$out/lib" "$out/tests" -type f | while read -r f; do
    objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_2\.[0-9]*' || true
done | sort -t. -k2,2n -u | tail -1 | sed 's/GLIBC_//' >"$out/GLIBC_NEEDED"

# Every library of every bundled file resolves into the bundle (or is the
# C library or CUDA's), with nothing in the environment but the path.
lib=$here/$out/lib
bad=0
for f in "$out"/bin/* "$out"/lib/*.so* "$mods"/*.so "$out"/tests/*; do
    env -i LD_LIBRARY_PATH="$lib" ldd "$f" >"$out/.ldd" 2>&1 || true
    if grep -q 'not found' "$out/.ldd"; then
        case $f in */libcudart*|*/libcublas*) ;; *) echo "gpu-bundle: $f: $(grep 'not found' "$out/.ldd" | tr '\n' ' ')" >&2; bad=1 ;; esac
    fi
    awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' "$out/.ldd" | while read -r name path; do
        case $path in "$lib"/*) continue ;; esac
        echo "$name" | grep -Eq "$system" \
            || echo "gpu-bundle: $f: $name resolves outside the bundle ($path)" >&2
    done
done
rm -f "$out/.ldd"
ver=$(env -i LD_LIBRARY_PATH="$lib" "$out/bin/dcrun" --version) \
    || { echo "gpu-bundle: $out/bin/dcrun --version fails with only LD_LIBRARY_PATH=$lib" >&2; exit 1; }
echo "$ver" | grep -q 'cuda (cuBLAS' || { echo "gpu-bundle: dcrun has no cuda back-end: $ver" >&2; exit 1; }
# the cuda module and libcudart load (here: "no CUDA driver"; there: a GPU)
msg=$(env -i LD_LIBRARY_PATH="$lib" "$out/bin/dcrun" bench gemm --device cuda --m 64 --iters 1 2>&1) || true
case $msg in *"not available"*) echo "gpu-bundle: the bundled dcrun cannot load its cuda module: $msg" >&2; bad=1 ;; esac
[ $bad = 0 ] || exit 1

(cd "$out" && find . -type f | sort | xargs ls -l | awk '{ print $5, $NF }') >"$out/MANIFEST"
tar -C "$out" -cJf "$out.tar.xz" .
size=$(du -sk "$out" | cut -f1)
packed=$(du -k "$out.tar.xz" | cut -f1)
echo "gpu-bundle: $out/ $((size / 1024)) MiB, $out.tar.xz $((packed / 1024)) MiB (GLIBC_NEEDED $(cat "$out/GLIBC_NEEDED"))"
echo "$ver" | sed 's/^/gpu-bundle:   /'
if [ "$packed" -gt $((56 * 1024)) ]; then
    echo "gpu-bundle: $out.tar.xz is over 56 MiB: with the tree it will not travel (64 MiB)" >&2
    exit 1
fi
