#!/bin/sh
# The README's first run: dcrun on this machine, with examples it makes itself.
set -e
cd "$(dirname "$0")/.."
DCRUN=${DCRUN:-./build/cli/dcrun}
echo "== dcrun hosts -f hostfiles/cluster.hosts -n 10 (the rank map of an example cluster)"
$DCRUN hosts -f hostfiles/cluster.hosts -n 10
if $DCRUN --help | grep -q '^  probe '; then
    echo "== dcrun probe (this machine's GPUs, NUMA nodes and cores)"
    $DCRUN probe
fi
