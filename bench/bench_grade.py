"""Benchmark: wall time of `grade` on a correct submission next to a bare `import numpy`.

Target (issue 2): under 2.5x the time of `python -c "import numpy"` on the same
machine. Prints medians over several runs and the ratio; asserts nothing.

    python bench/bench_grade.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def median_wall(command: list[str], runs: int) -> float:
    wall(command)  # warm the page cache
    return statistics.median(wall(command) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        numpy_only = median_wall([sys.executable, "-c", "import numpy"], args.runs)
        grade = median_wall(
            [sys.executable, "-m", "grader", str(REPO / "solutions" / "quiz4.py"), "-o", f"{tmp}/r.json", "--quiet"],
            args.runs,
        )
    print(f"python -c 'import numpy': {numpy_only * 1000:7.1f} ms (median of {args.runs})")
    print(f"grade correct submission: {grade * 1000:7.1f} ms (median of {args.runs})")
    print(f"ratio grade / import numpy: {grade / numpy_only:.2f}x (target < 2.5x)")


if __name__ == "__main__":
    main()
