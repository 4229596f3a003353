"""``grade batch``: grade a whole class in parallel and resumably, with a gradebook and a summary page.

    grade batch INPUT -o OUTDIR [-j N] [--rubric R] [--force] [--shard K/N] [--only ID]...
    grade batch merge SHARD_OUTDIR... -o OUTDIR

INPUT is a folder of ``.py`` files, a folder of per-student folders, or a Gradescope
export (zip or folder); see ``roster.py``. What OUTDIR receives is in ``outdir.py``.

How it runs. A pool of grader worker processes (``pool.py``, ``worker.py``) takes one
submission at a time and calls ``grade_submission``, which runs the submission in a
sandboxed child process of its own with its own limits: workers never run student
code. The main process only hands out work, watches for workers that die or overrun
every limit (that submission gets a ``grader_error`` report and a fresh worker takes
over), and draws progress (``progress.py``).

Resumable. A batch killed at any point (Ctrl-C, ``kill -9``, a lost cluster node)
leaves no half-written file, and its workers stop with it. Rerunning the same command
skips submissions whose report matches the file's sha256, the rubric's sha256 and the
grader version; ``--force`` regrades everything, ``--only ID`` regrades that one
submission (and nothing else). Gradebook and summary are rebuilt from the reports, so
a resumed run's are the same as an uninterrupted run's.

Exit codes: 0 when every submission has its report; 1 when the grader itself failed on
some submission (its report says so; rerun to retry it); 2 for usage, input or rubric
errors; 130 when interrupted (rerun the same command to finish).
"""

from __future__ import annotations

import difflib
import os
import sys
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from grader.assignment.reference import load_mistakes, load_reference
from grader.assignment.rubric import Rubric, load_rubric, resolve_rubric_path
from grader.errors import BatchError, UsageError
from grader.files import write_json_atomic
from grader.frontends.batch.gradebook import Row, SubmissionStatus, format_mean, format_points
from grader.frontends.batch.merge import merge_folders
from grader.frontends.batch.outdir import (
    MANIFEST,
    clear_outputs,
    exclusive,
    finish,
    manifest_for,
    missing_reports,
    plan,
    report_name,
    sweep_temporaries,
)
from grader.frontends.batch.pool import run_pool
from grader.frontends.batch.progress import Progress, format_duration
from grader.frontends.batch.roster import Submission, find_submissions
from grader.frontends.batch.tasks import Outcome, Shard, Task, parse_shard
from grader.frontends.cli import Parser


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def batch_parser() -> Parser:
    parser = Parser(
        prog="grade batch",
        description="Grade a whole class in parallel: reports, a gradebook and a summary page. "
        "Rerun the same command to resume; `grade batch merge` joins shards.",
    )
    parser.add_argument("input", help="a folder of .py files, a folder of per-student folders, or a Gradescope export")
    parser.add_argument("-o", "--output", required=True, help="the folder for reports, gradebook.csv and summary.html")
    parser.add_argument("-j", "--jobs", type=int, help=f"parallel workers (default: the CPU count, {default_jobs()})")
    parser.add_argument("--rubric", help="a rubric file, or the name of a bundled rubric (default: the bundled one)")
    parser.add_argument("--force", action="store_true", help="regrade every submission, even those up to date")
    parser.add_argument("--shard", metavar="K/N", help="grade only the K-th of N deterministic slices of the class")
    parser.add_argument(
        "--only",
        action="append",
        metavar="ID",
        help="regrade only this submission (its id in the gradebook), even if up to date; may be repeated",
    )
    return parser


def merge_parser() -> Parser:
    parser = Parser(prog="grade batch merge", description="Join the outputs of sharded batches into one.")
    parser.add_argument("outdirs", nargs="+", metavar="OUTDIR", help="the -o folder of each shard")
    parser.add_argument("-o", "--output", required=True, help="the folder for the joined reports and gradebook")
    return parser


