"""Rubric policy checked on the submission's source in the parent: forbidden imports.

The homework is to derive gradients, so a rubric may forbid automatic-differentiation
libraries. The child refuses such imports at run time too; this static pass decides
which equations an import affects: all of them for a module-level import, otherwise
the functions that contain it or reach a helper that does.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class ForbiddenImport:
    module: str
    lineno: int
    functions: tuple[str, ...] | None  # None: imported at module level, so every function


def imported_modules(node: ast.AST) -> list[tuple[str, int]]:
    found = []
    for item in ast.walk(node):
        if isinstance(item, ast.Import):
            found += [(alias.name, item.lineno) for alias in item.names]
        elif isinstance(item, ast.ImportFrom) and item.module and not item.level:
            found.append((item.module, item.lineno))
        elif (
            isinstance(item, ast.Call)
            and isinstance(item.func, (ast.Name, ast.Attribute))
            and getattr(item.func, "id", getattr(item.func, "attr", "")) in ("__import__", "import_module")
            and item.args
            and isinstance(item.args[0], ast.Constant)
            and isinstance(item.args[0].value, str)
        ):
            found.append((item.args[0].value, item.lineno))
    return found


def find_forbidden_imports(source: bytes, forbidden: tuple[str, ...]) -> list[ForbiddenImport]:
    """Every import of a forbidden top-level module, with the functions it affects."""
    if not forbidden:
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # the import itself will fail and say why
    banned = set(forbidden)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    uses: dict[str, set[str]] | None = None  # who names whom: walked only once a function imports a banned module
    results: list[ForbiddenImport] = []
    for stmt in tree.body:
        owner = getattr(stmt, "name", None) if stmt in defs.values() else None
        for module, lineno in imported_modules(stmt):
            if module.split(".")[0] not in banned:
                continue
            if owner is None:
                results.append(ForbiddenImport(module, lineno, None))
                continue
            if uses is None:
                uses = {name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} for name, node in defs.items()}
            reach = {owner}
            changed = True
            while changed:
                changed = False
                for name, used in uses.items():
                    if name not in reach and used & reach:
                        reach.add(name)
                        changed = True
            results.append(ForbiddenImport(module, lineno, tuple(sorted(reach))))
    return results


def affected(imports: list[ForbiddenImport], function: str) -> ForbiddenImport | None:
    for item in imports:
        if item.functions is None or function in item.functions:
            return item
    return None
