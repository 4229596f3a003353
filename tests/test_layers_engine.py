"""The rubric language grown for any gradient homework, proven on the `layers` assignment.

Tuple slots, caches that never leave the child, setup calls and their blame, dict
arguments and what a call leaves in them, seeded randomness, derived sizes and
constraints, variants, finite differences of a backward, and quiz 4 left as it was.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap

import numpy as np
import pytest

from conftest import REPO, grade, statuses
from grader.assignment.expressions import parse_expression
from grader.assignment.reference import load_reference
from grader.assignment.rubric import load_rubric
from grader.assignment.validate import validate_rubric
from grader.errors import RubricError
from grader.grading.cases import build_cases
from grader.grading.checks import within
from grader.grading.differences import finite_difference
from grader.sandbox.requests import call_request

LAYERS_RUBRIC = REPO / "rubrics" / "layers.yaml"
REFERENCE = (REPO / "solutions" / "layers.py").read_text()


@pytest.fixture(scope="module")
def layers():
    return load_rubric(LAYERS_RUBRIC)


@pytest.fixture(scope="module")
def reference(layers):
    return load_reference(layers)


def submission(tmp_path, extra: str, name: str = "layers.py"):
    """The reference with some functions redefined after it (the later definition wins)."""
    path = tmp_path / name
    path.write_text(REFERENCE + "\n\n" + textwrap.dedent(extra))
    return path


def item(document, item_id):
    return next(eq for eq in document["equations"] if eq["id"] == item_id)


def test_layers_validates_and_has_the_issue_items(layers):
    assert validate_rubric(LAYERS_RUBRIC, cases=5) == []
    ids = [eq.id for eq in layers.equations]
    assert len(ids) == 22
    for expected in (
        "affine_forward.out",
        "affine_backward.dx",
        "relu_backward",
        "softmax_loss.loss",
        "batchnorm_forward.running_mean",
        "batchnorm_backward.dgamma",
        "dropout_backward",
        "conv_backward_naive.db",
        "max_pool_backward_naive",
    ):
        assert expected in ids


def test_the_reference_scores_full_marks_and_the_template_nothing(layers):
    _, right = grade(REPO / "solutions" / "layers.py", layers)
    assert right["score"] == right["max_score"] == 27
    assert all(eq["diagnosis"] is None for eq in right["equations"])
    _, template = grade(REPO / "student_template" / "layers.py", layers)
    assert template["score"] == 0
    assert set(statuses(template).values()) == {"not_implemented"}
    assert "fix affine_forward first: its cache is needed" in item(template, "affine_backward.dx")["feedback"]


def test_a_wrong_arity_is_the_students_fault_worded_by_the_grader(tmp_path, layers):
    path = submission(
        tmp_path,
        """
        def affine_backward(dout, cache):
            x, w, b = cache
            return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout
        """,
    )
    _, document = grade(path, layers)
    for slot in ("dx", "dw", "db"):
        entry = item(document, f"affine_backward.{slot}")
        assert entry["status"] == "failed"
        visible = [c for c in entry["cases"] if c["visible"]]
        hidden = [c for c in entry["cases"] if not c["visible"]]
        assert visible[0]["message"] == "affine_backward returned 2 values, expected 3 (dx, dw, db)"
        assert all(c["message"] == "affine_backward did not return a tuple of 3 values (dx, dw, db)" for c in hidden)
    assert statuses(document)["affine_forward.out"] == "passed"


def test_a_failing_setup_call_blames_the_forward_and_costs_the_backward(tmp_path, layers):
    path = submission(
        tmp_path,
        """
        def relu_forward(x):
            raise ValueError("not today")
        """,
    )
    _, document = grade(path, layers)
    backward = item(document, "relu_backward")
    assert backward["status"] == "error" and backward["score"] == 0
    assert all(c["message"].startswith("fix relu_forward first: its cache is needed") for c in backward["cases"])
    forward = item(document, "relu_forward.out")
    assert "fix" not in forward["feedback"] and "raised" in forward["feedback"]


def test_a_cache_that_cannot_be_serialised_never_has_to_be(tmp_path, layers):
    path = submission(
        tmp_path,
        """
        import threading
        _affine_forward, _affine_backward = affine_forward, affine_backward

        def affine_forward(x, w, b):
            out, cache = _affine_forward(x, w, b)
            lock = threading.Lock()
            return out, (lambda: cache, lock, (i for i in range(3)), open("/dev/null"))

        def affine_backward(dout, cache):
            return _affine_backward(dout, cache[0]())
        """,
    )
    _, document = grade(path, layers)
    assert all(statuses(document)[f"affine_backward.{s}"] == "passed" for s in ("dx", "dw", "db"))


def test_what_a_call_leaves_in_its_dict_argument_is_graded(tmp_path, layers):
    path = submission(
        tmp_path,
        """
        _batchnorm_forward = batchnorm_forward

        def batchnorm_forward(x, gamma, beta, bn_param):
            out, cache = _batchnorm_forward(x, gamma, beta, bn_param)
            bn_param.pop("running_var")
            bn_param["running_mean"] = bn_param["running_mean"][None, :]
            return out, cache
        """,
    )
    _, document = grade(path, layers)
    mean = item(document, "batchnorm_forward.running_mean")
    assert mean["status"] == "partial" and {c["status"] for c in mean["cases"]} == {"shape_credit"}
    var = item(document, "batchnorm_forward.running_var")
    assert var["status"] == "failed"
    assert "batchnorm_forward left no 'running_var' in bn_param" in var["feedback"]


def test_seeded_dropout_is_compared_exactly_and_is_not_nondeterministic(tmp_path, layers):
    uniform = submission(
        tmp_path,
        """
        def dropout_forward(x, dropout_param):
            p, mode = dropout_param["p"], dropout_param["mode"]
            if "seed" in dropout_param:
                np.random.seed(dropout_param["seed"])
            if mode == "train":
                mask = (np.random.uniform(size=x.shape) < p) / p
                return x * mask, (dropout_param, mask)
            return x, (dropout_param, None)
        """,
    )
    _, right = grade(uniform, layers)
    assert statuses(right)["dropout_forward.out"] == statuses(right)["dropout_backward"] == "passed"
    rng = submission(
        tmp_path,
        """
        def dropout_forward(x, dropout_param):
            p, mode = dropout_param["p"], dropout_param["mode"]
            if mode == "train":
                mask = (np.random.default_rng(dropout_param.get("seed")).random(x.shape) < p) / p
                return x * mask, (dropout_param, mask)
            return x, (dropout_param, None)
        """,
        name="rng.py",
    )
    _, wrong = grade(rng, layers)
    forward = item(wrong, "dropout_forward.out")
    assert forward["status"] == "partial"  # test mode is right
    assert {c["status"] for c in forward["cases"]} <= {"passed", "wrong_values"}  # never nondeterministic
    assert forward["diagnosis"]["mistake_id"] == "default_rng"


@pytest.mark.slow
def test_a_loss_of_any_real_scalar_type_is_a_scalar(tmp_path, layers):
    for kind in ("float(loss)", "np.float32(loss)", "np.asarray(loss)", "np.float64(loss)"):
        path = submission(
            tmp_path,
            f"""
            _softmax_loss = softmax_loss

            def softmax_loss(x, y):
                loss, dx = _softmax_loss(x, y)
                return {kind}, dx
            """,
        )
        _, document = grade(path, layers)
        assert statuses(document)["softmax_loss.loss"] == "passed", kind
    path = submission(
        tmp_path,
        """
        _softmax_loss = softmax_loss

        def softmax_loss(x, y):
            loss, dx = _softmax_loss(x, y)
            return np.array([loss]), dx
        """,
    )
    _, document = grade(path, layers)
    assert {c["status"] for c in item(document, "softmax_loss.loss")["cases"]} == {"shape_credit"}


@pytest.mark.slow
def test_derived_sizes_hold_the_constraints_and_every_variant_is_a_hidden_case(layers, reference):
    conv = next(eq for eq in layers.equations if eq.id == "conv_backward_naive.dx")
    pool = next(eq for eq in layers.equations if eq.id == "max_pool_forward_naive.out")
    for seed in range(25):
        built = build_cases(layers, reference, seed, equations=[conv, pool])
        for case in built[conv.id]:
            d = case.dims
            assert d["H"] + 2 * d["pad"] >= d["HH"] and d["W"] + 2 * d["pad"] >= d["WW"]
            assert d["Hp"] == 1 + (d["H"] + 2 * d["pad"] - d["HH"]) // d["stride"]
            assert case.inputs["conv_param"] == {"stride": d["stride"], "pad": d["pad"]}
            assert case.inputs["dout"].shape == (d["N"], d["F"], d["Hp"], d["Wp"])
        assert [c.variant for c in built[conv.id] if c.variant] == [v.name for v in conv.variants]
        assert all(not c.visible for c in built[conv.id] if c.variant)
        strided = next(c for c in built[conv.id] if c.variant == "strided_padded_channels")
        assert (strided.dims["stride"], strided.dims["pad"], strided.dims["C"]) == (2, 1, 3)
        for case in built[pool.id]:
            x = case.inputs["x"]
            assert np.unique(x).size == x.size  # no ties: the argmax is unique
    strides = {
        c.dims["stride"] for seed in range(25) for c in build_cases(layers, reference, seed, equations=[conv])[conv.id]
    }
    assert strides >= {1, 2, 3}


def test_the_hidden_cases_cover_what_the_issue_lists(layers, reference):
    by_id = {eq.id: eq for eq in layers.equations}
    built = build_cases(layers, reference, 7)
    assert {c.inputs["x"].ndim for c in built["affine_forward.out"] if not c.visible} >= {3, 4}
    assert all(np.any(c.inputs["x"] == 0) for c in built["relu_forward.out"])
    assert any(c.dims["N"] > 1 for c in built["softmax_loss.loss"] if not c.visible)
    bn = {c.variant: c for c in built["batchnorm_forward.out"]}
    assert bn["empty_bn_param"].inputs["bn_param"] == {"mode": "train"}
    assert bn["test_mode_given_statistics"].inputs["bn_param"]["mode"] == "test"
    assert "low_variance" in bn and "large_eps" in bn
    pools = [c.inputs["pool_param"] for c in built["max_pool_forward_naive.out"] if not c.visible]
    assert any(p["stride"] != p["pool_height"] for p in pools)
    assert any(p["pool_height"] != p["pool_width"] for p in pools)
    assert by_id["dropout_forward.out"].finite_difference is None  # a forward: the reference alone judges
    assert all("seed" in c.inputs["dropout_param"] for c in built["dropout_forward.out"])


@pytest.mark.slow
def test_finite_differences_of_every_backward_match_the_reference_over_many_seeds(layers, reference):
    for seed in range(12):
        built = build_cases(layers, reference, 1000 + seed)
        for eq in layers.equations:
            for case in built[eq.id]:
                if case.fd_expected is None:
                    continue
                assert within(
                    case.expected, case.fd_expected, layers.settings.fd_tolerance, case.fd_mask, case.scale
                ), (eq.id, seed, case.index)


@pytest.mark.parametrize(
    "item_id",
    [
        "conv_backward_naive.dx",
        "conv_backward_naive.dw",
        "conv_backward_naive.db",
        "affine_backward.dw",
        "affine_backward.db",
        "batchnorm_backward.dx",
        "batchnorm_backward.dgamma",
        "max_pool_backward_naive",
    ],
)
def test_batched_differences_are_the_per_entry_ones(layers, reference, item_id):
    import dataclasses

    eq = next(eq for eq in layers.equations if eq.id == item_id)
    fd = eq.finite_difference
    assert fd.batched
    forward = getattr(reference, fd.forward)
    slot = layers.function_slots[fd.forward].index(fd.slot)
    for case in build_cases(layers, reference, 3, equations=[eq])[eq.id]:
        batched, _ = finite_difference(forward, fd, case.inputs, 1e-6, slot)
        plain, _ = finite_difference(forward, dataclasses.replace(fd, batched=False), case.inputs, 1e-6, slot)
        assert batched.shape == plain.shape == case.expected.shape
        assert np.allclose(batched, plain, rtol=1e-7, atol=1e-7), case.index
        if fd.linear:
            central, _ = finite_difference(
                forward, dataclasses.replace(fd, batched=False, linear=False), case.inputs, 1e-6, slot
            )
            assert np.allclose(batched, central, rtol=1e-6, atol=1e-6)


def test_a_rubric_expression_is_arithmetic_only():
    assert (
        parse_expression("1 + (H + 2*pad - HH) // stride", "x").evaluate({"H": 5, "pad": 1, "HH": 3, "stride": 2}) == 3
    )
    assert parse_expression("H + 2*pad >= HH and W % 2 == 0", "x").evaluate({"H": 1, "pad": 1, "HH": 3, "W": 4}) == 1
    for text in ("__import__('os')", "H.real", "H ** 2", "1.5 * H", "[H]", "H if W else 2", "lambda: 1"):
        with pytest.raises(RubricError, match="where"):
            parse_expression(text, "where")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("output: dx\n", "output: dz\n", 1), "equations[1].output: 'dz' is not one of slots"),
        (
            lambda t: t.replace(
                'require: &conv_require ["H + 2*pad >= HH", "W + 2*pad >= WW"]', 'require: &conv_require ["H > 100"]'
            ),
            "no draw of the dimensions",
        ),
        (
            lambda t: t.replace("args: [dout, cache]", "args: [dout, cash]", 1),
            "'cash' is not one of this equation's inputs or setup results",
        ),
        (lambda t: t.replace('Hp: "1 + (H + 2*pad - HH) // stride"', 'Hp: "1 + H ** 2"', 1), "Pow is not allowed"),
        (
            lambda t: t.replace("slot: out, args: [x, w, b], wrt: x", "slot: outs, args: [x, w, b], wrt: x", 1),
            "no item declares a slot 'outs'",
        ),
    ],
)
def test_a_broken_layers_rubric_names_the_key(tmp_path, edit, message):
    text = LAYERS_RUBRIC.read_text().replace("../", f"{REPO}/")
    path = tmp_path / "layers.yaml"
    path.write_text(edit(text))
    with pytest.raises(RubricError, match=re.escape(message)):
        rubric = load_rubric(path)
        build_cases(rubric, load_reference(rubric), 1)


def test_quiz_4_calls_are_framed_as_before_plans_existed():
    x = np.arange(6.0).reshape(2, 3)
    header, payloads = call_request(7, "grad_X", [("dY", x), ("W", x)], {})
    assert header == {
        "op": "call",
        "id": 7,
        "function": "grad_X",
        "args": [{"name": "dY", "len": len(payloads[0])}, {"name": "W", "len": len(payloads[1])}],
    }
    header, payloads = call_request(8, "f", [("x", x), ("p", {"mode": "test", "mean": x[0]})], {"call": ["x", "p"]})
    assert header["values"] == {"p": {"mode": "test"}}
    assert [a["name"] for a in header["args"]] == ["x", "p.mean"] and json.dumps(header)


def code_words(tree: ast.AST) -> set[str]:
    """Identifiers and string constants a module's code uses (docstrings left out: examples there are prose)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.add(node.value)
    return words