def check_only(
    only: Collection[str], everyone: Sequence[Submission], chosen: Sequence[Submission], shard: Shard | None
) -> None:
    """Every ``--only`` id names a submission of this run; else a BatchError naming the closest id."""
    ids = [s.id for s in everyone]
    in_run = {s.id for s in chosen}
    for sub_id in only:
        if sub_id in in_run:
            continue
        if sub_id in ids:
            raise BatchError(f"--only {sub_id}: that submission is not in shard {shard}")
        close = difflib.get_close_matches(sub_id, ids, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; ids are the gradebook's first column"
        raise BatchError(f"--only {sub_id}: no submission has that id{hint}")


def conclude(rows: Sequence[Row], outdir: Path, headline: str) -> int:
    """Print what happened and where the results are; the exit code."""
    graded = [r.total for r in rows if r.total is not None]
    max_score = format_points(rows[0].max_score) if rows else "?"
    look = sum(r.status != SubmissionStatus.GRADED for r in rows)
    errors = sum(r.status == SubmissionStatus.GRADER_ERROR for r in rows)
    print(headline)
    if graded:
        mean = format_mean(sum(graded) / len(graded))
        print(f"Mean {mean}/{max_score} over {len(graded)} graded; {look} need a human look (see the summary).")
    print(f"Gradebook: {outdir / 'gradebook.csv'}\nSummary:   {outdir / 'summary.html'}")
    if errors:
        print(f"{errors} submission(s) hit a grader error; rerun the same command to retry them.", file=sys.stderr)
    return 1 if errors else 0


def conclude_unfinished(outcomes: Sequence[Outcome], missing: Sequence[str], outdir: Path, headline: str) -> int:
    """After ``--only`` in a batch folder where others have no report yet: the reports, no gradebook, and why."""
    print(headline)
    for outcome in outcomes:
        print(f"Report:    {outdir / report_name(outcome.id)}")
    print(
        f"No gradebook yet: {len(missing)} other submission(s) have no report; run the command without --only "
        "to grade them."
    )
    return 1 if any(o.status == SubmissionStatus.GRADER_ERROR for o in outcomes) else 0


def plan_run(
    submissions: Sequence[Submission], outdir: Path, rubric: Rubric, force: bool, only: frozenset[str]
) -> tuple[list[Task], int, int]:
    """The tasks of this run, how many reports are up to date, and how many are out of date but left alone (--only)."""
    if not only:
        return (*plan(submissions, outdir, rubric, forced={s.id for s in submissions} if force else ()), 0)
    tasks, _ = plan([s for s in submissions if s.id in only], outdir, rubric, forced=only)
    others, done = plan([s for s in submissions if s.id not in only], outdir, rubric)
    return tasks, done, sum(task.report.exists() for task in others)


def run_batch(argv: Sequence[str]) -> int:
    args = batch_parser().parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("grade batch: -j must be at least 1")
    shard = parse_shard(args.shard) if args.shard else None
    only = frozenset(args.only or ())
    rubric = load_rubric(resolve_rubric_path(args.rubric))
    load_reference(rubric)  # a broken reference or catalog stops the batch before it starts, not 200 times
    load_mistakes(rubric)
    outdir, source = Path(args.output), Path(args.input)
    jobs = args.jobs or default_jobs()
    with exclusive(outdir):
        sweep_temporaries(outdir)
        everyone, _ = find_submissions(source, rubric.submission_filename, outdir / "submissions", outdir)
        submissions = [s for s in everyone if shard.contains(s.id)] if shard is not None else everyone
        check_only(only, everyone, submissions, shard)
        manifest = manifest_for(rubric, source, shard, submissions)
        write_json_atomic(outdir / MANIFEST, manifest)
        tasks, done, stale = plan_run(submissions, outdir, rubric, args.force, only)
        if tasks:  # an interrupted run must not leave the previous run's gradebook looking current
            clear_outputs(outdir)
        progress = Progress(len(tasks) if only else len(submissions), sys.stderr, done=0 if only else done)
        outcomes: list[Outcome] = []

        def on_done(outcome: Outcome) -> None:
            outcomes.append(outcome)
            progress.advance(outcome.describe())

        started = time.monotonic()
        try:
            run_pool(tasks, jobs, rubric, on_done)
        finally:
            progress.close()
        elapsed = time.monotonic() - started
        missing = missing_reports(outdir, manifest) if only else []
        rows = [] if missing else finish(outdir, manifest)
    where = f" (shard {shard})" if shard else ""
    if only:
        headline = f"Regraded {', '.join(sorted(only))} of {len(submissions)} submissions{where}"
        headline += f" in {format_duration(elapsed)}."
        if stale:
            headline += f" {stale} other report(s) are out of date: rerun without --only to regrade them."
        return conclude_unfinished(outcomes, missing, outdir, headline) if missing else conclude(rows, outdir, headline)
    rate = f" at {len(tasks) / elapsed:.1f}/s" if tasks and elapsed > 0 else ""
    headline = (
        f"Graded {len(submissions)} submissions{where} in {format_duration(elapsed)}: {len(tasks)} this run"
        f"{rate} with -j {jobs}, {done} already up to date."
    )
    return conclude(rows, outdir, headline)


def run_merge(argv: Sequence[str]) -> int:
    args = merge_parser().parse_args(argv)
    sources = [Path(p) for p in args.outdirs]
    dest = Path(args.output)
    rows = merge_folders(sources, dest)
    return conclude(rows, dest, f"Merged {len(sources)} batch folders: {len(rows)} submissions.")


def run_batch_command(argv: Sequence[str]) -> int:
    """``grade batch ...``, ``grade batch merge ...`` and ``grade batch export ...``; GraderErrors go to the CLI (exit 2)."""
    argv = list(argv)
    try:
        if argv and argv[0] == "merge" and not Path("merge").exists():
            return run_merge(argv[1:])
        if argv and argv[0] == "export" and not Path("export").exists():
            from grader.frontends.batch.lms import run_export  # only when exporting: csv and the matching

            return run_export(argv[1:])
        return run_batch(argv)
    except KeyboardInterrupt:
        print("\ninterrupted: finished reports are kept; rerun the same command to finish the batch", file=sys.stderr)
        return 130
