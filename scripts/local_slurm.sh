#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests marked `slurm` and for trying the
# cluster recipes on a laptop. Needs root and Debian's packages:
#   apt-get install slurm-wlm munge
#
#   scripts/local_slurm.sh start    # write /etc/slurm/slurm.conf, start munged, slurmctld, slurmd
#   scripts/local_slurm.sh status   # the daemons' PIDs and `sinfo`
#   scripts/local_slurm.sh stop     # stop the daemons by the PIDs that `start` recorded
#
# No systemd and no cgroups: the daemons are started by hand, processes are tracked by
# proctrack/linuxproc, tasks are not confined. One node at 127.0.0.1 with this machine's CPUs
# and at most MIA_SLURM_MEM_MB (20000) of memory; no accounting. Safe to run twice: `start`
# on a running cluster does nothing, `stop` on a stopped one does nothing.
# Settings (environment): MIA_SLURM_DIR (state, logs, PID files; /tmp/mia-slurm),
# MIA_SLURM_REQUEUE (JobRequeue: 1, or 0 to behave like clusters that requeue nothing),
# MIA_SLURM_MEM_MB (the node's memory in MB).
set -euo pipefail

STATE=${MIA_SLURM_DIR:-/tmp/mia-slurm}
REQUEUE=${MIA_SLURM_REQUEUE:-1}
CONF=/etc/slurm/slurm.conf
DAEMONS=(munged slurmctld slurmd)

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "local_slurm: $*" >&2; exit 2; }

pid_of() { # the recorded PID of a daemon, if that process still runs
    local file="$STATE/$1.pid"
    [[ -s $file ]] || return 1
    local pid
    pid=$(<"$file")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

write_conf() {
    local node cpus mem_kb mem
    node=$(hostname -s)
    cpus=$(nproc)
    mem_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
    mem=$((mem_kb / 1024 * 9 / 10))
    ((mem > ${MIA_SLURM_MEM_MB:-20000})) && mem=${MIA_SLURM_MEM_MB:-20000}
    mkdir -p /etc/slurm "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/log"
    cat >"$CONF" <<EOF
# Written by MIA's scripts/local_slurm.sh: a one-node cluster on this machine.
ClusterName=mia-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobRequeue=$REQUEUE
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=60
KillWait=10
SlurmctldTimeout=30
SlurmdTimeout=30
MpiDefault=none
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    [[ $(id -u) == 0 ]] || die "start needs root (the SLURM daemons run as root here)"
    for bin in munged slurmctld slurmd sbatch; do
        command -v "$bin" >/dev/null || die "$bin not found: apt-get install slurm-wlm munge"
    done
    if pid_of slurmctld >/dev/null && pid_of slurmd >/dev/null; then
        echo "local_slurm: already running (state in $STATE)"
        return 0
    fi
    stop quiet
    mkdir -p "$STATE"
    write_conf
    # munge: a key, then the daemon with its PID file in our state folder.
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    if ! pid_of munged >/dev/null; then
        if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
            echo "local_slurm: using the munged that already runs on this machine"
        else
            rm -f /run/munge/mia-munged.pid
            runuser -u munge -- munged --pid-file=/run/munge/mia-munged.pid
            for _ in $(seq 50); do [[ -s /run/munge/mia-munged.pid ]] && break; sleep 0.1; done
            cp /run/munge/mia-munged.pid "$STATE/munged.pid"
        fi
    fi
    slurmctld -i   # -i: ignore saved state from an earlier run
    slurmd
    for _ in $(seq 50); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "local_slurm: started ($(nproc) CPUs, JobRequeue=$REQUEUE, state in $STATE)"
            return 0
        fi
        sleep 0.2
    done
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    sleep 1
    sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)' \
        || die "the node did not come up; see $STATE/log/slurmd.log and slurmctld.log"
    echo "local_slurm: started ($(nproc) CPUs, JobRequeue=$REQUEUE, state in $STATE)"
}

stop() {
    local stopped=0 d pid
    for d in slurmd slurmctld munged; do
        if pid=$(pid_of "$d"); then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
            stopped=1
        fi
        rm -f "$STATE/$d.pid"
    done
    [[ ${1:-} == quiet ]] && return 0
    if ((stopped)); then echo "local_slurm: stopped"; else echo "local_slurm: not running"; fi
}

status() {
    local d pid up=1
    for d in "${DAEMONS[@]}"; do
        if pid=$(pid_of "$d"); then echo "$d: running (pid $pid)"; else echo "$d: stopped"; up=0; fi
    done
    ((up)) && sinfo
    ((up)) || return 1
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
