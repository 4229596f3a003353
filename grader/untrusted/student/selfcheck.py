"""A student's self-check: their functions on the visible cases, judged by finite differences alone.

This file is copied verbatim into the student bundle (``grade bundle student``) as
``selfcheck.py``, next to ``selfcheck_cases.json`` (the visible cases' inputs and how
to differentiate each equation) and ``selfcheck_forward.py`` (the forward functions the
finite differences need). So it must not import anything from ``grader``: only the
standard library and numpy, which the student has anyway.

There is no reference solution on the student's side. The expected gradient is the
central finite difference of ``sum(upstream * forward(inputs))``, as in the grader; at
an exact kink (ReLU at 0) a one-sided difference is taken on the side the assignment's
convention picks (recorded when the bundle was built), so a convention mistake there is
caught as the grader catches it. Each case's verdict uses the grader's words and order
(None -> type -> shape -> finite -> values), so a student's visible-case verdicts here are
the autograder's.

The student's file runs in this process, on the student's machine: a hang is detected by
a wall-clock limit per call (the call runs in a daemon thread), not a sandbox.

Notebooks: ``python selfcheck.py NAME.ipynb`` checks the notebook's code cells, turned
into Python by ``notebook_cells.py`` (shipped beside this file; the grader uses the same
code, so the same lines run). In a notebook, ``from selfcheck import check; check()``
checks the functions defined in the kernel, printing the same table.

This file loads and calls the student's code and prints the table; its two pieces sit
beside it, in the bundle as in the grader's package: ``selfcheck_oracle.py`` (the
expected gradient and the verdict on a returned value) and ``selfcheck_faults.py`` (the
words for a raised exception, a forbidden import, a missing function).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import json
import linecache
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

try:
    import numpy as np
except ModuleNotFoundError as missing:  # run by a student whose Python has no numpy: one line, not a traceback
    if __name__ != "__main__" or missing.name != "numpy":
        raise
    print(
        f"selfcheck.py needs numpy, which this Python ({sys.executable}) does not have: install it with "
        f"`{os.path.basename(sys.executable) or 'python'} -m pip install numpy`, then run selfcheck.py again",
        file=sys.stderr,
    )
    sys.exit(2)

CASES_FILE = "selfcheck_cases.json"
FORWARD_FILE = "selfcheck_forward.py"
CELLS_FILE = "notebook_cells.py"  # beside this file, in the grader's package as in the bundle
FORMAT = 1


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look a class's module up there
    spec.loader.exec_module(module)
    return module


if __package__:  # imported from the grader's package (grader.untrusted.student)
    from . import selfcheck_faults as faults
    from . import selfcheck_oracle as oracle
    from . import selfcheck_plans as plans
else:  # the bundle's folder, run or imported: by path, since a notebook's sys.path need not hold the folder
    faults = load_module(Path(__file__).resolve().parent / "selfcheck_faults.py", "selfcheck_faults")
    oracle = load_module(Path(__file__).resolve().parent / "selfcheck_oracle.py", "selfcheck_oracle")
    plans = load_module(Path(__file__).resolve().parent / "selfcheck_plans.py", "selfcheck_plans")


# --- calling the student's code ------------------------------------------------------


def run_with_limit(target, limit: float):
    """Run ``target()`` in a daemon thread: ("ok", value), ("raised", exception) or ("timeout", None)."""
    box: dict = {}

    def runner() -> None:
        try:
            box["value"] = target()
        except BaseException as err:  # noqa: BLE001 - whatever the student's code raises is a verdict
            box["error"] = err

    thread = threading.Thread(target=runner, daemon=True)
    with contextlib.redirect_stdout(sys.stderr):  # the student's prints never mix with --json output
        thread.start()
        thread.join(limit)
    if thread.is_alive():
        return "timeout", None
    if "error" in box:
        return "raised", box["error"]
    return "ok", box.get("value")


def load_document(folder: Path) -> dict:
    document = json.loads((folder / CASES_FILE).read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise SystemExit(f"{folder / CASES_FILE}: written for another version of selfcheck.py")
    return document


def python_source(submission: Path):
    """(source bytes, locate, notes): a .py file as it is, a notebook's code cells as the grader runs them."""
    data = submission.read_bytes()
    if submission.suffix.lower() != ".ipynb":
        return data, faults.line_number, []
    cells = load_module(Path(__file__).resolve().parent / CELLS_FILE, "notebook_cells")
    try:
        converted = cells.notebook_source(cells.read_notebook_json(data.decode("utf-8-sig")))
    except (UnicodeDecodeError, ValueError) as err:
        raise SystemExit(f"error: {submission}: {err}") from err
    source = converted.source
    linecache.cache[str(submission)] = (len(source), None, source.splitlines(True), str(submission))
    return source.encode("utf-8", "replace"), converted.locate, list(converted.notes)


