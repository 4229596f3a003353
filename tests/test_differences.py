"""Finite differences from stacks of perturbed copies are the entry-by-entry ones, bit for bit.

Reports carry ``fd_max_abs_error`` at full precision, so evaluating every copy of
``wrt`` in one call may change no value: each item of both assignments, over many
seeds, is compared with a plain loop that moves one entry at a time, and a forward
that doesn't broadcast (or does so differently) is shown to be evaluated entry by entry.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from conftest import QUIZ4_RUBRIC, REPO
from grader.assignment.items import FiniteDifference
from grader.assignment.reference import load_reference
from grader.assignment.rubric import load_rubric
from grader.grading import differences
from grader.grading.cases import build_cases
from grader.grading.differences import finite_difference, same_bits

RUBRICS = {"quiz4": QUIZ4_RUBRIC, "layers": REPO / "rubrics" / "layers.yaml"}
STEP = 1e-6


def one_entry_at_a_time(forward, fd: FiniteDifference, inputs, step: float, slot=None) -> tuple[np.ndarray, np.ndarray]:
    """The oracle as it was before stacks: every entry moved in place, one evaluation each."""
    point = np.array(inputs[fd.wrt], dtype=np.float64)
    upstream = None if fd.upstream is None else inputs[fd.upstream]
    values = [point if name == fd.wrt else inputs[name] for name in fd.args]

    def objective() -> float:
        out = forward(*(copy.deepcopy(v) if isinstance(v, dict) else v for v in values))
        out = out if slot is None else out[slot]
        return float((upstream * out).sum()) if upstream is not None else float(out)

    grad = np.zeros_like(point)
    base = objective()
    for index in np.ndindex(point.shape):
        original = point[index]
        if fd.linear:
            point[index] = original + 1.0
            grad[index] = objective() - base
        else:
            point[index] = original + step
            plus = objective()
            point[index] = original - step
            minus = objective()
            grad[index] = (plus - minus) / (2 * step)
        point[index] = original
    mask = np.ones(point.shape, dtype=bool)
    if fd.kink_input is not None:
        mask = np.abs(np.asarray(inputs[fd.kink_input], dtype=np.float64) - fd.kink_at) > step
    return grad, mask


def items():
    for name, path in RUBRICS.items():
        for eq in load_rubric(path).equations:
            if eq.finite_difference is not None:
                yield pytest.param(name, eq.id, id=f"{name}-{eq.id}")


@pytest.fixture(scope="module")
def assignments():
    loaded = {}
    for name, path in RUBRICS.items():
        rubric = load_rubric(path)
        loaded[name] = (rubric, load_reference(rubric))
    return loaded


class Counted:
    """A forward that counts its calls, to tell a stacked evaluation from a loop."""

    def __init__(self, forward):
        self.forward, self.calls = forward, 0

    def __call__(self, *args):
        self.calls += 1
        return self.forward(*args)


@pytest.mark.slow
@pytest.mark.parametrize("assignment, item_id", list(items()))
def test_every_item_differences_bit_for_bit_as_one_entry_at_a_time(assignments, assignment, item_id):
    # with `batched` and `stacked` off, so that every forward meets the stacked copies
    rubric, reference = assignments[assignment]
    eq = next(eq for eq in rubric.equations if eq.id == item_id)
    forward = getattr(reference, eq.finite_difference.forward)
    dict_args = assignment == "layers" and any(
        isinstance(v, dict) for v in build_cases(rubric, reference, 0, equations=[eq])[eq.id][0].inputs.values()
    )
    for seed in range(2 if dict_args else 12):  # a dict argument is never stacked: a few seeds show it as it was
        for case in build_cases(rubric, reference, seed, equations=[eq])[eq.id]:
            specs = list(eq.output_differences()) if eq.outputs else [eq.finite_difference]
            for fd in specs:
                fd = dataclasses.replace(fd, batched=False, stacked=False)
                slot = fd.slot if not isinstance(fd.slot, str) else rubric.function_slots[fd.forward].index(fd.slot)
                grad, mask = finite_difference(forward, fd, case.inputs, STEP, slot)
                want, want_mask = one_entry_at_a_time(forward, fd, case.inputs, STEP, slot)
                where = (seed, case.index, case.probe, case.variant, fd.wrt)
                assert same_bits(grad, want), where
                assert np.array_equal(mask, want_mask) and mask.dtype == want_mask.dtype, where


def matmul(A, B):
    return A @ B


def test_a_matrix_product_is_evaluated_in_one_stacked_call_and_three_checks():
    rng = np.random.default_rng(1)
    inputs = {"X": rng.standard_normal((6, 5)), "W": rng.standard_normal((5, 4)), "dY": rng.standard_normal((6, 4))}
    for wrt, linear in (("X", False), ("W", False), ("X", True)):
        fd = FiniteDifference(forward="matmul", args=("X", "W"), wrt=wrt, upstream="dY", linear=linear)
        forward = Counted(matmul)
        grad, _ = finite_difference(forward, fd, inputs, STEP)
        assert same_bits(grad, one_entry_at_a_time(matmul, fd, inputs, STEP)[0])
        assert forward.calls == 1 + linear + 1 + 3  # the shape, the base (one-sided), the stack, the checks


def test_a_forward_that_returns_its_argument_itself_is_stacked_and_checked_before_the_entry_is_put_back():
    rng = np.random.default_rng(5)
    inputs = {"X": rng.standard_normal((4, 9)), "dX": rng.standard_normal((4, 9))}
    fd = FiniteDifference(forward="same", args=("X",), wrt="X", upstream="dX")
    forward = Counted(lambda X: X)
    grad, _ = finite_difference(forward, fd, inputs, STEP)
    assert same_bits(grad, one_entry_at_a_time(lambda X: X, fd, inputs, STEP)[0])
    assert forward.calls == 1 + 1 + 3


def calls_entry_by_entry(forward, fd: FiniteDifference, inputs) -> bool:
    """Whether ``finite_difference`` falls back to one call per entry and side, and still gives the loop's bits."""
    counted = Counted(forward)
    grad, _ = finite_difference(counted, fd, inputs, STEP)
    assert same_bits(grad, one_entry_at_a_time(forward, fd, inputs, STEP)[0])
    sides = 1 if fd.linear else 2
    return counted.calls >= sides * inputs[fd.wrt].size


