#!/bin/sh
# dcrun probe and dcrun hosts --topology: fixtures, real topologies, this
# host, broken files (exit 3, never a crash), -H with this host.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
FIX=$DCRUN_SRCDIR/tests/fixtures
REAL=$DCRUN_SRCDIR/../shared/topologies
unset DCRUN_HWLOC_XMLFILE HWLOC_XMLFILE DCRUN_HOSTFILE SLURM_JOB_NODELIST \
    SLURM_NODELIST PBS_NODEFILE

# json FILE PYTHON-EXPR: evaluate EXPR with j = the JSON object of FILE
json () {
    $PY -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# the 8-GPU fixture: exactly one JSON object with the documented keys
expect_rc 0 "probe --topology 8-GPU fixture --json" \
    $DCRUN probe --topology "$FIX/topo-2s-8gpu.xml" --json
expect_eq "$(wc -l < "$T_TMP/out" | tr -d ' ')" 1 "one line of JSON"
cp "$T_TMP/out" "$T_TMP/gpu8.json"
expect_eq "$(json "$T_TMP/gpu8.json" 'sorted(j.keys())')" "['hosts']" "top-level keys"
expect_eq "$(json "$T_TMP/gpu8.json" 'sorted(j["hosts"][0].keys())')" \
    "['cores', 'gpus', 'host', 'memory_bytes', 'numa_nodes', 'packages', 'pus']" \
    "host keys"
expect_eq "$(json "$T_TMP/gpu8.json" 'sorted(j["hosts"][0]["gpus"][0].keys())')" \
    "['cpus', 'index', 'memory_bytes', 'model', 'numa_node', 'pci_bus_id']" \
    "GPU keys"
expect_eq "$(json "$T_TMP/gpu8.json" '[(g["index"], g["numa_node"], g["cpus"]) for g in j["hosts"][0]["gpus"]]')" \
    "[(0, 0, '0-7,16-23'), (1, 0, '0-7,16-23'), (2, 0, '0-7,16-23'), (3, 0, '0-7,16-23'), (4, 1, '8-15,24-31'), (5, 1, '8-15,24-31'), (6, 1, '8-15,24-31'), (7, 1, '8-15,24-31')]" \
    "8 GPUs, 4 per socket, with their NUMA node and cores"
expect_eq "$(json "$T_TMP/gpu8.json" '[j["hosts"][0][k] for k in ("host","packages","numa_nodes","cores","pus","memory_bytes")]')" \
    "['gpu8', 2, 2, 16, 32, 68719476736]" "host facts"
expect_eq "$(json "$T_TMP/gpu8.json" '(j["hosts"][0]["gpus"][5]["pci_bus_id"], j["hosts"][0]["gpus"][5]["memory_bytes"])')" \
    "('0000:90:00.0', 42949672960)" "GPU 5 bus id and memory"

# GPUs seen only as PCI devices: memory unknown (null)
expect_rc 0 "probe PCI-only fixture" \
    $DCRUN probe --topology "$FIX/topo-pcionly.xml" --json
expect_eq "$(json "$T_TMP/out" '[(g["pci_bus_id"], g["memory_bytes"], g["numa_node"]) for g in j["hosts"][0]["gpus"]]')" \
    "[('0000:18:00.0', None, 0), ('0000:19:00.0', None, 0), ('0000:86:00.0', None, 1)]" \
    "PCI GPUs, NVSwitch/audio/other VGA left out"

# the table
expect_rc 0 "probe table" $DCRUN probe --topology "$FIX/topo-2s-8gpu.xml"
expect_out '^7 +NVIDIA A100-SXM4-40GB +40\.0 GiB +0000:bd:00\.0 +1 +8-15,24-31$' \
    "table row of GPU 7"
expect_out '^gpu8: 2 packages, 2 NUMA nodes, 16 cores, 32 PUs' "table summary"

# no GPU: says so, lists the cores
expect_rc 0 "probe GPU-less fixture" $DCRUN probe --topology "$FIX/topo-nogpu.xml"
expect_out '^cpuonly: no GPU$' "says there is no GPU"
expect_out '4 cores, 4 PUs \(cpus 0-3\)' "lists its cores"

# this host (no GPU on the test machines; skip the no-GPU check elsewhere)
expect_rc 0 "probe this host" $DCRUN probe
ncpu=$(getconf _NPROCESSORS_ONLN)
expect_out "[0-9]+ cores?, $ncpu PUs? \\(cpus " "this host's PUs"
if ! ls /dev/nvidia0 >/dev/null 2>&1; then
    expect_out ': no GPU$' "this GPU-less host says it has no GPU"
fi
expect_rc 0 "probe this host --json" $DCRUN probe --json
expect_eq "$(json "$T_TMP/out" 'j["hosts"][0]["pus"]')" "$ncpu" "JSON pus of this host"
expect_rc 0 "probe -v" $DCRUN probe -v
if ! ls /dev/nvidia0 >/dev/null 2>&1; then
    expect_err 'cuda: ' "-v says why there is no CUDA device"
fi

# DCRUN_HWLOC_XMLFILE
DCRUN_HWLOC_XMLFILE=$FIX/topo-pcionly.xml expect_rc 0 "DCRUN_HWLOC_XMLFILE" $DCRUN probe
expect_out '^pcigpu: ' "DCRUN_HWLOC_XMLFILE is read"

# broken files: exit 3 with FILE:LINE:COL, never a signal
for f in topo-bad-truncated topo-bad-nocompletecpuset topo-bad-notxml topo-bad-version3 \
    topo-comma topo-assert topo-empty-cpuset topo-utf7; do
    expect_rc 3 "$f refused" $DCRUN probe --topology "$FIX/$f.xml"
    expect_err "^dcrun: .*$f\\.xml:[0-9]+:[0-9]+: " "$f: FILE:LINE:COL message"
done
expect_rc 3 "hosts --topology with a broken file" \
    $DCRUN hosts -H a:2 --topology "$FIX/topo-bad-nocompletecpuset.xml"
expect_rc 3 "missing file" $DCRUN probe --topology "$T_TMP/nope.xml"
expect_err 'nope\.xml: No such file' "missing file named"
: > "$T_TMP/empty.xml"
expect_rc 3 "empty file" $DCRUN probe --topology "$T_TMP/empty.xml"
DCRUN_HWLOC_XMLFILE=$FIX/topo-bad-version3.xml expect_rc 3 "broken DCRUN_HWLOC_XMLFILE" $DCRUN probe

# usage
# -f: every host probed (tests/cli/check.sh covers remote hosts); this
# host's entry is probed in-process
expect_rc 0 "-H localhost probed in-process" $DCRUN probe --json -H localhost
expect_out '^\{"hosts":\[\{"host":"localhost",' "-H localhost: one entry named after the host"
expect_rc 2 "unexpected operand" $DCRUN probe extra
expect_rc 2 "--topology needs a file" $DCRUN probe --topology

# real topologies (when present)
if [ -r "$REAL/nvidia-dgx2-16xV100.xml" ]; then
    expect_rc 0 "probe DGX-2" $DCRUN probe --json --topology "$REAL/nvidia-dgx2-16xV100.xml"
    expect_eq "$(json "$T_TMP/out" '[g["numa_node"] for g in j["hosts"][0]["gpus"]]')" \
        "[0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]" "DGX-2: 16 GPUs, 8 per package"
else
    ok "# SKIP DGX-2 topology not present"
fi
if [ -r "$REAL/ibm-power8-4xP100.xml" ]; then
    expect_rc 0 "probe POWER8" $DCRUN probe --json --topology "$REAL/ibm-power8-4xP100.xml"
    expect_eq "$(json "$T_TMP/out" '[(g["model"], g["numa_node"]) for g in j["hosts"][0]["gpus"]]')" \
        "[('Tesla P100-SXM2-16GB', 0), ('Tesla P100-SXM2-16GB', 0), ('Tesla P100-SXM2-16GB', 1), ('Tesla P100-SXM2-16GB', 1)]" \
        "POWER8: 4 P100"
else
    ok "# SKIP POWER8 topology not present"
fi

# dcrun hosts --topology: GPUs and CPU sets per rank
expect_rc 0 "hosts --topology 8 ranks" \
    $DCRUN hosts -H node1:8 --topology "$FIX/topo-2s-8gpu.xml" --json
expect_eq "$(json "$T_TMP/out" '[(r["gpus"], r["cpus"]) for r in j["ranks"]]')" \
    "[([0], '0-1,16-17'), ([1], '2-3,18-19'), ([2], '4-5,20-21'), ([3], '6-7,22-23'), ([4], '8-9,24-25'), ([5], '10-11,26-27'), ([6], '12-13,28-29'), ([7], '14-15,30-31')]" \
    "8 ranks: distinct GPUs, disjoint cores on the GPU's socket"
expect_rc 0 "hosts --topology applies to every host" \
    $DCRUN hosts -H 'n[1-2]:2' --topology "$FIX/topo-nogpu.xml" --json
expect_eq "$(json "$T_TMP/out" '[(r["host"], r["gpus"], r["cpus"]) for r in j["ranks"]]')" \
    "[('n1', [], '0-1'), ('n1', [], '2-3'), ('n2', [], '0-1'), ('n2', [], '2-3')]" \
    "GPU-less hosts: cores divided among the host's ranks"
expect_rc 0 "hosts with no list takes the topology's GPUs as slots" \
    $DCRUN hosts --topology "$FIX/topo-2s-8gpu.xml" --json
expect_eq "$(json "$T_TMP/out" 'j["size"]')" 8 "one slot per GPU"
expect_rc 0 "hosts table" $DCRUN hosts -H node1:16 --topology "$FIX/topo-2s-8gpu.xml"
expect_out '^8 +node1 +8 +0 +0 +4,20$' "rank 8 shares GPU 0 on other cores"
expect_rc 3 "gpus= beyond the topology" \
    $DCRUN hosts -f "$DCRUN_SRCDIR/hostfiles/cluster.hosts" --topology "$FIX/topo-nogpu.xml"
done_testing
