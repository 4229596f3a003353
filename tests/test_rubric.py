"""A bad rubric is one line naming the file and the key path; a good one loads frozen."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from conftest import QUIZ4_RUBRIC, write_rubric_copy
from grader.assignment.rubric import load_rubric, resolve_rubric_path
from grader.errors import RubricError


def broken(tmp_path, edit) -> str:
    path = write_rubric_copy(tmp_path)
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    with pytest.raises(RubricError) as caught:
        load_rubric(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message[len(str(path)) + 2 :]


@pytest.mark.slow
@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda d: d["equations"][3].update(points="x"), "equations[3].points: must be a number"),
        (lambda d: d["equations"][0].pop("function"), "equations[0].function: is required"),
        (lambda d: d["equations"][1].update(visibility="secret"), "equations[1].visibility: must be one of"),
        (lambda d: d["settings"].update(time_limt=3), "settings.time_limt: is not a known key"),
        (
            lambda d: d["equations"][0].update(args=["dY", "Q"]),
            "equations[0].args: 'Q' is not one of this equation's inputs",
        ),
        (
            lambda d: d["equations"][2]["inputs"]["H"].update(shape=["N", "K"]),
            "equations[2].inputs.H: dimension 'K' has no range",
        ),
        (lambda d: d["settings"]["dims"].update(N=[9, 2]), "settings.dims.N: the range [9, 2] is empty"),
        (lambda d: d["equations"][4].update(id="eq1"), "equations[4].id: 'eq1' is used twice"),
        (lambda d: d.update(reference="/nonexistent/ref.py"), "reference: no file at /nonexistent/ref.py"),
    ],
    ids=[
        "type",
        "required",
        "enum",
        "unknown-key",
        "unknown-arg",
        "unknown-dim",
        "empty-range",
        "duplicate-id",
        "missing-file",
    ],
)
def test_a_rubric_error_names_the_key_path(tmp_path, edit, expected):
    assert broken(tmp_path, edit).startswith(expected)


def test_unknown_reference_functions_are_caught_when_the_reference_loads(tmp_path):
    from grader.assignment.reference import load_reference

    path = write_rubric_copy(tmp_path)
    path.write_text(path.read_text().replace("function: grad_X", "function: grad_Q"))
    with pytest.raises(RubricError, match=r"equations\[0\]\.function: the reference module has no function 'grad_Q'"):
        load_reference(load_rubric(path))


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("assignment: [unclosed\n")
    with pytest.raises(RubricError, match=r"bad.yaml: line \d+: not valid YAML"):
        load_rubric(path)


def test_the_bundled_rubric_is_the_default_and_loads_frozen():
    rubric = load_rubric(resolve_rubric_path(None))
    assert rubric.path == QUIZ4_RUBRIC.resolve()
    assert [eq.id for eq in rubric.equations] == [
        *("eq1", "eq9", "eq10", "eq11", "eq12", "eq13", "eq14", "eq15"),
        "backprop",  # the end-to-end check, 0 points
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rubric.seed = 1


def test_a_bundled_rubric_can_be_named():
    assert resolve_rubric_path("quiz4").resolve() == QUIZ4_RUBRIC.resolve()