def check_submission(submission: Path, folder: Path) -> dict:
    """Every visible case of every equation in the bundle, run on ``submission`` (.py or .ipynb); JSON-ready."""
    document = load_document(folder)
    settings = document["settings"]
    source, locate, notes = python_source(submission)
    functions = [eq["function"] for eq in document["equations"]]
    forbidden = faults.forbidden_functions(source.decode("utf-8", "replace"), settings["forbidden_imports"], functions)
    module = type(sys)("submission")
    module.__file__ = str(submission)

    sys.modules["submission"] = module  # dataclasses and pickle look a class's module up there

    def load():
        exec(compile(source, str(submission), "exec"), module.__dict__)

    outcome, error = run_with_limit(load, settings["import_time_limit"])
    import_problem = None
    if outcome == "timeout":
        import_problem = ("timeout", f"importing the file took longer than {settings['import_time_limit']:g} s")
    elif outcome == "raised":
        if isinstance(error, SyntaxError):
            at = f" at {locate(error.lineno)}: `{(error.text or '').strip()}`" if error.lineno else ""
            import_problem = ("error", f"the file could not be imported, SyntaxError: {error.msg}{at}")
        else:
            where = faults.fault_location(error, {str(submission)}, locate)
            import_problem = ("error", f"the file could not be imported, {type(error).__name__}: {error}{where}")
    code = Code(module, {str(submission)}, locate, forbidden, import_problem)
    return {"file": str(submission), **check_code(document, folder, code), "notes": notes}


def check_namespace(namespace: dict, folder: Path) -> dict:
    """The same checks on functions already defined (a notebook's kernel): nothing is loaded or run first."""
    document = load_document(folder)
    functions = [eq["function"] for eq in document["equations"]]
    module = type(sys)("notebook")
    module.__dict__.update({k: v for k, v in namespace.items() if isinstance(k, str) and not k.startswith("__")})
    own = [v for v in vars(module).values() if inspect.isfunction(v)]
    files = {v.__code__.co_filename for v in own}
    banned = set(document["settings"]["forbidden_imports"])
    imported = [f"import {v.__name__}" for v in vars(module).values() if inspect.ismodule(v)]
    pieces = [line for line in imported if line.split()[1].split(".")[0] in banned]
    for function in own:
        with contextlib.suppress(OSError, TypeError):
            pieces.append(inspect.cleandoc("\n" + inspect.getsource(function)))
    forbidden = faults.forbidden_functions("\n\n".join(pieces), sorted(banned), functions)
    code = Code(module, files, lambda n: f"line {n} of its cell", forbidden, None)
    return {"file": "the functions defined in this notebook", **check_code(document, folder, code), "notes": []}


@dataclass(frozen=True)
class Code:
    """The student's functions and what is known about them before any is called."""

    module: object
    files: set[str]  # the file names their code objects carry, to find their frames in a traceback
    locate: object  # line number -> "line 3" or "cell 7, line 3"
    forbidden: dict[str, str]
    import_problem: tuple[str, str] | None


def check_code(document: dict, folder: Path, code: Code) -> dict:
    """Every visible case of every equation, on the functions of ``code``."""
    settings = document["settings"]
    forward = load_module(folder / FORWARD_FILE, "selfcheck_forward")
    module, forbidden, import_problem = code.module, code.forbidden, code.import_problem
    functions = [eq["function"] for eq in document["equations"]]
    results = []
    for eq in document["equations"]:
        name = eq["function"]
        cases = []
        timed_out = False
        for case in eq["cases"]:
            inputs = {key: plans.decode_input(spec) for key, spec in case["inputs"].items()}
            verdict = {"index": case["index"]}
            if name in forbidden:  # decided from the source before anything runs, as the grader does
                verdict.update(
                    status="forbidden_import",
                    message=f"{name} uses `{forbidden[name]}`, which this assignment does not allow: "
                    "the exercise is to derive the gradient yourself, with numpy",
                )
            elif import_problem is not None:
                verdict.update(status=import_problem[0], message=import_problem[1])
            elif not callable(getattr(module, name, None)):
                verdict.update(status="missing", message=faults.missing_message(name, module, functions))
            elif timed_out:
                verdict.update(status="skipped", message=f"not run: an earlier case of {name} timed out")
            else:
                judged = (
                    plans.judge_planned(module, eq, case, inputs, settings, code, functions, run_with_limit)
                    if eq.get("oracle") == "expected"
                    else call_and_judge(getattr(module, name), forward, eq, inputs, settings, code)
                )
                verdict.update(judged)
                timed_out = verdict["status"] == "timeout"
            cases.append(verdict)
        results.append(
            {"id": eq["id"], "label": eq["label"], "function": name, "cases": cases, "oracle": eq.get("oracle")}
        )
    return {"title": document["title"], "equations": results}


