"""Zip bundles, and the student bundle: the template, instructions and a self-check, without the reference.

``grade bundle student`` writes a zip to hand out with an assignment, one folder holding:

* the template, named as the autograder expects the submission;
* the same assignment as a notebook (``NAME.ipynb``: ``grader/frontends/student_notebook.py``),
  whose last cell runs the self-check in the kernel;
* ``README.md``, instructions generated from the rubric (each part, its function and
  points, how to self-check, what to upload);
* ``selfcheck.py`` and its pieces, every module of ``grader/untrusted/student/`` verbatim
  (numpy and the standard library only), ``notebook_cells.py`` among them, which turns a
  notebook into the Python the grader runs;
* ``selfcheck_cases.json``: the visible cases' *inputs*, already drawn, and how each
  equation is differentiated (forward function, arguments, kink and its convention);
* ``selfcheck_forward.py``: the forward functions those finite differences need, cut
  out of the reference module one function at a time.

What it leaves out, on purpose: every answer function of the reference, the mistake
catalog, the rubric itself, and anything about hidden cases (their number, the batch-of-one
rule, tolerances against the reference) or the seed. The inputs are shipped rather than
the rubric's seed because the seed also keys the hidden cases (with the submission's
hash); inputs reveal nothing the autograder's visible-case feedback doesn't show anyway.
Only visible-visibility equations are included, so a part the instructor shows only
after the due date is not previewed by the self-check either.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from grader.assignment.reference import load_reference
from grader.assignment.rubric import Equation, Rubric, load_rubric, resolve_rubric_path
from grader.frontends.selfcheck_cases import (  # noqa: F401 - selfcheck_equations, forward_module_source: tests use them here
    by_expected_value,
    forward_module_source,
    selfcheck_document,
    selfcheck_equations,
    submission_name,
)
from grader.frontends.student_notebook import shape_text, student_notebook
from grader.untrusted.student import selfcheck

ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same bytes


def write_zip(path: str | Path, entries: Mapping[str, tuple[bytes, int]]) -> Path:
    """Write ``{name: (data, mode)}`` as a deterministic zip, atomically (a temporary file renamed over)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(entries):
                data, mode = entries[name]
                info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
                info.external_attr = (0o100000 | mode) << 16  # a regular file with these permission bits
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def notebook_name(rubric: Rubric) -> str:
    return f"{submission_name(rubric)[:-3]}.ipynb"


def part_row(eq: Equation) -> str:
    """One line of the README's table; an end-to-end check names the functions it chains, and no points."""
    label = eq.label.replace("|", "/")
    if eq.outputs:
        chained = ", ".join(f"`{f}`" for f in eq.functions)
        return f"| {label} | {chained}, chained | a check, not counted |"
    return f"| {label} | `{eq.function}({', '.join(eq.args)})` returns {shape_text(eq.returns)} | {eq.points:g} |"


