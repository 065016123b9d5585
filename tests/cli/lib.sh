# lib.sh - helpers for the CLI tests (POSIX sh).  Source it:
#   . "$DCRUN_SRCDIR/tests/cli/lib.sh"
# Each check prints "ok N - what" or "not ok N - what"; finish with `done_testing`.
set -u
: "${DCRUN:?DCRUN must name the dcrun binary}"
: "${DCRUN_SRCDIR:?DCRUN_SRCDIR must name the source tree}"
T_N=0
T_FAILED=0
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/dcrun-test.XXXXXX")
trap 'rm -rf "$T_TMP"' EXIT

ok () { T_N=$((T_N + 1)); echo "ok $T_N - $1"; }
not_ok () { T_N=$((T_N + 1)); T_FAILED=$((T_FAILED + 1)); echo "not ok $T_N - $1"; }

skip_all () {
    echo "1..0 # SKIP $1"
    exit 77
}

# run CMD...: runs it, keeps stdout in $T_TMP/out, stderr in $T_TMP/err, status in $RC
run () {
    "$@" >"$T_TMP/out" 2>"$T_TMP/err"
    RC=$?
}

# expect_rc N what CMD...
expect_rc () {
    want=$1; what=$2; shift 2
    run "$@"
    if [ "$RC" -eq "$want" ]; then ok "$what (exit $want)"
    else
        not_ok "$what: exit $RC, expected $want"
        sed 's/^/#   stderr: /' "$T_TMP/err" | head -5
    fi
}

# expect_err PATTERN what: the last command's stderr matches (grep -E)
expect_err () {
    if grep -Eq -- "$1" "$T_TMP/err"; then ok "$2"
    else
        not_ok "$2: stderr lacks /$1/"
        sed 's/^/#   stderr: /' "$T_TMP/err" | head -5
    fi
}

# expect_out PATTERN what: the last command's stdout matches (grep -E)
expect_out () {
    if grep -Eq -- "$1" "$T_TMP/out"; then ok "$2"
    else
        not_ok "$2: stdout lacks /$1/"
        sed 's/^/#   stdout: /' "$T_TMP/out" | head -5
    fi
}

# expect_eq GOT WANT what
expect_eq () {
    if [ "$1" = "$2" ]; then ok "$3"
    else not_ok "$3: got '$1', expected '$2'"; fi
}

# python3 with Debian's numpy (the pyenv python has none)
PY=/usr/bin/python3

done_testing () {
    echo "1..$T_N"
    [ "$T_FAILED" -eq 0 ] || { echo "# $T_FAILED of $T_N failed"; exit 1; }
    exit 0
}

# mpi_ok: true when dcrun has the mpi launcher, mpirun exists and dcrun is
# not built with AddressSanitizer (OpenMPI leaks from components it
# unloads, which LeakSanitizer cannot suppress by name); else false with
# the reason in $MPI_WHY
mpi_ok () {
    MPI_WHY=
    if ! $DCRUN --version | grep -q '^launchers:.* mpi'; then MPI_WHY="dcrun built without MPI"
    elif ! command -v mpirun > /dev/null; then MPI_WHY="no mpirun"
    elif nm -D "$DCRUN" 2>/dev/null | grep -q __asan_init; then MPI_WHY="AddressSanitizer build (OpenMPI's leaks)"
    fi
    [ -z "$MPI_WHY" ]
}
