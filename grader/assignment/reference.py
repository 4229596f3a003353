"""Loading trusted assignment code (the reference and the mistake catalog) in the parent.

These modules are instructor code: they run only in the grader's own process, before
and after the sandboxed child, and are never handed to a submission.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

from grader.assignment.rubric import Rubric
from grader.errors import ReferenceModuleError, RubricError


def load_module(path: Path, role: str) -> ModuleType:
    """Import a trusted module from a file under a name no other module can collide with."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"_grader_{role}_{digest}", path)
    if spec is None or spec.loader is None:
        raise ReferenceModuleError(f"{path}: cannot load the {role} module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any failure of instructor code is a configuration error
        raise ReferenceModuleError(f"{path}: the {role} module failed to import: {type(err).__name__}: {err}") from err
    return module


def require_functions(module: ModuleType, names: dict[str, str], rubric: Rubric, role: str) -> None:
    """Every function the rubric names must exist in the module (reported with its key path)."""
    for where, name in names.items():
        if not callable(getattr(module, name, None)):
            raise RubricError(f"{rubric.path}: {where}: the {role} module has no function {name!r}")


def load_reference(rubric: Rubric) -> ModuleType:
    """The reference module, checked to define every answer, forward and derivation the rubric uses."""
    module = load_module(rubric.reference, "reference")
    names: dict[str, str] = {}
    for i, eq in enumerate(rubric.equations):
        names[f"equations[{i}].function"] = eq.function
        if eq.finite_difference is not None:
            names[f"equations[{i}].finite_difference.forward"] = eq.finite_difference.forward
        for j, step in enumerate(eq.setup):
            if step.call is not None:
                names[f"equations[{i}].setup[{j}].call"] = step.call
        for j, variant in enumerate(eq.variants):
            for k, step in enumerate(variant.setup or ()):
                if step.call is not None:
                    names[f"equations[{i}].variants[{j}].setup[{k}].call"] = step.call
        for spec in eq.inputs:
            if spec.derive:
                names[f"equations[{i}].inputs.{spec.name}.derive"] = spec.derive
    require_functions(module, names, rubric, "reference")
    return module


def load_mistakes(rubric: Rubric) -> ModuleType | None:
    """The catalog of known wrong answers, if the rubric has one."""
    if rubric.mistakes_module is None:
        return None
    module = load_module(rubric.mistakes_module, "mistakes")
    names = {
        f"equations[{i}].mistakes[{j}].function": m.function
        for i, eq in enumerate(rubric.equations)
        for j, m in enumerate(eq.mistakes)
    }
    require_functions(module, names, rubric, "mistakes")
    return module
