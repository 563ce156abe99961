#!/usr/bin/env bash
# A private single-node Slurm (slurmctld + slurmd + munged from Debian's slurm-wlm and munge)
# in a folder of its own, for the tests that submit job arrays; no cgroups, no accounting,
# free ports, state and logs in the folder. Needs root (slurmd runs jobs as their user) and the
# packages (scripts/setup.sh --python installs them).
#   scripts/slurm-local.sh start DIR    prints SLURM_CONF=DIR/slurm.conf once the node is idle
#   scripts/slurm-local.sh stop DIR     stops the three daemons
set -euo pipefail
command=${1:?usage: slurm-local.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: slurm-local.sh start|stop DIR}")

stop() {
  for daemon in slurmd slurmctld munged; do
    if [[ -f "$dir/$daemon.pid" ]]; then
      kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true
    fi
  done
  # slurmctld and slurmd end within a second or two; wait so that the ports are free again.
  for _ in $(seq 50); do
    alive=0
    for daemon in slurmd slurmctld munged; do
      [[ -f "$dir/$daemon.pid" ]] && kill -0 "$(cat "$dir/$daemon.pid")" 2>/dev/null && alive=1
    done
    ((alive)) || break
    sleep 0.1
  done
}

case "$command" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "usage: slurm-local.sh start|stop DIR" >&2; exit 2 ;;
esac

for program in munged slurmctld slurmd sbatch; do
  command -v "$program" >/dev/null || PATH="$PATH:/usr/sbin"
  command -v "$program" >/dev/null || {
    echo "error: $program not found: install Debian's slurm-wlm and munge (scripts/setup.sh --python)" >&2
    exit 1
  }
done
[[ $(id -u) == 0 ]] || { echo "error: a private slurmd must run as root to start jobs" >&2; exit 1; }

mkdir -p "$dir/state" "$dir/spool"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
cpus=$(nproc)
cat >"$dir/slurm.conf" <<CONF
ClusterName=minima-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerParameters=sched_interval=1
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# A key of our own, so that nothing outside this folder is needed or touched.
[[ -f "$dir/munge.key" ]] || { head -c 1024 /dev/urandom >"$dir/munge.key"; chmod 600 "$dir/munge.key"; }
munged --socket="$dir/munge.socket" --key-file="$dir/munge.key" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munge.seed" --force
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 300); do
  if sinfo --noheader --format=%t 2>/dev/null | grep -q idle; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.1
done
echo "error: the private Slurm did not come up; logs in $dir" >&2
stop
exit 1
