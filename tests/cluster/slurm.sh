#!/usr/bin/env bash
# A one-node Slurm cluster in a scratch directory, for testing the workflow's SLURM profile.
#
#   tests/cluster/slurm.sh up DIR     install slurm + munge from Debian's packages if missing,
#                                     write DIR/slurm.conf, start munged, slurmctld and slurmd,
#                                     wait for the node to be idle; prints the environment to use
#   tests/cluster/slurm.sh down DIR   stop every daemon started by `up`, by its recorded PID
#
# Needs root (the daemons run as root; munged as the munge user). The node declares
# $SLURM_TEST_CPUS CPUs (default 8, config_overrides lets it exceed the machine's cores) so that
# several of the test's short jobs run at once. The node has $SLURM_TEST_GPUS fake GPUs (default 4:
# a `gpu` gres backed by character devices that are /dev/null) so that jobs asking for --gpus=1
# run, several at a time. No accounting
# database: the profile polls job states with squeue. Jobs see the configuration through an
# `srun` wrapper first on PATH (the Slurm jobstep strips SLURM_CONF before its inner srun).
set -euo pipefail

cmd=${1:?usage: slurm.sh up|down DIR}
B=$(realpath -m "${2:?usage: slurm.sh up|down DIR}")

down() {
    for name in slurmd slurmctld munged; do
        pidfile="$B/run/$name.pid"
        if [[ -s $pidfile ]]; then
            pid=$(cat "$pidfile")
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
}

if [[ $cmd == down ]]; then
    down
    exit 0
fi
[[ $cmd == up ]] || { echo "slurm.sh: unknown command '$cmd' (up or down)" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "slurm.sh: needs root to run the Slurm daemons" >&2; exit 2; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
    echo "slurm.sh: installing slurm and munge from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >&2
fi

mkdir -p "$B"/{munge,state/ctld,state/d,run,log,bin,dev}
chown munge: "$B/munge" && chmod 0755 "$B/munge"
chown munge: "$B/run" "$B/log"  # munged writes its pid and log there
[[ -f $B/munge/munge.key ]] || runuser -u munge -- mungekey --create --keyfile="$B/munge/munge.key"
runuser -u munge -- /usr/sbin/munged --key-file="$B/munge/munge.key" \
    --socket="$B/munge/munge.socket.2" --pid-file="$B/run/munged.pid" \
    --log-file="$B/log/munged.log" --seed-file="$B/munge/munge.seed"

mem=$(free -m | awk '/^Mem:/ {print $2}')
cpus=${SLURM_TEST_CPUS:-8}  # more CPUs than the machine has: short jobs mostly wait on I/O
gpus=${SLURM_TEST_GPUS:-4}
for i in $(seq 0 $((gpus - 1))); do
    [[ -e $B/dev/gpu$i ]] || mknod "$B/dev/gpu$i" c 1 3  # the device numbers of /dev/null
done
cat > "$B/slurm.conf" <<CONF
ClusterName=adamgentest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$B/munge/munge.socket.2
StateSaveLocation=$B/state/ctld
SlurmdSpoolDir=$B/state/d
SlurmctldPidFile=$B/run/slurmctld.pid
SlurmdPidFile=$B/run/slurmd.pid
SlurmctldLogFile=$B/log/slurmctld.log
SlurmdLogFile=$B/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:$gpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=localhost Name=gpu File=$B/dev/gpu[0-$((gpus - 1))]" > "$B/gres.conf"
cat > "$B/bin/srun" <<WRAP
#!/bin/sh
export SLURM_CONF=$B/slurm.conf
exec $(command -v srun) "\$@"
WRAP
chmod +x "$B/bin/srun"

export SLURM_CONF=$B/slurm.conf
/usr/sbin/slurmctld -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 120); do
    state=$(sinfo -h -o %T 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 0.5
done
if [[ $state != idle ]]; then
    echo "slurm.sh: the node did not come up (state '${state:-none}'); logs in $B/log" >&2
    down
    exit 1
fi
echo "SLURM_CONF=$SLURM_CONF"
echo "PATH=$B/bin:$PATH"
