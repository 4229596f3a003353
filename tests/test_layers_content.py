"""The layers assignment's content is right on its own: the reference, the template, the catalog and the corpus.

In-process and without the engine (tests/layers_harness.py stands in for it): the
reference matches finite differences and its stated conventions, the template is the
reference's API with every body a stub, every correct fixture agrees with the reference,
every buggy fixture gets the statuses expected.yaml records, and every catalogued mistake
is wrong somewhere and reproduces the fixtures that claim it.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
import yaml

from conftest import FIXTURES
from layers_harness import (
    FUNCTIONS,
    ITEMS,
    MISTAKES,
    REF,
    REPO,
    call,
    cases,
    compare,
    item_cases,
    load,
    magnitude,
    outcome,
    status,
    with_function,
)

CORPUS = FIXTURES / "layers"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text())
STATUS_WORDS = {"passed", "partial", "failed", "error", "timeout", "missing", "not_implemented", "shape_credit"}
ENTRY_KEYS = {"why", "mistake", "may_be", "says", "never", "warnings", "notice"}
SEEDS = (1, 2, 3)
CATALOG = {
    name: function
    for name, function in inspect.getmembers(MISTAKES, inspect.isfunction)
    if function.__module__ == MISTAKES.__name__ and not name.startswith("_")
}
ISSUE_ITEMS = {
    "affine_forward.out", "affine_backward.dx", "affine_backward.dw", "affine_backward.db", "relu_forward.out",
    "relu_backward", "softmax_loss.loss", "softmax_loss.dx", "batchnorm_forward.out", "batchnorm_backward.dx",
    "batchnorm_backward.dgamma", "batchnorm_backward.dbeta", "dropout_forward.out", "dropout_backward",
    "conv_forward_naive.out", "conv_backward_naive.dx", "conv_backward_naive.dw", "conv_backward_naive.db",
    "max_pool_forward_naive.out", "max_pool_backward_naive",
}  # fmt: skip


def student_function(catalog_name: str) -> str:
    """The student function a catalog entry imitates: the longest function name it starts with."""
    return max((f for f in FUNCTIONS if catalog_name.startswith(f + "_")), key=len)


def allowed(entry: dict, item_id: str) -> set[str]:
    return {entry.get(item_id, "passed")} | (
        {entry["may_be"][item_id]} if item_id in entry.get("may_be", {}) else set()
    )


def harness_status(module, item_id: str) -> str:
    return status([outcome(module, item_id, case, seed) for seed in SEEDS for case in item_cases(item_id, seed)])


# --- the reference ---------------------------------------------------------------------

# backward item -> (index of the forward argument it differentiates, the forward's graded slot)
DIFFERENTIATES = {
    "affine_backward.dx": 0, "affine_backward.dw": 1, "affine_backward.db": 2, "relu_backward": 0,
    "batchnorm_backward.dx": 0, "batchnorm_backward.dgamma": 1, "batchnorm_backward.dbeta": 2, "dropout_backward": 0,
    "conv_backward_naive.dx": 0, "conv_backward_naive.dw": 1, "conv_backward_naive.db": 2, "max_pool_backward_naive": 0,
}  # fmt: skip


def numerical_gradient(f, x: np.ndarray, df, h: float = 1e-6) -> np.ndarray:
    """CS231n's eval_numerical_gradient_array: central differences of sum(f(x) * df), one entry at a time."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        plus = np.array(f(), dtype=float)
        x[index] = old - h
        minus = np.array(f(), dtype=float)
        x[index] = old
        grad[index] = np.sum((plus - minus) * df) / (2 * h)
    return grad


def numerical_gradient_of_forward(forward, args: tuple, wrt: int, dout) -> np.ndarray:
    """The forward's finite-difference gradient wrt args[wrt]; every evaluation gets fresh copies (bn_param is written)."""
    args = copy.deepcopy(args)
    rest = lambda: copy.deepcopy(args)  # noqa: E731
    return numerical_gradient(lambda: forward(*rest())[0], args[wrt], dout)


