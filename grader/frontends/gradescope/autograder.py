"""Running as a Gradescope autograder: the zip, the runner, and a results.json that is always there.

Gradescope builds an image from a zip with ``setup.sh`` and ``run_autograder`` at its
root: it unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once as root,
and for every submission runs ``/autograder/run_autograder`` as root with the student's
files in ``/autograder/submission``. Whatever ``/autograder/results/results.json`` then
says is the grade; with no such file the student sees "the autograder failed to execute
correctly". So:

* ``grade gradescope build`` writes that zip: the two scripts, the grader package, the
  rubric with its reference, template and mistake catalog (in the same relative layout,
  under ``assignment/``), pinned requirements, and a manifest naming the rubric.
* ``run_autograder`` calls ``grade gradescope run``, which picks the submitted file,
  grades it and writes results.json in Gradescope's format (validated against
  ``grader/schemas/gradescope_results.schema.json``), atomically. A submission with no
  or several candidate files gets a message and 0, not a failure; a failure of the
  grader itself gets a fallback results.json (0, "contact the staff", the traceback in a
  test only instructors see). If Python itself can't run, the shell script writes that
  fallback.
* Student code never reaches the grader's files: the sandbox hides the rubric and
  reference folders and drops to an unprivileged uid; in addition the source tree is
  root-only (mode 0700) and the results folder is root's, so that uid can neither read
  the reference nor write a grade.

``GRADER_AUTOGRADER_ROOT`` (or ``--root``) relocates ``/autograder``: the test suite builds
the zip, unpacks it into a temporary root and runs the real ``run_autograder`` there.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

import grader
from grader.assignment.reference import load_mistakes, load_reference
from grader.assignment.rubric import Rubric, load_rubric, resolve_rubric_path
from grader.errors import GraderError, RubricError, SubmissionFileError
from grader.files import write_json_atomic
from grader.frontends.bundle import write_zip
from grader.frontends.terminal import isolation_warning
from grader.grading.pipeline import grade_submission
from grader.grading.report import Report, display_text, report_to_dict, validate_report
from grader.grading.scoring import EquationResult
from grader.sandbox.host import SandboxHost
from grader.schemas import schema_error

ROOT_ENV = "GRADER_AUTOGRADER_ROOT"
DEFAULT_ROOT = "/autograder"
MANIFEST = "autograder.json"
ASSIGNMENT_DIR = "assignment"
VENV = "/opt/grader-venv"
# Exactly what the grader needs on Gradescope's default image (Ubuntu 22.04, Python 3.10),
# dependencies of dependencies included, so an image rebuilt next term is the same.
REQUIREMENTS = (
    "numpy==2.2.6",
    "PyYAML==6.0.2",
    "jsonschema==4.23.0",
    "attrs==26.1.0",
    "jsonschema-specifications==2025.9.1",
    "referencing==0.37.0",
    "rpds-py==0.30.0",
    "typing_extensions==4.16.0",
)
STAFF_MESSAGE = (
    "The autograder could not grade this submission because of a problem on our side, not in your file. "
    "Please contact the course staff and mention this submission; the score of 0 here is a placeholder."
)
IGNORED_FOLDERS = {"__MACOSX", "__pycache__"}
MARKDOWN_SPECIAL = re.compile(r"([\\*_\[\]<>#|~])")


@dataclass(frozen=True)
class AutograderPaths:
    """Gradescope's file layout under one root (``/autograder`` there, a temporary folder in tests)."""

    root: Path

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def submission(self) -> Path:
        return self.root / "submission"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def results_file(self) -> Path:
        return self.results / "results.json"

    @property
    def metadata_file(self) -> Path:
        return self.root / "submission_metadata.json"


def autograder_paths(root: str | Path | None = None) -> AutograderPaths:
    """The layout under ``root``, else ``$GRADER_AUTOGRADER_ROOT``, else ``/autograder``."""
    return AutograderPaths(Path(root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT))


