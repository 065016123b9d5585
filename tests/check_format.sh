#!/bin/sh
# check_format.sh SRCDIR - every C, header and CUDA file of the tree is as
# clang-format (the checked-in .clang-format) writes it.  Fix with
#   git ls-files '*.c' '*.h' '*.cu' | xargs clang-format -i
cd "${1:-.}" || exit 1
command -v clang-format > /dev/null || { echo "1..0 # SKIP clang-format is not installed"; exit 77; }
files=$(git ls-files '*.c' '*.h' '*.cu' 2>/dev/null) \
    || { echo "1..0 # SKIP not a git checkout"; exit 77; }
bad=$(echo "$files" | xargs clang-format --dry-run 2>&1 | grep 'warning:' | cut -d: -f1 | sort -u)
n=$(echo "$files" | wc -l)
if [ -n "$bad" ]; then
    echo "not ok 1 - clang-format would change:"
    echo "$bad" | sed 's/^/#   /'
    echo "1..1"
    exit 1
fi
echo "ok 1 - $n files as clang-format writes them"
echo "1..1"
