"""Cases: independent per equation, varied dimensions, a batch of one, kinks present."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import QUIZ4_RUBRIC, REPO, write_rubric_copy
from grader.assignment.expressions import parse_expression
from grader.assignment.items import DimRule
from grader.assignment.reference import load_reference
from grader.assignment.rubric import load_rubric
from grader.grading.case import build_case
from grader.grading.cases import build_cases, derive_hidden_seed, equation_rng, visible_sizes
from grader.grading.draws import dim_rules, draw_dims, repeated_sizes

LAYERS_RUBRIC = REPO / "rubrics" / "layers.yaml"


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
        # an end-to-end case's answers are its outputs; what a case sends the child is its shown inputs
        others = [
            answer
            for other in quiz4.equations
            if other.id != eq.id
            for c in cases[other.id]
            for answer in ([p.expected for p in c.parts] or [c.expected])
        ]
        for case in cases[eq.id]:
            for arg in (case.inputs[name] for name in case.shown_inputs):
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
            for part in case.parts:  # the end-to-end check: every output, no entry left out at a kink
                assert part.fd_mask.all(), (eq.id, part.name)
                assert within(part.expected, part.fd_expected, quiz4.settings.fd_tolerance, None, part.scale), part.name
            if not case.parts:
                assert within(case.expected, case.fd_expected, quiz4.settings.fd_tolerance, case.fd_mask), eq.id


def sizes_only_visible(rubric, reference, seed, equations=None) -> list[tuple[str, str]]:
    """(equation, dimension) pairs whose every hidden case repeats a visible size, where the range has another.

    Derived dimensions are left out: they follow the drawn ones.
    """
    cases = build_cases(rubric, reference, seed, equations=equations)
    stuck = []
    for eq in equations or rubric.equations:
        rules = dim_rules(rubric, eq)
        shown = [c for c in cases[eq.id] if c.visible]
        for name in shown[0].dims:
            if rules[name].expression is not None:
                continue
            sizes = {c.dims[name] for c in shown}
            others = set(range(rules[name].low, rules[name].high + 1)) - sizes
            if others and all(c.dims[name] in sizes for c in cases[eq.id] if not c.visible and name in c.dims):
                stuck.append((eq.id, name))
    return stuck


def test_a_size_hard_coded_from_the_visible_case_meets_another_size_in_some_hidden_case(quiz4):
    # seed 2765 drew eq. (15)'s H = 3, the visible width, in every hidden case
    reference = load_reference(quiz4)
    widths = [c.dims["H"] for c in build_cases(quiz4, reference, 2765)["eq15"]]
    assert widths[0] == 3 and set(widths[1:]) != {3}
    assert sizes_only_visible(quiz4, reference, 2765) == []


@pytest.mark.slow
def test_with_narrow_ranges_every_dimension_still_meets_a_size_the_visible_case_lacks(tmp_path):
    # two sizes per dimension: most seeds repeat a visible size everywhere unless the rule draws again
    narrow = load_rubric(write_rubric_copy(tmp_path, dims={"N": [2, 3], "D": [2, 3], "H": [2, 3], "C": [2, 3]}))
    reference = load_reference(narrow)
    for seed in range(40):
        assert sizes_only_visible(narrow, reference, seed) == [], seed
    again = build_cases(narrow, reference, 7)
    assert all(
        [dict(c.dims) for c in cases] == [dict(c.dims) for c in again[eq_id]]
        for eq_id, cases in build_cases(narrow, reference, 7).items()
    ), "the same seed draws the same sizes"


def test_seeds_without_a_collision_keep_every_hidden_case(quiz4):
    """Only a colliding seed changes: elsewhere the first hidden case is the plain draw."""
    reference = load_reference(quiz4)
    eq = next(e for e in quiz4.equations if e.id == "eq15")
    for seed in (1, 2, 3, 2765):
        cases = build_cases(quiz4, reference, seed, equations=[eq])["eq15"]
        plain = build_case(quiz4, eq, reference, equation_rng(seed, "eq15", "hidden"), 1, False, {})
        rest = [c.dims["H"] for c in cases[2:]]
        collided = all(h == cases[0].dims["H"] for h in [plain.dims["H"], *rest])
        assert collided == (seed == 2765)
        assert np.array_equal(plain.inputs["dZ"], cases[1].inputs["dZ"]) == (not collided)


@pytest.mark.parametrize("source", [QUIZ4_RUBRIC, LAYERS_RUBRIC], ids=["quiz4", "layers"])
def test_the_visible_sizes_are_those_of_the_visible_cases_however_many(tmp_path, source):
    two = load_rubric(write_rubric_copy(tmp_path, source, cases={"visible": 2, "hidden": 4}))
    reference = load_reference(two)
    cases = build_cases(two, reference, 0, hidden=False)
    for eq in two.equations:
        shown = cases[eq.id]
        assert len(shown) == 2
        assert visible_sizes(two, eq, reference) == {d: frozenset(c.dims[d] for c in shown) for d in shown[0].dims}


def test_a_redrawn_layers_case_keeps_require_its_derived_sizes_and_every_variant():
    # layers' seed shows conv_forward_naive N = 1 (of [1, 2]); at hidden seed 14 every hidden case had N = 1 too
    layers = load_rubric(LAYERS_RUBRIC)
    reference = load_reference(layers)
    conv = next(e for e in layers.equations if e.id == "conv_forward_naive.out")
    cases = build_cases(layers, reference, 14, equations=[conv])[conv.id]
    plain = build_case(layers, conv, reference, equation_rng(14, conv.id, "hidden"), 1, False, {})
    first = cases[1]
    assert cases[0].dims["N"] == plain.dims["N"] == 1 and first.dims["N"] == 2
    d = first.dims
    assert d["H"] + 2 * d["pad"] >= d["HH"] and d["W"] + 2 * d["pad"] >= d["WW"]
    assert (d["Hp"], d["Wp"]) == (
        1 + (d["H"] + 2 * d["pad"] - d["HH"]) // d["stride"],
        1 + (d["W"] + 2 * d["pad"] - d["WW"]) // d["stride"],
    )
    assert first.expected.shape == (d["N"], d["F"], d["Hp"], d["Wp"])
    assert [c.variant for c in cases if c.variant] == [v.name for v in conv.variants]
    for variant in conv.variants:  # variants are never drawn again
        rng = equation_rng(14, conv.id, f"variant:{variant.name}")
        alone = build_case(layers, conv, reference, rng, 0, False, {}, None, variant)
        shown = next(c for c in cases if c.variant == variant.name)
        assert dict(shown.dims) == dict(alone.dims) and np.array_equal(shown.inputs["x"], alone.inputs["x"])
    pool = next(e for e in layers.equations if e.id == "max_pool_forward_naive.out")
    for seed in range(30):
        assert sizes_only_visible(layers, reference, seed, [conv, pool]) == [], seed


def test_a_redraw_that_require_forbids_leaves_the_cases_as_drawn(tmp_path):
    # require pins N to the visible size, so no draw can avoid it: the rule gives up rather than break require
    text = LAYERS_RUBRIC.read_text().replace("../", f"{REPO}/")
    path = tmp_path / "layers.yaml"
    path.write_text(
        text.replace('require: &conv_require ["H + 2*pad >= HH"', 'require: &conv_require ["N == 1", "H + 2*pad >= HH"')
    )
    pinned = load_rubric(path)
    conv = next(e for e in pinned.equations if e.id == "conv_forward_naive.out")
    cases = build_cases(pinned, load_reference(pinned), 14, equations=[conv])[conv.id]
    plain = build_case(pinned, conv, load_reference(pinned), equation_rng(14, conv.id, "hidden"), 1, False, {})
    assert {c.dims["N"] for c in cases} == {1}
    assert dict(cases[1].dims) == dict(plain.dims) and np.array_equal(cases[1].inputs["x"], plain.inputs["x"])


def test_avoided_sizes_hold_for_axes_and_for_hyperparameters_alike():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        dims = draw_dims(
            rng,
            ["N", "stride"],
            {"N": (1, 3), "stride": (1, 3)},
            {},
            axes={"N"},
            avoid={"N": frozenset({1, 2}), "stride": frozenset({1})},
        )
        assert dims["N"] == 3 and dims["stride"] in (2, 3)
        # where avoiding and distinctness can't both hold, the visible size is what goes
        assert draw_dims(rng, ["D", "H"], {"D": (2, 3), "H": (2, 3)}, {"D": 3}, avoid={"H": frozenset({2})}) == {
            "D": 3,
            "H": 3,
        }


def test_only_drawn_dimensions_with_another_size_in_their_range_are_repeated_sizes():
    rules = {
        "N": DimRule(1, 3),
        "C": DimRule(2, 2),  # one size only: nothing else to draw
        "Hp": DimRule(expression=parse_expression("N + 1", "Hp")),  # follows N
        "D": DimRule(2, 5),
    }
    seen = {"N": frozenset({1}), "C": frozenset({2}), "Hp": frozenset({2}), "D": frozenset({4})}
    hidden = [{"N": 1, "C": 2, "Hp": 2, "D": 4}, {"N": 1, "C": 2, "Hp": 2}]  # a variant reshaped D away
    assert repeated_sizes(seen, hidden, rules) == {"N": frozenset({1}), "D": frozenset({4})}
    assert repeated_sizes(seen, [*hidden, {"N": 2, "D": 4}], rules) == {"D": frozenset({4})}
