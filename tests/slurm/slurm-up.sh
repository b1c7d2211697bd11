#!/usr/bin/env bash
# A throw-away single-node Slurm for tests: munged, slurmctld and slurmd as root, all state in
# STATE_DIR, clients pointed at it through SLURM_CONF (STATE_DIR/env.sh).
# usage: slurm-up.sh STATE_DIR [CPUS]     exit 77 when this machine cannot run slurmd
set -euo pipefail
STATE=$(realpath -m "$1")
CPUS=${2:-}
mkdir -p "$STATE"/ctld "$STATE"/d "$STATE"/log
for cmd in slurmctld slurmd munged scontrol sbatch; do
  command -v "$cmd" >/dev/null || { echo "slurm-up: $cmd is not installed"; exit 77; }
done
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  cp /run/munge/munged.pid "$STATE"/munged.pid
fi
HW=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ *UpTime=.*//')
EXTRA=""
if [ -n "$CPUS" ]; then HW="CPUs=$CPUS"; EXTRA="SlurmdParameters=config_overrides"; fi
cat >"$STATE"/slurm.conf <<CONF
ClusterName=sprouttest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=pmix
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
$EXTRA
NodeName=localhost $HW State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$STATE"/slurm.conf
echo "export SLURM_CONF=$SLURM_CONF" >"$STATE"/env.sh
# daemons in the foreground, backgrounded here with their output redirected (a piped caller
# would otherwise wait for them)
slurmctld -D >"$STATE"/log/slurmctld.out 2>&1 &
echo $! >"$STATE"/slurmctld.bgpid
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.1; done
scontrol ping | grep -q 'is UP' || { echo "slurm-up: slurmctld did not come up"; tail -5 "$STATE"/log/slurmctld.out; exit 77; }
slurmd -D -N localhost >"$STATE"/log/slurmd.out 2>&1 &
echo $! >"$STATE"/slurmd.bgpid
for _ in $(seq 100); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 0.2; done
sinfo -h -o %T | grep -qx idle || { echo "slurm-up: node not idle"; tail -5 "$STATE"/log/slurmd.out; exit 77; }
