"""``grade validate``: catch an instructor's bug before students see it.

Checks, beyond the schema and cross-references that loading already enforces, that on
many generated cases the reference agrees with finite differences (on the items that
have them), that every
catalogued mistake really differs from the reference somewhere, and that the
template defines every function the rubric grades.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from grader.assignment.reference import load_mistakes, load_reference
from grader.assignment.rubric import load_rubric, parse_yaml
from grader.assignment.scaffold import PLACEHOLDER, placeholders
from grader.errors import RubricError
from grader.grading.cases import build_cases
from grader.grading.checks import within
from grader.grading.diagnosis import evaluate_mistake

MIN_SEED = 2**40  # below this, a search over seeds against the shipped visible inputs is quick


def template_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_bytes())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def unfilled_placeholders(path: Path) -> list[str]:
    """One line per value `grade new` left to fill in, before the schema has its say on them."""
    try:
        document = parse_yaml(path.read_bytes(), str(path))
    except OSError:
        return []  # load_rubric says why the file can't be read
    except RubricError:
        return []
    return [f"{path}: {where}: still {PLACEHOLDER}, to be filled in" for where in placeholders(document)]


def validate_rubric(path: str | Path, cases: int = 50) -> list[str]:
    """Problems found, one line each; an empty list means the rubric is sound."""
    unfilled = unfilled_placeholders(Path(path))
    if unfilled:
        return unfilled
    rubric = load_rubric(path)
    reference = load_reference(rubric)
    mistakes = load_mistakes(rubric)
    many = dataclasses.replace(rubric, settings=dataclasses.replace(rubric.settings, hidden_cases=max(1, cases)))
    problems: list[str] = []
    if rubric.seed < MIN_SEED:
        problems.append(
            f"{rubric.path}: seed: {rubric.seed} is small enough to be found by trying seeds against the visible "
            "cases, and it keys the hidden ones: use a large random number (e.g. python -c 'import secrets; "
            "print(secrets.randbits(63))')"
        )
    defined = template_functions(rubric.template)
    for eq in rubric.equations:
        if eq.function not in defined:
            problems.append(f"{rubric.template}: no function {eq.function!r} for {eq.id}")
    built = build_cases(many, reference, hidden_seed=rubric.seed + 1)
    for eq in rubric.equations:
        disagreeing = [
            c.index
            for c in built[eq.id]
            if c.fd_expected is not None
            and not within(c.expected, c.fd_expected, rubric.settings.fd_tolerance, c.fd_mask, c.scale)
            # an output's mask leaves out where the two disagree (a step across a kink): any is worth a look
            or any(part.fd_mask is not None and not part.fd_mask.all() for part in c.parts)
        ]
        if disagreeing:
            problems.append(
                f"{rubric.path}: {eq.id}: the reference {eq.caller if eq.outputs else eq.function} disagrees "
                "with finite differences "
                f"in {len(disagreeing)} of {len(built[eq.id])} cases (first: case {disagreeing[0]})"
            )
        for mistake in eq.mistakes:
            outputs = [(c, evaluate_mistake(mistakes, mistake.function, c, reference)) for c in built[eq.id]]
            if all(out is None for _, out in outputs):
                problems.append(f"{rubric.path}: {eq.id}: mistake {mistake.id!r} fails on every case")
            elif all(
                out is not None
                and out.shape == c.expected.shape
                and within(out, c.expected, rubric.settings.tolerance, None, c.scale)
                for c, out in outputs
            ):
                problems.append(
                    f"{rubric.path}: {eq.id}: mistake {mistake.id!r} gives the right answer on every case, "
                    "so it can never be told apart"
                )
    return problems
