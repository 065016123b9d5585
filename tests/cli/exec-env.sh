#!/bin/sh
# The rank environment contract of dcrun exec (lib/hosts/rankenv.h): the
# torchrun names as PyTorch Lightning's TorchElasticEnvironment.detect()
# checks them, GPU visibility by --gpu-bind, the working folder and --wdir,
# -x patterns, --export-all, stdin to rank 0, prompts, exit status, --exclude,
# --json; over the test sshd: cwd, --wdir, a numeric MASTER_ADDR for hosts
# named by ssh-config aliases, and a PyTorch gloo all_reduce across 2 hosts.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
PY=/usr/bin/python3
[ -x $PY ] || skip_all "no /usr/bin/python3"
cd "$T_TMP" || exit 1
L="-L local"

# what TorchElasticEnvironment.detect() checks (lightning 2.x), and ours
cat > env.py <<'PY'
import os, sys
required = {"RANK", "GROUP_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"}
detect = required.issubset(os.environ.keys())
need = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
        "ROLE_RANK", "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR",
        "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
        "TORCHELASTIC_MAX_RESTARTS"]
missing = [k for k in need if k not in os.environ]
e = os.environ
ok = (detect and not missing and e["RANK"] == e["DCRUN_RANK"]
      and int(e["WORLD_SIZE"]) == 2 and int(e["MASTER_PORT"]) > 0
      and e["GROUP_RANK"] == e["DCRUN_NODE_RANK"])
print("env %s %s %s" % ("ok" if ok else "BAD", e.get("RANK"), missing))
PY
expect_rc 0 "torchrun environment on 2 local ranks" \
    $DCRUN exec $L -H localhost:2 -- $PY env.py
expect_eq "$(grep -c '^[01]@localhost: env ok [01] \[\]$' "$T_TMP/out")" 2 \
    "TorchElasticEnvironment.detect() and every torchrun name, both ranks"

# GPU visibility: fake GPU ids from the hostfile
printf 'localhost slots=2 gpus=5,7\n' > gpus.hf
expect_rc 0 "default --gpu-bind" $DCRUN exec $L -f gpus.hf -- \
    sh -c 'echo "$LOCAL_RANK $CUDA_VISIBLE_DEVICES $DCRUN_GPUS"'
expect_eq "$(sort "$T_TMP/out" | tr '\n' '|')" \
    "0@localhost: 0 5,7 5|1@localhost: 1 5,7 7|" \
    "default: the host's GPUs in local-rank order, DCRUN_GPUS its own"
expect_rc 0 "--gpu-bind rank" $DCRUN exec $L -f gpus.hf --gpu-bind rank -- \
    sh -c 'echo "$CUDA_VISIBLE_DEVICES $DCRUN_GPUS"'
expect_eq "$(sort "$T_TMP/out" | tr '\n' '|')" \
    "0@localhost: 5 5|1@localhost: 7 7|" "--gpu-bind rank: only its own GPU"
expect_rc 0 "--gpu-bind none" \
    env CUDA_VISIBLE_DEVICES=keep $DCRUN exec $L -f gpus.hf --gpu-bind none -- sh -c 'echo "$CUDA_VISIBLE_DEVICES"'
expect_eq "$(sort -u "$T_TMP/out" | sed 's/^.@localhost: //' | sort -u)" keep \
    "--gpu-bind none: CUDA_VISIBLE_DEVICES untouched"
expect_rc 0 "--export-all with CUDA_VISIBLE_DEVICES here" env CUDA_VISIBLE_DEVICES=9 \
    $DCRUN exec $L -f gpus.hf --export-all -x 'CUDA_*' -- sh -c 'echo "$CUDA_VISIBLE_DEVICES"'
expect_eq "$(sed 's/^.@localhost: //' "$T_TMP/out" | sort -u)" "5,7" \
    "--export-all and patterns do not replace the rank's GPUs"
expect_rc 2 "--gpu-bind bogus" $DCRUN exec $L --gpu-bind bogus -- true
expect_err "gpu-bind 'bogus'" "names the bad --gpu-bind"

