#!/usr/bin/env bash
# Live test of the SLURM profile (workflow/profiles/slurm) on a throw-away one-node cluster.
#
#   sudo tools/slurm_live_test.sh            (or: make slurm-test, which installs the plugin)
#
# As root on Debian: installs slurm-wlm and munge if missing, writes a private slurm.conf and
# munge key under a temporary directory (nothing under /etc is touched), starts munged,
# slurmctld and slurmd in the foreground (their PIDs recorded), runs the quick overlay once
# locally and once through the SLURM profile, each in a scratch copy of the repository, then
#   - checks that every job Snakemake ran went through SLURM: the rules of the non-local jobs
#     in Snakemake's log equal the rules (from the job comments) of this run's SLURM jobs as
#     squeue lists them, all COMPLETED, one SLURM log file each, and the only local jobs are
#     the action-less target `all`;
#   - checks that the data variables of every NetCDF file under data/ and results/ (tables, bit
#     sweep and benchmark included) equal the local run's, skipping exactly the variables their
#     writers marked as measurements (fwdsnn.io.MEASUREMENT_ATTR; it lists them), and that the
#     CSV/Markdown tables are byte-identical (but the cost table's, which print timings);
# and stops exactly the daemons it started, by PID, on exit (also on failure or Ctrl-C).
# Prints a summary; exits non-zero on any failure. Where the cluster cannot be set up for
# reasons outside the project (not root, not Debian, no package source reachable for slurm-wlm
# and munge, or FWDSNN_SKIP_SLURM_TEST=1) it prints one SKIPPED line and exits 0; a failed check
# of the outputs is always a failure.
#
# Environment: PYTHON (default .venv/bin/python, with snakemake-executor-plugin-slurm),
# KEEP=1 keeps the scratch directory, SLURM_TEST_PORT (default 17817; uses it and the next),
# STATUS_INTERVAL seconds before/between the plugin's status checks (default 5).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
PORT=${SLURM_TEST_PORT:-17817}
STATUS_INTERVAL=${STATUS_INTERVAL:-5}
OVERLAY=(--configfile config.yaml workflow/configs/quick.yaml)
PARTITION=fwdsnn

