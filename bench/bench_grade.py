"""Benchmark: wall time of `grade` on a correct submission next to a bare `import numpy`.

Target (issue 2): under 2.5x the time of `python -c "import numpy"` on the same
machine. Prints medians over several runs and the ratio; asserts nothing.

Measured as a user runs it after `pip install`: the grader's bytecode is compiled
(pip compiles it at install; an editable install writes it on the first run) and the
rubric was checked once before (grader/cache.py), both by the warm-up run. Both
commands run with PYTHONDONTWRITEBYTECODE removed from the environment, since a
machine that sets it (this project's CI does) would recompile the grader's ~7000
lines on every run, which no installed grader does. The cache lives in a temporary
folder, so the benchmark leaves nothing behind but the grader's __pycache__ folders.

`grade` runs numpy with one BLAS thread (grader/cli.py says why); the import it is
compared with runs as `python -c "import numpy"` does by default, and the same import
with one BLAS thread is printed beside it, with the ratio to that too.

    python bench/bench_grade.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def median_walls(commands: list[list[str]], runs: int, env: dict[str, str]) -> list[float]:
    """The median wall time of each command, runs interleaved so a machine's drift hits them alike."""
    for command in commands:
        wall(command, env)  # warm the page cache, write bytecode, check the rubric once
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for command, samples in zip(commands, times):
            samples.append(wall(command, env))
    return [statistics.median(samples) for samples in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["GRADER_CACHE_DIR"] = f"{tmp}/cache"
        one_thread = [sys.executable, "-c", "import os; os.environ['OPENBLAS_NUM_THREADS'] = '1'; import numpy"]
        numpy_only, numpy_one_thread, grade = median_walls(
            [
                [sys.executable, "-c", "import numpy"],
                one_thread,
                [
                    sys.executable,
                    "-m",
                    "grader",
                    str(REPO / "solutions" / "quiz4.py"),
                    "-o",
                    f"{tmp}/r.json",
                    "--quiet",
                ],
            ],
            args.runs,
            env,
        )
    print(f"python -c 'import numpy':                  {numpy_only * 1000:7.1f} ms (median of {args.runs})")
    print(f"  the same with one BLAS thread, as grade: {numpy_one_thread * 1000:7.1f} ms")
    print(f"grade correct submission:                  {grade * 1000:7.1f} ms (median of {args.runs})")
    print(f"ratio grade / import numpy: {grade / numpy_only:.2f}x (target < 2.5x)")
    print(f"ratio grade / import numpy with one BLAS thread: {grade / numpy_one_thread:.2f}x")


if __name__ == "__main__":
    main()