# no host list: this host with one slot per GPU (one when none)
expect_rc 0 "no host list, 8 GPUs" env DCRUN_HWLOC_XMLFILE="$DCRUN_SRCDIR/tests/fixtures/topo-2s-8gpu.xml" \
    $DCRUN exec $L --bind none -- sh -c 'echo "$WORLD_SIZE $LOCAL_RANK $DCRUN_GPUS $CUDA_VISIBLE_DEVICES"'
expect_eq "$(grep -c ": 8 \([0-7]\) \1 0,1,2,3,4,5,6,7\$" "$T_TMP/out")" 8 \
    "no host list: 8 ranks, one per GPU, the torchrun GPU contract"
expect_rc 0 "no host list, no GPU" env DCRUN_HWLOC_XMLFILE="$DCRUN_SRCDIR/tests/fixtures/topo-nogpu.xml" \
    $DCRUN exec $L -- sh -c 'echo "$WORLD_SIZE ${CUDA_VISIBLE_DEVICES-none}"'
expect_eq "$(cat "$T_TMP/out")" "0@$(hostname): 1 none" "no host list, no GPU: one rank"

# working folder
mkdir -p sub
expect_rc 0 "ranks start in the caller's folder" $DCRUN exec $L -H localhost -- pwd
expect_out "^0@localhost: $T_TMP\$" "cwd is the caller's"
expect_rc 0 "--wdir" $DCRUN exec $L -H localhost --wdir "$T_TMP/sub" -- pwd
expect_out "^0@localhost: $T_TMP/sub\$" "--wdir DIR is the cwd"
expect_rc 4 "--wdir that does not exist" $DCRUN exec $L -H localhost --wdir "$T_TMP/nope" -- pwd
expect_err "nope" "names the folder"

# exports
expect_rc 0 "-x NAME unset" $DCRUN exec $L -H localhost -x DCRUN_TEST_UNSET_VAR -- true
expect_err "warning: -x DCRUN_TEST_UNSET_VAR: not set" "an unset -x NAME is a warning"
expect_rc 2 "-x RANK=5" $DCRUN exec $L -H localhost -x RANK=5 -- true
expect_err "RANK.*rank variable" "-x may not override a rank variable"
expect_rc 2 "-x MASTER_ADDR" $DCRUN exec $L -H localhost -x MASTER_ADDR -- true
expect_rc 0 "--export-all" env QUUX_ALL=yes DISPLAY=:9 $DCRUN exec --dry-run -H 127.0.0.2 \
    -L ssh --export-all -- true
expect_out "QUUX_ALL=yes" "--export-all forwards the environment"
if tr ' ' '\n' < "$T_TMP/out" | grep -Eq "^'?(DISPLAY|HOME)="; then not_ok "--export-all denies DISPLAY, HOME"
else ok "--export-all denies DISPLAY, HOME"; fi

# stdin to rank 0, --stdin all, a prompt without newline
echo hello > in.txt
$DCRUN exec $L -H localhost:2 -- sh -c 'read x; echo "got:${x:-none}"' < in.txt > "$T_TMP/out" 2>&1
expect_eq "$(sort "$T_TMP/out" | tr '\n' '|')" "0@localhost: got:hello|1@localhost: got:none|" \
    "stdin goes to rank 0 only"
$DCRUN exec $L -H localhost:2 --stdin all -- sh -c 'read x; echo "got:${x:-none}"' < in.txt > "$T_TMP/out" 2>&1
expect_eq "$(sort "$T_TMP/out" | tr '\n' '|')" "0@localhost: got:hello|1@localhost: got:hello|" \
    "--stdin all: every rank"
