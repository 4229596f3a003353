"""A submission's faults are data: each gives a valid report and full marks where it is right."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, grade, statuses

CORRECT = (REPO / "solutions" / "quiz4.py").read_text()


def submission(tmp_path: Path, text: str, name: str = "quiz4.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def with_grad_s(body: str) -> str:
    """The reference with grad_S replaced by a hostile or broken body."""
    replaced = CORRECT.replace(
        'def grad_S(P, y):\n    """Eq. (9): dL/dS = P with 1 subtracted at each row\'s true class, shape (N, C)."""\n',
        "def grad_S(P, y):\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "\n    return _unused(P, y)\n\n\ndef _unused(P, y):\n",
    )
    assert replaced != CORRECT
    return replaced


@pytest.mark.parametrize(
    "body, status, words",
    [
        ("raise ValueError('boom')", "error", "raised ValueError"),
        ("import sys\nsys.exit(0)", "error", "sys.exit(0)"),
        ("import os\nos._exit(0)", "error", "exited with code 0"),
        ("import ctypes\nctypes.string_at(0)", "error", "segmentation fault"),
        ("while True:\n    pass", "timeout", "did not return within"),
        ("return None", "failed", "returned None"),
        ("return 'a string'", "failed", "returned str"),
        ("return P.astype(complex)", "failed", "complex"),
        ("import numpy as np\nreturn np.full(P.shape, np.nan)", "failed", "NaN"),
    ],
    ids=["exception", "sys-exit", "os-exit", "segfault", "infinite-loop", "none", "string", "complex", "nan"],
)
@pytest.mark.slow
def test_a_fault_in_one_function_costs_only_that_equation(tmp_path, quiz4_fast, body, status, words):
    _, document = grade(submission(tmp_path, with_grad_s(body)), quiz4_fast)
    got = statuses(document)
    assert got.pop("eq9") == status
    assert set(got.values()) == {"passed"}
    eq9 = next(eq for eq in document["equations"] if eq["id"] == "eq9")
    assert words in eq9["feedback"]
    assert eq9["score"] == 0


@pytest.mark.parametrize(
    "text, words",
    [
        ("def grad_X(dY, W)\n    return dY\n", "SyntaxError"),
        ("import no_such_module_here\n", "ModuleNotFoundError"),
        ("import sys\nsys.exit(3)\n", "sys.exit(3)"),
        ("raise RuntimeError('at import')\n", "RuntimeError"),
    ],
    ids=["syntax-error", "import-error", "exit-at-import", "exception-at-import"],
)
def test_a_file_that_cannot_be_imported_scores_zero_everywhere_with_the_reason_said_once(tmp_path, quiz4, text, words):
    _, document = grade(submission(tmp_path, text), quiz4)
    assert document["score"] == 0
    assert set(statuses(document).values()) == {"error"}
    assert document["notice"].startswith("Your file could not be imported: ") and words in document["notice"]
    for eq in document["equations"]:
        assert words not in eq["feedback"], "the reason is said once, at the top, not under every equation"
        assert eq["feedback"].startswith("not graded: the file could not be imported")


def test_an_empty_file_reports_every_function_missing(tmp_path, quiz4):
    _, document = grade(submission(tmp_path, "# nothing yet\n"), quiz4)
    assert set(statuses(document).values()) == {"missing"}


def test_a_misspelled_function_gets_did_you_mean(tmp_path, quiz4):
    _, document = grade(submission(tmp_path, CORRECT.replace("def grad_W1(", "def grad_w1(")), quiz4)
    eq14 = next(eq for eq in document["equations"] if eq["id"] == "eq14")
    assert eq14["status"] == "missing"
    assert "did you mean 'grad_w1'" in eq14["feedback"]
    assert document["score"] == document["max_score"] - eq14["max_score"]


def test_the_untouched_template_scores_zero_with_not_implemented_everywhere(quiz4):
    _, document = grade(REPO / "student_template" / "quiz4.py", quiz4)
    assert document["score"] == 0
    assert set(statuses(document).values()) == {"not_implemented"}


def test_the_reference_scores_full_marks(quiz4):
    _, document = grade(REPO / "solutions" / "quiz4.py", quiz4)
    assert document["score"] == document["max_score"] == 11


def test_a_forbidden_import_gives_zero_and_names_the_rule(tmp_path, quiz4):
    text = CORRECT.replace("def grad_W2(H, dS):\n", "def grad_W2(H, dS):\n    import torch  # noqa\n")
    _, document = grade(submission(tmp_path, text), quiz4)
    got = statuses(document)
    assert got.pop("eq10") == "error"
    assert set(got.values()) == {"passed"}
    eq10 = next(eq for eq in document["equations"] if eq["id"] == "eq10")
    assert "`torch`" in eq10["feedback"] and "does not allow" in eq10["feedback"]


def test_printed_output_is_shown_only_from_the_import_and_visible_cases(tmp_path, quiz4):
    text = CORRECT.replace(
        "def grad_X(dY, W):\n", "print('hello from import')\n\n\ndef grad_X(dY, W):\n    print('shape', dY.shape)\n"
    )
    report, document = grade(submission(tmp_path, text), quiz4)
    # grad_X runs on eq1's visible case and, as the chain's last call, on the end-to-end check's
    visible = [c for eq in quiz4.equations if "grad_X" in eq.functions for c in report.cases[eq.id] if c.visible]
    assert "hello from import" in document["output"]
    assert document["output"].count("shape") == len(visible)


def test_the_terminal_and_gradescope_say_an_import_error_once_above_every_equations_status(tmp_path, quiz4):
    from grader.frontends.gradescope.results import equation_markdown, summary_markdown
    from grader.frontends.terminal import render_report

    report, document = grade(submission(tmp_path, "def grad_X(dY, W)\n    return dY\n"), quiz4)
    reason = "SyntaxError: expected ':' at line 1: `def grad_X(dY, W)`"
    assert reason in document["notice"]
    terminal = render_report(report, width=200)
    assert terminal.count("SyntaxError") == 1 and terminal.index("SyntaxError") < terminal.index("eq1 ")
    rows = {line.split()[0]: line.split()[-1] for line in terminal.splitlines() if re.match(r"eq\d", line)}
    assert rows == {eq.id: "error" for eq in quiz4.equations if eq.counted}, "each equation keeps its status"
    assert re.search(r"^backprop +8 chained +check +error$", terminal, re.M), "and so does the check"
    assert summary_markdown(report, "quiz4.py").count("SyntaxError") == 1
    assert not any("SyntaxError" in equation_markdown(result, report) for result in report.equations)
