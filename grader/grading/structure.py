"""Where a submission's source puts the functions the rubric asks for, read by the parent.

A file can define every function and still give the grader none: a Jupyter notebook
saved with a .py name is JSON, not Python; functions written under
``if __name__ == "__main__":`` do not exist when the file is imported; methods of a
class, or functions nested in another, are not the module's. The parent has the file,
so it parses the source itself (``ast``, nothing run) and ``feedback`` says which of
these it is, instead of only "no function named ...".
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping

DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def is_notebook_json(source: bytes) -> bool:
    """Whether a file's bytes are a Jupyter notebook's JSON (a top-level object with its cells or format version)."""
    if not source.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return False
    try:
        document = json.loads(source.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(document, dict) and ("cells" in document or "nbformat" in document)


def is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either way round)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare) or len(node.test.comparators) != 1:
        return False
    sides = [node.test.left, node.test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    texts = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and texts == ["__main__"] and isinstance(node.test.ops[0], ast.Eq)


def walk_defs(body: Iterable[ast.stmt], place: tuple[str, str] | None):
    """(name, place) for every function defined below the top level: place is (kind, owner)."""
    for node in body:
        if isinstance(node, ast.ClassDef):
            inner = ("class", node.name) if place is None or place[0] == "main_guard" else place
            yield from walk_defs(node.body, inner)
        elif isinstance(node, DEFS):
            if place is not None:
                yield node.name, place
            yield from walk_defs(node.body, place or ("function", node.name))
        elif isinstance(node, ast.If) and place is None and is_main_guard(node):
            yield from walk_defs(node.body + node.orelse, ("main_guard", ""))
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                yield from walk_defs(getattr(node, field, []) or [], place)


def top_level(tree: ast.Module) -> set[str]:
    """Names a plain import defines at the top level (including under if/try, which usually run)."""
    names: set[str] = set()

    def visit(body: Iterable[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (*DEFS, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)) and not is_main_guard(node):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, []) or [])
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names


def placements(source: bytes, functions: Iterable[str]) -> Mapping[str, tuple[str, str]]:
    """For each wanted function missing from the top level but defined elsewhere: where (kind, owner)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    wanted = set(functions) - top_level(tree)
    found: dict[str, tuple[str, str]] = {}
    for name, place in walk_defs(tree.body, None):
        if name in wanted and name not in found:
            found[name] = place
    return found
