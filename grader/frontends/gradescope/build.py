"""``grade gradescope build``: the autograder zip, from a rubric that passed ``grade validate``.

Gradescope builds an image from a zip with ``setup.sh`` and ``run_autograder`` at its
root: it unpacks the zip into ``/autograder/source`` and runs ``setup.sh`` once, as root.
The zip holds the two scripts (real files beside this module), the grader package as
installed, the rubric with its reference, template and mistake catalog (in their
relative layout, under ``assignment/``), pinned requirements, and a manifest naming the
rubric. A rubric whose reference disagrees with finite differences (or that ``grade
validate`` faults otherwise) is refused before anything is packed: a wrong answer key
would otherwise grade a whole class.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

import grader
from grader.assignment.reference import load_mistakes, load_reference
from grader.assignment.rubric import Rubric, load_rubric
from grader.assignment.validate import validate_rubric
from grader.errors import UnsoundRubricError
from grader.frontends.bundle import write_zip
from grader.frontends.gradescope.runner import MANIFEST
from grader.grading.report import package_files

HERE = Path(__file__).resolve().parent
SCRIPTS = ("setup.sh", "run_autograder")
ASSIGNMENT_DIR = "assignment"
VALIDATION_CASES = 50  # per equation, as `grade validate` checks by default
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
    "nbformat==5.11.1",  # reads notebook submissions
    "fastjsonschema==2.22.3",
    "jupyter_core==5.9.1",
    "traitlets==5.16.1",
    "platformdirs==4.12.4",  # the newest for Python 3.10
)

Entries = dict[str, tuple[bytes, int]]


def assignment_entries(rubric: Rubric) -> tuple[str, Entries]:
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


def grader_entries() -> Entries:
    """The grader package as installed, under ``grader/``: the same files its version hash covers."""
    package = Path(grader.__file__).resolve().parent
    return {
        f"grader/{path.relative_to(package).as_posix()}": (path.read_bytes(), 0o644) for path in package_files(package)
    }


def packaged_grader(rubric: Rubric, manifest_name: str) -> Entries:
    """The grader, the assignment and a manifest naming the rubric: what every autograder package holds."""
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
    entries[manifest_name] = ((json.dumps(manifest, indent=2) + "\n").encode(), 0o644)
    return entries


def autograder_entries(rubric: Rubric) -> Entries:
    """Every file of the autograder zip; setup.sh and run_autograder at its root."""
    entries = packaged_grader(rubric, MANIFEST)
    entries["requirements.txt"] = (("\n".join(REQUIREMENTS) + "\n").encode(), 0o644)
    entries.update({script: ((HERE / script).read_bytes(), 0o755) for script in SCRIPTS})
    return entries


def check_rubric(rubric_path: str | Path) -> None:
    """Raise UnsoundRubricError, with the first problem ``grade validate`` finds, unless it finds none."""
    problems = validate_rubric(rubric_path, cases=VALIDATION_CASES)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UnsoundRubricError(f"not building the autograder: {problems[0]}{more}; see `grade validate`")


def build_autograder(rubric_path: str | Path, output: str | Path) -> Path:
    """Write the Gradescope autograder zip for a rubric that validates; returns its path."""
    check_rubric(rubric_path)
    return write_zip(output, autograder_entries(load_rubric(rubric_path)))
