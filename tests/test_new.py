"""`grade new` writes a rubric and template from a reference, and `grade validate` names what is left."""

from __future__ import annotations

import textwrap

import yaml

from conftest import REPO
from grader.frontends.cli import main

LAYERS_LIKE = textwrap.dedent(
    '''\
    """A reference in the CS231n style."""

    import numpy as np


    def affine_forward(x, w, b):
        """out = x.reshape(N, -1) @ w + b; returns (out, cache)."""
        out = x.reshape(x.shape[0], -1) @ w + b
        cache = (x, w, b)
        return out, cache


    def affine_backward(dout, cache):
        """Returns (dx, dw, db)."""
        x, w, b = cache

        def helper():
            return 1, 2

        dx = (dout @ w.T).reshape(x.shape)
        dw = x.reshape(x.shape[0], -1).T @ dout
        db = dout.sum(axis=0)
        return dx, dw, db


    def relu_backward(dout, cache):
        """dx: 0 where x <= 0."""
        return dout * (cache > 0)


    def _private(x):
        return x
    '''
)


def test_every_function_and_slot_becomes_an_item_and_caches_are_left_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ref.py").write_text(LAYERS_LIKE)
    assert main(["new", "layers", "--reference", "ref.py"]) == 0
    rubric = yaml.safe_load((tmp_path / "rubrics" / "layers.yaml").read_text())
    items = {item["id"]: item for item in rubric["equations"]}
    assert list(items) == [
        "affine_forward.out",
        "affine_backward.dx",
        "affine_backward.dw",
        "affine_backward.db",
        "relu_backward",
    ]
    assert items["affine_backward.dw"]["slots"] == ["dx", "dw", "db"]
    assert items["affine_backward.dw"]["output"] == "dw"
    assert items["affine_forward.out"]["slots"] == ["out", "cache"]
    assert "slots" not in items["relu_backward"]
    assert "finite_difference" not in items["affine_forward.out"]
    assert rubric["reference"] == "../ref.py"
    assert rubric["template"] == "../student_template/layers.py"
    assert rubric["seed"] >= 2**40