# --- which file to grade --------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionChoice:
    """The file to grade, or (path None) a message telling the student what to upload instead."""

    path: Path | None
    problem: str = ""


def python_files(folder: Path) -> list[Path]:
    """Every ``.py`` entry under ``folder``, without following links or entering hidden or macOS-metadata folders."""
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in IGNORED_FOLDERS)
        found += [Path(current) / f for f in sorted(files) if f.endswith(".py") and not f.startswith("._")]
    return found


def choose_submission(folder: Path, expected: str | None) -> SubmissionChoice:
    """The rubric's expected file (top level first, else the only one of that name), else the only .py file.

    None, several, or something that is not a regular file (a link could point at the
    reference) is the student's to fix: a message, never an exception.
    """
    upload = f"Upload your `{expected}`" if expected else "Upload your .py file"
    candidates = python_files(folder) if folder.is_dir() else []
    named = [p for p in candidates if p.name == expected] if expected else []
    top = [p for p in named if p.parent == folder]
    pool = top or named or candidates

    def shown(paths: Sequence[Path]) -> str:
        names = [f"`{p.relative_to(folder).as_posix()}`" for p in paths[:5]]
        return ", ".join(names) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")

    if not pool:
        return SubmissionChoice(None, f"No Python file was found in your submission. {upload} and submit again.")
    if len(pool) > 1:
        if named:
            what, none, fix = f"files named `{expected}`", "", "only one of them"
        elif expected:
            what, none = ".py files", f" and none is named `{expected}`"
            fix = f"the file to grade named `{expected}` (or only that file)"
        else:
            what, none, fix = ".py files", "", "only the file to grade"
        return SubmissionChoice(
            None,
            f"Your submission has {len(pool)} {what} ({shown(pool)}){none}, so it is not clear which to grade. "
            f"Submit again with {fix}.",
        )
    path = pool[0]
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        return SubmissionChoice(None, f"`{path.relative_to(folder).as_posix()}` is {kind}. {upload} itself.")
    return SubmissionChoice(path)


def read_metadata(path: Path) -> tuple[dict[str, str], str | None]:
    """Names, emails and submission id from ``submission_metadata.json``, and a note when it was unusable.

    Missing or malformed metadata never stops grading: it is only recorded in the report.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as err:
        return {}, f"{path.name} could not be read ({type(err).__name__}); graded without it"
    users = document.get("users") if isinstance(document, dict) else None
    if not isinstance(users, list):
        return {}, f"{path.name} has no list of users; graded without it"
    users = [u for u in users if isinstance(u, dict)]
    metadata: dict[str, str] = {}
    for key in ("name", "email"):
        values = [str(u[key])[:200] for u in users if isinstance(u.get(key), (str, int))]
        if values:
            metadata[key] = ", ".join(values)
    for key, label in (("id", "submission_id"), ("created_at", "submitted_at")):
        if isinstance(document.get(key), (str, int)):
            metadata[label] = str(document[key])[:200]
    return metadata, None


# --- results.json ---------------------------------------------------------------------------


def escape_markdown(text: str) -> str:
    """Plain text made safe for Markdown, keeping `code spans` (feedback uses them) as they are."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans at all
        return MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("`", "\\`")
    return "`".join(part if i % 2 else MARKDOWN_SPECIAL.sub(r"\\\1", part) for i, part in enumerate(parts))


