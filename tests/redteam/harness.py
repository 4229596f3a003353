"""Running one hostile submission as `grade` would on Gradescope, and looking at what it left.

Each run gets a results folder that is world-writable, as on a careless platform, so only
the sandbox stands between the submission and the report. The folders sit under a
private ``/tmp/grader-redteam-*`` of the test session (beside the public rubric's
folder), so two runs on one machine never share one; the hostile files glob for that
pattern.
Everything here reads the machine's state from outside the sandbox: /proc for processes
of the sandbox uids, the repository and the venv for changed files, System V IPC tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from grader.frontends.cli import main
from grader.sandbox.host import SANDBOX_UIDS, grader_pid_of

REDTEAM = Path(__file__).resolve().parent
REPO = REDTEAM.parent.parent
SUBMISSIONS = REDTEAM / "submissions"
SIBLINGS = REDTEAM / "siblings"
EXPECTED: dict[str, dict] = yaml.safe_load((REDTEAM / "expected.yaml").read_text(encoding="utf-8"))
RESULTS_PREFIX = "grader-redteam-"  # hostile files know /tmp/grader-redteam-*: it must not help them
NOBODY = 65534
EQUATIONS = ("eq1", "eq9", "eq10", "eq11", "eq12", "eq13", "eq14", "eq15")
LISTENER_PORT = 47474  # tamper_network.py connects here
WATCHED = {"grader": REPO / "grader", "solutions": REPO / "solutions", "rubrics": REPO / "rubrics"}
NUMPY_DIR = Path(np.__file__).resolve().parent
TEMPORARY = [Path(p) for p in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")]


@dataclass(frozen=True)
class Run:
    case: str
    report_path: Path
    document: dict | None
    stdout: str
    stderr: str
    seconds: float
    exit_code: int
    parent_peak_bytes: int | None
    grader_pid: int


def expected_statuses(spec: dict) -> dict[str, str]:
    """Every equation's expected status: the listed ones, `passed` for the rest."""
    listed = spec.get("status") or {}
    every = listed.get("all")
    return {eq: every or listed.get(eq, "passed") for eq in EQUATIONS}


def expected_words(spec: dict) -> dict[str, str]:
    words = spec.get("words") or {}
    if "all" in words:
        return dict.fromkeys(EQUATIONS, words["all"])
    return dict(words)


def results_root() -> Path:
    """A private folder of this session's under /tmp that another uid can traverse (pytest's are 0700)."""
    root = Path(tempfile.mkdtemp(prefix=RESULTS_PREFIX, dir="/tmp"))
    root.chmod(0o755)
    return root


def prepare_folder(results_root: Path, name: str) -> tuple[Path, Path]:
    """A fresh results folder (mode 777) and a submission folder for one run."""
    folder = results_root / name
    shutil.rmtree(folder, ignore_errors=True)
    results, submission = folder / "results", folder / "submission"
    for path in (folder, results, submission):
        path.mkdir(exist_ok=True)
        path.chmod(0o777 if path == results else 0o755)
    return results, submission


def write_public_rubric(rubric: Path, results_root: Path) -> Path:
    """A copy of the fast rubric that another uid can read, in ``results_root/rubric``."""
    folder = results_root / "rubric"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    copy = folder / rubric.name
    shutil.copy(rubric, copy)
    copy.chmod(0o644)
    return copy


