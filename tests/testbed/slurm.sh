#!/bin/sh
# slurm.sh up DIR | down DIR
#
# A one-node Slurm cluster for the tests (recipe:
# /work/shared/testbed/slurm-up.sh): munged, slurmctld and slurmd, all as
# root, every file under DIR, on free ports, with two fake GPUs as GRES
# (character devices with /dev/null's numbers; `--gres=gpu:2` sets
# CUDA_VISIBLE_DEVICES).  DIR/env.sh exports SLURM_CONF.  `down` stops only
# the daemons whose PID files are in DIR.  Exits 77 after saying why when the
# cluster cannot be started here (not root, Slurm or munge missing, the node
# never idle).
set -u
cmd=${1:-}; S=${2:-}
[ -n "$cmd" ] && [ -n "$S" ] || { echo "usage: $0 up DIR | down DIR" >&2; exit 2; }

down () {
    for f in "$S/slurmd.pid" "$S/slurmctld.pid" "$S/munge/munged.pid"; do
        [ -s "$f" ] || continue
        p=$(cat "$f")
        if kill "$p" 2>/dev/null; then
            i=0
            while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
            kill -KILL "$p" 2>/dev/null
        fi
        rm -f "$f"
    done
}

case $cmd in
down) down; exit 0 ;;
up) ;;
*) echo "usage: $0 up DIR | down DIR" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "not root (slurmd and munged run as root here)"; exit 77; }
for p in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd; do
    [ -x $p ] || { echo "$p not installed (slurm-wlm, munge)"; exit 77; }
done
for p in munge sinfo srun sbatch mknod; do
    command -v $p > /dev/null || { echo "$p not installed"; exit 77; }
done

port_busy () { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
free_port () {
    p=$1
    while port_busy "$p" && [ "$p" -lt $(($1 + 400)) ]; do p=$((p + 1)); done
    echo "$p"
}

NODE=$(hostname -s)
NCPU=$(nproc)
mkdir -p "$S/state" "$S/spool" "$S/log" "$S/munge" "$S/dev" "$S/tmp" || { echo "cannot create $S"; exit 77; }
chmod 755 "$S" "$S/munge"
dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$S/munge/munge.key"
/usr/sbin/munged -f --key-file="$S/munge/munge.key" --socket="$S/munge/munge.socket" \
    --pid-file="$S/munge/munged.pid" --log-file="$S/log/munged.log" \
    --seed-file="$S/munge/munged.seed" 2> "$S/log/munged.err" \
    || { echo "munged did not start: $(cat "$S/log/munged.err")"; exit 77; }
for i in 0 1; do
    mknod -m 666 "$S/dev/nvidia$i" c 1 3 2> /dev/null \
        || { echo "cannot make fake GPU device files (mknod)"; down; exit 77; }
done
CTLD=$(free_port 6817)
SLURMD=$(free_port $((CTLD + 1)))
cat > "$S/slurm.conf" <<EOC
ClusterName=dctest
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/munge.socket
SlurmctldPort=$CTLD
SlurmdPort=$SLURMD
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
TmpFS=$S/tmp
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=30
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NCPU Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOC
cat > "$S/gres.conf" <<EOC
AutoDetect=off
NodeName=$NODE Name=gpu File=$S/dev/nvidia[0-1]
EOC
export SLURM_CONF="$S/slurm.conf"
/usr/sbin/slurmctld -c -f "$SLURM_CONF" 2> "$S/log/slurmctld.err" \
    || { echo "slurmctld did not start: $(tail -3 "$S/log/slurmctld.err")"; down; exit 77; }
/usr/sbin/slurmd -f "$SLURM_CONF" 2> "$S/log/slurmd.err" \
    || { echo "slurmd did not start: $(tail -3 "$S/log/slurmd.err")"; down; exit 77; }
st=
i=0
while [ $i -lt 100 ]; do
    st=$(sinfo -h -N -o %T 2>/dev/null | head -1)
    [ "$st" = idle ] && break
    sleep 0.1; i=$((i + 1))
done
[ "$st" = idle ] || { echo "the node is '$st', not idle: $(tail -2 "$S/log/slurmd.log" 2>/dev/null)"; down; exit 77; }
echo "export SLURM_CONF='$SLURM_CONF'" > "$S/env.sh"
exit 0
