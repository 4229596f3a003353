"""Grading one submission: cases in, sandboxed calls, checks, scores, a Report out.

This is the library function behind ``grade FILE``; the CLI, the Gradescope runner
and batch grading all call ``grade_submission``.

Order of calls: every equation's visible cases first, then the ``repeat_call`` probe's
second calls (made as hidden calls), then the hidden cases. Output the submission prints
is shown to the student only up to the first hidden call, so a print (or a daemon
printing later) can't carry a hidden input into the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from grader.assignment.rubric import Equation, Rubric
from grader.errors import SubmissionFileError
from grader.grading import feedback
from grader.grading.case import Case, plan_inputs
from grader.grading.cases import build_cases, derive_hidden_seed
from grader.grading.chain import check_outputs, diagnose_chain
from grader.grading.checks import CaseStatus, CheckResult, check_case, check_repeat
from grader.grading.diagnosis import diagnose
from grader.grading.forbidden import affected, find_forbidden_imports
from grader.grading.notebook import (
    MAX_SUBMISSION_BYTES,
    SubmissionSource,
    is_notebook,
    max_bytes,
    module_filename,
    submission_source,
)
from grader.grading.preparation import Preparation, call_count, prepare
from grader.grading.report import Report, SeedInfo
from grader.grading.scoring import score_equation
from grader.grading.structure import is_notebook_json, placements
from grader.sandbox.host import SandboxHost
from grader.sandbox.outcomes import CallOutcome, CallStatus, Limits, Protections
from grader.sandbox.session import Sandbox

__all__ = ["MAX_SUBMISSION_BYTES", "grade_submission", "read_submission"]
SHOWN_OUTPUT_BYTES = 4000


def read_submission(path: Path) -> bytes:
    """The submission's bytes; a path that is not a readable, regular file is a usage error, not a grade.

    Opened without blocking and checked on the open descriptor, so a FIFO can't hang the
    grader and ``/dev/zero`` can't fill its memory: at most the size limit is read.
    """
    limit = max_bytes(path)
    folder = SubmissionFileError(f"{path}: is a folder, expected a .py file or a notebook")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError as err:
        raise folder from err
    except OSError as err:
        raise SubmissionFileError(f"{path}: cannot read the submission ({err.strerror})") from err
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise folder
        if not stat.S_ISREG(mode):
            raise SubmissionFileError(
                f"{path}: is not a regular file ({file_kind(mode)}), expected a .py file or a notebook"
            )
        try:
            data = handle.read(limit + 1)
        except OSError as err:
            raise SubmissionFileError(f"{path}: cannot read the submission ({err.strerror})") from err
    if len(data) > limit:
        kind = "notebook" if is_notebook(path) else "file"
        raise SubmissionFileError(f"{path}: the {kind} is over {limit // 1024 // 1024} MiB")
    return data  # a notebook saved as .py is graded, and its report says so at the top (NOTEBOOK_NOTICE)


def file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a pipe"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return kind
    return "a socket" if stat.S_ISSOCK(mode) else "not a file"


def limits_for(rubric: Rubric) -> Limits:
    s = rubric.settings
    return Limits(
        time_limit=s.time_limit,
        import_time_limit=s.import_time_limit,
        memory_bytes=s.memory_limit_mb * 1024 * 1024,
        output_bytes=s.output_limit_kb * 1024,
        processes=s.processes_limit,
        submission_seconds=s.submission_time_limit,
        submission_memory_bytes=s.submission_memory_mb * 1024 * 1024,
    )


def hidden_paths_for(rubric: Rubric) -> list[Path]:
    """Folders the child must not see: where the rubric, reference and catalog live."""
    paths = {rubric.path.parent, rubric.reference.parent}
    if rubric.mistakes_module is not None:
        paths.add(rubric.mistakes_module.parent)
    return sorted(paths)


def call_order(rubric: Rubric, cases: Mapping[str, tuple[Case, ...]]) -> list[tuple[Equation, Case, bool]]:
    """Every call of a grade in order, as (item, case, is the ``repeat_call`` probe's second call).

    Every visible case, then the repeat_call probe's calls, then every hidden case:
    ``preparation.call_count`` is its length, known before the cases are built.
    """
    visible, hidden = (
        [(eq, case, False) for eq in rubric.equations for case in cases[eq.id] if case.visible == phase]
        for phase in (True, False)
    )
    # The repeat_call probe calls each equation's first (visible) case again once every visible
    # case has run, as a hidden call: a submission can't tell it from one, and what it prints
    # there is not shown.
    repeats = [
        (eq, cases[eq.id][0], True)
        for eq in rubric.equations
        if eq.repeat_call and cases[eq.id] and rubric.settings.hidden_cases
    ]
    return visible + repeats + hidden


def forbidden_items(rubric: Rubric, submission: SubmissionSource) -> dict[str, tuple[CaseStatus, str]]:
    """The items whose function uses a forbidden import: none of their cases is run, saying why."""
    forbidden = find_forbidden_imports(submission.source, rubric.settings.forbidden_imports)
    not_run = {}
    for eq in rubric.equations:
        rule = affected(forbidden, eq.function)
        if rule is not None:
            not_run[eq.id] = (
                CaseStatus.FORBIDDEN,
                feedback.forbidden(eq.function, rule.module, submission.where(rule.lineno)),
            )
    return not_run


def open_sandbox(
    rubric: Rubric, submission: SubmissionSource, filename: str, protections: Protections | None, host: SandboxHost
) -> Sandbox:
    """The sandbox of one submission's grade, its limits and hidden folders from the rubric."""
    return Sandbox(
        submission.source,
        filename,
        limits_for(rubric),
        hidden_paths_for(rubric),
        rubric.settings.forbidden_imports,
        expected_calls=call_count(rubric),
        protections=protections,
        host=host,
    )


def run_calls(
    rubric: Rubric,
    submission: SubmissionSource,
    cases: Mapping[str, tuple[Case, ...]],
    not_run: dict[str, tuple[CaseStatus, str]],
    sandbox: Sandbox,
) -> tuple[dict[tuple[str, int], CheckResult], Protections, str, str]:
    """Run every case in the sandbox; returns the verdicts, the protections in force, the output shown
    and what to say about the file as a whole. ``not_run``: items not to call (``forbidden_items``), and
    those a timeout stopped, as the calls go."""
    settings = rubric.settings
    source = submission.source
    order = call_order(rubric, cases)
    repeats = {(eq.id, case.index) for eq, case, repeat in order if repeat}
    first_calls: dict[tuple[str, int], CallOutcome] = {}
    functions = [eq.function for eq in rubric.equations]
    found_elsewhere = placements(source, functions)
    verdicts: dict[tuple[str, int], CheckResult] = {}
    not_run = dict(not_run)
    for eq, case, repeat in order:
        key = (eq.id, case.index)
        if eq.id in not_run:
            status, message = not_run[eq.id]
            if not repeat:
                verdicts[key] = CheckResult(
                    index=case.index,
                    visible=case.visible,
                    status=status,
                    credit=0.0,
                    message=message,
                    expected_shape=case.expected.shape,
                )
            continue
        if repeat and key not in first_calls:
            continue  # the first call returned no array: nothing to compare with
        outcome = sandbox.call(
            eq.function,
            [(n, case.inputs[n]) for n in plan_inputs(case.plan, case.inputs)],
            case.expected.shape,
            repeat or not case.visible,
            plan=case.plan.request(),
            setup_steps=len(case.plan.setup),
            outputs=len(case.plan.outputs),
            account=eq.id if eq.outputs else None,  # a chain's deaths are not its last function's
        )
        outcome = submission.located(outcome)  # a notebook's faults are worded by cell and line
        if repeat:
            verdicts[key] = check_repeat(case, verdicts[key], first_calls[key], outcome, settings, eq.function)
        else:
            others = [f for f in functions if f != eq.function]
            verdict = (
                check_outputs(eq, case, outcome, settings)
                if eq.outputs
                else check_case(eq, case, outcome, settings, others, found_elsewhere.get(eq.function))
            )
            not_run_cell = submission.not_run(eq.function)
            if verdict.status == CaseStatus.MISSING and not_run_cell:  # the file's own fact: no hidden input in it
                verdict = dataclasses.replace(verdict, message=not_run_cell)
            verdicts[key] = verdict
            if outcome.status == CallStatus.OK and key in repeats:
                first_calls[key] = outcome
        if outcome.status == CallStatus.TIMEOUT:
            not_run[eq.id] = (CaseStatus.SKIPPED, feedback.skipped_after_timeout(eq.function))
            for chain in rubric.equations:  # a chain through a function that hangs would hang too
                if chain.outputs and chain is not eq and eq.function in chain.functions:
                    not_run.setdefault(chain.id, not_run[eq.id])
    imported = sandbox.import_outcome
    notice = (
        ""
        if imported is None or imported.ok
        else feedback.file_notice(submission.located(imported.failure), imported.after_hidden)
    )
    if is_notebook_json(source):
        notice = f"{feedback.NOTEBOOK_NOTICE} {notice}".strip()
    return verdicts, sandbox.protections, sandbox.shown_output(SHOWN_OUTPUT_BYTES), notice


def grade_submission(
    path: str | Path,
    rubric: Rubric,
    seed: int | None = None,
    protections: Protections | None = None,
    metadata: Mapping[str, str] | None = None,
    *,
    host: SandboxHost,
    preparation: Preparation | None = None,
) -> Report:
    """Grade one file against a rubric. Anything the submission does is data in the Report.

    ``host`` is what this process knows about its machine (its zygote, clean uids,
    refused mechanisms): each entry point makes one and passes it to every grade.
    ``preparation``: the rubric's modules and visible cases (``preparation.prepare``),
    when the caller grades many files against it; else they are prepared here.

    The child is started before the cases are built (``Sandbox.begin``), so its start
    and the submission's import run while they are, when its first call would be a
    visible one anyway: output is shown up to the first hidden call, and an import
    that a hidden call started shows none.
    """
    started = time.monotonic()
    path = Path(path)
    raw = read_submission(path)
    sha256 = hashlib.sha256(raw).hexdigest()  # of the file as submitted, as batch's resume compares
    submission = submission_source(path, raw)
    hidden_seed = seed if seed is not None else derive_hidden_seed(rubric.seed, sha256)
    filename = module_filename(rubric.submission_filename or path.name)
    not_run = forbidden_items(rubric, submission)
    with open_sandbox(rubric, submission, filename, protections, host) as sandbox:
        early = rubric.settings.visible_cases and len(not_run) < len(rubric.equations)
        if early:
            sandbox.begin()
        prepared = preparation if preparation is not None else prepare(rubric)
        if early:
            sandbox.begin()  # the zygote may have booted meanwhile (a single grade's): the hidden cases overlap
        reference, mistakes = prepared.reference, prepared.mistakes
        cases = build_cases(rubric, reference, hidden_seed, shown=prepared.visible)
        built = time.monotonic()
        verdicts, protections, shown, notice = run_calls(rubric, submission, cases, not_run, sandbox)
    ran = time.monotonic()
    results = {}
    checked = {eq.id: [(case, verdicts[(eq.id, case.index)]) for case in cases[eq.id]] for eq in rubric.equations}
    for eq in rubric.equations:
        if eq.outputs:
            continue  # after the items of its pieces, whose results its diagnosis reads
        checks = tuple(check for _, check in checked[eq.id])
        siblings = [
            pair
            for other in rubric.equations
            if other.function == eq.function and other is not eq and not other.outputs
            for pair in checked[other.id]
        ]
        diagnosis = diagnose(eq, cases[eq.id], checks, mistakes, rubric.settings, reference, siblings)
        results[eq.id] = score_equation(eq, checks, rubric.settings, diagnosis)
    for eq in rubric.equations:
        if eq.outputs:
            checks = tuple(check for _, check in checked[eq.id])
            diagnosis = diagnose_chain(eq, checks, list(results.values()))
            results[eq.id] = score_equation(eq, checks, rubric.settings, diagnosis)
    return Report(
        rubric=rubric,
        submission_path=str(path),
        submission_sha256=sha256,
        equations=tuple(results[eq.id] for eq in rubric.equations),
        cases=cases,
        seed=SeedInfo(hidden_seed=hidden_seed, source="command line" if seed is not None else "derived"),
        protections=protections,
        output=shown,
        notice=notice,
        notes=submission.notes,
        metadata=dict(metadata or {}),
        timings={
            "prepare_seconds": round(built - started, 4),
            "run_seconds": round(ran - built, 4),
            "total_seconds": round(time.monotonic() - started, 4),
        },
    )
