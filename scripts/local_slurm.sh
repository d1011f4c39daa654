#!/usr/bin/env bash
# A SLURM cluster on this machine, for the tests marked `slurm` and for trying the cluster
# recipes on a laptop. Needs root and Debian's packages:
#   apt-get install slurm-wlm munge
#
#   scripts/local_slurm.sh start             # write /etc/slurm/slurm.conf, start munged,
#                                            # slurmctld and one slurmd: a one-node cluster
#   scripts/local_slurm.sh start --nodes 2   # two nodes, node1 and node2, one slurmd each
#   scripts/local_slurm.sh status            # the daemons' PIDs and `sinfo`
#   scripts/local_slurm.sh stop              # stop the daemons by the PIDs `start` recorded
#
# No systemd and no cgroups: the daemons are started by hand, processes are tracked by
# proctrack/linuxproc, tasks are not confined. One node is this machine (its short host
# name) at 127.0.0.1; with --nodes N, the nodes node1..nodeN all live here, one slurmd each
# (`slurmd -N nodeK`, each on its own port, with its own spool folder, log and PID file),
# and a job goes to the least loaded node (LLN), so an array's small tasks spread.
# Every node has this machine's CPUs and at most MIA_SLURM_MEM_MB (20000) of memory, so N
# nodes promise N times the machine; no accounting. Safe to run twice: `start` on a running
# cluster of that size does nothing (of another size it refuses: stop it first), `stop` on
# a stopped one does nothing.
# Settings (environment): MIA_SLURM_DIR (state, logs, PID files; /tmp/mia-slurm),
# MIA_SLURM_REQUEUE (JobRequeue: 1, or 0 to behave like clusters that requeue nothing),
# MIA_SLURM_MEM_MB (each node's memory in MB), MIA_SLURM_PORT (node1's slurmd port when
# there are several nodes, the next nodes the ports after it; 17001).
set -euo pipefail

STATE=${MIA_SLURM_DIR:-/tmp/mia-slurm}
REQUEUE=${MIA_SLURM_REQUEUE:-1}
PORT=${MIA_SLURM_PORT:-17001}
CONF=/etc/slurm/slurm.conf

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "local_slurm: $*" >&2; exit 2; }

pid_of() { # the recorded PID of a daemon, if that process still runs
    local file="$STATE/$1.pid"
    [[ -s $file ]] || return 1
    local pid
    pid=$(<"$file")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

node_names() { # the nodes of an N-node cluster: this machine for one, node1..nodeN for more
    if (($1 == 1)); then hostname -s; else seq -f 'node%g' 1 "$1"; fi
}

slurmds() { # the slurmd daemons whose PID files `start` wrote: slurmd-<node>
    local file
    for file in "$STATE"/slurmd-*.pid; do [[ -e $file ]] && basename "$file" .pid; done
    return 0
}

write_conf() { # $1: the number of nodes
    local n=$1 host cpus mem_kb mem k
    host=$(hostname -s)
    cpus=$(nproc)
    mem_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
    mem=$((mem_kb / 1024 * 9 / 10))
    ((mem > ${MIA_SLURM_MEM_MB:-20000})) && mem=${MIA_SLURM_MEM_MB:-20000}
    mkdir -p /etc/slurm "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/log"
    {
        cat <<EOF
# Written by MIA's scripts/local_slurm.sh: a $n-node cluster on this machine.
ClusterName=mia-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/spool/ctld
# %n, the node's name: each slurmd of this machine keeps its own spool, PID file and log.
SlurmdSpoolDir=$STATE/spool/d/%n
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
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
EOF
        if ((n == 1)); then
            echo "NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN"
            echo "PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP"
        else
            # All on this host (NodeHostname), each slurmd on its own port. LLN: a job goes
            # to the least loaded node, so that small jobs spread over the nodes as on a
            # busy cluster instead of filling node1 first.
            for k in $(seq 1 "$n"); do
                echo "NodeName=node$k NodeHostname=$host NodeAddr=127.0.0.1" \
                    "Port=$((PORT + k - 1)) CPUs=$cpus RealMemory=$mem State=UNKNOWN"
            done
            echo "PartitionName=debug Nodes=node[1-$n] Default=YES MaxTime=INFINITE State=UP LLN=YES"
        fi
    } >"$CONF"
    echo "$n" >"$STATE/nodes"
}

nodes_up() { # how many nodes take jobs (idle, mixed or allocated)
    sinfo -h -N -o '%N %T' 2>/dev/null | grep -cE ' (idle|mixed|allocated)$' || true
}

running() { # slurmctld and every slurmd that `start` recorded still run
    local d names
    pid_of slurmctld >/dev/null || return 1
    names=$(slurmds)
    [[ -n $names ]] || return 1
    for d in $names; do pid_of "$d" >/dev/null || return 1; done
}

start() { # $1: the number of nodes
    local n=$1 have node
    [[ $(id -u) == 0 ]] || die "start needs root (the SLURM daemons run as root here)"
    for bin in munged slurmctld slurmd sbatch; do
        command -v "$bin" >/dev/null || die "$bin not found: apt-get install slurm-wlm munge"
    done
    if running; then
        have=$(cat "$STATE/nodes" 2>/dev/null || echo 1)
        ((have == n)) || die "already running with $have node(s), not $n: \`$0 stop\` first"
        echo "local_slurm: already running ($n node(s), state in $STATE)"
        return 0
    fi
    stop quiet
    mkdir -p "$STATE"
    write_conf "$n"
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
    slurmctld -i # -i: ignore saved state from an earlier run
    for node in $(node_names "$n"); do
        mkdir -p "$STATE/spool/d/$node"
        slurmd -N "$node" # -N: this daemon is that node (its name, port, spool, PID file)
    done
    for _ in $(seq 50); do
        (($(nodes_up) == n)) && break
        sleep 0.2
    done
    if (($(nodes_up) < n)); then
        for node in $(node_names "$n"); do
            scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
        done
        sleep 1
    fi
    (($(nodes_up) == n)) || die "$((n - $(nodes_up))) of $n node(s) did not come up;" \
        "see $STATE/log/slurmd-*.log and slurmctld.log"
    echo "local_slurm: started ($n node(s) of $(nproc) CPUs, JobRequeue=$REQUEUE," \
        "state in $STATE)"
}

stop() {
    local stopped=0 d pid
    # `slurmd`: the one PID file that earlier versions of this script wrote.
    for d in $(slurmds) slurmd slurmctld munged; do
        if pid=$(pid_of "$d"); then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
            stopped=1
        fi
        rm -f "$STATE/$d.pid"
    done
    rm -f "$STATE/nodes"
    [[ ${1:-} == quiet ]] && return 0
    if ((stopped)); then echo "local_slurm: stopped"; else echo "local_slurm: not running"; fi
}

status() {
    local d pid up=1 names
    names=$(slurmds)
    for d in munged slurmctld ${names:-slurmd}; do
        if pid=$(pid_of "$d"); then echo "$d: running (pid $pid)"; else echo "$d: stopped"; up=0; fi
    done
    ((up)) && sinfo
    ((up)) || return 1
}

nodes_arg() { # --nodes N (or --nodes=N) among the arguments; 1 without
    local n=1
    while (($#)); do
        case $1 in
        --nodes) n=${2:-} && shift ;;
        --nodes=*) n=${1#--nodes=} ;;
        *) die "unknown argument: $1 (see --help)" ;;
        esac
        shift
    done
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "--nodes takes a whole number from 1, not '$n'"
    echo "$n"
}

case ${1:-} in
start) n=$(nodes_arg "${@:2}") && start "$n" ;;
stop) stop ;;
status) status ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
