"""Benchmark ``grade batch`` against itself at -j1 and -j2, against a shell loop of ``grade``, and as a class grows.

    python bench/bench_batch.py [--count 200] [--hanging 4] [--jobs 1 2] [--loop all|K|0] [--rubric R]
    python bench/bench_batch.py --count 1000 --hanging 4 --jobs 2 --loop 0     # issue 15's class of 1,000
    python bench/bench_batch.py --growth 100 1000 5000 [--jobs 2]              # cost growth
    python bench/bench_batch.py --growth 100 1000 --rubric rubrics/layers.yaml  # the same for layers

Generates COUNT submissions (the fixtures of the rubric's corpus, tests/fixtures/NAME
for rubrics/NAME.yaml, each made unique by a comment, so every one is really graded),
HANGING of which never return (quiz 4's grad_H; a corpus without such a fixture gets
none), and times:

* ``grade batch`` at each -j (a fresh output folder each, so nothing is skipped);
* ``grade FILE`` once per file in a bash loop (all files, a sample of K files whose
  rate is extrapolated, or none with ``--loop 0``: the loop is the slow part).

Targets (issue 15; issue 6's were 10/s per core, 1.7 and 3x the loop):

* at least 40 normal quiz-4 submissions per second per core at -j1: the rate of the
  normal ones, from the -j1 run less the time the hanging ones took (their reports'
  timings);
* a -j2/-j1 speed-up of at least 1.8;
* a class of 1,000 with a few hanging graded in under 15 s at -j2 on 2 cores, the
  hanging ones costing only their limits (their seconds are printed beside the limit).

``--growth`` grades classes of each size (no hanging ones) at the last -j given and
prints the time per submission and the peak resident memory (VmHWM, sampled from
/proc every 0.1 s) of the busiest worker and of the main process: flat figures per
submission mean the batch does not grow with the class.

CPU seconds are those of the whole process tree. The machine's load average is printed
before and after: other work on the machine lowers every figure. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "quiz4"
PR_SET_CHILD_SUBREAPER = 36
HANGING = FIXTURES / "buggy" / "eq12_timeout.py"


def make_class(folder: Path, count: int, hanging: int, corpus: Path = FIXTURES) -> list[str]:
    """COUNT unique submissions, the hanging ones spread evenly; returns the ids of the hanging ones."""
    normal = sorted((corpus / "correct").glob("*.py")) + sorted(
        p for p in (corpus / "buggy").glob("*.py") if p != HANGING
    )
    hanging = hanging if corpus == FIXTURES else 0
    every = count // hanging if hanging else count + 1
    hung = []
    for i in range(count):
        sub_id = f"s{i:04d}"
        if hanging and i % every == every // 2 and len(hung) < hanging:
            source, _ = HANGING, hung.append(sub_id)
        else:
            source = normal[i % len(normal)]
        (folder / f"{sub_id}.py").write_text(source.read_text() + f"\n# submission {i}\n")
    return hung


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reap_orphans(patience: float = 5.0) -> None:
    """Wait for processes that outlived the command (the forkserver and its workers) so their CPU counts."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds of a command, and CPU seconds of every process it started (we are their subreaper)."""
    cpu, started = children_cpu(), time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - started
    reap_orphans()
    return wall, children_cpu() - cpu


def hanging_seconds(outdir: Path, hung: list[str]) -> float:
    return sum(json.loads((outdir / "reports" / f"{h}.json").read_text())["timings"]["total_seconds"] for h in hung)


def hanging_limit(rubric: str) -> float:
    """What hanging in one function costs by the rules: one call's time limit (the function's later cases are skipped)."""
    sys.path.insert(0, str(REPO))
    from grader.assignment.rubric import load_rubric

    settings = load_rubric(rubric).settings
    return settings.time_limit


def spawn_cost(samples: int = 10) -> float:
    """CPU seconds to start a child interpreter and import numpy: what the sandbox's zygote saves per child."""
    command = [sys.executable, "-I", "-c", "import numpy"]
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    cpu = children_cpu()
    for _ in range(samples):
        subprocess.run(command, check=True, env=env)
    return (children_cpu() - cpu) / samples