# a prompt of rank 0 (which reads this terminal) must be out before the
# rank reads its answer: the rank waits for a file that the test makes only
# once the prompt is seen.  script(1) gives dcrun a terminal; its input is a
# FIFO that this shell holds open.
if command -v script > /dev/null; then
    rm -f seen prompt.out
    mkfifo in.fifo
    exec 9<> in.fifo
    script -qfec "$DCRUN exec $L -H localhost -- sh -c 'printf \"Name? \"; while [ ! -e seen ]; do sleep 0.05; done; echo; echo done'" prompt.out < in.fifo > /dev/null 2>&1 &
    spid=$!
    i=0
    while [ $i -lt 200 ] && ! grep -q '^0@localhost: Name? ' prompt.out 2> /dev/null; do sleep 0.05; i=$((i + 1)); done
    if grep -q '^0@localhost: Name? ' prompt.out; then ok "a prompt without newline is shown"
    else not_ok "a prompt without newline is shown: $(cat prompt.out 2>&1)"; fi
    : > seen
    i=0
    while [ $i -lt 200 ] && ! grep -q '^0@localhost: done' prompt.out; do sleep 0.05; i=$((i + 1)); done
    expect_eq "$(tr -d '\r' < prompt.out | grep -c '^0@localhost: done$')" 1 "output goes on after the prompt"
    exec 9>&-
    wait $spid
else
    ok "# SKIP prompt: no script(1) to give dcrun a terminal"
fi

# exit status
expect_rc 5 "the first failing rank's status" $DCRUN exec $L -H localhost:2 -- \
    sh -c '[ $RANK = 1 ] && exit 5; exit 0'
expect_rc 137 "a rank killed by SIGKILL: 128+9" $DCRUN exec $L -H localhost -- sh -c 'kill -KILL $$'
expect_rc 1 "--exit-status any" $DCRUN exec $L -H localhost:2 --exit-status any -- \
    sh -c '[ $RANK = 1 ] && exit 5; exit 0'
expect_rc 0 "all succeed" $DCRUN exec $L -H localhost:2 -- true

# --json
expect_rc 3 "--json" $DCRUN exec $L -H localhost:2 --json -- sh -c 'exit $((RANK * 3))'
if tail -n 1 "$T_TMP/out" | $PY -c '
import json, sys
o = json.loads(sys.stdin.read())
r = o["ranks"]
assert o["exit"] == 3 and len(r) == 2
assert r[0]["host"] == "localhost" and r[0]["status"] == 0 and r[1]["status"] == 3
assert r[0]["signal"] is None and r[1]["seconds"] >= 0
'; then ok "--json: one object, per rank host, status, seconds"
else not_ok "--json: $(tail -n 1 "$T_TMP/out")"; fi

# --exclude and -H user@host:PORT
expect_rc 0 "--exclude" $DCRUN exec --dry-run -L ssh -H 'node[1-4]' --exclude 'node[2-3]' -- true
expect_eq "$(grep -c '^rank [0-9] on node[14]:' "$T_TMP/out") $(grep -c 'node[23]' "$T_TMP/out")" "2 0" \
    "--exclude node[2-3] leaves node1 and node4"
expect_rc 2 "--exclude every host" $DCRUN exec --dry-run -L ssh -H 'node[1-2]' --exclude 'node[1-2]' -- true
expect_err "no host of the list" "says no host is left"

# ---- over the test sshd ----
$DCRUN --version | grep -q '^launchers:.* ssh' || { done_testing; exit $?; }
TB=$(mktemp -d "$T_TMP/tb.XXXXXX")
why=$(sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" up "$TB/sshd" 2 2>&1)
case $? in
0) ;;
77) ok "# SKIP ssh part: cannot start sshd: $why"; done_testing; exit $? ;;
*) not_ok "testbed: $why"; done_testing; exit $? ;;
esac
trap 'sh "$DCRUN_SRCDIR/tests/testbed/sshd.sh" down "$TB/sshd"; rm -rf "$T_TMP"' EXIT
. "$TB/sshd/env.sh"
unset SSH_AUTH_SOCK
printf 'Host nodea\n    HostName 127.0.0.1\nHost nodeb\n    HostName 127.0.0.2\n' >> "$TB_SSH_CONFIG"
SSH="-L ssh --ssh-port $TB_PORT -i $TB_KEY --ssh-config $TB_SSH_CONFIG --known-hosts $TB_KNOWN_HOSTS"

expect_rc 0 "ssh ranks" $DCRUN exec $SSH -H nodeb,nodea -- sh -c 'echo "$MASTER_ADDR $(pwd)"'
expect_eq "$(sort "$T_TMP/out" | tr '\n' '|')" \
    "0@nodeb: 127.0.0.2 $T_TMP|1@nodea: 127.0.0.2 $T_TMP|" \
    "MASTER_ADDR is rank 0's numeric address (not the alias); cwd is the caller's"