def test_nothing_in_the_engine_names_the_layers_assignment():
    names = [
        "affine_forward",
        "batchnorm",
        "conv_forward",
        "max_pool",
        "dropout",
        "softmax_loss",
        "running_mean",
        "bn_param",
    ]
    for path in (REPO / "grader").rglob("*.py"):
        words = code_words(ast.parse(path.read_text()))
        assert not [n for n in names for w in words if n in w], path


def test_several_bundled_rubrics_pick_by_the_submission_name_then_the_default(tmp_path):
    from grader.assignment.rubric import resolve_rubric_path

    assert resolve_rubric_path(None, tmp_path / "layers.py").name == "layers.yaml"
    assert resolve_rubric_path(None, tmp_path / "layers.ipynb").name == "layers.yaml"
    assert (
        resolve_rubric_path(None, tmp_path / "anything.py").name
        == (REPO / "rubrics" / "DEFAULT").read_text().strip() + ".yaml"
    )


def test_the_selfcheck_words_plans_as_the_grader_does():
    from grader.grading import hints
    from grader.untrusted.student import selfcheck_plans

    slots = ["dx", "dw", "db"]
    for problem, detail in (("arity", "2"), ("arity", "1"), ("not_tuple", "ndarray of dtype float64 and shape (2, 3)")):
        assert selfcheck_plans.tuple_fault("f", problem, detail, slots) == hints.tuple_fault(
            "f", problem, detail, tuple(slots), hidden=False
        )
    assert selfcheck_plans.missing_entry("f", "p", "k") == hints.missing_entry("f", "p", "k")
    for setup, needed in (("g", ("cache",)), ("f", ()), ("g", ("a", "b"))):
        assert selfcheck_plans.setup_fault(setup, "f", needed, "it broke") == hints.setup_fault(
            setup, "f", needed, "it broke"
        )


