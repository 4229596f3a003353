"""The house shows its design: the untrusted folder never imports the grader, and what ships is all of it.

The folder's top level is what sandboxed processes get; its ``student/`` folder is the
self-check, which the student bundle ships (flat, in one folder) and sandboxes never get.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import grader
from grader.grading.report import package_files
from grader.sandbox.zygote_client import untrusted_code

PACKAGE = Path(grader.__file__).resolve().parent
UNTRUSTED = sorted((PACKAGE / "untrusted").glob("*.py"))
STUDENT = sorted((PACKAGE / "untrusted" / "student").glob("*.py"))
ALLOWED_THIRD_PARTY = {"numpy"}


def imported_modules(path: Path) -> list[tuple[int, str, int]]:
    """(level, module, line) for every import statement in a file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or "", node.lineno))
    return found


@pytest.mark.parametrize("path", UNTRUSTED + STUDENT, ids=lambda p: str(p.relative_to(PACKAGE / "untrusted")))
def test_an_untrusted_module_imports_only_the_standard_library_numpy_and_its_own_folder(path):
    siblings = {p.stem for p in path.parent.glob("*.py")}
    for level, module, line in imported_modules(path):
        if level:
            assert level == 1 and (module.split(".")[0] in siblings or module == ""), f"{path.name}:{line}"
            continue
        top = module.split(".")[0]
        assert top != "grader", f"{path.name}:{line} imports the grader: the sandbox must not need it"
        assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, f"{path.name}:{line} imports {module}"


def test_sandboxed_processes_get_every_module_of_the_untrusted_folder_and_nothing_else():
    shipped = set(untrusted_code())
    expected = {f"untrusted.{p.stem}" for p in UNTRUSTED if p.name not in ("launch.py", "__init__.py")}
    assert shipped == expected
    assert not any(name.startswith("untrusted.student") or name.endswith("selfcheck") for name in shipped)


def test_the_student_bundle_ships_every_module_of_the_student_folder():
    from grader.frontends.bundle import student_modules

    assert {path.name for path, _ in student_modules()} == {p.name for p in STUDENT} - {"__init__.py"}


def test_the_grader_version_hash_covers_every_subpackage_and_the_schemas():
    covered = {p.relative_to(PACKAGE).parts[0] for p in package_files(PACKAGE) if len(p.relative_to(PACKAGE).parts) > 1}
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert subpackages <= covered and "schemas" in covered
    assert not any("__pycache__" in p.parts for p in package_files(PACKAGE))
