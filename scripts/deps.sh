#!/bin/sh
# Install everything dcrun needs to build, run and test on Debian 12 / Ubuntu.
# Run as root or with sudo.  Installing starts no daemon.
set -e
if [ "$(id -u)" -ne 0 ]; then
    exec sudo sh "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
# One package list per line; add to it, keep it sorted by purpose.
PKGS="build-essential meson ninja-build pkg-config"
PKGS="$PKGS check libhwloc-dev hwloc libopenblas-dev libcjson-dev"
PKGS="$PKGS libxml2-dev"  # gpu/probe.c validates topology XML
PKGS="$PKGS libssh2-1-dev libopenmpi-dev openmpi-bin"
PKGS="$PKGS openssh-server openssh-client groff-base man-db python3-numpy"
PKGS="$PKGS slurm-wlm slurmctld slurmd slurm-client munge pdsh clustershell"
PKGS="$PKGS libssl-dev python3-torch"
PKGS="$PKGS clang-format"  # tests/check_format.sh
PKGS="$PKGS hyperfine"  # start-up times of dcrun (bench, issue 5)
PKGS="$PKGS dpkg-dev debhelper bash-completion"  # the Debian package and completion (issue 15)
PKGS="$PKGS libxml2-utils chromium python3-pil"  # dcrun report --svg: xmllint, a headless render (issue 15)
# libFuzzer and the sanitizers' runtimes (tests/fuzz/run.sh), symbolized
# stacks in sanitizer reports (llvm-symbolizer)
PKGS="$PKGS clang libclang-rt-14-dev llvm"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    apt-get update -q
    apt-get install -y -q $missing
fi
