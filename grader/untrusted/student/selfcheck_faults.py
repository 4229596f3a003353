"""The self-check's words for what went wrong before a value came back.

A raised exception (with the line in the student's file or notebook cell), a forbidden
import found in the source, a missing function with a near name: worded as the grader's
``grader/grading/feedback.py`` words them for a visible case (``tests/test_feedback_parity.py``
holds the two to the same sentences). Shipped in the student bundle beside
``selfcheck.py``, so the standard library only.
"""

from __future__ import annotations

import ast
import traceback


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
