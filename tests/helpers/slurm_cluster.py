"""A real single-node Slurm cluster on loopback for a test (Debian's `slurm-wlm` and `munge`):
munged on its own key and socket, slurmctld and slurmd in the foreground, every file in one
temporary folder, an overstated CPU count so that three tasks run at once on two cores. Started
by the test that needs it and stopped by it; needs root (slurmd runs jobs as their user)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from helpers.procs import Procs, wait_until
from helpers.servers import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")


def why_not() -> str | None:
    missing = [d for d in DAEMONS if not (shutil.which(d) or Path(f"/usr/sbin/{d}").exists())]
    if missing:
        return f"Slurm is not installed (no {', '.join(missing)}): apt-get install -y slurm-wlm munge"
    if os.geteuid() != 0:
        return "a loopback Slurm cluster needs root (slurmd runs jobs as their user)"
    return None


def _conf(tmp: Path, node: str, cpus: int) -> str:
    return "\n".join([
        "ClusterName=underspec-test", f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "AuthType=auth/munge", f"AuthInfo=socket={tmp / 'munge.sock'}", "CredType=cred/munge",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "SlurmUser=root",
        "SlurmdParameters=config_overrides", "ReturnToService=2",
        f"SlurmctldPidFile={tmp / 'slurmctld.pid'}", f"SlurmdPidFile={tmp / 'slurmd.pid'}",
        f"SlurmdSpoolDir={tmp / 'spool'}", f"StateSaveLocation={tmp / 'state'}",
        f"SlurmctldLogFile={tmp / 'slurmctld.log'}", f"SlurmdLogFile={tmp / 'slurmd.log'}",
        "JobAcctGatherType=jobacct_gather/none", "JobCompType=jobcomp/none", "SchedulerType=sched/backfill",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
        f"PartitionName=debug Nodes={node} Default=YES State=UP OverSubscribe=FORCE:{cpus} MaxTime=INFINITE",
    ]) + "\n"


def _munge(procs: Procs, tmp: Path) -> None:
    keys = tmp / "munge"
    keys.mkdir(mode=0o700)
    (keys / "munge.key").write_bytes(os.urandom(1024))
    (keys / "munge.key").chmod(0o400)
    procs.start(["munged", "-F", "-f", f"--key-file={keys / 'munge.key'}", f"--socket={tmp / 'munge.sock'}",
                 f"--pid-file={keys / 'munged.pid'}", f"--log-file={keys / 'munged.log'}",
                 f"--seed-file={keys / 'munged.seed'}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: (tmp / "munge.sock").exists(), "munged's socket", timeout=120)


@contextmanager
def slurm_cluster(cpus: int = 4):
    """Yields the environment (SLURM_CONF) for sbatch, squeue, scontrol against the cluster."""
    tmp = Path(tempfile.mkdtemp(prefix="underspec-slurm-", dir="/tmp"))
    for d in ("spool", "state"):
        (tmp / d).mkdir()
    node = socket.gethostname().split(".")[0]
    (tmp / "slurm.conf").write_text(_conf(tmp, node, cpus))
    env = {**os.environ, "SLURM_CONF": str(tmp / "slurm.conf")}
    procs = Procs()
    try:
        _munge(procs, tmp)
        for daemon in ("slurmctld", "slurmd"):
            procs.start([daemon, "-D", "-f", str(tmp / "slurm.conf")], env=env,
                        stdout=subprocess.DEVNULL, stderr=open(tmp / f"{daemon}.err", "w"))
        wait_until(lambda: _node_state(env) == "idle", "the Slurm node to be idle", timeout=180, poll=0.5)
        yield env
    finally:
        subprocess.run(["scancel", "--full", "--quiet", "--user=root"], env=env, capture_output=True, timeout=60)
        subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True, timeout=60)
        procs.reap()
        shutil.rmtree(tmp, ignore_errors=True)


def _node_state(env: dict) -> str:
    res = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=env, capture_output=True, text=True, timeout=60)
    return res.stdout.strip().rstrip("*")


def job_states(env: dict, job: str) -> dict[str, str]:
    """{job id (array tasks as JOB_TASK): state} of a job still known to slurmctld."""
    res = subprocess.run(["scontrol", "-o", "show", "job", job], env=env, capture_output=True, text=True,
                         timeout=60)
    states = {}
    for line in res.stdout.splitlines():
        kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
        task = kv.get("ArrayTaskId")
        key = f"{kv.get('ArrayJobId')}_{task}" if task and task.isdigit() else kv.get("JobId")
        states[key] = kv.get("JobState", "?")
    return states