@pytest.mark.slow
@pytest.mark.parametrize("item_id", sorted(DIFFERENTIATES))
def test_the_reference_backward_matches_finite_differences(item_id):
    item = ITEMS[item_id]
    forward, backward = getattr(REF, item.forward), getattr(REF, item.function)
    for seed in (0, 1):
        for case in item_cases(item_id, seed):
            if case.warmup is not None or not case.train:
                continue
            out, cache = forward(*copy.deepcopy(case.args))
            dout = np.random.default_rng(seed).normal(size=np.shape(out))
            grads = backward(dout, cache)
            analytic = grads if item.slot is None else grads[item.slot]
            numeric = numerical_gradient_of_forward(forward, case.args, DIFFERENTIATES[item_id], dout)
            wrt = case.args[DIFFERENTIATES[item_id]]
            away_from_kinks = np.abs(wrt) > 1e-3 if item.function == "relu_backward" else np.ones(wrt.shape, bool)
            np.testing.assert_allclose(analytic[away_from_kinks], numeric[away_from_kinks], rtol=1e-5, atol=1e-7)


def test_the_reference_softmax_loss_gradient_matches_finite_differences():
    for case in cases("softmax_loss", 0):
        x, y = copy.deepcopy(case.args)
        loss, dx = REF.softmax_loss(x, y)
        loss_of_x = lambda x=x, y=y: REF.softmax_loss(x, y)[0]  # noqa: E731
        np.testing.assert_allclose(dx, numerical_gradient(loss_of_x, x, 1.0), atol=1e-8)
        shifted = x - x.max(axis=1, keepdims=True)
        expected = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y])
        assert loss == pytest.approx(expected, rel=1e-12), "the loss is the MEAN over the batch"


def test_the_reference_follows_the_conventions_the_template_states():
    x = np.array([[-1.0, 0.0, 2.0]])
    assert REF.relu_backward(np.ones((1, 3)), REF.relu_forward(x)[1]).tolist() == [[0.0, 0.0, 1.0]]

    bn_param = {"mode": "train"}
    x = np.random.default_rng(0).normal(size=(5, 3))
    REF.batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    assert bn_param["running_mean"].shape == bn_param["running_var"].shape == (3,)
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * x.var(axis=0))  # biased, momentum 0.9, from zeros
    before = copy.deepcopy(bn_param)
    out, _ = REF.batchnorm_forward(x, np.ones(3), np.zeros(3), {**bn_param, "mode": "test"})
    np.testing.assert_allclose(out, (x - before["running_mean"]) / np.sqrt(before["running_var"] + 1e-5))

    x = np.ones((4, 5))
    np.random.seed(7)
    mask = (np.random.rand(4, 5) < 0.3) / 0.3
    np.random.seed(123)  # the seed in the dict, not the global state, decides
    np.testing.assert_array_equal(REF.dropout_forward(x, {"p": 0.3, "mode": "train", "seed": 7})[0], mask)
    assert REF.dropout_forward(x, {"p": 0.3, "mode": "test"})[0] is x

    out, _ = REF.conv_forward_naive(np.ones((1, 1, 6, 6)), np.ones((1, 1, 3, 3)), np.zeros(1), {"stride": 2, "pad": 1})
    assert out.shape == (1, 1, 3, 3)  # 1 + (6 + 2 - 3) // 2, floor division
    assert out[0, 0, 0, 0] == 4.0  # the top-left window covers one padded row and column of zeros
    pooled, _ = REF.max_pool_forward_naive(
        np.arange(35.0).reshape(1, 1, 5, 7), {"pool_height": 2, "pool_width": 3, "stride": 2}
    )
    assert pooled.shape == (1, 1, 2, 3) and pooled[0, 0, 1, 2] == 3 * 7 + 6  # window (1, 2): rows 2-3, columns 4-6


def test_the_template_is_the_reference_api_with_stub_bodies():
    template = load(REPO / "student_template" / "layers.py")
    for name in FUNCTIONS:
        reference, stub = getattr(REF, name), getattr(template, name)
        assert inspect.signature(stub) == inspect.signature(reference), name
        assert stub.__doc__ == reference.__doc__, name
        with pytest.raises(NotImplementedError):
            stub(*[None] * len(inspect.signature(stub).parameters))
    for convention in (
        "x <= 0",
        "MEAN over the batch",
        "np.random.seed(seed)",
        "default_rng",
        "floor division",
        "no ties",
    ):
        assert convention in template.__doc__, convention


# --- the corpus ------------------------------------------------------------------------


def test_the_corpus_has_enough_fixtures_and_expected_yaml_lists_each_once():
    names = list(EXPECTED)
    assert sum(n.startswith("correct/") for n in names) >= 10
    assert sum(n.startswith("buggy/") for n in names) >= 30
    assert sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.py")) == sorted(names)


