"""What the student bundle's self-check needs: the visible cases, and how each item is judged there.

Two oracles, as in the grader, but without the reference. An item whose expected
value finite differences of a shippable forward give (quiz 4's gradients) ships the
visible cases' inputs and how to differentiate (``selfcheck_forward.py`` holds the
forward functions, cut out of the reference). Any other item (a forward output, a
loss, a backward graded on a cache its own forward made, a side effect) ships the
visible cases' inputs, its call plan and the expected value itself, with the case's
error scale: the autograder's report shows a visible case's expected value anyway, and
shipping the forward would ship an answer.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from types import ModuleType

import numpy as np

from grader.assignment.rubric import Equation, Rubric
from grader.errors import ReferenceModuleError
from grader.grading.cases import build_cases
from grader.untrusted.student import selfcheck, selfcheck_oracle, selfcheck_plans


def selfcheck_equations(rubric: Rubric) -> tuple[Equation, ...]:
    # an end-to-end check (outputs) chains functions the self-check already covers one by one
    return tuple(eq for eq in rubric.equations if eq.visibility == "visible" and not eq.outputs)


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
    todo = [eq.finite_difference.forward for eq in equations if not by_expected_value(rubric, eq)]
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


def by_expected_value(rubric: Rubric, equation: Equation) -> bool:
    """Whether the self-check judges an item by its shipped expected value, not by finite differences.

    So it is for an item without finite differences, one graded through a call plan (setup
    calls, a tuple slot, a dict entry), and one whose forward is itself an answer.
    """
    fd = equation.finite_difference
    plain = not (equation.setup or equation.slots or equation.output_argument)
    return fd is None or not plain or fd.forward in {eq.function for eq in rubric.equations}


def expected_value_item(equation: Equation, cases, settings) -> dict:
    """A visible case as the self-check runs it through the plan: inputs, the expected value and its scale."""
    plan = cases[0].plan if cases else None
    return {
        "id": equation.id,
        "label": equation.label,
        "function": equation.function,
        "args": list(equation.args),
        "returns": list(equation.returns),
        "oracle": "expected",
        "gradient": equation.finite_difference is not None,
        "plan": {
            "setup": [step.as_request() for step in (plan.setup if plan else ())],
            "call": list(equation.args),
            "slots": list(equation.slots),
            "slot": equation.slot_index,
            "argument": equation.output_argument,
            "key": equation.output_key,
        },
        "tolerance": {"rtol": settings.tolerance.rtol, "atol": settings.tolerance.atol},
        "cases": [
            {
                "index": case.index,
                "dims": dict(case.dims),
                "inputs": {name: selfcheck_plans.encode_input(value) for name, value in case.inputs.items()},
                "expected": selfcheck_oracle.encode_array(case.expected),
                "scale": case.scale,
            }
            for case in cases
        ],
    }


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
        if by_expected_value(rubric, eq):
            items.append(expected_value_item(eq, built[eq.id], settings))
            continue
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
