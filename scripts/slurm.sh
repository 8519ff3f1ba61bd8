#!/usr/bin/env bash
# Idempotent set-up of a real single-node Slurm cluster on this machine, for rea's Slurm adapter and
# its tests: Debian's slurm-wlm and munge packages, a munge key, a minimal slurm.conf (one node with
# this machine's CPUs and memory, partition `rea`), and munged, slurmctld and slurmd started by hand
# (no systemd). A second run only checks that the node answers, and is quick.
#
#   sudo scripts/slurm.sh        # then: sinfo, sbatch, squeue...
#
# Accounting is off (sacct needs slurmdbd and a MySQL database): rea's adapter asks squeue and
# scontrol, and keeps each job's outcome in its job folder, so finished jobs may be forgotten after
# MinJobAge.
set -euo pipefail
say() { echo "slurm: $*"; }
fail() {
  echo "slurm: $*" >&2
  exit 1
}

CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
STATE_DIR=/var/spool/slurm
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
NODE=$(hostname -s)
WAIT_SEC=${REA_SLURM_WAIT_SEC:-60}

node_idle() {
  # "idle", "mixed" or "allocated": the node is up and takes jobs.
  local state
  state=$(sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null | head -n1) || return 1
  case "$state" in idle* | mix* | alloc* | completing*) return 0 ;; *) return 1 ;; esac
}

# Quick path: everything already up.
if command -v sinfo >/dev/null && [ -f "$CONF" ] && pgrep -x slurmctld >/dev/null &&
  pgrep -x slurmd >/dev/null && node_idle; then
  say "cluster is up (node $NODE $(sinfo --noheader --nodes="$NODE" --format=%T))"
  exit 0
fi

[ "$(id -u)" = 0 ] || fail "run as root: installing packages and starting slurmctld, slurmd and munged need it"

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null ||
  ! command -v sbatch >/dev/null; then
  say "installing slurm-wlm and munge (apt-get)"
  started=$(date +%s)
  export DEBIAN_FRONTEND=noninteractive
  # The package scripts try to start services through systemd or invoke-rc.d; the daemons are
  # started by hand below, so a refused start during install is expected and harmless.
  apt-get install -y -q slurm-wlm munge >/tmp/rea-slurm-apt.log 2>&1 || {
    apt-get update -q >>/tmp/rea-slurm-apt.log 2>&1
    apt-get install -y -q slurm-wlm munge >>/tmp/rea-slurm-apt.log 2>&1 ||
      fail "apt-get install slurm-wlm munge failed; see /tmp/rea-slurm-apt.log"
  }
  say "installed in $(($(date +%s) - started))s"
fi

# 2. Munge: a key, and munged running as the munge user.
if [ ! -s /etc/munge/munge.key ]; then
  say "creating the munge key"
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile=/etc/munge/munge.key
  else
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "starting munged"
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.25; done
  munge -n | unmunge >/dev/null || fail "munged does not answer; see /var/log/munge/munged.log"
fi

# 3. slurm.conf: this machine's CPUs and memory, as slurmd itself detects them.
select_type=select/cons_tres
[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/select_cons_tres.so ] ||
  ls /usr/lib/*/slurm-wlm/select_cons_tres.so >/dev/null 2>&1 || select_type=select/cons_res
node_line=$(slurmd -C | head -n1 | sed -E 's/ *$//')
case "$node_line" in NodeName=*) ;; *) fail "slurmd -C did not describe this node: $node_line" ;; esac
mkdir -p "$CONF_DIR" "$STATE_DIR/ctld" "$STATE_DIR/d" "$LOG_DIR" "$RUN_DIR"
new_conf=$(
  cat <<EOF
# Written by rea's scripts/slurm.sh: a single-node cluster for rea's Slurm adapter.
ClusterName=rea
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=$select_type
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Finished jobs stay visible to squeue and scontrol for a day; rea keeps outcomes in the job folder.
MinJobAge=86400
ReturnToService=2
KillWait=10
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
$node_line State=UNKNOWN
PartitionName=rea Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)
if [ "$(cat "$CONF" 2>/dev/null)" != "$new_conf" ]; then
  say "writing $CONF"
  printf '%s\n' "$new_conf" >"$CONF"
  # A changed config is read only at start.
  for daemon in slurmd slurmctld; do
    if pid=$(pgrep -x "$daemon"); then
      say "stopping $daemon ($pid) to reload the config"
      kill "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
  done
fi

# 4. The daemons.
if ! pgrep -x slurmctld >/dev/null; then
  say "starting slurmctld"
  slurmctld || fail "slurmctld did not start; see $LOG_DIR/slurmctld.log"
fi
if ! pgrep -x slurmd >/dev/null; then
  say "starting slurmd"
  slurmd || fail "slurmd did not start; see $LOG_DIR/slurmd.log"
fi

# 5. Wait until the node takes jobs; a node left down by an earlier crash is returned to service.
deadline=$(($(date +%s) + WAIT_SEC))
while ! node_idle; do
  state=$(sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null | head -n1 || true)
  case "$state" in down* | drain*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;; esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    fail "node $NODE is not idle after ${WAIT_SEC}s (state: ${state:-unknown}); see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log"
  fi
  sleep 1
done
say "cluster is up (node $NODE $(sinfo --noheader --nodes="$NODE" --format=%T), $select_type)"
