"""Cases: independent per equation, varied dimensions, a batch of one, kinks present."""

from __future__ import annotations

import numpy as np

from grader.assignment.reference import load_reference
from grader.grading.cases import build_cases, derive_hidden_seed


def test_every_equation_gets_one_visible_and_four_regular_hidden_cases(quiz4):
    cases = build_cases(quiz4, load_reference(quiz4), hidden_seed=1)
    for eq in quiz4.equations:
        assert [c.visible for c in cases[eq.id] if c.probe is None] == [True, False, False, False, False]


def test_dimensions_are_pairwise_distinct_except_in_the_batch_of_one(quiz4):
    cases = build_cases(quiz4, load_reference(quiz4), hidden_seed=2)
    for eq in quiz4.equations:
        *most, last = [c for c in cases[eq.id] if c.probe is None]
        for case in most:
            assert len(set(case.dims.values())) == len(case.dims), (eq.id, dict(case.dims))
        assert last.dims["N"] == 1 and len(set(last.dims.values())) == len(last.dims)


def test_no_equation_receives_another_equations_expected_output(quiz4):
    cases = build_cases(quiz4, load_reference(quiz4), hidden_seed=3)
    for eq in quiz4.equations:
        others = [c.expected for other in quiz4.equations if other.id != eq.id for c in cases[other.id]]
        for case in cases[eq.id]:
            for arg in case.args:
                for answer in others:
                    if arg.shape == answer.shape and arg.dtype == answer.dtype:
                        assert not np.array_equal(arg, answer)


def test_relu_inputs_hold_exact_zeros_in_every_case(quiz4):
    cases = build_cases(quiz4, load_reference(quiz4), hidden_seed=4)
    assert all((case.inputs["Z"] == 0).any() for case in cases["eq13"])
    assert all(not case.fd_mask[case.inputs["Z"] == 0].any() for case in cases["eq13"])


def test_visible_cases_are_the_same_for_everyone_and_hidden_ones_differ(quiz4):
    reference = load_reference(quiz4)
    a = build_cases(quiz4, reference, derive_hidden_seed(quiz4.seed, "a" * 64))
    b = build_cases(quiz4, reference, derive_hidden_seed(quiz4.seed, "b" * 64))
    assert np.array_equal(a["eq1"][0].inputs["dY"], b["eq1"][0].inputs["dY"])
    assert not np.array_equal(a["eq1"][1].inputs["dY"], b["eq1"][1].inputs["dY"])


def test_the_reference_agrees_with_finite_differences_on_every_case(quiz4):
    from grader.grading.checks import within

    cases = build_cases(quiz4, load_reference(quiz4), hidden_seed=5)
    for eq in quiz4.equations:
        for case in cases[eq.id]:
            assert within(case.expected, case.fd_expected, quiz4.settings.fd_tolerance, case.fd_mask), eq.id
