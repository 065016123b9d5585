#!/bin/sh
# tests/fuzz/run.sh [SECONDS] - build the libFuzzer harnesses of tests/fuzz
# with clang (-fsanitize=fuzzer,address,undefined, a build folder of its
# own) and run each over its checked-in corpus, then SECONDS of fuzzing
# (default $FUZZ_SECONDS, else 30; 0: the corpus only).
#
# A crash, a leak, an input slower than 25 s or an allocation over 512 MiB
# fails the run (exit 1) and leaves the input in
# $FUZZ_BUILD_DIR/artifacts/HARNESS/ (crash-*, leak-*, timeout-*, oom-*).
# Fix the bug, then add that input to tests/fuzz/corpus/HARNESS/ (under
# its name) so that every later run replays it.  New inputs found while
# fuzzing go to a scratch folder, never into the checked-in corpus.
#
# Environment: FUZZ_SECONDS, FUZZ_BUILD_DIR (default build-fuzz at the top
# of the source tree), FUZZ_HARNESSES (default: all), CC (default clang).
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-${FUZZ_SECONDS:-30}}
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
harnesses=${FUZZ_HARNESSES:-npy safetensors hostfile hostlist hosts_list slurm proto topo wire control wire_map}

case $secs in
'' | *[!0-9]*) echo "run.sh: SECONDS must be a number, not '$secs'" >&2; exit 2 ;;
esac
command -v "${CC:-clang}" >/dev/null || {
    echo "run.sh: ${CC:-clang} not found (scripts/deps.sh installs clang)" >&2
    exit 2
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/dcrun-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
if [ ! -f "$build/build.ninja" ]; then
    CC=${CC:-clang} meson setup "$build" "$top" -Dfuzz=true -Dcuda=disabled \
        -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
        -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link \
        >"$scratch/setup.log" 2>&1 || {
        cat "$scratch/setup.log" >&2
        exit 1
    }
fi
targets=
for h in $harnesses; do targets="$targets tests/fuzz/fuzz_$h"; done
# shellcheck disable=SC2086
ninja -C "$build" $targets >"$build/fuzz-ninja.log" 2>&1 || {
    cat "$build/fuzz-ninja.log" >&2
    exit 1
}

# UBSan findings are errors; hwloc's plugins are unloaded with each
# topology, so keep LSan's stacks symbolizable
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:suppressions=$top/tests/asan.supp}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp}

failed=
printf '%-12s %10s %8s %s\n' HARNESS EXECS SECONDS RESULT
for h in $harnesses; do
    exe=$build/tests/fuzz/fuzz_$h
    corpus=$top/tests/fuzz/corpus/$h
    art=$build/artifacts/$h
    rm -rf "$art"
    mkdir -p "$art" "$scratch/$h"
    opts="-timeout=25 -malloc_limit_mb=512 -rss_limit_mb=2048 -max_len=65536
        -print_final_stats=1 -artifact_prefix=$art/"
    log=$scratch/$h.log
    # the checked-in inputs, each once, then fuzzing from them
    # shellcheck disable=SC2086
    if "$exe" $opts -runs=0 "$corpus" >"$log" 2>&1 &&
        { [ "$secs" -eq 0 ] ||
            "$exe" $opts -max_total_time="$secs" "$scratch/$h" "$corpus" \
                >>"$log" 2>&1; }; then
        result=ok
    else
        result="FAILED: $(ls "$art" | head -3 | tr '\n' ' ')"
        failed="$failed $h"
        tail -40 "$log" >&2
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
        awk '{ n += $1 } END { print n + 0 }')
    time=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" |
        awk '{ n += $1 } END { print n + 0 }')
    printf '%-12s %10s %8s %s\n' "$h" "$execs" "$time" "$result"
done
if [ -n "$failed" ]; then
    echo "run.sh: failed:$failed (inputs in $build/artifacts/; fix, then" \
        "add them to tests/fuzz/corpus/HARNESS/)" >&2
    exit 1
fi
