"""The rubric's import policy, read from the source in the parent: which equations an import costs."""

from __future__ import annotations

import textwrap

import pytest

from grader.grading.forbidden import affected, find_forbidden_imports

FORBIDDEN = ("torch", "jax", "autograd", "tensorflow")


def imports_in(text: str):
    return find_forbidden_imports(textwrap.dedent(text).encode(), FORBIDDEN)


def test_a_module_level_import_affects_every_function():
    found = imports_in("import numpy as np\nimport torch\n\ndef grad_X(dY, W):\n    return dY @ W.T\n")
    assert [(f.module, f.lineno, f.functions) for f in found] == [("torch", 2, None)]
    assert affected(found, "grad_X") is found[0] and affected(found, "anything") is found[0]


def test_a_guarded_module_level_import_still_counts():
    found = imports_in("try:\n    import jax.numpy as jnp\nexcept ImportError:\n    jnp = None\n")
    assert [f.module for f in found] == ["jax.numpy"] and found[0].functions is None


def test_an_import_inside_a_function_affects_it_and_every_function_that_calls_it():
    found = imports_in(
        """
        def helper(x):
            from autograd import grad
            return grad(x)

        def grad_X(dY, W):
            return helper(dY)

        def grad_S(P, y):
            return grad_X(P, y)

        def grad_W2(H, dS):
            return H.T @ dS
        """
    )
    assert found[0].functions == ("grad_S", "grad_X", "helper")
    assert affected(found, "grad_W2") is None and affected(found, "grad_S") is found[0]


@pytest.mark.parametrize(
    "call",
    ['__import__("torch")', 'importlib.import_module("tensorflow.keras")', 'builtins.__import__("jax")'],
)
def test_an_import_by_a_constant_name_is_found(call):
    found = imports_in(f"import builtins, importlib\n\ndef grad_X(dY, W):\n    {call}\n    return dY\n")
    assert [f.functions for f in found] == [("grad_X",)]


def test_allowed_modules_relative_imports_and_names_built_at_run_time_are_not_flagged_statically():
    text = 'from . import torch\nimport numpy\nimport torchvision_like\n\ndef f():\n    __import__("tor" + "ch")\n'
    assert imports_in(text) == []


def test_a_file_that_does_not_parse_has_no_findings_its_import_error_says_why():
    assert imports_in("def broken(:\n    import torch\n") == []


def test_a_rubric_without_forbidden_modules_flags_nothing():
    assert find_forbidden_imports(b"import torch\n", ()) == []
