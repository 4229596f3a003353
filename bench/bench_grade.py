"""Benchmark: wall time of `grade` on a correct submission next to a bare `import numpy`.

Targets: under 2.5x the time of `python -c "import numpy"` on the same machine
(issue 2), and at most 1.0x the wall time of the in-process, unsandboxed unittest
autograder a course would write (bench/unittest_autograder.py: the same 8 functions,
5 cases each; issue 15). Prints medians over several runs, interleaved, and the
ratios; asserts nothing.

Measured as a user runs it after `pip install`: the grader's bytecode is compiled
(pip compiles it at install; an editable install writes it on the first run) and the
rubric was checked once before (grader/assignment/cache.py), both by the warm-up run. Both
commands run with PYTHONDONTWRITEBYTECODE removed from the environment, since a
machine that sets it (this project's CI does) would recompile the grader's ~7000
lines on every run, which no installed grader does. The cache lives in a temporary
folder, so the benchmark leaves nothing behind but the grader's __pycache__ folders.

`grade` runs numpy with one BLAS thread (grader/frontends/cli.py says why); the import it is
compared with runs as `python -c "import numpy"` does by default, and the same import
with one BLAS thread is printed beside it, with the ratio to that too.

It also prints the costs the grader's design avoids, which its comments name without
figures (figures in comments go stale; here they are measured): PyYAML and jsonschema's
import (what the rubric cache saves), ``numpy.random``'s load (the zygote leaves it out),
the interpreter's teardown after numpy (``grade`` leaves with ``os._exit``), and the CPU
of OpenBLAS's thread pool during numpy's import (``grade`` runs one BLAS thread).

It also times `grade` on the correct `layers` submission (solutions/layers.py against
rubrics/layers.yaml: 22 items of tuple outputs, caches and parameter dicts; issue 13's
target: under 1 s), interleaved with the rest; the line says it was skipped when the
rubric is not in the tree.

Other work on the machine slows everything measured here; the load average is printed
before and after.

    python bench/bench_grade.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAYERS_RUBRIC = REPO / "rubrics" / "layers.yaml"
LAYERS_SOLUTION = REPO / "solutions" / "layers.py"


def wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def cpu(command: list[str], env: dict[str, str]) -> float:
    """User and system CPU seconds of one run of ``command`` (it is this process's only child then)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_cpu(command: list[str], runs: int, env: dict[str, str]) -> float:
    return statistics.median(cpu(command, env) for _ in range(runs))


def avoided_costs(runs: int, env: dict[str, str]) -> list[str]:
    """What the grader's design avoids, each measured as the difference of two commands."""
    py = sys.executable
    numpy_exit = [py, "-c", "import numpy"]
    numpy_os_exit = [py, "-c", "import os, numpy; os._exit(0)"]
    bare, schema, numpy_fast_exit, numpy_random, teardown = median_walls(
        [
            [py, "-c", "import os; os._exit(0)"],
            [py, "-c", "import os, yaml, jsonschema; os._exit(0)"],
            numpy_os_exit,
            [py, "-c", "import os, numpy, numpy.random; os._exit(0)"],
            numpy_exit,
        ],
        runs,
        env,
    )
    one = {**env, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pool_cpu = median_cpu(numpy_os_exit, runs, env) - median_cpu(numpy_os_exit, runs, one)
    return [
        f"import yaml + jsonschema (the rubric cache saves it):  {(schema - bare) * 1000:7.1f} ms",
        f"import numpy.random beyond numpy (the zygote skips it):    {(numpy_random - numpy_fast_exit) * 1000:7.1f} ms",
        f"teardown after numpy at exit (grade's os._exit skips it): {(teardown - numpy_fast_exit) * 1000:7.1f} ms",
        f"CPU of the BLAS thread pool in numpy's import (one thread saves it): {pool_cpu * 1000:7.1f} ms",
    ]


def median_walls(commands: list[list[str]], runs: int, env: dict[str, str]) -> list[float]:
    """The median wall time of each command, runs interleaved so a machine's drift hits them alike."""
    for command in commands:
        wall(command, env)  # warm the page cache, write bytecode, check the rubric once
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for command, samples in zip(commands, times):
            samples.append(wall(command, env))
    return [statistics.median(samples) for samples in times]


def grade_command(submission: Path, report: str, rubric: Path | None = None) -> list[str]:
    rubric_args = [] if rubric is None else ["--rubric", str(rubric)]
    return [sys.executable, "-m", "grader", str(submission), *rubric_args, "-o", report, "--quiet"]


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"load average before: {load_average()} (other work on the machine slows every figure below)")
    with_layers = LAYERS_RUBRIC.is_file() and LAYERS_SOLUTION.is_file()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["GRADER_CACHE_DIR"] = f"{tmp}/cache"
        one_thread = [sys.executable, "-c", "import os; os.environ['OPENBLAS_NUM_THREADS'] = '1'; import numpy"]
        commands = [
            [sys.executable, "-c", "import numpy"],
            one_thread,
            [
                sys.executable,
                str(REPO / "bench" / "unittest_autograder.py"),
                str(REPO / "solutions" / "quiz4.py"),
                f"{tmp}/baseline.json",
            ],
            grade_command(REPO / "solutions" / "quiz4.py", f"{tmp}/r.json"),
        ]
        if with_layers:
            commands.append(grade_command(LAYERS_SOLUTION, f"{tmp}/layers.json", LAYERS_RUBRIC))
        numpy_only, numpy_one_thread, baseline, grade, *layers = median_walls(commands, args.runs, env)
        avoided = avoided_costs(args.runs, env)
    print(f"python -c 'import numpy':                  {numpy_only * 1000:7.1f} ms (median of {args.runs})")
    print(f"  the same with one BLAS thread, as grade: {numpy_one_thread * 1000:7.1f} ms")
    print(f"unittest autograder, no sandbox (bench/unittest_autograder.py): {baseline * 1000:7.1f} ms")
    print(f"grade correct submission:                  {grade * 1000:7.1f} ms (median of {args.runs})")
    if layers:
        print(f"grade correct layers submission:           {layers[0] * 1000:7.1f} ms (target < 1000 ms, issue 13)")
    else:
        print(f"grade correct layers submission: skipped ({LAYERS_RUBRIC.relative_to(REPO)} is not in this tree yet)")
    print(f"ratio grade / unittest autograder: {grade / baseline:.2f}x (target <= 1.0x, issue 15)")
    print(f"ratio grade / import numpy: {grade / numpy_only:.2f}x (target < 2.5x)")
    print(f"ratio grade / import numpy with one BLAS thread: {grade / numpy_one_thread:.2f}x")
    print("costs the design avoids (medians; differences of two commands):")
    for line in avoided:
        print("  " + line)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