class TreeMemory:
    """Peak resident memory (VmHWM) of a batch's main process and of each of its workers, sampled from /proc.

    The workers are the forkserver's children; the sandboxed children of a worker (the
    zygote's forks) are not counted. VmHWM only grows, so the last sample of a process
    is its peak up to then.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.main_kib, self.workers_kib = 0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def children() -> dict[int, list[int]]:
        tree: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                tree.setdefault(ppid, []).append(int(entry.name))
        return tree

    @staticmethod
    def peak_kib(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def sample(self) -> None:
        self.main_kib = max(self.main_kib, self.peak_kib(self.pid))
        tree = self.children()
        for server in tree.get(self.pid, ()):
            try:
                if b"forkserver" not in Path(f"/proc/{server}/cmdline").read_bytes():
                    continue
            except OSError:
                continue
            for worker in tree.get(server, ()):
                self.workers_kib[worker] = max(self.workers_kib.get(worker, 0), self.peak_kib(worker))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def corpus_of(rubric: str) -> Path:
    """The fixture corpus of a bundled rubric: tests/fixtures/NAME for rubrics/NAME.yaml (quiz 4's otherwise)."""
    corpus = REPO / "tests" / "fixtures" / Path(rubric).stem
    return corpus if (corpus / "correct").is_dir() else FIXTURES


def batch_command(source: Path, outdir: Path, rubric: str, jobs: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "grader",
        "batch",
        str(source),
        "-o",
        str(outdir),
        "--rubric",
        rubric,
        "-j",
        str(jobs),
    ]


def growth(work: Path, sizes: list[int], jobs: int, rubric: str) -> None:
    """Time per submission and peak memory per worker and of the main process, for classes of each size."""
    print(f"cost growth at -j{jobs} (no hanging submissions); memory is VmHWM sampled every 0.1 s")
    print(f"{'class':>6} {'wall s':>8} {'ms/sub':>8} {'CPU ms/sub':>11} {'worker peak MB':>15} {'main peak MB':>13}")
    for size in sizes:
        source = work / f"growth-{size}"
        source.mkdir()
        make_class(source, size, 0, corpus_of(rubric))
        cpu, started = children_cpu(), time.monotonic()
        process = subprocess.Popen(
            batch_command(source, work / f"growth-out-{size}", rubric, jobs),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        memory = TreeMemory(process.pid)
        process.wait()
        memory.stop()
        wall = time.monotonic() - started
        reap_orphans()
        cpu = children_cpu() - cpu
        worker = max(memory.workers_kib.values(), default=0) / 1024
        print(
            f"{size:>6} {wall:>8.1f} {1000 * wall / size:>8.1f} {1000 * cpu / size:>11.1f} "
            f"{worker:>15.1f} {memory.main_kib / 1024:>13.1f}",
            flush=True,
        )
        shutil.rmtree(source, ignore_errors=True)


def shell_loop(work: Path, source: Path, hung: list[str], count: int, loop: str, rubric: str) -> float:
    """The rate of ``grade FILE`` in a bash loop, on all files or a sample with the same share of hanging ones."""
    files = sorted(source.glob("*.py"))
    if loop != "all":
        size = min(len(files), int(loop))
        stuck = [f for f in files if f.stem in hung][: round(size * len(hung) / count)]
        files = [f for f in files if f.stem not in hung][: size - len(stuck)] + stuck
    listing = work / "loop-files"
    listing.write_text("".join(f"{f}\n" for f in files))
    loop_out = work / "loop-out"
    loop_out.mkdir()
    grade = shutil.which("grade") or f"{sys.executable} -m grader"
    script = (
        f'while read -r f; do {grade} "$f" --rubric {rubric} -o {loop_out}/"$(basename "$f")".json '
        "--quiet >/dev/null || exit 1; done < " + str(listing)
    )
    wall, cpu = timed(["bash", "-c", script])
    rate = len(files) / wall
    sampled = "" if len(files) == count else f" (a sample of {len(files)}, incl. hanging ones in proportion)"
    print(f"shell loop of grade: {wall:6.1f} s  {rate:5.2f} sub/s  CPU {cpu / len(files):.3f} s/sub{sampled}")
    return rate


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--hanging", type=int, default=4)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--loop", default="all", help="run the shell loop on all files, a sample of K files, or 0: none"
    )
    parser.add_argument("--rubric", default=str(REPO / "rubrics" / "quiz4.yaml"))
    parser.add_argument("--growth", type=int, nargs="+", metavar="SIZE", help="only the cost growth, for these sizes")
    args = parser.parse_args()
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans come to us, so we can count them
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        print(f"rubric {args.rubric}, corpus {corpus_of(args.rubric).relative_to(REPO)}, {os.cpu_count()} CPUs")
        print(f"load average before: {load_average()} (other work on the machine lowers every figure below)")
        if args.growth:
            growth(work, args.growth, args.jobs[-1], args.rubric)
            print(f"load average after: {load_average()}")
            return 0
        source = work / "class"
        source.mkdir()
        hung = make_class(source, args.count, args.hanging, corpus_of(args.rubric))
        normal = args.count - len(hung)
        print(f"{args.count} submissions ({len(hung)} hanging)")
        rates, walls = {}, {}
        for jobs in args.jobs:
            outdir = work / f"out-j{jobs}"
            walls[jobs], cpu = timed(batch_command(source, outdir, args.rubric, jobs))
            rates[jobs] = args.count / walls[jobs]
            stuck = hanging_seconds(outdir, hung)
            line = f"grade batch -j{jobs}: {walls[jobs]:6.1f} s  {rates[jobs]:5.2f} sub/s  CPU {cpu / args.count:.3f} s/sub"
            if jobs == 1:
                per_core = normal / max(1e-9, walls[jobs] - stuck)
                line += (
                    f"  | normal only: {per_core:.2f} sub/s per core (target >= 40; hanging ones took {stuck:.1f} s)"
                )
            elif hung:
                line += f"  | hanging ones: {stuck / len(hung):.1f} s each"
            print(line, flush=True)
        if hung:
            print(
                f"a hanging one's limit: {hanging_limit(args.rubric):.1f} s (one call's time limit) + its normal grading"
            )
        if 2 in walls:
            target = " (target < 15 s for a class of 1,000)" if args.count >= 1000 else ""
            print(f"class of {args.count} with {len(hung)} hanging at -j2: {walls[2]:.1f} s{target}")
        if 1 in rates and 2 in rates:
            print(f"speed-up -j2/-j1: {rates[2] / rates[1]:.2f}  (target >= 1.8)")
        if args.loop != "0":
            loop_rate = shell_loop(work, source, hung, args.count, args.loop, args.rubric)
            best = max(rates)
            print(f"batch -j{best} vs loop: {rates[best] / loop_rate:.2f}x;  ", end="")
            print(f"batch -j1 vs loop: {rates.get(1, float('nan')) / loop_rate:.2f}x")
        print(f"child start-up the zygote saves (python -I + numpy): {spawn_cost():.3f} CPU s per child")
        print(f"load average after: {load_average()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