def run_case(case: str, spec: dict, rubric: Path, as_nobody: bool = False, source: Path | None = None) -> Run:
    """Grade submissions/<case> (or ``source``) with the CLI, in-process or as a subprocess, and time it.

    The results folder goes beside the public rubric's folder, in the session's private root.
    """
    results, folder = prepare_folder(rubric.parent.parent, case.removesuffix(".py") + ("-nobody" if as_nobody else ""))
    submission = folder / ("quiz4" + Path(source or case).suffix)  # a notebook stays one
    shutil.copy(source or SUBMISSIONS / case, submission)
    for name in spec.get("siblings", ()):
        shutil.copy(SIBLINGS / name, folder / name)
    report = results / "results.json"
    argv = [str(submission), "--rubric", str(rubric), "-o", str(report), "--quiet"]
    if "seed" in spec:
        argv += ["--seed", str(spec["seed"])]
    peak, grader_pid = None, os.getpid()
    started = time.monotonic()
    if as_nobody or spec.get("cli") == "subprocess":
        prefix = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"] if as_nobody else []
        with subprocess.Popen(
            [*prefix, sys.executable, "-m", "grader", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
        ) as proc:
            stdout, stderr = proc.communicate(timeout=120)
            code, grader_pid = proc.returncode, proc.pid
    else:
        out, err = io.StringIO(), io.StringIO()
        if spec.get("parent_peak_mb"):
            tracemalloc.start()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        finally:
            if tracemalloc.is_tracing():
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
        stdout, stderr = out.getvalue(), err.getvalue()
    seconds = time.monotonic() - started
    document = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else None
    return Run(case, report, document, stdout, stderr, seconds, code, peak, grader_pid)


# -- what a run may have left behind ----------------------------------------------------


class SandboxUids:
    """The sandbox uids a run answers for: its grader's, and any whose grader is gone (a leak).

    Other engineers' graders may be running on the same machine: a uid whose grader
    process is alive and is not ours is theirs, and not this run's business.
    """

    def __init__(self, *grader_pids: int) -> None:
        self.mine = set(grader_pids)

    def __contains__(self, uid: int) -> bool:
        if uid not in SANDBOX_UIDS:
            return False
        grader = grader_pid_of(uid)  # each grader process has a range of uids, one per submission
        return grader in self.mine or not os.path.exists(f"/proc/{grader}")


def processes_of(uids) -> list[str]:
    """Live (not zombie) processes whose real uid is in ``uids``, as "pid uid state name"."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{entry}/status").read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        uid = int(fields.get("Uid", "0").split()[0])
        state = fields.get("State", "?").split()[0]
        if uid in uids and state not in ("Z", "X"):
            found.append(f"{entry} uid={uid} state={state} {fields.get('Name', '').strip()}")
    return found


def survivors(uids, excluding: frozenset[str] = frozenset(), wait: float = 1.0) -> list[str]:
    """Processes of ``uids`` still alive after up to ``wait`` seconds (SIGKILL is not instant)."""
    deadline = time.monotonic() + wait
    while True:
        alive = [p for p in processes_of(uids) if p.split()[0] not in excluding]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file by path, bytecode caches aside (the grader writes those)."""
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if "__pycache__" not in path.parts and path.is_file()
    }


def stat_digest(folder: Path) -> str:
    """A fast fingerprint of a big tree (the venv's numpy): path, size, mtime and mode of everything."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_mode}\n".encode())
    return digest.hexdigest()


def fingerprints() -> dict[str, str]:
    """Every file of the grader, its reference and rubrics by content; numpy by a stat fingerprint."""
    prints = {path: digest for folder in WATCHED.values() for path, digest in file_digests(folder).items()}
    prints[str(NUMPY_DIR)] = stat_digest(NUMPY_DIR)
    return prints


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def full_numpy_digest() -> str:
    digest = hashlib.sha256()
    for path, file_digest in file_digests(NUMPY_DIR).items():
        digest.update(f"{path}\0{file_digest}\n".encode())
    return digest.hexdigest()


def files_owned_by(uids, roots=TEMPORARY, depth: int = 3) -> list[str]:
    """Files or folders owned by one of ``uids`` under the temporary folders and the watched trees."""
    found = []

    def walk(folder: Path, level: int) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid in uids:
                found.append(entry.path)
            if level < depth and entry.is_dir(follow_symlinks=False):
                walk(Path(entry.path), level + 1)

    for root in [*roots, *WATCHED.values(), NUMPY_DIR.parent]:
        walk(root, 0 if root in roots else -20)
    return found


def sysv_objects_of(uids) -> list[str]:
    """System V shared memory, semaphores and message queues owned by one of ``uids``."""
    found = []
    for table in ("shm", "sem", "msg"):
        try:
            lines = Path(f"/proc/sysvipc/{table}").read_text().splitlines()
        except OSError:
            continue
        header = lines[0].split()
        for line in lines[1:]:
            row = dict(zip(header, line.split()))
            if int(row.get("uid", -1)) in uids:
                found.append(f"{table} key={row.get('key')} uid={row.get('uid')}")
    return found


def report_digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


class Listener:
    """TCP listeners on 127.0.0.1 and ::1 that record every connection they accept."""

    def __init__(self, port: int = LISTENER_PORT) -> None:
        self.accepted: list[str] = []
        self.sockets: list[socket.socket] = []
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen()
                sock.settimeout(0.1)
            except OSError:
                continue
            self.sockets.append(sock)
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            for sock in self.sockets:
                try:
                    conn, address = sock.accept()
                except OSError:
                    continue
                self.accepted.append(str(address))
                conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join()
        for sock in self.sockets:
            sock.close()
