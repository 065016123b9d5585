#!/bin/sh
# tests/install.sh [BUILDDIR]: `meson install` into a DESTDIR, then the
# installed tree on its own: the binary runs from there and finds the CUDA
# modules next to it (LIBDIR/dcrun relative to BINDIR, not the build tree,
# even after the whole tree is moved), the man pages are where man(1) looks,
# and the bash completion loads and completes commands, options, hosts and
# files.  .ci/run calls it after the test suite (default BUILDDIR: build).
cd "$(dirname "$0")/.." || exit 1
B=${1:-build}
DCRUN_SRCDIR=$(pwd)
DCRUN=$B/cli/dcrun
export DCRUN DCRUN_SRCDIR
. tests/cli/lib.sh

[ -f "$B/build.ninja" ] || skip_all "no build in $B (sh scripts/build.sh)"
command -v bash >/dev/null 2>&1 || skip_all "no bash for the completion"
unset DCRUN_MODULE_DIR DCRUN_HOSTFILE

D=$T_TMP/dest
expect_rc 0 "meson install --destdir" meson install -C "$B" --destdir "$D"
bin=$(find "$D" -path '*/bin/dcrun' -type f | head -1)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    not_ok "no bin/dcrun under the DESTDIR"
    done_testing
fi
ok "installed ${bin#"$D"}"
bindir=$(dirname "$bin")
prefix=$(dirname "$bindir")

expect_rc 0 "the installed dcrun --version" "$bin" --version
expect_out "^dcrun $("$DCRUN" --version | sed -n '1s/^dcrun //p')\$" \
    "it is this build's version"

# man pages: man(1) finds them under the prefix
for page in 1/dcrun 5/dcrun-hostfile; do
    f=$prefix/share/man/man${page%%/*}/${page#*/}.${page%%/*}
    if [ -f "$f" ]; then ok "man page ${f#"$D"}"
    else not_ok "no man page ${f#"$D"}"; fi
done
if command -v man >/dev/null 2>&1; then
    run env MANPATH="$prefix/share/man" man -w dcrun
    expect_eq "$(cat "$T_TMP/out")" "$prefix/share/man/man1/dcrun.1" "man -w dcrun finds the installed page"
    run env MANPATH="$prefix/share/man" man -w 5 dcrun-hostfile
    expect_eq "$(cat "$T_TMP/out")" "$prefix/share/man/man5/dcrun-hostfile.5" "man -w 5 dcrun-hostfile"
fi

# The CUDA modules: found relative to the program, not in the build tree
if "$bin" --version | grep -q '^compute:.*cuda'; then
    for m in dcrun_cuda.so dcrun_cudart.so; do
        f=$(find "$D" -path "*/dcrun/$m" -type f | head -1)
        if [ -n "$f" ]; then ok "module ${f#"$D"}"; else not_ok "no module $m"; fi
    done
    # move the whole tree: the modules follow the program
    mv "$D" "$T_TMP/moved"
    D=$T_TMP/moved
    bin=$D${bin#"$T_TMP/dest"}
    bindir=$(dirname "$bin")
    prefix=$(dirname "$bindir")
    expect_rc 0 "the moved dcrun -vv probe" "$bin" -vv probe
    expect_err "cuda: loading $bindir/[^ ]*/dcrun/dcrun_cudart\\.so\$" \
        "probe loads dcrun_cudart.so relative to the moved program"
    if grep -q 'cuda: not available' "$T_TMP/err"; then
        not_ok "probe: a module is not available"
        grep 'not available' "$T_TMP/err" | head -2 | sed 's/^/#   /'
    else ok "probe finds the module (no 'not available')"; fi
    run "$bin" -vv bench gemm --device auto --m 64 --iters 1 --threads 1
    if [ "$RC" -ne 0 ]; then
        not_ok "bench gemm --device auto: exit $RC"
        sed 's/^/#   stderr: /' "$T_TMP/err" | head -5
    elif grep -q '^compute: cuda' "$T_TMP/out" || grep -q 'cuBLAS' "$T_TMP/out"; then
        # a GPU here: the compute module came from the moved tree too
        expect_err "cuda: loading $bindir/[^ ]*/dcrun/dcrun_cuda\\.so\$" \
            "--device auto loads dcrun_cuda.so relative to the program"
    else
        expect_out 'OpenBLAS' "--device auto without a usable GPU runs on the cpu"
    fi
else
    run "$bin" -v bench gemm --device auto --m 64 --iters 1 --threads 1
    expect_eq "$RC" 0 "a build without CUDA: bench gemm --device auto runs"
fi

# bash completion
comp=$prefix/share/bash-completion/completions/dcrun
if [ -f "$comp" ]; then ok "completion ${comp#"$D"}"
else
    not_ok "no completion at ${comp#"$D"}"
    done_testing
fi
run bash -c 'source "$1"; complete -p dcrun' sh "$comp"
expect_out '^complete -F _dcrun dcrun$' "bash -c 'source FILE; complete -p dcrun'"

# What it completes, with the installed dcrun first on PATH, a hostfile and
# an ssh config of our own, with and without the bash-completion package.
H=$T_TMP/home
mkdir -p "$H/.ssh" "$T_TMP/w/ck"
printf 'node[01-03] slots=2\nalice@ws05:2222 slots=2  # a comment\n' >"$T_TMP/w/hosts"
printf 'Host gpu1 gpu2 *.corp\n  HostName 10.0.0.1\nHost=bastion\nMatch all\n' >"$H/.ssh/config"
: >"$T_TMP/w/model.safetensors"
: >"$T_TMP/w/X.npy"
cat >"$T_TMP/comp.bash" <<'EOF'
# comp LINE: the completions of LINE (split as bash splits it: "=" is a word)
compopt () { :; } # outside a real completion it only complains
comp () {
    local l=$1
    COMP_LINE=$l COMP_POINT=${#l}
    read -ra COMP_WORDS <<<"${l//=/ = }"
    [[ $l == *' ' ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _dcrun dcrun "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
EOF
bashcomp=/usr/share/bash-completion/bash_completion
for with in plain bash-completion; do
    pre=""
    if [ "$with" = bash-completion ]; then
        [ -f "$bashcomp" ] || continue
        pre=". $bashcomp;"
    fi
    # CASES: line|expected completions
    while IFS='|' read -r line want; do
        got=$(cd "$T_TMP/w" && HOME=$H PATH="$bindir:$PATH" \
            bash -c "$pre . '$comp'; . '$T_TMP/comp.bash'; comp '$line'" 2>&1)
        case $want in
        '~'*) # these words among others (commands may be added), !W: not W
            bad=""
            for w in ${want#'~'}; do
                case $w in
                '!'*) case " $got " in *" ${w#!} "*) bad="$bad $w" ;; esac ;;
                *) case " $got " in *" $w "*) ;; *) bad="$bad $w" ;; esac ;;
                esac
            done
            if [ -z "$bad" ]; then ok "$with: [$line] offers ${want#'~'}"
            else not_ok "$with: [$line]: got '$got', wrong:$bad"; fi
            ;;
        *) expect_eq "$got" "$want" "$with: [$line]" ;;
        esac
    done <<'EOF'