def test_the_student_bundle_self_checks_layers_as_the_autograder_judges_its_visible_cases(tmp_path, layers):
    import subprocess
    import sys
    import zipfile

    from grader.frontends.bundle import build_student_bundle

    zip_path = build_student_bundle(LAYERS_RUBRIC, tmp_path / "layers.zip")
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(tmp_path)
        names = archive.namelist()
    folder = tmp_path / "layers"
    assert "def " not in (folder / "selfcheck_forward.py").read_text()  # no forward (they are answers here)
    assert "layers/selfcheck_plans.py" in names
    document = json.loads((folder / "selfcheck_cases.json").read_text())
    assert {eq["oracle"] for eq in document["equations"]} == {"expected"}
    broken = submission(
        tmp_path,
        """
        def relu_forward(x):
            return np.maximum(x, 0)
        """,
        name="broken.py",
    )
    for path, ok in ((REPO / "solutions" / "layers.py", True), (broken, False)):
        run = subprocess.run([sys.executable, "selfcheck.py", str(path)], cwd=folder, capture_output=True, text=True)
        assert (run.returncode == 0) == ok, run.stdout + run.stderr
    _, graded = grade(broken, layers)
    expected_message = next(c["message"] for c in item(graded, "relu_backward")["cases"] if c["visible"])
    assert expected_message.startswith("fix relu_forward first")
    assert expected_message in run.stdout
    template = subprocess.run(
        [sys.executable, "selfcheck.py", str(REPO / "student_template" / "layers.py")],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert "0 of 22 items pass their visible case" in template.stdout


@pytest.mark.parametrize("want, gradient", [((), False), ((3,), False), ((3,), True)])
def test_shape_credit_words_a_value_as_a_value_in_the_grader_and_the_selfcheck(want, gradient):
    from grader.grading import feedback_verdicts
    from grader.untrusted.student import selfcheck_oracle

    expected = np.ones(want)
    got = expected.reshape((1, *want))
    settings = {"fd_tolerance": {"rtol": 1e-5, "atol": 1e-8}, "gradient": gradient}
    judged = selfcheck_oracle.judge("f", got, expected, np.ones(want, dtype=bool), settings)
    words = feedback_verdicts.shape_credit("f", got.shape, want, hidden=False, gradient=gradient)
    assert judged["status"] == "shape_credit" and judged["message"] == words
    assert ("the gradient has the shape" in words) == gradient and "shape convention" in words


def test_a_reply_may_blame_only_a_setup_step_its_call_had():
    from grader.errors import ProtocolError
    from grader.sandbox import wire

    base = {"id": 5, "status": "exception", "type": "ValueError", "message": "no"}
    assert wire.parse_reply({**base, "setup": 0}, 5, ("dout",), setup_steps=1).setup == 0
    for bad in (
        {**base, "setup": 1},
        {**base, "setup": -1},
        {**base, "setup": True},
        {**base, "status": "ok", "len": 8, "setup": 0},
    ):
        with pytest.raises(ProtocolError):
            wire.parse_reply(bad, 5, ("dout",), setup_steps=1)
    with pytest.raises(ProtocolError):
        wire.parse_reply({**base, "setup": 0}, 5, ("dout",))  # a call without setup steps
