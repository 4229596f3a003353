"""A real single-node Slurm cluster for one test module: munged, slurmctld and slurmd on localhost.

Everything lives in one private folder: a fresh munge key and socket, a generated
slurm.conf (free ports, this host as the only node, no accounting, no cgroups), state and
spool folders and logs. Clients find it through ``SLURM_CONF``, which ``environment()``
sets; nothing under /etc is read or changed, so a cluster the machine may already run is
left alone. The daemons are this process's own, stopped by their pid files.

Needs root (slurmd runs jobs as their submitter and must be able to) and Debian's
slurm-wlm and munge packages (.ci/slurm-setup installs them); ``unavailable()`` says in
one sentence why a test must skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo")
SBIN = Path("/usr/sbin")


def unavailable() -> str | None:
    """Why no cluster can be started here, or None."""
    if os.geteuid() != 0:
        return "a Slurm cluster needs root to start its daemons"
    missing = [d for d in DAEMONS if not (SBIN / d).is_file()] + [c for c in CLIENTS if shutil.which(c) is None]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} missing; .ci/slurm-setup installs slurm-wlm and munge)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SlurmCluster:
    """munged + slurmctld + slurmd under ``folder``; ``run()`` calls a client against it."""

    def __init__(self, folder: Path, cpus: int = 2) -> None:
        self.folder = folder
        self.cpus = cpus
        self.node = socket.gethostname().split(".")[0]
        self.conf = folder / "slurm.conf"
        self.munge_socket = folder / "munge" / "munge.socket"

    def environment(self, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env.update({"SLURM_CONF": str(self.conf), **extra})
        return env

    def run(self, *words: str, check: bool = True, **extra: str) -> str:
        done = subprocess.run(words, env=self.environment(**extra), capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(words)}: exit {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def write_config(self) -> None:
        f = self.folder
        for name in ("munge", "state", "spool", "log"):
            (f / name).mkdir(mode=0o700, exist_ok=True)
        key = f / "munge" / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o400)
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2
        lines = {
            "ClusterName": "gradertest",
            "SlurmctldHost": f"{self.node}(127.0.0.1)",
            "SlurmctldPort": free_port(),
            "SlurmdPort": free_port(),
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            # cred_expire is also how long a requeued job waits before it may start again (120 s by default)
            "AuthInfo": f"socket={self.munge_socket},cred_expire=10",
            "StateSaveLocation": f / "state",
            "SlurmdSpoolDir": f / "spool",
            "SlurmctldPidFile": f / "slurmctld.pid",
            "SlurmdPidFile": f / "slurmd.pid",
            "SlurmctldLogFile": f / "log" / "slurmctld.log",
            "SlurmdLogFile": f / "log" / "slurmd.log",
            "ProctrackType": "proctrack/linuxproc",  # no cgroups: a container may not delegate them
            "TaskPlugin": "task/none",
            "SwitchType": "switch/none",
            "MpiDefault": "none",
            "ReturnToService": 2,
            "SchedulerType": "sched/backfill",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core",
            "JobCompType": "jobcomp/none",
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
            "MailProg": "/bin/true",
            "MinJobAge": 3600,  # keep finished jobs in scontrol's view for the test's checks
        }
        text = "".join(f"{key}={value}\n" for key, value in lines.items())
        text += f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory} State=UNKNOWN\n"
        text += "PartitionName=grading Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
        self.conf.write_text(text)

    def start(self) -> None:
        self.write_config()
        m = self.folder / "munge"
        subprocess.run(
            [
                SBIN / "munged",
                f"--socket={self.munge_socket}",
                f"--key-file={m / 'munge.key'}",
                f"--pid-file={m / 'munged.pid'}",
                f"--log-file={m / 'munged.log'}",
                f"--seed-file={m / 'munged.seed'}",
                "--force",  # as root, with a key of our own
            ],
            check=True,
            timeout=30,
        )
        env = self.environment()
        subprocess.run([SBIN / "slurmctld", "-i"], env=env, check=True, timeout=30)
        subprocess.run([SBIN / "slurmd"], env=env, check=True, timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-N", "-o", "%T", check=False).strip()
            if state == "idle":
                return
            time.sleep(0.3)
        raise RuntimeError(f"the node never became idle (state {state!r}):\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for log in sorted((self.folder / "log").glob("*.log")):
            parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)

    def stop(self) -> None:
        self.run("scontrol", "shutdown", check=False)
        for pid_file in (
            self.folder / "slurmd.pid",
            self.folder / "slurmctld.pid",
            self.folder / "munge" / "munged.pid",
        ):
            stop_pid(pid_file)

    # --- jobs -------------------------------------------------------------------------------

    def tasks(self, job: str) -> dict[str, dict[str, str]]:
        """Each task of a job (array tasks by their index) -> its scontrol fields."""
        text = self.run("scontrol", "-o", "show", "job", job, check=False)
        found = {}
        for line in text.splitlines():
            fields = dict(word.split("=", 1) for word in line.split() if "=" in word)
            found[fields.get("ArrayTaskId") or fields.get("JobId", "")] = fields
        return found

    def wait(self, job: str, timeout: float = 300) -> dict[str, dict[str, str]]:
        """Poll until every task of the job has ended (or can never start); its tasks' last fields."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self.tasks(job)
            if tasks and all(ended(t) for t in tasks.values()):
                return tasks
            time.sleep(0.2)
        raise TimeoutError(f"job {job} still running after {timeout:.0f} s:\n{self.logs()}")


def ended(task: dict[str, str]) -> bool:
    return task.get("JobState") in FINAL_STATES or task.get("Reason") == "DependencyNeverSatisfied"


FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


def stop_pid(pid_file: Path, grace: float = 10.0) -> None:
    """End the daemon a pid file names (ours: we started it), waiting for it to go."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + grace
    try:
        os.kill(pid, signal.SIGTERM)
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
