#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for tests and trials of
# `deno task sweep run --on slurm`:
#
#   tools/slurm_local.sh start    # install (apt, once) and start munge, slurmctld, slurmd
#   tools/slurm_local.sh status   # sinfo
#   tools/slurm_local.sh stop     # stop the daemons this script started
#
# Needs root (apt-get, the daemons). The configuration is written to
# /etc/slurm/slurm.conf only when there is none, or when the one there is
# this script's (first line "# slurm_local.sh"): a site's own is never
# replaced. ProctrackType=proctrack/linuxproc and TaskPlugin=task/none work
# without cgroups (containers).
set -euo pipefail

STATE=/var/lib/slurm-local
CONF=/etc/slurm/slurm.conf
MARK="# slurm_local.sh"

die() { echo "slurm_local.sh: $*" >&2; exit 1; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v munged >/dev/null && command -v sbatch >/dev/null; then
    return
  fi
  [ "$(id -u)" = 0 ] || die "installing slurm-wlm and munge needs root"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
  if [ -f "$CONF" ] && ! head -1 "$CONF" | grep -q "^$MARK"; then
    echo "slurm_local.sh: keeping the existing $CONF" >&2
    return
  fi
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" /var/log/slurm-local
  cat >"$CONF" <<EOF
$MARK: a single-node cluster for tests (tools/slurm_local.sh stop removes nothing)
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldLogFile=/var/log/slurm-local/slurmctld.log
SlurmdLogFile=/var/log/slurm-local/slurmd.log
SlurmUser=root
SlurmdUser=root
JobRequeue=1
MaxArraySize=10001
KillWait=5
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  install
  # slurmctld and sinfo find the node by its name (SlurmctldHost).
  getent hosts "$(hostname -s)" >/dev/null ||
    die "the host name $(hostname -s) does not resolve (add it to /etc/hosts)"
  write_conf
  # munge: a key, then the daemon (its own pid file).
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  fi
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  if ! running /run/munge/munged.pid; then
    if id munge >/dev/null 2>&1; then
      su -s /bin/sh munge -c "/usr/sbin/munged" ||
        /usr/sbin/munged --force
    else
      /usr/sbin/munged --force
    fi
  fi
  running "$STATE/slurmctld.pid" || /usr/sbin/slurmctld
  running "$STATE/slurmd.pid" || /usr/sbin/slurmd
  # Ready when the node answers. Each sinfo is bounded: where the host name
  # does not resolve, sinfo retries for minutes, and the 60 s would not hold.
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if timeout 5 sinfo -h -o "%T" 2>/dev/null | grep -Eq "idle|mix|alloc"; then
      scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
      sinfo
      return 0
    fi
    if timeout 5 sinfo -h -o "%T" 2>/dev/null | grep -Eq "down|drain"; then
      scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    fi
    sleep 1
  done
  die "the node did not come up in 60 s (see /var/log/slurm-local/)"
}

stop() {
  for pid in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" /run/munge/munged.pid; do
    if running "$pid"; then kill "$(cat "$pid")"; fi
  done
  for pid in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" /run/munge/munged.pid; do
    for _ in $(seq 1 20); do running "$pid" || break; sleep 0.5; done
  done
  echo "slurm_local.sh: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) die "usage: tools/slurm_local.sh start|stop|status" ;;
esac
