"""What a wrong shape, or numpy's shape-mismatch message on a visible case, establishes.

Facts for ``feedback`` to word (a category and its numbers), never sentences: a
transposed answer, size-1 axes, another rank; a size that is none of the case's
dimensions, two vectors of different lengths, a vector meeting a matrix along its rows.
"""

from __future__ import annotations

import re

import numpy as np

from grader.assignment.rubric import Equation
from grader.grading import hints
from grader.grading.case import Case


def squeeze_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def shape_lead(got: np.ndarray | None, got_shape: tuple[int, ...], case: Case) -> str | None:
    """What a wrong shape suggests, as a ``feedback_verdicts.wrong_shape`` category: transposed, size-1 axes, rank."""
    want = case.expected.shape
    if got is not None and len(want) == 2 and got_shape == want[::-1] and np.allclose(got.T, case.expected):
        return "transposed"
    if squeeze_shape(got_shape) == squeeze_shape(want):
        return "size_one_axes"
    if len(got_shape) != len(want):
        return "rank"
    return None


TUPLE = re.compile(r"\(([\d, ]*)\)")
CORE_SIZES = re.compile(r"size (\d+) is different from (\d+)")


def mismatch_facts(message: str, case: Case, equation: Equation) -> tuple[str, dict] | None:
    """What numpy's shape-mismatch message establishes on a visible case, as a ``feedback`` category.

    A size that is none of the case's dimensions (a number typed in), two 1-d arrays of
    different lengths meeting, or a 1-d array meeting a matrix along its rows; None when
    the shapes show none of these (numpy's category is then all that is said).
    """
    if not any(m in message for m in hints.SHAPE_MISMATCH_MARKERS):
        return None
    shapes = [tuple(int(d) for d in t.replace(" ", "").split(",") if d) for t in TUPLE.findall(message)]
    sizes = {d for shape in shapes for d in shape} | {int(d) for pair in CORE_SIZES.findall(message) for d in pair}
    dims = dict(case.dims)
    stray = sorted(d for d in sizes if d > 1 and d not in dims.values())
    if stray:
        return "stray_size", {"size": stray[0], "dims": ", ".join(f"{k} = {v}" for k, v in sorted(dims.items()))}
    if not any(m in message for m in hints.BROADCAST_MARKERS):
        return None
    vectors = [s for s in shapes if len(s) == 1]
    matrices = [s for s in shapes if len(s) == 2]
    if len(vectors) >= 2 and vectors[0] != vectors[1]:
        return "two_vectors", {"first": vectors[0][0], "second": vectors[1][0]}
    if vectors and matrices and vectors[0][0] == matrices[0][0] != matrices[0][1]:
        labels = [s.name for s in equation.inputs if s.kind == "labels" and case.inputs[s.name].shape == vectors[0]]
        return "vector_on_rows", {"length": vectors[0][0], "shape": matrices[0], "labels": labels[0] if labels else ""}
    return None
