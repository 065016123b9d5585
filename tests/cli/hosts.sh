#!/bin/sh
# dcrun hosts: rank maps from hostfiles, -H, the environment; exit statuses.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
HF=$DCRUN_SRCDIR/hostfiles
FX=$DCRUN_SRCDIR/tests/fixtures
[ -x "$PY" ] || skip_all "no /usr/bin/python3 to read JSON"

# json EXPR: evaluate a Python expression on the JSON of the last stdout (j)
json () {
    $PY -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" "$T_TMP/out"
}

expect_rc 0 "hosts -f cluster.hosts --json" $DCRUN hosts -f "$HF/cluster.hosts" --json
expect_eq "$(wc -l < "$T_TMP/out")" 1 "--json prints exactly one line"
expect_eq "$(json 'j["size"]')" 40 "size is every slot of the hostfile"
expect_eq "$(json 'len(j["ranks"])')" 40 "one entry per rank"
expect_eq "$(json '[r["rank"] for r in j["ranks"]] == list(range(40))')" True "ranks 0..39 in order"
expect_eq "$(json 'j["ranks"][8]["host"], j["ranks"][8]["local_rank"], j["ranks"][8]["node_rank"]')" "node02 0 1" "rank 8 is node02's first"
expect_eq "$(json 'j["ranks"][9]["gpus"]')" "[1]" "gpus= gives rank 9 GPU 1"
expect_eq "$(json 'j["ranks"][32]["host"], j["ranks"][32]["gpus"]')" "login []" "login has no known GPU"
expect_eq "$(json 'j["ranks"][39]["host"], j["ranks"][39]["local_rank"]')" "node06 3" "node06:4 gives 4 slots"
expect_eq "$(json 'sorted(j["ranks"][0].keys())')" "['gpus', 'host', 'local_rank', 'node_rank', 'rank']" "the documented keys"

# global options after or before the command, -n, --map-by node
expect_rc 0 "-f before the command" $DCRUN -f "$HF/cluster.hosts" -n 3 hosts --map-by node --json
expect_eq "$(json '[r["host"] for r in j["ranks"]]')" "['node01', 'node02', 'node03']" "--map-by node goes round-robin"

expect_rc 0 "-H with ranges and slots" $DCRUN hosts -H 'node[01-04,07]:8,login:2' --json
expect_eq "$(json 'j["size"], j["ranks"][39]["host"], j["ranks"][40]["host"]')" "42 node07 login" "-H node[01-04,07]:8,login:2 has 42 slots"

expect_rc 0 "table output" $DCRUN hosts -H a:2,b
expect_out '^RANK +HOST +LOCAL +NODE +GPUS +CPUS' "table header"
expect_out '^2 +b +0 +1 ' "table row of rank 2"

# the environment: DCRUN_HOSTFILE, Slurm, PBS
DCRUN_HOSTFILE=$HF/localhost.hosts expect_rc 0 "DCRUN_HOSTFILE" $DCRUN hosts --json
expect_eq "$(json 'j["size"]')" 2 "DCRUN_HOSTFILE is read"
SLURM_JOB_NODELIST='sn[1-3]' SLURM_TASKS_PER_NODE='2(x2),1' expect_rc 0 "Slurm allocation" $DCRUN hosts --json
expect_eq "$(json '[r["host"] for r in j["ranks"]]')" "['sn1', 'sn1', 'sn2', 'sn2', 'sn3']" "SLURM_TASKS_PER_NODE 2(x2),1"
printf 'p1\np1\np2\n' > "$T_TMP/pbs"
PBS_NODEFILE=$T_TMP/pbs expect_rc 0 "PBS_NODEFILE" $DCRUN hosts --json
expect_eq "$(json '[r["host"] for r in j["ranks"]]')" "['p1', 'p1', 'p2']" "PBS: one line per slot"
env -u SLURM_JOB_NODELIST -u PBS_NODEFILE -u DCRUN_HOSTFILE $DCRUN hosts --json > "$T_TMP/out"
expect_eq "$(json 'j["ranks"][0]["host"]')" "$(hostname)" "no host list: this host"

# bad input: exit 3 with FILE:LINE:COL:
for f in duplicate zero-slots range key bracket utf8; do
    expect_rc 3 "bad-$f.hosts" $DCRUN hosts -f "$FX/bad-$f.hosts"
    expect_err "^dcrun: .*bad-$f\.hosts:[0-9]+:[0-9]+: " "bad-$f.hosts: FILE:LINE:COL: message"
done
expect_rc 3 "bad-empty.hosts" $DCRUN hosts -f "$FX/bad-empty.hosts"
expect_err "no hosts" "an empty hostfile says so"
expect_rc 3 "duplicate names both lines" $DCRUN hosts -f "$FX/bad-duplicate.hosts"
expect_err "bad-duplicate.hosts:3:1: duplicate host 'node01' \(first on line 1\)" "duplicate host message"
expect_rc 3 "missing hostfile" $DCRUN hosts -f "$T_TMP/nonexistent"
expect_err "No such file" "missing file named"
expect_rc 3 "too many ranks" $DCRUN hosts -H a:2 -n 3
expect_err "^hint: " "a hint follows"
expect_rc 0 "--oversubscribe" $DCRUN hosts -H a:2 -n 3 --oversubscribe
expect_rc 3 "bad -H" $DCRUN hosts -H 'a[3-1]'
expect_err "reversed" "reversed range named"
expect_rc 2 "-n 0" $DCRUN hosts -n 0
expect_rc 2 "-n abc" $DCRUN hosts -n abc
expect_rc 2 "--map-by bogus" $DCRUN hosts --map-by bogus
expect_rc 2 "-f and -H" $DCRUN hosts -f "$HF/cluster.hosts" -H a
expect_rc 2 "stray argument" $DCRUN hosts extra
done_testing