def call_and_judge(function, forward, eq: dict, inputs: dict, settings: dict, code: Code) -> dict:
    """Call one visible case with a time limit and judge what came back against finite differences."""
    name = eq["function"]
    fd = eq["finite_difference"]
    args = [inputs[arg].copy() for arg in eq["args"]]
    before = [a.copy() for a in args]
    outcome, value = run_with_limit(lambda: function(*args), settings["time_limit"])
    if outcome == "timeout":
        return {"status": "timeout", "message": f"{name} did not return within the {settings['time_limit']:g} s limit"}
    if outcome == "raised":
        status, message = faults.describe_exception(name, value, code.files, code.locate)
        return {"status": status, "message": message}
    mutated = [arg for arg, old, new in zip(eq["args"], before, args) if not np.array_equal(old, new, equal_nan=True)]
    side = (fd.get("kink") or {}).get("side")
    expected, mask = oracle.finite_difference(getattr(forward, fd["forward"]), fd, inputs, settings["fd_step"], side)
    verdict = oracle.judge(name, value, expected, mask, settings)
    if mutated:
        verdict["mutated"] = mutated
    return verdict


# --- the command -------------------------------------------------------------------------


def render(result: dict) -> str:
    """A plain-text table and what to fix, for a terminal."""
    lines = [f"Self-check: {result['title']}", f"file: {result['file']}", ""]
    if result.get("notes"):
        lines += ["Notes:"] + [f"  - {note}" for note in result["notes"]] + [""]
    functions = [eq["function"] for eq in result["equations"]]
    by_item = len(set(functions)) < len(functions)  # several items grade one function's slots: name the items
    rows = [("item" if by_item else "function", "visible case", "")]
    passing = 0
    for eq in result["equations"]:
        statuses = [c["status"] for c in eq["cases"]]
        ok = all(s == "passed" for s in statuses)
        passing += ok
        rows.append((eq["id"] if by_item else eq["function"], ", ".join(statuses), "ok" if ok else "FIX"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    for eq in result["equations"]:
        for case in eq["cases"]:
            notes = [case["message"]] if case.get("message") else []
            notes += [
                f"at {d['index']}: expected {d['expected']:.6g}, got {d['got']:.6g}" for d in case.get("diff", [])
            ]
            if case.get("mutated"):
                notes.append(f"warning: it changed its input {', '.join(case['mutated'])} in place; work on a copy")
            if notes:
                lines += ["", f"{eq['label']} [{eq['function']}]"] + [f"    {note}" for note in notes]
    against = "finite differences only"
    if any(eq.get("oracle") == "expected" for eq in result["equations"]):
        against = "finite differences and the expected values the autograder shows for them"
    lines += [
        "",
        f"{passing} of {len(result['equations'])} {'items' if by_item else 'functions'} pass their visible case. "
        f"This checks the visible cases against {against}; the autograder also runs hidden cases and compares "
        "with the reference.",
    ]
    return "\n".join(lines)


def default_file(name: str) -> str:
    """The submission's name as a .py file, else as the notebook, whichever is here (the .py first)."""
    stem = name.rsplit(".", 1)[0]
    return next((n for n in (f"{stem}.py", f"{stem}.ipynb") if Path(n).is_file()), name)


def check(notebook: str | None = None) -> None:
    """The self-check from a notebook cell: ``from selfcheck import check; check()``.

    Checks the functions defined in the kernel that calls it (the notebook as it has
    run), or, when none of them is defined there yet, the saved ``.ipynb`` named as the
    assignment expects; ``check("path.ipynb")`` checks that file. Prints the table
    ``python selfcheck.py`` prints.
    """
    folder = Path(__file__).resolve().parent
    document = load_document(folder)
    namespace = sys._getframe(1).f_globals  # the caller's globals: the kernel's user namespace
    functions = [eq["function"] for eq in document["equations"]]
    saved = Path(document["submission_filename"].rsplit(".", 1)[0] + ".ipynb")
    if notebook is not None:
        result = check_submission(Path(notebook), folder)
    elif not any(callable(namespace.get(name)) for name in functions) and saved.is_file():
        result = check_submission(saved, folder)
    else:
        result = check_namespace(namespace, folder)
    print(render(result))


def main(argv=None) -> int:
    folder = Path(__file__).resolve().parent
    document = json.loads((folder / CASES_FILE).read_text(encoding="utf-8"))
    parser = argparse.ArgumentParser(description=f"Check your functions on the visible cases of {document['title']}.")
    parser.add_argument("file", nargs="?", help="your .py file or notebook (default: the one named as the template)")
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    args = parser.parse_args(argv)
    submission = Path(args.file or default_file(document["submission_filename"]))
    if not submission.is_file():
        print(f"error: {submission}: no such file; pass the path of your .py file or notebook", file=sys.stderr)
        return 2
    result = check_submission(submission, folder)
    print(json.dumps(result, indent=2) if args.json else render(result))
    passed = all(c["status"] == "passed" for eq in result["equations"] for c in eq["cases"])
    sys.stdout.flush()
    return 0 if passed else 1


if __name__ == "__main__":
    code = main()
    # A call that timed out may still be running in its thread: leave without waiting for it.
    sys.stderr.flush()
    os._exit(code)
