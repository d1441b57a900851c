#!/usr/bin/env bash
# A real single-node Slurm (Debian's slurm-wlm 22.05 + munge) on localhost, for tests/test_slurm.py:
# the project's own version of the recipe in the shared recipes (which also covers slurmdbd). No
# accounting database: Snakemake's Slurm plugin must poll with `--slurm-status-command squeue`.
# Runs as root, needs no systemd or cgroups, talks only to localhost, and records the PID of every
# daemon it starts so that `down` stops exactly those (PID 1 here does not reap orphans: a stopped
# daemon may linger as a zombie, so liveness is read from `ps -o stat=`).
#
#   WORK=/tmp/x bash single_node.sh install | up | smoke | down
set -euo pipefail
WORK=${WORK:-/tmp/slurmtest}
PARTITION=debug
STATE=/var/spool/slurm-ci                 # slurmctld/slurmd state, wiped on every "up"
PIDS=$WORK/daemons.pids                   # "name pid" per line, in start order
NODE=$(hostname -s)
MARK="# written by truncback's tests/slurm/single_node.sh (removed by its 'down')"

mkdir -p "$WORK/logs"
log() { printf '[%s +%3ss] %s\n' "$(date +%T)" "$(( $(date +%s) - T0 ))" "$*"; }
T0=$(date +%s)

wait_for() {  # wait_for <seconds> <description> <command...>
  local n=$(( $1 * 5 )) what=$2; shift 2
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timeout waiting for: $what" >&2; return 1
}
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != *Z* ]]; }  # zombies = dead
pid_alive_from() { [ -s "$1" ] && alive "$(cat "$1")"; }
record() { echo "$1 $2" >> "$PIDS"; log "started $1 (pid $2)"; }

do_install() {
  export DEBIAN_FRONTEND=noninteractive
  # Keep maintainer scripts from starting munge/mariadb/slurm via /etc/init.d on a
  # non-systemd box: we start every daemon ourselves so that we own their PIDs.
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  local pkgs="slurm-wlm munge"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "apt install done: $pkgs"
}

write_slurm_conf() {
  local mem
  mem=$(free -m | awk '/^Mem:/{print int($2 * 0.9)}')
  mkdir -p /etc/slurm
  if [ -e /etc/slurm/slurm.conf ] && ! grep -qF "$MARK" /etc/slurm/slurm.conf; then
    echo "/etc/slurm/slurm.conf exists and is not ours: refusing to overwrite a real Slurm configuration" >&2
    exit 1
  fi
  cat > /etc/slurm/slurm.conf <<EOF
$MARK
ClusterName=ci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=300
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$WORK/logs/slurmctld.log
SlurmdLogFile=$WORK/logs/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

do_up() {
  [ -s "$PIDS" ] && { echo "$PIDS exists: run '$0 down' first" >&2; exit 1; }
  rm -rf "$STATE" "$WORK/logs"; mkdir -p "$STATE/ctld" "$STATE/d" "$WORK/logs"
  : > "$PIDS"

  # --- munge ---
  if [ ! -s /etc/munge/munge.key ]; then mungekey --create --keyfile=/etc/munge/munge.key; fi
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge; chmod 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged            # daemonizes; writes /run/munge/munged.pid
  wait_for 10 munged pid_alive_from /run/munge/munged.pid
  record munged "$(cat /run/munge/munged.pid)"
  munge -n | unmunge >/dev/null

  # --- slurmctld + slurmd ---
  write_slurm_conf
  /usr/sbin/slurmctld
  wait_for 30 slurmctld pid_alive_from /run/slurmctld.pid
  record slurmctld "$(cat /run/slurmctld.pid)"
  /usr/sbin/slurmd
  wait_for 30 slurmd pid_alive_from /run/slurmd.pid
  record slurmd "$(cat /run/slurmd.pid)"
  node_idle() { [ "$(sinfo -h -n "$NODE" -o %t)" = idle ]; }
  wait_for 60 "node $NODE idle" node_idle
  sinfo
  log "cluster up"
}

do_down() {
  [ -f "$PIDS" ] || return 0
  tac "$PIDS" | while read -r name pid; do
    if alive "$pid"; then
      kill -TERM "$pid"
      for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
      alive "$pid" && kill -KILL "$pid"
      log "stopped $name (pid $pid)"
    fi
  done
  rm -f "$PIDS"
  # Our slurm.conf goes too: while it names a controller that is down, every `scontrol` call (which
  # Snakemake's Slurm plugin makes at start-up) waits about 10 s for it.
  if [ -e /etc/slurm/slurm.conf ] && grep -qF "$MARK" /etc/slurm/slurm.conf; then rm -f /etc/slurm/slurm.conf; fi
}

do_smoke() {
  local jid state
  jid=$(sbatch --parsable -p "$PARTITION" -o "$WORK/logs/smoke-%j.out" --wrap hostname)
  job_done() { state=$(scontrol show job -o "$jid" | grep -o 'JobState=[A-Z_]*'); [[ $state =~ COMPLETED|FAILED|CANCELLED|TIMEOUT ]]; }
  wait_for 60 "job $jid" job_done
  [ "$state" = JobState=COMPLETED ] || { echo "smoke job $jid: $state" >&2; return 1; }
  log "smoke job $jid COMPLETED, output: $(cat "$WORK/logs/smoke-$jid.out")"
}

case "${1:-all}" in
  install) do_install ;;
  up)      do_up ;;
  down)    do_down ;;
  smoke)   do_smoke ;;
  *)       echo "usage: $0 install|up|smoke|down" >&2; exit 2 ;;
esac
