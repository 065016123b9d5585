#!/bin/sh
# tests/deb.sh: build dcrun's Debian package from a copy of this tree
# (dpkg-buildpackage -us -uc -b, in a private folder), install it with
# apt-get, check what it installed (dcrun --version, man -w dcrun, the bash
# completion, the CUDA modules next to /usr/bin/dcrun), then remove it.
# Needs root (it installs a package); .ci/run calls it after the suite.
cd "$(dirname "$0")/.." || exit 1
DCRUN_SRCDIR=$(pwd)
DCRUN=/usr/bin/dcrun
export DCRUN DCRUN_SRCDIR
. tests/cli/lib.sh

[ "$(id -u)" -eq 0 ] || skip_all "installs a package: run as root"
for p in dpkg-buildpackage dh apt-get; do
    command -v $p >/dev/null 2>&1 || skip_all "no $p (sudo sh scripts/deps.sh)"
done
if dpkg-query -W -f='${Status}' dcrun 2>/dev/null | grep -q 'ok installed'; then
    skip_all "a dcrun package is installed here already: not touching it"
fi
unset DCRUN_MODULE_DIR

# The source: the files git knows (tracked and new, not ignored), else the
# tree without build folders
S=$T_TMP/dcrun
mkdir "$S"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -co --exclude-standard -z | tar -cf - --null -T - | tar -xf - -C "$S"
else
    tar -cf - --exclude='./build*' --exclude='./obj-*' --exclude=./.git . | tar -xf - -C "$S"
fi
[ -x "$S/debian/rules" ] || { not_ok "no debian/rules in the copy"; done_testing; }

start=$(date +%s)
(cd "$S" && dpkg-buildpackage -us -uc -b) >"$T_TMP/build.log" 2>&1
rc=$?
echo "# dpkg-buildpackage: $(($(date +%s) - start)) s"
if [ $rc -ne 0 ]; then
    not_ok "dpkg-buildpackage -us -uc -b: exit $rc"
    tail -20 "$T_TMP/build.log" | sed 's/^/#   /'
    done_testing
fi
ok "dpkg-buildpackage -us -uc -b"
version=$(cd "$S" && dpkg-parsechangelog -S Version)
deb=$(ls "$T_TMP"/dcrun_"$version"_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
    not_ok "no dcrun_${version}_*.deb"
    done_testing
fi
ok "built $(basename "$deb")"
expect_eq "$version" "$(sed -n "s/^ *version: *'\([^']*\)'.*/\1/p" meson.build | head -1)" \
    "debian/changelog's version is meson.build's"

# What the package holds
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$T_TMP/files"
for f in /usr/bin/dcrun /usr/share/man/man1/dcrun.1.gz \
    /usr/share/man/man5/dcrun-hostfile.5.gz /usr/share/bash-completion/completions/dcrun; do
    if grep -qx "$f" "$T_TMP/files"; then ok "the package holds $f"
    else not_ok "the package lacks $f"; fi
done
cuda=0
if ls "$S"/obj-*/gpu/dcrun_cuda.so >/dev/null 2>&1; then
    cuda=1
    for m in dcrun_cuda.so dcrun_cudart.so; do
        if grep -Eq "^/usr/lib/[^/]+/dcrun/$m\$" "$T_TMP/files"; then
            ok "the package holds the CUDA module $m"
        else not_ok "the package lacks the CUDA module $m"; fi
    done
    depends=$(dpkg-deb -f "$deb" Depends)
    case $depends in
    *cuda* | *cublas*) not_ok "Depends names CUDA libraries: $depends" ;;
    *) ok "Depends names no CUDA library" ;;
    esac
fi

# Install, check, remove
trap 'dpkg -r dcrun >/dev/null 2>&1; rm -rf "$T_TMP"' EXIT
expect_rc 0 "apt-get install ./$(basename "$deb")" \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb"
[ "$RC" -eq 0 ] || { tail -5 "$T_TMP/out" | sed 's/^/#   /'; done_testing; }

expect_rc 0 "dcrun --version from the package" $DCRUN --version
expect_out "^dcrun $version\$" "it is version $version"
if command -v man >/dev/null 2>&1; then
    run man -w dcrun
    expect_eq "$(cat "$T_TMP/out")" /usr/share/man/man1/dcrun.1.gz "man -w dcrun"
    run man -w 5 dcrun-hostfile
    expect_eq "$(cat "$T_TMP/out")" /usr/share/man/man5/dcrun-hostfile.5.gz "man -w 5 dcrun-hostfile"
fi
comp=/usr/share/bash-completion/completions/dcrun
run bash -c 'source "$1"; complete -p dcrun' sh "$comp"
expect_out '^complete -F _dcrun dcrun$' "bash -c 'source $comp; complete -p dcrun'"
if [ -f /usr/share/bash-completion/bash_completion ]; then
    # bash-completion loads it by the command's name on first use
    run bash -c '. /usr/share/bash-completion/bash_completion; __load_completion dcrun; complete -p dcrun'
    expect_out '^complete -F _dcrun dcrun$' "bash-completion's loader finds it for dcrun"
fi
if [ $cuda -eq 1 ]; then
    run $DCRUN -vv probe
    expect_eq "$RC" 0 "dcrun -vv probe from the package"
    expect_err 'cuda: loading /usr/bin/\.\./lib/[^/]+/dcrun/dcrun_cudart\.so$' \
        "it loads the CUDA module next to /usr/bin/dcrun"
fi

expect_rc 0 "dpkg -r dcrun" dpkg -r dcrun
if dpkg-query -W -f='${Status}' dcrun 2>/dev/null | grep -q 'ok installed' || [ -e $DCRUN ]; then
    not_ok "dcrun is still installed"
else ok "dcrun is removed"; fi
trap 'rm -rf "$T_TMP"' EXIT

done_testing
