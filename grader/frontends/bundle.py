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

import ast
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from grader.assignment.reference import load_reference
from grader.assignment.rubric import Equation, Rubric, load_rubric, resolve_rubric_path
from grader.errors import ReferenceModuleError
from grader.frontends.student_notebook import shape_text, student_notebook
from grader.grading.cases import build_cases
from grader.untrusted.student import selfcheck, selfcheck_oracle

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


# --- what the self-check needs -----------------------------------------------------------


def selfcheck_equations(rubric: Rubric) -> tuple[Equation, ...]:
    return tuple(eq for eq in rubric.equations if eq.visibility == "visible")


def forward_module_source(rubric: Rubric, equations: Sequence[Equation]) -> str:
    """The reference's forward functions (and top-level helpers they call), and nothing else of it.

    Refuses with a ReferenceModuleError when a forward function reaches one of the
    answers, since shipping it would ship the answer.
    """
    source = rubric.reference.read_text(encoding="utf-8")
    tree = ast.parse(source)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    constants = {
        target.id: node
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    answers = {eq.function for eq in rubric.equations}
    needed: set[str] = set()
    todo = [eq.finite_difference.forward for eq in equations]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        if name in answers:
            raise ReferenceModuleError(
                f"{rubric.reference}: a forward function reaches {name}, an answer; the student bundle "
                "would carry it, so make the forward functions independent of the answers"
            )
        node = defs.get(name) or constants.get(name)
        if node is None:
            continue  # a builtin or an imported name
        needed.add(name)
        todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in {*defs, *constants}]
    lines = source.splitlines()
    chosen = [
        node
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in needed)
        or (isinstance(node, ast.Assign) and any(getattr(t, "id", None) in needed for t in node.targets))
    ]
    pieces = []
    for node in chosen:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        pieces.append("\n".join(lines[start - 1 : node.end_lineno]))
    header = (
        '"""Forward functions for the self-check\'s finite differences, cut out of the reference module.\n\n'
        'No answer is in this file."""\n\n'
        f"# {' '.join(rubric.title.split())}\n"
    )
    return header + "\n\n\n".join(pieces) + "\n"


def kink_side(equation: Equation, cases, reference: ModuleType, step: float, tolerance) -> str | None:
    """Which one-sided slope the reference takes exactly at the kink ("left" or "right"), if one does.

    The assignment's convention there (ReLU' at 0) is the reference's choice; finite
    differences can't know it, so the bundle records it as a side, not as values.
    """
    fd = equation.finite_difference
    if fd.kink_input is None:
        return None
    spec = {
        "args": list(fd.args),
        "wrt": fd.wrt,
        "upstream": fd.upstream,
        "kink": {"input": fd.kink_input, "at": fd.kink_at},
    }
    forward = getattr(reference, fd.forward)
    tol = {"rtol": tolerance.rtol, "atol": tolerance.atol}
    sides = {"left", "right"}
    seen = False
    for case in cases:
        at_kink = np.asarray(case.inputs[fd.kink_input], dtype=np.float64) == fd.kink_at
        if at_kink.shape != case.expected.shape or not at_kink.any():
            continue
        seen = True
        for side in sorted(sides):
            grad, _ = selfcheck_oracle.finite_difference(forward, spec, dict(case.inputs), step, side)
            if not selfcheck_oracle.within(grad[at_kink], case.expected[at_kink], tol):
                sides.discard(side)
    return sides.pop() if seen and len(sides) == 1 else None


def selfcheck_document(rubric: Rubric, reference: ModuleType, equations: Sequence[Equation]) -> dict:
    """The visible cases' inputs and how to differentiate each equation; no seed, no hidden-case setting."""
    settings = rubric.settings
    built = build_cases(rubric, reference, hidden_seed=0, hidden=False, equations=equations)
    items = []
    for eq in equations:
        fd = eq.finite_difference
        spec: dict = {"forward": fd.forward, "args": list(fd.args), "wrt": fd.wrt, "upstream": fd.upstream}
        if fd.kink_input is not None:
            side = kink_side(eq, built[eq.id], reference, settings.fd_step, settings.fd_tolerance)
            spec["kink"] = {"input": fd.kink_input, "at": fd.kink_at, "side": side}
        items.append(
            {
                "id": eq.id,
                "label": eq.label,
                "function": eq.function,
                "args": list(eq.args),
                "returns": list(eq.returns),
                "finite_difference": spec,
                "cases": [
                    {
                        "index": case.index,
                        "dims": dict(case.dims),
                        "inputs": {name: selfcheck_oracle.encode_array(value) for name, value in case.inputs.items()},
                    }
                    for case in built[eq.id]
                ],
            }
        )
    return {
        "format": selfcheck.FORMAT,
        "assignment": rubric.assignment,
        "title": rubric.title,
        "submission_filename": submission_name(rubric),
        "settings": {
            "fd_step": settings.fd_step,
            "fd_tolerance": {"rtol": settings.fd_tolerance.rtol, "atol": settings.fd_tolerance.atol},
            "time_limit": settings.time_limit,
            "import_time_limit": settings.import_time_limit,
            "forbidden_imports": list(settings.forbidden_imports),
        },
        "equations": items,
    }


def submission_name(rubric: Rubric) -> str:
    """The template's name in the bundle: the expected file as a .py (the notebook is beside it)."""
    name = rubric.submission_filename or rubric.template.name
    return f"{name.rsplit('.', 1)[0]}.py"


def notebook_name(rubric: Rubric) -> str:
    return f"{submission_name(rubric)[:-3]}.ipynb"


def instructions(rubric: Rubric, equations: Sequence[Equation]) -> str:
    """The bundle's README: what to implement, how to self-check, what to upload."""
    name = submission_name(rubric)
    notebook = notebook_name(rubric)
    rows = "\n".join(
        f"| {eq.label.replace('|', '/')} | `{eq.function}({', '.join(eq.args)})` returns {shape_text(eq.returns)} "
        f"| {eq.points:g} |"
        for eq in rubric.equations
    )
    later = [eq for eq in rubric.equations if eq not in equations]
    later_text = ""
    if later:
        listed = ", ".join(f"`{eq.function}`" for eq in later)
        later_text = (
            f"\nThe self-check leaves out {listed}: the autograder grades "
            f"{'it' if len(later) == 1 else 'them'}, but the results are shown later.\n"
        )
    forbidden = ", ".join(rubric.settings.forbidden_imports)
    forbidden_text = f" Do not import {forbidden}: a function that does scores 0." if forbidden else ""
    return f"""# {rubric.title}

## Files

- `{name}`: the template. Fill in every function, keeping its name and arguments.
- `{notebook}`: the same template as a notebook, if you prefer Jupyter, JupyterLab or Colab:
  the instructions, one cell per function, and a last cell that runs the self-check. Work in
  either file and submit that one.
- `selfcheck.py` with `selfcheck_cases.json` and `selfcheck_forward.py`: a self-check you run
  on your own machine before you submit.

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
`selfcheck.py`, `notebook_cells.py`, `selfcheck_cases.json` and `selfcheck_forward.py`
beside the notebook first.

It runs each function on its visible case (the same inputs as the autograder's visible
case) and compares the result with finite differences of the forward computation, so
it needs no solution. It prints one line per function and what to fix; it exits 0 when
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
