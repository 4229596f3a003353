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
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import inspect
import json
import linecache
import os
import sys
import threading
import traceback
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


# --- cases -------------------------------------------------------------------------


def decode_array(spec: dict) -> np.ndarray:
    """An input array from its JSON form (dtype, shape and nested lists), bit for bit."""
    return np.array(spec["data"], dtype=spec["dtype"]).reshape(spec["shape"])


def encode_array(value: np.ndarray) -> dict:
    """The JSON form of an input array; float64 survives JSON exactly (shortest round-trip repr)."""
    value = np.asarray(value)
    dtype = "int64" if value.dtype.kind in "iu" else "float64"
    return {"dtype": dtype, "shape": list(value.shape), "data": value.astype(dtype).tolist()}


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look a class's module up there
    spec.loader.exec_module(module)
    return module


# --- the finite-difference oracle ----------------------------------------------------


def finite_difference(forward, fd: dict, inputs: dict, step: float, side: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of sum(upstream * forward(args)) (or the scalar forward) wrt ``fd["wrt"]``, and a mask.

    Central differences, as the grader's oracle. Within ``step`` of a kink a central
    difference straddles it and measures neither slope, so there a one-sided difference
    is taken away from the kink, and exactly at it on ``side`` ("left" or "right", the
    assignment's convention). With no known side those entries are masked out.
    """
    point = np.array(inputs[fd["wrt"]], dtype=np.float64)
    upstream = None if fd.get("upstream") is None else inputs[fd["upstream"]]

    def objective() -> float:
        values = [point if name == fd["wrt"] else inputs[name] for name in fd["args"]]
        out = forward(*values)
        return float(np.sum(upstream * out)) if upstream is not None else float(out)

    kink = fd.get("kink")
    near = np.zeros(point.shape, dtype=bool)
    offset = np.zeros(point.shape)
    if kink is not None:
        offset = np.asarray(inputs[kink["input"]], dtype=np.float64) - kink["at"]
        if offset.shape == point.shape:
            near = np.abs(offset) <= step
    grad = np.zeros_like(point)
    mask = np.ones(point.shape, dtype=bool)
    for index in np.ndindex(point.shape):
        original = point[index]
        if near[index]:
            towards = "right" if offset[index] > 0 else "left" if offset[index] < 0 else side
            if towards is None:
                mask[index] = False
                continue
            sign = 1.0 if towards == "right" else -1.0
            at = objective()
            point[index] = original + sign * step
            moved = objective()
            point[index] = original
            grad[index] = sign * (moved - at) / step + 0.0  # + 0.0: no -0 in a message
            continue
        point[index] = original + step
        plus = objective()
        point[index] = original - step
        minus = objective()
        point[index] = original
        grad[index] = (plus - minus) / (2 * step)
    if kink is not None and offset.shape != point.shape:
        mask = np.abs(offset) > step  # a kink in another input: leave its entries out, as the grader does
    return grad, mask


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


def to_float64(value):
    """A returned value as a float64 array, or in words why it can't be graded (the grader's child rules)."""
    if value is None:
        return None, "returned None; expected a numpy array (did you forget `return`?)"
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            what = "complex numbers" if value.dtype.kind == "c" else f"dtype {value.dtype}"
            return None, f"returned an array of {what}; expected an array of real numbers"
        return np.array(value, dtype="<f8", order="C", subok=False), None
    if isinstance(value, (list, tuple, int, float, np.generic)) and not isinstance(value, (bool, complex)):
        try:
            arr = np.array(value, dtype="<f8")
        except (TypeError, ValueError, OverflowError):
            return None, f"returned a {type(value).__name__} that is not a rectangular array of real numbers"
        return np.array(arr, order="C"), None  # as the child: ascontiguousarray turns 0-d into 1-d
    return None, f"returned {type(value).__name__}; expected a numpy array"


def line_number(lineno: int) -> str:
    return f"line {lineno}"


def fault_location(err: BaseException, files: set[str], locate=line_number) -> str:
    """' at line N: `code`' for the deepest frame of the traceback in the student's code (``files``)."""
    where = ""
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.filename in files:
            code = f": `{(frame.line or '').strip()[:200]}`" if frame.line else ""
            where = f" at {locate(frame.lineno)}{code}"
    return where


def describe_exception(function: str, err: BaseException, files: set[str], locate=line_number) -> tuple[str, str]:
    """The grader's case status and message for an exception the student's function raised."""
    if isinstance(err, NotImplementedError):
        return "not_implemented", f"{function} is not implemented yet (it raises NotImplementedError)"
    if isinstance(err, SystemExit):
        return "error", f"{function} called sys.exit({err.code!r})"
    text = f" ({str(err)[:300]})" if str(err) else ""
    return "error", f"{function} raised {type(err).__name__}{text}{fault_location(err, files, locate)}"


def forbidden_functions(source: str, forbidden: list[str], functions: list[str]) -> dict[str, str]:
    """Functions that import (or call a helper that imports) a module the assignment forbids, with the module.

    The grader's static rule: a module-level import affects every function; an import
    inside a function affects it and every top-level function that reaches it by name.
    """
    if not forbidden:
        return {}
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    banned = set(forbidden)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    uses = {name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} for name, node in defs.items()}
    found: dict[str, str] = {}
    for stmt in tree.body:
        owner = getattr(stmt, "name", None) if stmt in defs.values() else None
        for item in ast.walk(stmt):
            modules = []
            if isinstance(item, ast.Import):
                modules = [alias.name for alias in item.names]
            elif isinstance(item, ast.ImportFrom) and item.module and not item.level:
                modules = [item.module]
            for module in modules:
                if module.split(".")[0] not in banned:
                    continue
                reach = set(functions) if owner is None else {owner}
                changed = owner is not None
                while changed:
                    changed = False
                    for name, used in uses.items():
                        if name not in reach and used & reach:
                            reach.add(name)
                            changed = True
                for name in reach:
                    found.setdefault(name, module)
    return found