def code_block(text: str) -> str:
    """A fenced block that the text itself can't close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def points(value: float) -> str:
    return f"{value:g}"


def execution_seconds(elapsed: float) -> int:
    return max(0, math.ceil(elapsed))


def equation_markdown(result: EquationResult, report: Report) -> str:
    """One test's output: the verdict, the feedback, each visible case, and a count of hidden ones."""
    eq = result.equation
    lines = [
        f"**{result.status.value.replace('_', ' ').capitalize()}**: {points(result.score)}/{points(eq.points)} points.",
        "",
        escape_markdown(result.feedback),
    ]
    cases = {case.index: case for case in report.cases[eq.id]}
    hidden = [check for check in result.cases if not check.visible]
    for check in result.cases:
        if not check.visible:
            continue
        dims = ", ".join(f"{k}={v}" for k, v in cases[check.index].dims.items())
        verdict = check.status.value.replace("_", " ")
        message = f": {escape_markdown(check.message)}" if check.message and check.status.value != "passed" else ""
        lines += ["", f"**Visible case {check.index}** ({dims}): {verdict}{message}"]
        if check.diff:
            lines += ["", "| entry | expected | got |", "|---|---|---|"]
            lines += [f"| {list(d['index'])} | {d['expected']:.6g} | {d['got']:.6g} |" for d in check.diff]
    if hidden:
        passed = sum(check.status.value == "passed" for check in hidden)
        lines += ["", f"Hidden cases: {passed} of {len(hidden)} passed (their inputs are not shown)."]
    return "\n".join(lines)


def summary_markdown(report: Report, graded: str) -> str:
    """The top-level output: what was graded, the total, and what the file printed."""
    # Only parts the student may see now are counted: a hidden part's verdict must not leak.
    shown = [r for r in report.equations if r.equation.visibility == "visible"]
    full = sum(r.score >= r.equation.points - 1e-9 for r in shown)
    lines = [
        f"**{escape_markdown(report.rubric.title)}**",
        "",
        f"Graded `{graded}`: **{points(report.score)}/{points(report.max_score)}** points; "
        f"{full} of {len(shown)} visible parts earned full marks.",
    ]
    if full < len(shown):
        lines += [
            "",
            "Each part below says what went wrong. Hidden cases use inputs drawn for your file, "
            "so only their verdicts are shown.",
        ]
    if report.output.strip():
        lines += ["", "Your file printed (while importing and on the visible cases):", "", code_block(report.output)]
    return "\n".join(lines)


def equation_entry(number: int, result: EquationResult, report: Report) -> dict:
    """One Gradescope test for one equation: passed only with full marks."""
    eq = result.equation
    full = result.score >= eq.points - 1e-9
    return {
        "name": eq.label,
        "number": str(number),
        "score": result.score,
        "max_score": eq.points,
        "status": "passed" if full else "failed",
        "output": equation_markdown(result, report),
        "output_format": "md",
        "visibility": eq.visibility,
        "tags": [eq.id, eq.function, result.status.value, *result.flags],
    }


def results_from_report(report: Report, graded: str, elapsed: float, notes: Sequence[str] = ()) -> dict:
    """Gradescope's results for a graded submission: one test per equation, the grader's report in extra_data."""
    document = report_to_dict(report)
    validate_report(document)
    return {
        "score": report.score,
        "execution_time": execution_seconds(elapsed),
        "output": summary_markdown(report, display_text(graded)),
        "output_format": "md",
        "stdout_visibility": "hidden",
        "visibility": "visible",
        "tests": [equation_entry(i, result, report) for i, result in enumerate(report.equations, start=1)],
        "extra_data": {"report": document, "notes": list(notes)},
    }


def problem_results(rubric: Rubric, problem: str, metadata: Mapping[str, str], elapsed: float, notes=()) -> dict:
    """Results for a submission that could not be graded through the student's doing: 0, and what to do."""
    tests = [
        {
            "name": eq.label,
            "number": str(i),
            "score": 0.0,
            "max_score": eq.points,
            "status": "failed",
            "output": f"Not graded: {problem}",
            "output_format": "md",
            "visibility": eq.visibility,
            "tags": [eq.id, eq.function, "not_graded"],
        }
        for i, eq in enumerate(rubric.equations, start=1)
    ]
    return {
        "score": 0.0,
        "execution_time": execution_seconds(elapsed),
        "output": f"**{escape_markdown(rubric.title)}**\n\n{problem}\n\nThe score is 0 until you submit again.",
        "output_format": "md",
        "stdout_visibility": "hidden",
        "visibility": "visible",
        "tests": tests,
        "extra_data": {"problem": problem, "metadata": dict(metadata), "notes": list(notes)},
    }