T0=$(date +%s)
say() { printf '[slurm-test %4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { say "FAIL: $*"; exit 1; }
# the cluster cannot be set up here for reasons outside the project: one line, exit 0
skip() { say "SKIPPED: $* (the live SLURM test did not run)"; exit 0; }

[[ ${FWDSNN_SKIP_SLURM_TEST:-0} == 1 ]] && skip "FWDSNN_SKIP_SLURM_TEST=1"
[[ $EUID -eq 0 ]] || skip "not root (it installs packages and starts slurmd)"
[[ -r /etc/debian_version ]] || skip "not Debian (it needs apt-get and slurm-wlm)"
[[ -x $PYTHON ]] || die "$PYTHON not found: run 'make install-slurm' first"
"$PYTHON" -c "import snakemake_executor_plugin_slurm" 2>/dev/null \
    || die "snakemake-executor-plugin-slurm is not installed for $PYTHON: run 'make install-slurm'"

# --- packages -------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    say "installing slurm-wlm and munge (apt-get)"
    TMPDIR_APT=$(mktemp -d /tmp/fwdsnn-slurm-apt.XXXXXX)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >"$TMPDIR_APT/apt.log" 2>&1 \
        || skip "no Debian package source reachable (apt-get update: $(tail -n 1 "$TMPDIR_APT/apt.log"))"
    apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$TMPDIR_APT/apt.log" 2>&1 \
        || skip "slurm-wlm/munge could not be installed (apt-get install: $(tail -n 1 "$TMPDIR_APT/apt.log"))"
fi
say "$(slurmctld -V), $(munged -V | awk '{print $1}')"

# --- scratch directory and cleanup ----------------------------------------------------------
WORK=$(mktemp -d /tmp/fwdsnn-slurm-test.XXXXXX)
chmod 700 "$WORK"
declare -A DAEMON_PID=()
STEPD_BEFORE=$(pgrep -x slurmstepd | sort || true)
FAILED=1

stop_pid() {  # stop one process we started: TERM, wait up to 20 s, then KILL
    local name=$1 pid=$2
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }; sleep 0.5; done
    say "$name (pid $pid) ignored SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [[ -n ${DAEMON_PID[slurmctld]:-} ]] && kill -0 "${DAEMON_PID[slurmctld]}" 2>/dev/null; then
        scancel --full --user root 2>/dev/null  # only this private cluster's jobs
        for _ in $(seq 20); do [[ -z $(squeue -h -t PD,R,CG 2>/dev/null) ]] && break; sleep 0.5; done
    fi
    for name in slurmd slurmctld munged; do
        [[ -n ${DAEMON_PID[$name]:-} ]] && stop_pid "$name" "${DAEMON_PID[$name]}"
    done
    # job step daemons of this cluster (started by our slurmd after we began) must be gone too
    local left
    left=$(comm -13 <(echo "$STEPD_BEFORE") <(pgrep -x slurmstepd | sort) | grep . || true)
    for pid in $left; do say "leftover slurmstepd $pid: stopping it"; stop_pid slurmstepd "$pid"; done
    local alive=""
    for name in "${!DAEMON_PID[@]}"; do kill -0 "${DAEMON_PID[$name]}" 2>/dev/null && alive+=" $name"; done
    if [[ -n $alive ]]; then say "FAIL: still running:$alive"; rc=1; fi
    if [[ $rc -ne 0 || $FAILED -ne 0 ]]; then
        for log in slurmctld.log slurmd.log munged.log; do
            [[ -f $WORK/log/$log ]] && { echo "--- tail $log"; tail -n 15 "$WORK/log/$log"; }
        done
        say "scratch directory kept for inspection: $WORK"
        [[ $rc -eq 0 ]] && rc=1
    elif [[ ${KEEP:-0} == 1 ]]; then
        say "scratch directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    say "daemons stopped; exit $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- cluster configuration ------------------------------------------------------------------
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
[[ $CPUS -ge 2 ]] || die "needs 2 CPUs (the profile gives bench cpus_per_task: 2)"
[[ $MEM_MB -ge 4500 ]] || die "needs 4.5 GB of memory (the profile asks up to 4000 MB per job)"
for p in "$PORT" "$((PORT + 1))"; do
    ss -Hltn "sport = :$p" | grep -q . && die "port $p is in use (a cluster left running? set SLURM_TEST_PORT)"
done
mkdir -p "$WORK"/{log,state,spool,munge}
export SLURM_CONF=$WORK/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=fwdsnn-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WORK/munge/munge.socket
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool/%n
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SwitchType=switch/none
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# squeue must still list finished jobs when the plugin asks (and for the check below)
MinJobAge=3600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
# snakemake-executor-plugin-slurm-jobstep 0.6.1 runs each job's `srun` with every SLURM_*
# variable but the job's identity removed, SLURM_CONF included: an srun on PATH that puts it
# back lets that srun find this private config (clusters with /etc/slurm/slurm.conf or
# configless Slurm do not need this).
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$SLURM_CONF" "$(command -v srun)" >"$WORK/bin/srun"
chmod 755 "$WORK/bin/srun"
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$WORK/munge/munge.key"

# --- daemons --------------------------------------------------------------------------------
say "starting munged, slurmctld, slurmd ($HOST: $CPUS CPUs, $MEM_MB MB; config $SLURM_CONF)"
munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/munge.socket" \
    --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/log/munged.log" \
    --seed-file="$WORK/munge/munged.seed" >>"$WORK/log/munged.out" 2>&1 &
DAEMON_PID[munged]=$!
for _ in $(seq 40); do [[ -S $WORK/munge/munge.socket ]] && break; sleep 0.25; done
[[ -S $WORK/munge/munge.socket ]] || die "munged did not start"
slurmctld -D -f "$SLURM_CONF" >>"$WORK/log/slurmctld.out" 2>&1 &
DAEMON_PID[slurmctld]=$!
for _ in $(seq 60); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.5; done
scontrol ping 2>/dev/null | grep -q UP || die "slurmctld did not come up"
slurmd -D -f "$SLURM_CONF" >>"$WORK/log/slurmd.out" 2>&1 &
DAEMON_PID[slurmd]=$!
for _ in $(seq 60); do [[ $(sinfo -h -o %T 2>/dev/null) == idle ]] && break; sleep 0.5; done
[[ $(sinfo -h -o %T) == idle ]] || die "node not idle: $(sinfo -h -o '%T %E')"
say "cluster up: pids munged ${DAEMON_PID[munged]}, slurmctld ${DAEMON_PID[slurmctld]}, slurmd ${DAEMON_PID[slurmd]}"

# --- the two runs ---------------------------------------------------------------------------
copy_repo() {
    mkdir -p "$1"
    cp -r "$REPO/Snakefile" "$REPO/config.yaml" "$REPO/workflow" "$REPO/fwdsnn" "$1/"
    find "$1" -name __pycache__ -prune -exec rm -rf {} +
}
copy_repo "$WORK/local"
copy_repo "$WORK/slurm"

say "local run of the quick overlay (-c $CPUS)"
t=$(date +%s)
(cd "$WORK/local" && PYTHONPATH=$WORK/local "$PYTHON" -m snakemake -c "$CPUS" "${OVERLAY[@]}" \
    >"$WORK/log/local.log" 2>&1) || { tail -n 30 "$WORK/log/local.log"; die "local run failed"; }
LOCAL_S=$(($(date +%s) - t))

say "SLURM run of the quick overlay (--profile workflow/profiles/slurm)"
t=$(date +%s)
(cd "$WORK/slurm" && PATH=$WORK/bin:$PATH PYTHONPATH=$WORK/slurm "$PYTHON" -m snakemake \
    --profile workflow/profiles/slurm --default-resources slurm_partition=$PARTITION \
    --slurm-no-account --slurm-keep-successful-logs \
    --slurm-init-seconds-before-status-checks "$STATUS_INTERVAL" "${OVERLAY[@]}" \
    >"$WORK/log/slurm.log" 2>&1) || { tail -n 40 "$WORK/log/slurm.log"; die "SLURM run failed"; }
SLURM_S=$(($(date +%s) - t))

# --- checks ---------------------------------------------------------------------------------
squeue -h --states=all -o '%i|%j|%T|%k' >"$WORK/log/squeue.txt"
say "checking"
"$PYTHON" - "$WORK" <<'PYEOF' || die "checks failed (see above)"
import collections
import re
import sys
from pathlib import Path

from fwdsnn import io
from fwdsnn.artifacts import TABLE_FILES, TIMED_TABLES

work = Path(sys.argv[1])
log = (work / "log" / "slurm.log").read_text()
problems = []

# 1. every job through SLURM
uuids = set(re.findall(r"SLURM run ID: ([0-9a-f-]+)", log))
if len(uuids) != 1:
    problems.append(f"expected one SLURM run ID in Snakemake's log, found {uuids}")
jobs = collections.Counter(re.findall(r"^rule (\w+):$", log, flags=re.M))
local = collections.Counter(re.findall(r"^localrule (\w+):$", log, flags=re.M))
finished = len(re.findall(r"^Finished jobid: \d+", log, flags=re.M))
slurm = collections.Counter()
states = collections.Counter()
for line in (work / "log" / "squeue.txt").read_text().splitlines():
    jobid, name, state, comment = line.split("|", 3)
    if name in uuids:
        states[state] += 1
        slurm[re.sub(r"^rule_([A-Za-z0-9_]+?)(_wildcards_.*)?$", r"\1", comment)] += 1
slurm_logs = list((work / "slurm" / ".snakemake" / "slurm_logs").rglob("*.log"))
submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", log))
if not jobs:
    problems.append("Snakemake's log lists no jobs")
if jobs != slurm:
    problems.append(f"jobs in Snakemake's log {dict(jobs)} != SLURM jobs by rule {dict(slurm)}")
if set(states) != {"COMPLETED"}:
    problems.append(f"SLURM job states {dict(states)}")
if set(local) - {"all"}:
    problems.append(f"jobs ran locally: {dict(local)}")
if len(slurm_logs) != sum(jobs.values()) or len(submitted) != sum(jobs.values()):
    problems.append(f"{len(slurm_logs)} SLURM log files, {len(submitted)} submissions "
                    f"for {sum(jobs.values())} jobs")
if finished != sum(jobs.values()) + sum(local.values()):
    problems.append(f"{finished} finished jobs, {sum(jobs.values()) + sum(local.values())} planned")
print(f"  jobs: {sum(jobs.values())} through SLURM ({len(slurm_logs)} SLURM logs, squeue: "
      f"{dict(states)}), local: {dict(local)}")

# 2. same data variables as the local run: every NetCDF file (tables, bit sweep and benchmarks
# included), skipping exactly the variables their writers marked as measurements
# (io.MEASUREMENT_ATTR); the text tables too, but those that print timings (TIMED_TABLES)
local_root, slurm_root = work / "local", work / "slurm"
netcdf = sorted(p.relative_to(local_root) for p in local_root.glob("data/**/*.nc")) + \
    sorted(p.relative_to(local_root) for p in local_root.glob("results/**/*.nc"))
extra = sorted({p.relative_to(slurm_root) for pattern in ("data/**/*.nc", "results/**/*.nc")
                for p in slurm_root.glob(pattern)} - set(netcdf))
if extra:
    problems.append(f"only in the SLURM run: {', '.join(map(str, extra))}")
excluded = collections.defaultdict(set)  # (variable, kind) -> files
differ = 0
for rel in netcdf:
    other = slurm_root / rel
    if not other.exists():
        problems.append(f"{rel}: missing from the SLURM run")
        differ += 1
        continue
    a, b = io.read_dataset(local_root / rel), io.read_dataset(other)
    for name, kind in {**io.measurement_variables(a), **io.measurement_variables(b)}.items():
        excluded[(name, kind)].add(rel)
    names = io.differing_variables(a, b)
    if names:
        problems.append(f"{rel}: data variables differ between the local and the SLURM run: {', '.join(names)}")
        differ += 1
texts = sorted(p.relative_to(local_root) for p in local_root.glob("results/tables/*")
               if p.suffix in (".csv", ".md") and p.stem not in TIMED_TABLES)
for rel in texts:
    other = slurm_root / rel
    if not other.exists() or other.read_bytes() != (local_root / rel).read_bytes():
        problems.append(f"{rel}: differs between the local and the SLURM run")
        differ += 1
required = [Path("results/tables") / f"{name}.nc" for name in (*TABLE_FILES, "bit_sweep")]
required += [Path("results/bench/estimators.nc")]
for rel in required:
    if rel not in netcdf:
        problems.append(f"{rel}: not made by the local run, so not compared")
runs = sum(rel.parts[:2] == ("results", "runs") for rel in netcdf)
if not netcdf or runs == 0:
    problems.append("no NetCDF files compared")
print(f"  equality: {len(netcdf)} NetCDF files compared ({runs} under results/runs, "
      f"{sum(rel.parts[:2] == ('results', 'tables') for rel in netcdf)} tables incl. the bit sweep, "
      f"{sum(rel.parts[:2] == ('results', 'bench') for rel in netcdf)} benchmark) and {len(texts)} text "
      f"tables ({', '.join(TIMED_TABLES)} not: they print timings); {differ} differ")
print("  excluded, marked as measurements by their writers (machine- and load-dependent):")
for (name, kind), where in sorted(excluded.items()):
    print(f"    {name} [{kind}] in {len(where)} file(s): {', '.join(sorted({p.name for p in where}))}")
for problem in problems:
    print("  PROBLEM:", problem)
sys.exit(1 if problems else 0)
PYEOF

FAILED=0
say "PASS: local run ${LOCAL_S} s, SLURM run ${SLURM_S} s, total $(($(date +%s) - T0)) s"