def test_a_backward_is_graded_on_its_forward_cache_with_finite_differences_of_the_forward(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ref.py").write_text(LAYERS_LIKE)
    assert main(["new", "layers", "--reference", "ref.py"]) == 0
    items = {i["id"]: i for i in yaml.safe_load((tmp_path / "rubrics" / "layers.yaml").read_text())["equations"]}
    dw = items["affine_backward.dw"]
    assert list(dw["inputs"]) == ["x", "w", "b", "dout"]
    assert dw["setup"] == [{"call": "affine_forward", "args": ["x", "w", "b"], "as": ["out", "cache"]}]
    assert dw["args"] == ["dout", "cache"]
    assert dw["finite_difference"] == {
        "forward": "affine_forward",
        "slot": "out",
        "args": ["x", "w", "b"],
        "wrt": "w",
        "upstream": "dout",
    }
    assert items["relu_backward"]["finite_difference"]["wrt"] == "TO_FILL"  # no relu_forward: nothing to go by


def test_the_template_keeps_signatures_and_docstrings_and_raises_not_implemented(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ref.py").write_text(LAYERS_LIKE)
    assert main(["new", "layers", "--reference", "ref.py"]) == 0
    template = (tmp_path / "student_template" / "layers.py").read_text()
    namespace: dict = {}
    exec(compile(template, "layers.py", "exec"), namespace)
    assert namespace["affine_backward"].__doc__ == "Returns (dx, dw, db)."
    assert "_private" not in namespace
    assert "cache = (x, w, b)" not in template and "reshape" not in template.split('"""', 4)[-1]
    assert template.count("raise NotImplementedError") == 3
    assert '"""A reference in the CS231n style."""' in template and "import numpy as np" in template


def test_nbgrader_solution_regions_are_stripped_and_the_rest_is_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = textwrap.dedent(
        '''\
        import numpy as np

        SCALE = 2.0


        def grad(x):
            """Twice x."""
            ### BEGIN SOLUTION
            y = SCALE * x
            return y
            ### END SOLUTION
        '''
    )
    (tmp_path / "ref.py").write_text(source)
    assert main(["new", "hw", "--reference", "ref.py"]) == 0
    template = (tmp_path / "student_template" / "hw.py").read_text()
    assert "SCALE = 2.0" in template and '"""Twice x."""' in template
    assert "SCALE * x" not in template and "BEGIN SOLUTION" not in template
    assert "    raise NotImplementedError\n" in template


def test_an_existing_rubric_is_never_overwritten_without_force(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ref.py").write_text(LAYERS_LIKE)
    (tmp_path / "rubrics").mkdir()
    (tmp_path / "rubrics" / "layers.yaml").write_text("mine\n")
    assert main(["new", "layers", "--reference", "ref.py"]) == 2
    assert "exists" in capsys.readouterr().err
    assert (tmp_path / "rubrics" / "layers.yaml").read_text() == "mine\n"
    assert main(["new", "layers", "--reference", "ref.py", "--force"]) == 0


def test_a_bad_name_or_reference_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.py").write_text("def f(:\n")
    assert main(["new", "my-hw", "--reference", "broken.py"]) == 2
    assert main(["new", "hw", "--reference", "broken.py"]) == 2
    assert main(["new", "hw", "--reference", "nowhere.py"]) == 2
    (tmp_path / "ok.py").write_text("def f(x):\n    return x\n")
    assert main(["new", "hw", "--reference", "ok.py", "--functions", "g"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("error: grade new:") for line in err)


def test_validate_lists_every_value_left_to_fill_in(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ref.py").write_text(LAYERS_LIKE)
    main(["new", "layers", "--reference", "ref.py", "--functions", "relu_backward"])
    capsys.readouterr()
    assert main(["validate", "rubrics/layers.yaml"]) == 1
    out = capsys.readouterr().out
    assert "equations[0].inputs.dout.shape: still TO_FILL" in out
    assert "equations[0].returns: still TO_FILL" in out
    assert "title: still TO_FILL" in out


def test_a_skeleton_filled_in_validates(tmp_path, monkeypatch, capsys):
    """The skeleton is one set of facts away from a working rubric: fill them in and it passes."""
    monkeypatch.chdir(tmp_path)
    reference = REPO / "solutions" / "quiz4.py"
    assert main(["new", "p1", "--reference", str(reference), "--functions", "grad_X"]) == 0
    path = tmp_path / "rubrics" / "p1.yaml"
    text = path.read_text()
    filled = (
        text.replace('title: "TO_FILL"', 'title: "Problem 1"')
        .replace("dims: {N: [2, 9]}", "dims: {N: [2, 9], D: [2, 9], H: [2, 9]}")
        .replace("dY: {shape: TO_FILL}", "dY: {shape: [N, H]}\n      X: {shape: [N, D]}")
        .replace("W: {shape: TO_FILL}", "W: {shape: [D, H]}")
        .replace("returns: TO_FILL", "returns: [N, D]")
        .replace(
            "finite_difference: {forward: TO_FILL, args: [TO_FILL], wrt: TO_FILL}",
            "finite_difference: {forward: matmul, args: [X, W], wrt: X, upstream: dY}",
        )
    )
    path.write_text(filled)
    capsys.readouterr()
    assert main(["validate", str(path), "--cases", "5"]) == 0, capsys.readouterr().out


def test_the_layers_reference_gives_the_shipped_rubrics_items_but_the_running_statistics(tmp_path, monkeypatch):
    """What `grade new` reads from a reference is what an instructor grades: layers' items, less the extras."""
    monkeypatch.chdir(tmp_path)
    assert main(["new", "layers", "--reference", str(REPO / "solutions" / "layers.py")]) == 0
    made = [i["id"] for i in yaml.safe_load((tmp_path / "rubrics" / "layers.yaml").read_text())["equations"]]
    shipped = [i["id"] for i in yaml.safe_load((REPO / "rubrics" / "layers.yaml").read_text())["equations"]]
    extras = ["batchnorm_forward.running_mean", "batchnorm_forward.running_var"]  # dict side effects: not returned
    assert made == [i for i in shipped if i not in extras]
    assert len(made) == 20