def fallback_results(error: str, elapsed: float) -> dict:
    """Results for a failure of the grader itself: 0, a message to contact staff, the error for instructors only."""
    return {
        "score": 0.0,
        "execution_time": execution_seconds(elapsed),
        "output": STAFF_MESSAGE,
        "output_format": "text",
        "stdout_visibility": "hidden",
        "visibility": "visible",
        "tests": [
            {
                "name": "Autograder error (shown to instructors only)",
                "number": "0",
                "score": 0.0,
                "max_score": 0.0,
                "status": "failed",
                "output": error[-20000:],
                "output_format": "text",
                "visibility": "hidden",
                "tags": ["autograder_error"],
            }
        ],
        "extra_data": {"autograder_error": error[-20000:]},
    }


def validate_results(document: dict) -> None:
    """Raise jsonschema.ValidationError unless the document is a results.json Gradescope accepts."""
    error = schema_error(document, "gradescope_results.schema.json")
    if error is not None:
        raise error


# --- the runner -----------------------------------------------------------------------------


def secure_layout(paths: AutograderPaths) -> None:
    """As root: the source tree (grader, rubric, reference) root-only, the results folder root's and closed to writes.

    The sandbox already hides the rubric and reference folders and runs student code as
    another uid; this makes the same true of plain file permissions, whatever setup.sh or
    the image did. The submission metadata (other group members' emails, earlier
    results) is made root-only too.
    """
    paths.results.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    os.chown(paths.results, 0, 0)
    os.chmod(paths.results, 0o755)
    if paths.metadata_file.is_file() and not paths.metadata_file.is_symlink():
        os.chmod(paths.metadata_file, 0o600)
    if paths.source.is_dir():
        for current, dirs, files in os.walk(paths.source):
            for name in dirs + files:
                entry = Path(current) / name
                info = entry.lstat()
                if not stat.S_ISLNK(info.st_mode):
                    os.chown(entry, 0, 0)
                    os.chmod(entry, stat.S_IMODE(info.st_mode) & 0o700)
        os.chown(paths.source, 0, 0)
        os.chmod(paths.source, 0o700)