# --- verdicts --------------------------------------------------------------------------


def squeeze_shape(shape) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def wrong_entries(got, expected, tol: dict):
    """The grader's measure: |got - expected| > atol + rtol * max|expected| (NaN is wrong)."""
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    return ~(np.abs(got - expected) <= tol["atol"] + tol["rtol"] * scale)


def within(got, expected, tol: dict, mask=None) -> bool:
    wrong = wrong_entries(got, expected, tol)
    return not bool(np.any(wrong if mask is None else wrong[mask]))


def first_differences(got, expected, tol: dict, mask, limit: int = 3) -> list[dict]:
    wrong = np.argwhere(wrong_entries(got, expected, tol) & mask)
    return [
        {"index": [int(i) for i in idx], "expected": float(expected[tuple(idx)]), "got": float(got[tuple(idx)])}
        for idx in wrong[:limit]
    ]


def judge(function: str, value, expected: np.ndarray, mask: np.ndarray, settings: dict) -> dict:
    """The verdict on one returned value, in the grader's order: None -> type -> shape -> finite -> values."""
    tol = settings["fd_tolerance"]
    want = expected.shape
    arr, problem = to_float64(value)
    if problem is not None:
        return {"status": "bad_return", "message": f"{function} {problem}"}
    got_shape = tuple(arr.shape)
    if arr.size != expected.size:
        hint = ""
        if squeeze_shape(got_shape) == squeeze_shape(want):
            hint = ": check which axes have size 1"
        elif len(got_shape) != len(want):
            hint = f": expected a {len(want)}-d array"
        return {"status": "wrong_shape", "message": f"{function} returned shape {got_shape}, expected {want}{hint}"}
    if not np.all(np.isfinite(arr)):
        return {"status": "not_finite", "message": f"{function} returned NaN or infinite entries"}
    status, note = "passed", ""
    if got_shape != want:
        squeezable = squeeze_shape(got_shape) == squeeze_shape(want)
        if not squeezable or not within(arr.reshape(want), expected, tol, mask):
            transposed = len(got_shape) == 2 and got_shape == want[::-1] and within(arr.T, expected, tol, mask)
            lead = ": the values are right but transposed" if transposed else ""
            if squeezable:
                lead = ": the shape differs only in axes of size 1, but the values are wrong too"
            return {"status": "wrong_shape", "message": f"{function} returned shape {got_shape}, expected {want}{lead}"}
        arr = arr.reshape(want)
        status = "shape_credit"
        note = (
            f"{function} returned shape {got_shape}, expected {want}: the gradient has the shape of "
            "the parameter (the shape convention)"
        )
    if within(arr, expected, tol, mask):
        return {"status": status, "message": note}
    return {
        "status": "wrong_values",
        "message": f"{function} returned wrong values",
        "diff": first_differences(arr, expected, tol, mask),
    }