dcrun |~bench check exec hosts infer probe train !worker !serve
dcrun infer -|~--model --input --output --device --dtype -f --hostfile -H -v !--epochs
dcrun train -|~--model --target --epochs --checkpoint-dir -x --ssh-config
dcrun in|infer
dcrun infer --mo|--model
dcrun infer --model m|model.safetensors
dcrun infer --model=m|model.safetensors
dcrun infer --input |X.npy ck hosts model.safetensors
dcrun train --checkpoint-dir |ck
dcrun -v infer --device |auto cpu cuda
dcrun infer --dtype b|bf16
dcrun -L s|slurm ssh
dcrun hosts --map-by |node slot
dcrun bench |comm gemm launch
dcrun bench gemm --it|--iters
dcrun -f hosts exec -H |bastion gpu1 gpu2 node01 node02 node03 ws05
dcrun --hostfile=hosts exec -H n|node01 node02 node03
dcrun -f hosts -H node01,n|node01,node01 node01,node02 node01,node03
dcrun exec -H |bastion gpu1 gpu2
dcrun -f nosuchfile hosts -H g|gpu1 gpu2
dcrun exec --ssh-config hosts -H |
dcrun exec -- dcru|dcrun
dcrun -f h|hosts
dcrun exec --no-k|--no-kill-on-bad-exit
dcrun nosuchcommand --|
EOF
done
# $DCRUN_HOSTFILE when there is no -f
got=$(cd "$T_TMP/w" && HOME=$H PATH="$bindir:$PATH" DCRUN_HOSTFILE=$T_TMP/w/hosts \
    bash -c ". '$comp'; . '$T_TMP/comp.bash'; comp 'dcrun exec -H w'" 2>&1)
expect_eq "$got" "ws05" "hosts from \$DCRUN_HOSTFILE"

done_testing