@pytest.mark.parametrize(
    "forward",
    [
        pytest.param(lambda A, B: A.reshape(A.shape[0], -1) @ B, id="raises-on-a-stack"),
        pytest.param(lambda A, B: (A - A.mean(axis=0)) @ B, id="mixes-the-copies"),
        pytest.param(lambda A, B: (A @ B).reshape(-1, B.shape[1])[: A.shape[-2]], id="keeps-one-copy"),
        pytest.param(
            # seeded noise drawn for the whole stack: copy 0 gets the noise a single call gets, the last doesn't
            lambda A, B: A @ B + np.random.default_rng(0).standard_normal((*A.shape[:-1], B.shape[1])),
            id="depends-on-the-copy's-place",
        ),
    ],
)
def test_a_forward_that_does_not_treat_each_copy_alone_is_evaluated_entry_by_entry(forward):
    rng = np.random.default_rng(2)
    inputs = {"X": rng.standard_normal((3, 4)), "W": rng.standard_normal((4, 5)), "dY": rng.standard_normal((3, 5))}
    fd = FiniteDifference(forward="f", args=("X", "W"), wrt="X", upstream="dY")
    assert calls_entry_by_entry(forward, fd, inputs)


def test_a_scalar_loss_over_rows_does_not_broadcast_and_keeps_the_loop(assignments):
    rubric, reference = assignments["quiz4"]
    eq = next(eq for eq in rubric.equations if eq.id == "eq9")
    case = build_cases(rubric, reference, 0, equations=[eq])[eq.id][1]
    assert calls_entry_by_entry(reference.cross_entropy_of_scores, eq.finite_difference, case.inputs)


def test_a_dict_argument_is_copied_for_every_evaluation_and_never_stacked():
    def scaled(x, param):
        param["calls"] = param.get("calls", 0) + 1  # a forward that writes into its dict sees a fresh one each time
        return x * param["scale"] * param["calls"]

    rng = np.random.default_rng(3)
    inputs = {"x": rng.standard_normal((4, 4)), "param": {"scale": 3.0}, "dout": rng.standard_normal((4, 4))}
    fd = FiniteDifference(forward="scaled", args=("x", "param"), wrt="x", upstream="dout")
    assert calls_entry_by_entry(scaled, fd, inputs)
    assert inputs["param"] == {"scale": 3.0}


@pytest.mark.parametrize(
    "rows, copies_a_call, calls",
    [
        (5, 10, 4),  # 20 entries, 40 copies: pieces of one entry's block of copies, ten a call
        (3, 13, 2),  # 12 entries, 24 copies: whole blocks, 12 a call
    ],
)
def test_a_large_stack_is_split_into_calls_that_each_stay_under_the_bound(monkeypatch, rows, copies_a_call, calls):
    monkeypatch.setattr(differences, "STACK_BYTES", 8 * rows * 6 * copies_a_call)  # outputs of (rows, 6)
    rng = np.random.default_rng(4)
    inputs = {
        "X": rng.standard_normal((rows, 4)),
        "W": rng.standard_normal((4, 6)),
        "dY": rng.standard_normal((rows, 6)),
    }
    fd = FiniteDifference(forward="matmul", args=("X", "W"), wrt="X", upstream="dY")
    forward = Counted(matmul)
    stacks = []

    def watched(A, B):
        stacks.append(A.shape[0] if A.ndim == 3 else 1)
        return forward(A, B)

    grad, _ = finite_difference(watched, fd, inputs, STEP)
    assert same_bits(grad, one_entry_at_a_time(matmul, fd, inputs, STEP)[0])
    assert sum(n for n in stacks if n > 1) == 2 * rows * 4 and max(stacks) <= copies_a_call
    assert forward.calls == 1 + calls + 3  # the shape, the stacked calls, the three checks
