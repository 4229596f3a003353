"""Running as a PrairieLearn external grader: grade /grade/student, always leave /grade/results/results.json.

PrairieLearn starts the question's image with the question's ``tests/`` folder at
``/grade/tests`` (the grader, the rubric and the reference: students never see it), the
student's files in ``/grade/student`` and the question's data in ``/grade/data``, runs the
entrypoint (``/grade/tests/run.sh``, which calls ``grade prairielearn run``), and reads
``/grade/results/results.json``, a folder nobody creates for us. So this module:

* makes the tests and data folders root-only and the results folder root's (the sandbox
  already hides the rubric and reference and runs student code as another uid; this makes
  the same true of plain file permissions, whatever the image did);
* picks the submitted file (PrairieLearn's file elements fix its name, but a file-upload
  question can still receive anything), grades it with one ``SandboxHost``, and writes the
  results atomically, cut to fit PrairieLearn's 1 MB;
* turns "nothing gradable" into ``"gradable": false`` (no attempt used) and any fault of
  the grader into the same with a contact-the-staff message, the traceback on stdout
  (the job log instructors read). If Python itself can't start, run.sh writes that result.

``GRADER_PL_ROOT`` (or ``--root``) relocates ``/grade``, as the tests do.
"""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path

import grader
from grader.assignment.rubric import Rubric, load_rubric
from grader.errors import SubmissionFileError
from grader.files import write_bytes_atomic
from grader.frontends import autograder_root
from grader.frontends.autograder_root import AutograderRoot, Under, root_folder
from grader.frontends.choice import choose_file
from grader.frontends.prairielearn.results import (
    encoded,
    fallback_results,
    fit_size,
    not_gradable_results,
    points,
    results_from_report,
    validate_results,
)
from grader.frontends.terminal import isolation_warning
from grader.grading.pipeline import grade_submission
from grader.sandbox.host import SandboxHost

ROOT_ENV = "GRADER_PL_ROOT"
DEFAULT_ROOT = "/grade"
MANIFEST = "prairielearn.json"
MARKDOWN_SYNTAX = re.compile(r"(`+) ?(.+?) ?\1|\\([\\`*_{}\[\]()#+\-.!|<>~])")


class GradePaths(AutograderRoot):
    """PrairieLearn's layout under one root (``/grade`` there, a temporary folder in tests)."""

    tests = Under("tests")  # the question's tests/: the grader, the rubric, the reference
    student = Under("student")
    data = Under("data")


def grade_paths(root: str | Path | None = None) -> GradePaths:
    """The layout under ``root``, else ``$GRADER_PL_ROOT``, else ``/grade`` (made absolute)."""
    return GradePaths(root_folder(root, ROOT_ENV, DEFAULT_ROOT))


def secure_layout(paths: GradePaths) -> None:
    """As root: tests (grader, rubric, reference) and data root-only; the results folder root's, closed to writes."""
    autograder_root.secure_layout(paths, [f for f in (paths.tests, paths.data) if not f.is_symlink()])


def manifest_rubric(paths: GradePaths) -> Path:
    """The rubric the question was built for, from the manifest in tests/."""
    return autograder_root.manifest_rubric(paths.tests / MANIFEST, "the question's manifest", "rebuild the question")


def plain_text(markdown: str) -> str:
    """The choice's Markdown message as the plain text PrairieLearn shows: code spans unwrapped, escapes dropped."""
    # One pass, so a backslash inside a code span (a file name's) is kept as it is.
    return MARKDOWN_SYNTAX.sub(lambda m: m[2] if m[1] else m[3], markdown)


def grade_to_results(paths: GradePaths, rubric: Rubric, host: SandboxHost) -> dict:
    """The results document for the submission under ``paths``; raises only for faults of the grader."""
    choice = choose_file(paths.student, rubric.submission_filename)
    if choice.path is None:
        problem = plain_text(choice.problem)
        print(f"not gradable: {problem}")
        return not_gradable_results(rubric, problem)
    graded = choice.path.relative_to(paths.student).as_posix()
    try:
        report = grade_submission(choice.path, rubric, host=host)
    except SubmissionFileError as err:
        problem = f"{graded} could not be graded: {str(err).split(': ', 1)[-1]}."
        print(f"not gradable: {problem}")
        return not_gradable_results(rubric, problem)
    warning = isolation_warning(report)
    if warning:
        print(warning)
    print(f"graded {graded}: {points(report.score)}/{points(report.max_score)}")
    return results_from_report(report, graded)


def run_grader(paths: GradePaths, rubric_path: Path | None = None, host: SandboxHost | None = None) -> dict:
    """Grade the submission and write results.json, a fallback one if anything in the grader fails.

    Everything printed goes to the grading job's output, which only course staff see.
    """
    host = host or SandboxHost()
    print(f"grader {grader.__version__} from {Path(grader.__file__).parent}, Python {sys.version.split()[0]}")
    try:
        try:
            secure_layout(paths)
        except OSError as err:  # the sandbox still hides the reference and drops privileges: grade anyway
            print(f"warning: could not make {paths.tests} root-only ({err}); relying on the sandbox alone")
        rubric = load_rubric(rubric_path or manifest_rubric(paths))
        document = fit_size(grade_to_results(paths, rubric, host))
        validate_results(document)
    except Exception:  # noqa: BLE001 - any fault of the grader becomes the fallback result, never no result
        print(traceback.format_exc())
        document = fallback_results()
    write_bytes_atomic(paths.results_file, encoded(document))
    return document
