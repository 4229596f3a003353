"""Benchmark ``grade batch`` against itself at -j1 and -j2 and against a shell loop of ``grade``.

    python bench/bench_batch.py [--count 200] [--hanging 4] [--loop all|K] [--rubric R]

Generates COUNT submissions (the quiz-4 fixtures, each made unique by a comment, so
every one is really graded), HANGING of which never return from grad_H, and times:

* ``grade batch`` at -j1 and -j2 (a fresh output folder each, so nothing is skipped);
* ``grade FILE`` once per file in a bash loop (all files, or a sample of K files whose
  rate is extrapolated: the loop is the slow part of the benchmark).

Targets (issue 6): at least 10 normal submissions per second per core, a -j2/-j1
speed-up of at least 1.7, and the batch at least 3x faster than the loop. The per-core
rate of normal submissions is taken from the -j1 run, less the time the hanging ones
took (their reports' timings). CPU seconds are those of the whole process tree.
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "quiz4"
PR_SET_CHILD_SUBREAPER = 36
HANGING = FIXTURES / "buggy" / "eq12_timeout.py"


def make_class(folder: Path, count: int, hanging: int) -> list[str]:
    """COUNT unique submissions, the hanging ones spread evenly; returns the ids of the hanging ones."""
    normal = sorted((FIXTURES / "correct").glob("*.py")) + sorted(
        p for p in (FIXTURES / "buggy").glob("*.py") if p != HANGING
    )
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


def spawn_cost(samples: int = 10) -> float:
    """CPU seconds to start a child interpreter and import numpy: what the sandbox's zygote saves per child."""
    command = [sys.executable, "-I", "-c", "import numpy"]
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    cpu = children_cpu()
    for _ in range(samples):
        subprocess.run(command, check=True, env=env)
    return (children_cpu() - cpu) / samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--hanging", type=int, default=4)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--loop", default="all", help="run the shell loop on all files, or on a sample of K files")
    parser.add_argument("--rubric", default=str(REPO / "rubrics" / "quiz4.yaml"))
    args = parser.parse_args()
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans come to us, so we can count them
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        source = work / "class"
        source.mkdir()
        hung = make_class(source, args.count, args.hanging)
        normal = args.count - len(hung)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{args.count} submissions ({len(hung)} hanging), rubric {args.rubric}, {os.cpu_count()} CPUs")
        print(f"load average before: {load} (other work on the machine lowers every figure below)")
        rates = {}
        for jobs in args.jobs:
            outdir = work / f"out-j{jobs}"
            command = [sys.executable, "-m", "grader", "batch", str(source), "-o", str(outdir), "--rubric", args.rubric]
            wall, cpu = timed([*command, "-j", str(jobs)])
            rates[jobs] = args.count / wall
            line = f"grade batch -j{jobs}: {wall:6.1f} s  {rates[jobs]:5.2f} sub/s  CPU {cpu / args.count:.3f} s/sub"
            if jobs == 1:
                stuck = hanging_seconds(outdir, hung)
                per_core = normal / max(1e-9, wall - stuck)
                line += f"  | normal only: {per_core:.2f} sub/s per core (hanging ones took {stuck:.1f} s)"
            print(line, flush=True)
        files = sorted(source.glob("*.py"))
        if args.loop != "all":  # a sample with the same share of hanging submissions
            size = min(len(files), int(args.loop))
            stuck = [f for f in files if f.stem in hung][: round(size * len(hung) / args.count)]
            files = [f for f in files if f.stem not in hung][: size - len(stuck)] + stuck
        listing = work / "loop-files"
        listing.write_text("".join(f"{f}\n" for f in files))
        loop_out = work / "loop-out"
        loop_out.mkdir()
        grade = shutil.which("grade") or f"{sys.executable} -m grader"
        script = (
            f'while read -r f; do {grade} "$f" --rubric {args.rubric} -o {loop_out}/"$(basename "$f")".json '
            "--quiet >/dev/null || exit 1; done < " + str(listing)
        )
        wall, cpu = timed(["bash", "-c", script])
        loop_rate = len(files) / wall
        sampled = "" if len(files) == args.count else f" (a sample of {len(files)}, incl. hanging ones in proportion)"
        print(f"shell loop of grade: {wall:6.1f} s  {loop_rate:5.2f} sub/s  CPU {cpu / len(files):.3f} s/sub{sampled}")
        if 1 in rates and 2 in rates:
            print(f"speed-up -j2/-j1: {rates[2] / rates[1]:.2f}  (target >= 1.7)")
        best = max(rates)
        print(f"batch -j{best} vs loop: {rates[best] / loop_rate:.2f}x  (target >= 3);  ", end="")
        print(f"batch -j1 vs loop: {rates.get(1, float('nan')) / loop_rate:.2f}x")
        print(f"child start-up the zygote saves (python -I + numpy): {spawn_cost():.3f} CPU s per child")
        print("load average after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
