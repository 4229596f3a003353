"""examples/slurm/grade-quiz4.sbatch on a real Slurm cluster: sharded, merged, requeued, identical.

The module starts a single-node cluster (tests/slurm_cluster.py: munged, slurmctld and
slurmd on localhost with a generated slurm.conf), generates a class of 60 submissions
(correct, buggy, one that hangs), grades it once with one `grade batch`, then submits
the README's array job and its dependent merge job (`sbatch --dependency=afterok`) and
compares the merged gradebook, summary and page with the one run's, byte for byte. One
run kills an array task mid-run with `scontrol requeue`; the task starts again, resumes,
and the merge is still identical. Wall times (sbatch to the merged gradebook) are printed
for one task and two.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO, write_rubric_copy
from grader.frontends.cli import main
from slurm_cluster import SlurmCluster, unavailable

SBATCH = REPO / "examples" / "slurm" / "grade-quiz4.sbatch"
CLASS_SIZE = 60
OUTPUTS = ("gradebook.csv", "summary.json", "summary.html")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
    pytest.mark.skipif(unavailable() is not None, reason=unavailable() or ""),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm")
    running = SlurmCluster(folder)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> tuple[Path, Path]:
    """60 submissions from the fixture corpus (every correct and buggy kind, one that hangs) and a rubric."""
    base = tmp_path_factory.mktemp("class")
    sources = sorted((FIXTURES / "quiz4" / "correct").glob("*.py")) + sorted(
        (FIXTURES / "quiz4" / "buggy").glob("*.py")
    )
    folder = base / "submissions"
    folder.mkdir()
    for i in range(CLASS_SIZE):
        shutil.copy(sources[(i * 7) % len(sources)], folder / f"student_{i + 1:02d}.py")
    rubric = write_rubric_copy(base, time_limit=0.5, import_time_limit=5.0)
    return folder, rubric


@pytest.fixture(scope="module")
def one_batch(klass, tmp_path_factory) -> Path:
    """The class graded by one `grade batch`, on this machine, outside Slurm."""
    folder, rubric = klass
    outdir = tmp_path_factory.mktemp("single") / "out"
    assert main(["batch", str(folder), "-o", str(outdir), "--rubric", str(rubric), "-j", "2"]) == 0
    return outdir


def submit(cluster: SlurmCluster, klass, out: Path, tasks: int) -> tuple[str, str]:
    """The array job (its real script, with the array size and paths for this test) and the merge after it."""
    folder, rubric = klass
    out.mkdir(parents=True)
    env = {
        "QUIZ4_EXPORT": str(folder),
        "QUIZ4_RUBRIC": str(rubric),
        "QUIZ4_OUT": str(out),
        "GRADE": f"{sys.executable} -m grader",
    }
    words = ("sbatch", "--parsable", f"--array=1-{tasks}", "--cpus-per-task=1", "--chdir", str(out))
    job = cluster.run(*words, "--output", str(out / "task-%a.out"), str(SBATCH), **env).strip()
    merge = cluster.run(
        "sbatch",
        "--parsable",
        f"--dependency=afterok:{job}",
        "--chdir",
        str(out),
        "--output",
        str(out / "merge.out"),
        "--wrap",
        f"{sys.executable} -m grader batch merge {out}/shard-* -o {out}/class",
        **env,
    ).strip()
    return job, merge


def finish(cluster: SlurmCluster, job: str, merge: str, out: Path) -> tuple[dict[str, dict[str, str]], float]:
    """Wait for the array and then the merge; the array's tasks and when the last of them ended."""
    tasks = cluster.wait(job)
    array_done = time.monotonic()
    merged = cluster.wait(merge)
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(out.glob("*.out")))
    assert {t["JobState"] for t in tasks.values()} == {"COMPLETED"}, logs
    assert [t["JobState"] for t in merged.values()] == ["COMPLETED"], logs
    return tasks, array_done


def assert_same_outputs(merged: Path, single: Path) -> None:
    for name in OUTPUTS:
        assert (merged / name).read_bytes() == (single / name).read_bytes(), name


def reports(folder: Path) -> int:
    return len(list((folder / "reports").glob("*.json"))) if (folder / "reports").is_dir() else 0


@pytest.mark.parametrize("tasks", [1, 2])
def test_the_array_job_merges_to_the_gradebook_of_one_batch(cluster, klass, one_batch, tmp_path, tasks):
    started = time.monotonic()
    job, merge = submit(cluster, klass, tmp_path / "run", tasks)
    ran, array_done = finish(cluster, job, merge, tmp_path / "run")
    elapsed = time.monotonic() - started
    assert len(ran) == tasks
    shards = sorted((tmp_path / "run").glob("shard-*"))
    assert [p.name for p in shards] == [f"shard-{k}" for k in range(1, tasks + 1)]
    assert sum(reports(p) for p in shards) == CLASS_SIZE and all(reports(p) for p in shards)
    assert_same_outputs(tmp_path / "run" / "class", one_batch)
    sizes = "+".join(str(reports(p)) for p in shards)
    print(
        f"\nSlurm, {CLASS_SIZE} submissions as {tasks} task(s) x 1 CPU (shards of {sizes}): "
        f"array done {array_done - started:.1f} s, merged {elapsed:.1f} s after sbatch"
    )


def test_a_task_requeued_mid_run_resumes_and_the_merge_is_still_identical(cluster, klass, one_batch, tmp_path):
    out = tmp_path / "run"
    job, merge = submit(cluster, klass, out, 2)
    shard = out / "shard-2"
    deadline = time.monotonic() + 120
    while reports(shard) < 3 and time.monotonic() < deadline:  # well under way, far from done
        time.sleep(0.05)
    total = len(json.loads((shard / "batch.json").read_text())["submissions"])
    cluster.run("scontrol", "requeue", f"{job}_2")
    before = reports(shard)  # what the killed run had finished (it may finish one more as it stops)
    assert 3 <= before < total, f"shard 2 had {before} of {total} reports when it was requeued"
    tasks, _ = finish(cluster, job, merge, out)
    assert tasks["2"]["Restarts"] == "1" and tasks["1"]["Restarts"] == "0"
    log = (out / "task-2.out").read_text()  # Slurm truncates it when the task starts again
    resumed = re.search(rf"Graded {total} submissions \(shard 2/2\) in \S+: (\d+) this run.*, (\d+) already up to", log)
    assert "restart 1" in log and resumed, log
    assert int(resumed[2]) >= before and int(resumed[1]) + int(resumed[2]) == total, "it resumed, not started over"
    assert_same_outputs(out / "class", one_batch)