def instructions(rubric: Rubric, equations: Sequence[Equation]) -> str:
    """The bundle's README: what to implement, how to self-check, what to upload."""
    name = submission_name(rubric)
    notebook = notebook_name(rubric)
    rows = "\n".join(part_row(eq) for eq in rubric.equations)
    later = [eq for eq in rubric.equations if eq not in equations and not eq.outputs]
    later_text = ""
    if later:
        listed = ", ".join(f"`{eq.function}`" for eq in later)
        later_text = (
            f"\nThe self-check leaves out {listed}: the autograder grades "
            f"{'it' if len(later) == 1 else 'them'}, but the results are shown later.\n"
        )
    oracle_text = "finite differences of the forward computation, so\nit needs no solution"
    if any(by_expected_value(rubric, eq) for eq in equations):
        oracle_text = (
            "finite differences of the forward computation, or with the\nexpected value the autograder's "
            "report shows for that case (a forward's output, a backward\nrun on the cache your own forward "
            "made), so it needs no solution"
        )
    helpers = [path.name for path, _ in student_modules() if path.name != "selfcheck.py"]
    helper_text = ", ".join(f"`{h}`" for h in helpers)
    forbidden = ", ".join(rubric.settings.forbidden_imports)
    forbidden_text = f" Do not import {forbidden}: a function that does scores 0." if forbidden else ""
    return f"""# {rubric.title}

## Files

- `{name}`: the template. Fill in every function, keeping its name and arguments.
- `{notebook}`: the same template as a notebook, if you prefer Jupyter, JupyterLab or Colab:
  the instructions, one cell per function, and a last cell that runs the self-check. Work in
  either file and submit that one.
- `selfcheck.py` with its modules ({helper_text}), `selfcheck_cases.json` and
  `selfcheck_forward.py`: a self-check you run on your own machine before you submit.

## What to implement ({rubric.max_score:g} points)

| part | function | points |
|---|---|---|
{rows}

Shapes name the dimensions of each case (they change from case to case). Use numpy;
return a float64 array and leave the inputs unchanged.{forbidden_text}

## Check your work

With Python 3.10 or later and numpy installed, from this folder:

```sh
python selfcheck.py                 # checks ./{name}
python selfcheck.py path/to/{name}  # or another copy
python selfcheck.py {notebook}         # a notebook's code cells, as the autograder runs them
```

In the notebook, run its last cell (`from selfcheck import check; check()`): it checks the
functions as your kernel has them, so run every cell above it first. In Colab, upload
`selfcheck.py`, {helper_text}, `selfcheck_cases.json` and `selfcheck_forward.py` beside the
notebook first.

It runs each function on its visible case (the same inputs as the autograder's visible
case) and compares the result with {oracle_text}. It prints one line per function and what to fix; it exits 0 when
every visible case passes. Passing it does not guarantee full marks: the autograder
also runs hidden cases (other sizes and values, drawn for your file) and compares with
the reference solution.
{later_text}
## Submitting

Upload `{name}` or `{notebook}` itself (not a folder or a zip) to the assignment on
Gradescope. The autograder grades the file named `{name}` (or `{notebook}`); if there is
none, the one `.py` file or notebook you uploaded, and shows its feedback part by part. In
a notebook only the code cells count, as plain Python: magics (`%`), shell commands (`!`)
and help (`?`) are not run, and feedback points to "cell N, line M", counting every cell
from the top.
"""


def student_modules() -> list[tuple[Path, int]]:
    """The self-check's modules, as files with their modes: the whole student folder, not a list kept by hand."""
    folder = Path(selfcheck.__file__).resolve().parent
    return [
        (path, 0o755 if path.name == "selfcheck.py" else 0o644)
        for path in sorted(folder.glob("*.py"))
        if path.name != "__init__.py"
    ]


def student_bundle_entries(rubric: Rubric) -> dict[str, tuple[bytes, int]]:
    """Every file of the student bundle, under one folder named after the assignment."""
    reference = load_reference(rubric)
    equations = selfcheck_equations(rubric)
    folder = rubric.assignment
    document = selfcheck_document(rubric, reference, equations)
    return {
        f"{folder}/{submission_name(rubric)}": (rubric.template.read_bytes(), 0o644),
        f"{folder}/{notebook_name(rubric)}": (student_notebook(rubric, equations), 0o644),
        f"{folder}/README.md": (instructions(rubric, equations).encode(), 0o644),
        **{f"{folder}/{path.name}": (path.read_bytes(), mode) for path, mode in student_modules()},
        f"{folder}/{selfcheck.CASES_FILE}": (
            (json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode(),
            0o644,
        ),
        f"{folder}/{selfcheck.FORWARD_FILE}": (forward_module_source(rubric, equations).encode(), 0o644),
    }


def build_student_bundle(rubric_path: str | Path, output: str | Path) -> Path:
    """Write the student bundle for a rubric; returns the zip's path."""
    return write_zip(output, student_bundle_entries(load_rubric(rubric_path)))


def run_bundle_command(argv: Sequence[str]) -> int:
    """``grade bundle student [--rubric R] [-o ZIP]``."""
    from grader.frontends.cli import Parser  # here, not at the top: grader.frontends.cli imports this module

    parser = Parser(prog="grade bundle", description="Write a zip to hand out to students.")
    kinds = parser.add_subparsers(dest="kind", required=True, parser_class=Parser)
    student = kinds.add_parser(
        "student", help="the template, instructions and a self-check on the visible cases (no reference)"
    )
    student.add_argument("--rubric", help="a rubric file or bundled name (default: the bundled one)")
    student.add_argument("-o", "--output", help="the zip to write (default: ASSIGNMENT-student.zip)")
    args = parser.parse_args(argv)
    rubric = load_rubric(resolve_rubric_path(args.rubric))
    output = Path(args.output or f"{rubric.assignment}-student.zip")
    write_zip(output, student_bundle_entries(rubric))
    print(f"Wrote {output}: hand it out; it holds no reference code and no hidden-case settings.")
    return 0
