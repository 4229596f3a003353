"""``grade gradescope run``: grade ``/autograder/submission`` into a results.json that is always there.

Gradescope runs ``/autograder/run_autograder`` as root for every submission, with the
student's files in ``/autograder/submission``; whatever ``results/results.json`` then
says is the grade, and with no such file the student sees "the autograder failed to
execute correctly". So the runner picks the file (``grader/frontends/choice.py``),
grades it and writes results.json atomically; a submission with no or several candidate
files gets a message and 0, not a failure; a failure of the grader itself gets the
fallback results (0, "contact the staff", the traceback in a test only instructors see).

Student code never reaches the grader's files: the sandbox hides the rubric and
reference folders and drops to an unprivileged uid; in addition the source tree is made
root-only (mode 0700) and the results folder root's, so that uid can neither read the
reference nor write a grade.

``GRADER_AUTOGRADER_ROOT`` (or ``--root``) relocates ``/autograder``: the test suite unpacks
the zip into a temporary root and runs the real ``run_autograder`` there.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

import grader
from grader.assignment.rubric import load_rubric
from grader.errors import SubmissionFileError
from grader.files import write_json_atomic
from grader.frontends import autograder_root
from grader.frontends.autograder_root import AutograderRoot, Under, root_folder
from grader.frontends.choice import choose_file
from grader.frontends.gradescope.metadata import read_metadata
from grader.frontends.gradescope.results import (
    fallback_results,
    points,
    problem_results,
    results_from_report,
    validate_results,
)
from grader.frontends.markdown import code_span, escape_markdown
from grader.frontends.terminal import isolation_warning
from grader.grading.pipeline import grade_submission
from grader.grading.report import display_text
from grader.sandbox.host import SandboxHost

ROOT_ENV = "GRADER_AUTOGRADER_ROOT"
DEFAULT_ROOT = "/autograder"
MANIFEST = "autograder.json"


class AutograderPaths(AutograderRoot):
    """Gradescope's file layout under one root (``/autograder`` there, a temporary folder in tests)."""

    source = Under("source")  # the zip, unpacked: the grader, the rubric, the reference
    submission = Under("submission")
    metadata_file = Under("submission_metadata.json")


def autograder_paths(root: str | Path | None = None) -> AutograderPaths:
    """The layout under ``root``, else ``$GRADER_AUTOGRADER_ROOT``, else ``/autograder`` (made absolute)."""
    return AutograderPaths(root_folder(root, ROOT_ENV, DEFAULT_ROOT))


def secure_layout(paths: AutograderPaths) -> None:
    """As root: the source tree (grader, rubric, reference) root-only, the results folder root's and closed to writes.

    As ``autograder_root.secure_layout``, whatever setup.sh or the image did; the
    submission metadata (other group members' emails, earlier results) is made
    root-only too.
    """
    autograder_root.secure_layout(paths, [paths.source])
    if os.geteuid() == 0 and paths.metadata_file.is_file() and not paths.metadata_file.is_symlink():
        os.chmod(paths.metadata_file, 0o600)


def manifest_rubric(paths: AutograderPaths) -> Path:
    """The rubric the zip was built for, from its manifest."""
    return autograder_root.manifest_rubric(paths.source / MANIFEST, "the autograder manifest", "rebuild the zip")


def grade_to_results(paths: AutograderPaths, rubric_path: Path | None, started: float, host: SandboxHost) -> dict:
    """The results document for the submission under ``paths``; raises only for faults of the grader."""
    rubric = load_rubric(rubric_path or manifest_rubric(paths))
    metadata, note = read_metadata(paths.metadata_file)
    notes = [note] if note else []
    choice = choose_file(paths.submission, rubric.submission_filename)
    if choice.path is None:
        problem = choice.problem
        print(f"not graded: {choice.plain('submission')}")
        return problem_results(rubric, problem, metadata, time.monotonic() - started, notes)
    graded = choice.path.relative_to(paths.submission).as_posix()
    try:
        report = grade_submission(choice.path, rubric, metadata=metadata, host=host)
    except SubmissionFileError as err:
        why = str(err).removeprefix(f"{choice.path}: ")  # the path, not a colon: a notebook's reason has colons
        problem = f"{code_span(graded)} could not be graded: {escape_markdown(why)}."
        print(f"not graded: {display_text(err)}")
        return problem_results(rubric, problem, metadata, time.monotonic() - started, notes)
    warning = isolation_warning(report)
    if warning:
        notes.append(warning)
    for line in notes:
        print(line)
    print(f"graded {display_text(graded)}: {points(report.score)}/{points(report.max_score)}")
    return results_from_report(report, graded, time.monotonic() - started, notes)


def run_autograder(paths: AutograderPaths, rubric_path: Path | None = None, host: SandboxHost | None = None) -> dict:
    """Grade the submission and write results.json, a fallback one if anything in the grader fails.

    Everything printed here goes to Gradescope's stdout, which only instructors see.
    ``host`` is the process's ``SandboxHost`` (a fresh one when not given).
    """
    host = host or SandboxHost()
    started = time.monotonic()
    print(f"grader {grader.__version__} from {Path(grader.__file__).parent}, Python {sys.version.split()[0]}")
    try:
        try:
            secure_layout(paths)
        except OSError as err:  # the sandbox still hides the reference and drops privileges: grade anyway
            print(f"warning: could not make {paths.source} root-only ({err}); relying on the sandbox alone")
        document = grade_to_results(paths, rubric_path, started, host)
        validate_results(document)
    except Exception:  # noqa: BLE001 - any fault of the grader becomes the fallback results, never no results
        error = traceback.format_exc()
        print(error)
        document = fallback_results(error, time.monotonic() - started)
    try:
        write_json_atomic(paths.results_file, document)
    except (ValueError, UnicodeError):  # not JSON-writable after all: the fallback always is
        error = traceback.format_exc()
        print(error)
        document = fallback_results(error, time.monotonic() - started)
        write_json_atomic(paths.results_file, document)
    return document