def test_expected_yaml_uses_only_known_items_statuses_and_mistakes():
    assert ISSUE_ITEMS <= set(ITEMS)
    for name, entry in EXPECTED.items():
        entry = entry or {}
        for key, value in entry.items():
            assert key in ITEMS or key in ENTRY_KEYS, (name, key)
            if key in ITEMS:
                assert value in STATUS_WORDS - {"passed"}, (name, key, value)
        for key in ("may_be", "mistake", "says", "never"):
            assert set(entry.get(key, {})) <= set(ITEMS), (name, key)
        assert all(s in STATUS_WORDS for s in entry.get("may_be", {}).values()), name
        for item_id, mistake_id in entry.get("mistake", {}).items():
            assert f"{ITEMS[item_id].function}_{mistake_id}" in CATALOG, (name, item_id, mistake_id)
        if name.startswith("buggy/"):
            assert any(k in ITEMS for k in entry) or entry.get("warnings"), f"{name} must lose points or warn"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("correct/")))
def test_a_correct_fixture_agrees_with_the_reference_on_every_item(name):
    module = load(CORPUS / name)
    for item_id in ITEMS:
        for seed in SEEDS:
            for case in item_cases(item_id, seed):
                assert outcome(module, item_id, case, seed) == "ok", (item_id, seed, case)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("buggy/")))
def test_a_buggy_fixture_loses_points_exactly_on_its_items(name):
    module, entry = load(CORPUS / name), EXPECTED[name] or {}
    for item_id in ITEMS:
        assert harness_status(module, item_id) in allowed(entry, item_id), item_id


# --- the mistake catalog ---------------------------------------------------------------


def test_every_catalog_entry_imitates_a_student_function_and_has_a_hint():
    assert len(CATALOG) >= 30
    for name, function in CATALOG.items():
        imitated = getattr(REF, student_function(name))
        assert inspect.signature(function) == inspect.signature(imitated), name
        assert function.__doc__ and function.__doc__.strip().endswith("."), name


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_a_catalog_mistake_is_wrong_somewhere_and_mutates_no_array(name):
    function = student_function(name)
    module = with_function(function, CATALOG[name])
    items = [i for i, item in ITEMS.items() if item.function == function]
    outcomes = {outcome(module, i, case, 1) for i in items for case in item_cases(i, 1)}
    assert outcomes - {"ok"}, f"{name} agrees with the reference on every case"
    assert "not_implemented" not in outcomes and "missing" not in outcomes
    for case in cases(ITEMS[items[0]].forward or function, 1):
        args = copy.deepcopy(case.args)
        if ITEMS[items[0]].forward:  # a backward mistake gets the reference's cache
            out, cache = getattr(REF, ITEMS[items[0]].forward)(*copy.deepcopy(args))
            args = (np.ones(np.shape(out)), cache)
        before = copy.deepcopy(args)
        try:
            CATALOG[name](*args)
        except Exception:  # noqa: BLE001, S110 - documented: some raise where the student's code raises
            pass
        for old, new in zip(before, args):
            if isinstance(old, np.ndarray):
                np.testing.assert_array_equal(old, new, err_msg=name)


CLAIMS = sorted(
    (name, item_id, mistake_id)
    for name, entry in EXPECTED.items()
    for item_id, mistake_id in (entry or {}).get("mistake", {}).items()
)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "item_id", "mistake_id"), CLAIMS)
def test_a_claimed_mistake_reproduces_the_fixture_that_claims_it(name, item_id, mistake_id):
    item = ITEMS[item_id]
    fixture = load(CORPUS / name)
    mistake = with_function(item.function, CATALOG[f"{item.function}_{mistake_id}"])
    compared = differs = 0
    for seed in SEEDS:
        for case in item_cases(item_id, seed):
            try:
                got = call(fixture, item_id, case, seed)
            except Exception:  # noqa: BLE001 - a crashing case is not the catalog's to name
                continue
            imitation = call(mistake, item_id, case, seed)
            assert compare(got, imitation, magnitude(case, imitation)) == "ok", (seed, case)
            compared += 1
            differs += outcome(mistake, item_id, case, seed) != "ok"
    assert compared and differs, "the claim must rest on cases where the mistake shows"