def load_document(folder: Path) -> dict:
    document = json.loads((folder / CASES_FILE).read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise SystemExit(f"{folder / CASES_FILE}: written for another version of selfcheck.py")
    return document


def python_source(submission: Path):
    """(source bytes, locate, notes): a .py file as it is, a notebook's code cells as the grader runs them."""
    data = submission.read_bytes()
    if submission.suffix.lower() != ".ipynb":
        return data, line_number, []
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
    forbidden = forbidden_functions(source.decode("utf-8", "replace"), settings["forbidden_imports"], functions)
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
            where = fault_location(error, {str(submission)}, locate)
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
    forbidden = forbidden_functions("\n\n".join(pieces), sorted(banned), functions)
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
            inputs = {key: decode_array(spec) for key, spec in case["inputs"].items()}
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
                verdict.update(status="missing", message=missing_message(name, module, functions))
            elif timed_out:
                verdict.update(status="skipped", message=f"not run: an earlier case of {name} timed out")
            else:
                verdict.update(call_and_judge(getattr(module, name), forward, eq, inputs, settings, code))
                timed_out = verdict["status"] == "timeout"
            cases.append(verdict)
        results.append({"id": eq["id"], "label": eq["label"], "function": name, "cases": cases})
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
        status, message = describe_exception(name, value, code.files, code.locate)
        return {"status": status, "message": message}
    mutated = [arg for arg, old, new in zip(eq["args"], before, args) if not np.array_equal(old, new, equal_nan=True)]
    side = (fd.get("kink") or {}).get("side")
    expected, mask = finite_difference(getattr(forward, fd["forward"]), fd, inputs, settings["fd_step"], side)
    verdict = judge(name, value, expected, mask, settings)
    if mutated:
        verdict["mutated"] = mutated
    return verdict


def fold(name: str) -> str:
    """As feedback.fold: case and underscores don't count (myFunc1 is my_func1)."""
    return name.replace("_", "").lower()


def one_edit_apart(a: str, b: str) -> bool:
    """As feedback.one_edit_apart: one letter inserted, deleted, replaced, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return a == b
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]])
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def missing_message(function: str, module, others=()) -> str:
    """As feedback.missing: a near name (never another required function), or none."""
    names = [k for k, v in vars(module).items() if callable(v) and not k.startswith("__")]
    taken = {fold(o) for o in others}  # a misspelt required function is not a typo of this one
    candidates = [n for n in names if n != function and fold(n) not in taken]
    target = fold(function)
    close = None
    for test in (lambda n: fold(n) == target, lambda n: len(target) > 3 and one_edit_apart(fold(n), target)):
        found = sorted(n for n in candidates if test(n))
        if found:
            close = found[0]
            break
    hint = f"; did you mean {close!r}? The name must be exactly {function!r}" if close else ""
    return f"no function named {function!r} in your file{hint}"


# --- the command -------------------------------------------------------------------------


def render(result: dict) -> str:
    """A plain-text table and what to fix, for a terminal."""
    lines = [f"Self-check: {result['title']}", f"file: {result['file']}", ""]
    if result.get("notes"):
        lines += ["Notes:"] + [f"  - {note}" for note in result["notes"]] + [""]
    rows = [("function", "visible case", "")]
    passing = 0
    for eq in result["equations"]:
        statuses = [c["status"] for c in eq["cases"]]
        ok = all(s == "passed" for s in statuses)
        passing += ok
        rows.append((eq["function"], ", ".join(statuses), "ok" if ok else "FIX"))
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
    lines += [
        "",
        f"{passing} of {len(result['equations'])} functions pass their visible case. This checks the visible cases "
        "against finite differences only; the autograder also runs hidden cases and compares with the reference.",
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