expect_rc 0 "-x 'FOO_*' over ssh" env FOO_A=1 FOO_B=2 BAR_C=3 $DCRUN exec $SSH -H nodea -x 'FOO_*' -- \
    sh -c 'echo "${FOO_A-} ${FOO_B-} ${BAR_C-unset}"'
expect_out "^0@nodea: 1 2 unset\$" "a pattern forwards the matching names only"
expect_rc 0 "-H user@host:PORT (no --ssh-port)" $DCRUN exec -L ssh -i $TB_KEY --ssh-config $TB_SSH_CONFIG \
    --known-hosts $TB_KNOWN_HOSTS -H "$(id -un)@127.0.0.1:$TB_PORT" -- echo there
expect_out "^0@127.0.0.1: there\$" "user@host:N reads N as the port, one slot"
expect_rc 0 "ssh --wdir" $DCRUN exec $SSH -H nodea --wdir "$T_TMP/sub" -- pwd
expect_out "^0@nodea: $T_TMP/sub\$" "--wdir over ssh"
expect_rc 4 "ssh --wdir missing" $DCRUN exec $SSH -H nodeb --wdir "$T_TMP/nope" -- pwd
expect_err "nodeb.*nope|nope.*nodeb" "names the host and the folder"
expect_rc 0 "ssh torchrun environment" $DCRUN exec $SSH -H nodea,nodeb -- $PY "$T_TMP/env.py"
expect_eq "$(grep -c 'env ok' "$T_TMP/out")" 2 "TorchElasticEnvironment over ssh"

if $PY -c 'import torch.distributed' 2> /dev/null; then
    cat > "$T_TMP/ar.py" <<'PY'
import torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(t)
print("sum %g of %d" % (t.item(), dist.get_world_size()))
dist.destroy_process_group()
PY
    expect_rc 0 "gloo all_reduce on nodea, nodeb" timeout 120 $DCRUN exec $SSH -H nodea,nodeb -- $PY "$T_TMP/ar.py"
    expect_eq "$(grep -c 'sum 3 of 2$' "$T_TMP/out")" 2 "all_reduce sums over 2 ssh hosts"
else
    ok "# SKIP gloo all_reduce: /usr/bin/python3 cannot import torch.distributed"
fi
# --max-restarts: a failing rank restarts every rank, TORCHELASTIC_RESTART_COUNT counts
# (--no-kill-on-bad-exit: rank 0 always gets to say it started)
expect_rc 0 "--max-restarts 2: rank 1 fails twice, the third start succeeds" \
    $DCRUN exec -L local -H localhost:2 --max-restarts 2 --no-kill-on-bad-exit -- sh -c \
    'echo "start $TORCHELASTIC_RESTART_COUNT of $TORCHELASTIC_MAX_RESTARTS"; [ "$DCRUN_RANK" = 1 ] && [ "$TORCHELASTIC_RESTART_COUNT" -lt 2 ] && exit 3; exit 0'
expect_eq "$(grep -c '^[01]@localhost: start [012] of 2$' "$T_TMP/out")" 6 "every rank started 3 times, the count in its environment"
expect_err 'restarting every rank \(restart 2 of 2\)' "says each restart"
expect_eq "$(tail -n 1 "$T_TMP/err")" "dcrun: exec: 2 of 2 restarts used" "the last line says how many restarts were used"
expect_rc 4 "--max-restarts 1 used up: the failing rank's status" \
    $DCRUN exec -L local -H localhost:2 --max-restarts 1 -- sh -c 'exit 4'
expect_eq "$(grep -c 'restarting every rank' "$T_TMP/err")" 1 "one restart, then it stops"
expect_rc 3 "--max-restarts 1 with a relative --wdir" \
    $DCRUN exec -L local -H localhost --wdir sub --max-restarts 1 -- sh -c 'pwd; exit 3'
expect_eq "$(grep -c "^0@localhost: $T_TMP/sub\$" "$T_TMP/out")" 2 "the restart starts in --wdir too"
expect_rc 2 "--max-restarts -1 is a usage error" $DCRUN exec -H localhost:1 --max-restarts -1 -- true
done_testing