def manifest_rubric(paths: AutograderPaths) -> Path:
    """The rubric the zip was built for, from its manifest."""
    manifest = paths.source / MANIFEST
    try:
        return paths.source / json.loads(manifest.read_text(encoding="utf-8"))["rubric"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RubricError(f"{manifest}: cannot read the autograder manifest ({err}); rebuild the zip") from err


def grade_to_results(paths: AutograderPaths, rubric_path: Path | None, started: float, host: SandboxHost) -> dict:
    """The results document for the submission under ``paths``; raises only for faults of the grader."""
    rubric = load_rubric(rubric_path or manifest_rubric(paths))
    metadata, note = read_metadata(paths.metadata_file)
    notes = [note] if note else []
    choice = choose_submission(paths.submission, rubric.submission_filename)
    if choice.path is None:
        print(f"not graded: {choice.problem}")
        return problem_results(rubric, choice.problem, metadata, time.monotonic() - started, notes)
    graded = choice.path.relative_to(paths.submission).as_posix()
    try:
        report = grade_submission(choice.path, rubric, metadata=metadata, host=host)
    except SubmissionFileError as err:
        problem = f"`{graded}` could not be graded: {str(err).split(': ', 1)[-1]}."
        print(f"not graded: {problem}")
        return problem_results(rubric, problem, metadata, time.monotonic() - started, notes)
    warning = isolation_warning(report)
    if warning:
        notes.append(warning)
    for line in notes:
        print(line)
    print(f"graded {graded}: {points(report.score)}/{points(report.max_score)}")
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


# --- the zip --------------------------------------------------------------------------------


def assignment_entries(rubric: Rubric) -> tuple[str, dict[str, tuple[bytes, int]]]:
    """The rubric, reference, template and mistake catalog under ``assignment/``, in their relative layout.

    The rubric's bytes are kept (so its sha256 in every report matches the instructor's)
    unless it names a module by an absolute path; then those paths are made relative.
    """
    files = [rubric.path, rubric.reference, rubric.template]
    if rubric.mistakes_module is not None:
        files.append(rubric.mistakes_module)
    common = Path(os.path.commonpath([str(p.parent) for p in files]))

    def name(path: Path) -> str:
        return f"{ASSIGNMENT_DIR}/{path.relative_to(common).as_posix()}"

    raw = rubric.path.read_bytes()
    document = yaml.safe_load(raw)
    absolute = {
        key: document[key] for key in ("reference", "template", "mistakes") if Path(document.get(key, "")).is_absolute()
    }
    if absolute:
        for key in absolute:
            document[key] = os.path.relpath(Path(document[key]).resolve(), rubric.path.parent)
        raw = yaml.safe_dump(document, allow_unicode=True, sort_keys=False).encode()
    entries = {name(rubric.path): (raw, 0o644)}
    entries.update({name(p): (p.read_bytes(), 0o644) for p in files[1:]})
    return name(rubric.path), entries


def grader_entries() -> dict[str, tuple[bytes, int]]:
    """The grader package as installed (its .py files and schemas), under ``grader/``."""
    package = Path(grader.__file__).resolve().parent
    return {
        f"grader/{path.relative_to(package).as_posix()}": (path.read_bytes(), 0o644)
        for path in sorted(package.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".json")
    }


def autograder_entries(rubric: Rubric) -> dict[str, tuple[bytes, int]]:
    """Every file of the autograder zip; setup.sh and run_autograder at its root."""
    load_reference(rubric)  # a broken reference fails the build, not the first student's submission
    load_mistakes(rubric)
    rubric_name, entries = assignment_entries(rubric)
    entries.update(grader_entries())
    manifest = {
        "rubric": rubric_name,
        "assignment": rubric.assignment,
        "rubric_sha256": rubric.sha256,
        "grader_version": grader.__version__,
    }
    entries[MANIFEST] = ((json.dumps(manifest, indent=2) + "\n").encode(), 0o644)
    entries["requirements.txt"] = (("\n".join(REQUIREMENTS) + "\n").encode(), 0o644)
    entries["setup.sh"] = (SETUP_SH.encode(), 0o755)
    entries["run_autograder"] = (RUN_AUTOGRADER.encode(), 0o755)
    return entries


def build_autograder(rubric_path: str | Path, output: str | Path) -> Path:
    """Write the Gradescope autograder zip for a rubric; returns its path."""
    return write_zip(output, autograder_entries(load_rubric(rubric_path)))


SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 22.04,
# Python 3.10). It installs the grader's pinned dependencies into a venv made from the
# system Python, so that the unprivileged uid the sandbox runs student code as can run
# the same interpreter and numpy, and makes the grader, rubric and reference root-only.
# No login user is created: the sandbox drops to a uid of its own for every run.
# GRADER_AUTOGRADER_ROOT relocates /autograder; GRADER_VENV the venv ({VENV}).
set -euo pipefail
ROOT="${{GRADER_AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
VENV="${{GRADER_VENV:-{VENV}}}"
BASE_PYTHON="${{GRADER_BASE_PYTHON:-/usr/bin/python3}}"

satisfied() {{
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -s - <<'EOF'
import re
import sys
from importlib.metadata import version

least = {{"numpy": (1, 23), "PyYAML": (6, 0), "jsonschema": (4, 18)}}
try:
    import jsonschema, numpy, yaml  # noqa: F401
    found = {{name: tuple(int(n) for n in re.match(r"(\\d+)\\.(\\d+)", version(name)).groups()) for name in least}}
except Exception:
    sys.exit(1)
sys.exit(0 if sys.version_info >= (3, 10) and all(found[n] >= least[n] for n in least) else 1)
EOF
}}

if satisfied; then
  echo "setup.sh: $VENV already has what the grader needs; skipping the installation"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends python3 python3-venv python3-pip
  "$BASE_PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check --only-binary=:all: \\
    -r "$SOURCE/requirements.txt"
  chmod -R a+rX "$VENV"
fi
cd "$SOURCE"
"$VENV/bin/python" -s -c "import grader.frontends.gradescope.autograder"  # fail the build now, not on the first submission
if [ "$(id -u)" = 0 ]; then
  chown -R root:root "$SOURCE"
fi
chmod -R go-rwx "$SOURCE"
mkdir -p "$ROOT/results"
chmod 0755 "$ROOT/results"
echo "setup.sh: done"
"""

RUN_AUTOGRADER = f"""#!/usr/bin/env bash
# Gradescope runs this as root for every submission. It grades the file in
# /autograder/submission and always leaves /autograder/results/results.json, even when
# Python itself can't start. GRADER_AUTOGRADER_ROOT relocates /autograder;
# GRADER_PYTHON names the interpreter (default: the venv setup.sh made).
set -u
ROOT="${{GRADER_AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{GRADER_PYTHON:-{VENV}/bin/python}}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
cd "$ROOT/source" && "$PYTHON" -s -m grader gradescope run --root "$ROOT"
status=$?
if [ ! -s "$RESULTS" ]; then
  echo "run_autograder: the grader stopped with status $status before writing results.json; writing a fallback"
  tmp="$RESULTS.partial.$$"
  cat > "$tmp" <<EOF
{{"score": 0.0, "execution_time": 0, "output": "{STAFF_MESSAGE}", "output_format": "text", "stdout_visibility": "hidden", "visibility": "visible", "tests": [{{"name": "Autograder error (shown to instructors only)", "number": "0", "score": 0.0, "max_score": 0.0, "status": "failed", "output": "run_autograder: the grader stopped with status $status before writing results.json; see the autograder output", "output_format": "text", "visibility": "hidden", "tags": ["autograder_error"]}}], "extra_data": {{"autograder_error": "exit status $status"}}}}
EOF
  mv -f "$tmp" "$RESULTS"
fi
exit 0
"""


# --- the command ----------------------------------------------------------------------------


def run_gradescope_command(argv: Sequence[str]) -> int:
    """``grade gradescope build [--rubric R] [-o ZIP]`` and ``grade gradescope run [--root DIR] [--rubric R]``."""
    from grader.frontends.cli import Parser  # here, not at the top: grader.frontends.cli imports this module

    parser = Parser(prog="grade gradescope", description="Run as a Gradescope autograder.")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=Parser)
    build = actions.add_parser("build", help="write the autograder zip to upload to Gradescope")
    build.add_argument("--rubric", help="a rubric file or bundled name (default: the bundled one)")
    build.add_argument("-o", "--output", default="autograder.zip", help="the zip to write (default: autograder.zip)")
    run = actions.add_parser("run", help="grade /autograder/submission into results.json (what run_autograder calls)")
    run.add_argument("--root", help=f"the autograder root (default: ${ROOT_ENV} or {DEFAULT_ROOT})")
    run.add_argument("--rubric", help="a rubric file (default: the one the zip was built for)")
    args = parser.parse_args(argv)
    if args.action == "build":
        path = build_autograder(resolve_rubric_path(args.rubric), args.output)
        print(f"Wrote {path}: upload it as the autograder of a Gradescope programming assignment.")
        return 0
    host = SandboxHost()
    host.start_zygote()  # numpy loads in the zygote while the grader sets up
    paths = autograder_paths(args.root)
    try:
        document = run_autograder(paths, Path(args.rubric) if args.rubric else None, host)
    except OSError as err:  # results.json itself could not be written: run_autograder's fallback takes over
        raise GraderError(f"{paths.results_file}: cannot write the results ({err.strerror})") from err
    print(f"results.json: {points(document['score'])} points")
    return 0
