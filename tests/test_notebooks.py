"""A Jupyter notebook is graded wherever a .py file is, with feedback that points into its cells."""

from __future__ import annotations

import io
import json
import shutil
import time
from contextlib import redirect_stderr, redirect_stdout

import nbformat
import pytest

from conftest import FIXTURES, REPO, grade
from grader.errors import SubmissionFileError
from grader.frontends.cli import main
from grader.grading.notebook import MAX_NOTEBOOK_BYTES, accepted_names, submission_source
from grader.untrusted.student.notebook_cells import notebook_source
from notebooks import code_cells, colab_notebook, notebook_from_py, write_json, write_notebook

SOLUTION = (REPO / "solutions" / "quiz4.py").read_text()
SOLUTION_CELLS = code_cells(SOLUTION)
CORPUS = FIXTURES / "quiz4"
SEED = 20261201


def cells_with(replace: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    """The solution's cells with some functions' cells replaced (by function name) and cells added at the end."""
    cells = []
    for cell in SOLUTION_CELLS:
        name = next((n for n in (replace or {}) if cell.startswith(f"def {n}(")), None)
        cells.append(replace[name] if name else cell)
    return cells + list(extra)


def statuses(document: dict) -> dict[str, str]:
    """Each counted item's status (the end-to-end check, 0 points, is left out: see conftest.statuses)."""
    return {eq["id"]: eq["status"] for eq in document["equations"] if eq.get("counted", True)}


def feedback(document: dict, function: str) -> str:
    return next(eq["feedback"] for eq in document["equations"] if eq["function"] == function)


# --- the conversion: cells in, Python and a line map out ------------------------------------


def test_code_cells_become_the_source_in_order_and_markdown_raw_and_outputs_are_left_out():
    converted = notebook_source([("markdown", "# title"), ("code", "x = 1"), ("raw", "y = 2"), ("code", ["z = 3"])])
    assert converted.source.splitlines() == ["# %% cell 2", "x = 1", "# %% cell 4", "z = 3"]
    assert [converted.locate(n) for n in (2, 4)] == ["cell 2, line 1", "cell 4, line 1"]
    assert converted.notes == ()


def test_magics_shell_escapes_and_help_are_neutralised_with_a_note_naming_the_cells():
    cells = [
        ("code", "%matplotlib inline\nimport numpy as np\n!pip install numpy\nfiles = !ls\nnp.dot?"),
        ("markdown", "text"),
        ("code", 'def f(x):\n    %timeit x\n    s = """\n!not a shell escape\n"""\n    return s'),
    ]
    converted = notebook_source(cells)
    namespace: dict = {}
    exec(compile(converted.source, "nb.py", "exec"), namespace)
    assert namespace["f"](1) == "\n!not a shell escape\n", "a ! inside a string is the student's text"
    assert "!pip" not in converted.source and "%timeit" not in converted.source and "np.dot?" not in converted.source
    assert converted.notes[0].startswith("cells 1 and 3 use IPython syntax (`%matplotlib inline`, `!pip install numpy`")


def test_a_cell_magic_costs_its_cell_and_a_cell_that_does_not_parse_costs_only_its_functions():
    cells = [
        ("code", "%%bash\ntouch /tmp/owned\ndef f():\n    return 1"),
        ("code", "def g(:\n    return 2"),
        ("code", "def h():\n    return 3"),
    ]
    converted = notebook_source(cells)
    namespace: dict = {}
    exec(compile(converted.source, "nb.py", "exec"), namespace)
    assert "h" in namespace and "f" not in namespace and "g" not in namespace
    assert "touch" not in converted.source
    assert converted.notes[0] == (
        "cell 1 was not run: it is a cell magic (`%%bash`), which is IPython, not Python; "
        "the functions it defines (f) are missing"
    )
    assert converted.notes[1].startswith("cell 2 was not run: it has a syntax error at line 1 (")
    assert dict(converted.not_run)["g"].startswith("g is defined in cell 2, which was not run: it has a syntax error")


def test_a_cell_the_compiler_refuses_costs_only_that_cell_and_a_future_import_works_in_any_cell():
    cells = [
        ("code", "x = 1"),
        ("code", "return x"),  # a kernel would refuse it too; in one file it would sink every cell
        ("code", "await something()"),  # top-level await runs in IPython, not in a file
        ("code", "from __future__ import annotations\ndef f(a: Undefined) -> int:\n    return 2"),
    ]
    converted = notebook_source(cells)
    namespace: dict = {}
    exec(compile(converted.source, "nb.py", "exec", dont_inherit=True), namespace)
    assert namespace["f"](0) == 2 and namespace["x"] == 1
    assert [n.split(":")[0] for n in converted.notes] == ["cell 2 was not run", "cell 3 was not run"]
    assert converted.locate(1) == "cell 4, line 1", "the hoisted import still points at its cell"


def test_a_function_defined_twice_is_noted_and_the_last_definition_counts():
    converted = notebook_source(
        [("code", "def f():\n    return 1"), ("code", "x = 0"), ("code", "def f():\n    return 2")]
    )
    namespace: dict = {}
    exec(compile(converted.source, "nb.py", "exec"), namespace)
    assert namespace["f"]() == 2
    assert converted.notes == (
        "f is defined more than once (cells 1 and 3): the last definition, in cell 3, is graded, "
        "as when the notebook runs from top to bottom",
    )


def test_a_thousand_broken_cells_give_a_bounded_list_of_notes():
    cells = [("code", f"!echo {i}") for i in range(1000)] + [("code", f"def f{i}(:") for i in range(1000)]
    notes = notebook_source(cells).notes
    assert len(notes) == 20 and notes[-1] == "and 982 more notes of the same kinds"
    assert notes[0].startswith("cells 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 990 more use IPython syntax")


@pytest.mark.slow
@pytest.mark.parametrize(("cells", "lines"), [(1, 50_000), (400, 600)], ids=["one-huge-cell", "many-cells"])
def test_shell_escapes_by_the_ten_thousand_are_converted_in_bounded_time(cells, lines):
    started = time.monotonic()
    escapes = [("code", "\n".join(["!echo hi"] * lines)) for _ in range(cells)]
    converted = notebook_source([*escapes, ("code", "def f():\n    return 1")])
    # linear, not quadratic: 2.4 MB of escapes take seconds (9 s at a load average of 10 on 2 cores), not hours
    assert time.monotonic() - started < 30, "the grader's own process must not spend minutes on it"
    namespace: dict = {}
    exec(compile(converted.source, "nb.py", "exec"), namespace)
    assert namespace["f"]() == 1


def test_the_bundle_notebooks_self_check_cell_is_not_part_of_the_submission():
    converted = notebook_source(
        [("code", "def f():\n    return 1"), ("code", "from selfcheck import check\n\ncheck()")]
    )
    assert "selfcheck" not in converted.source.replace("# %% cell 2 (the self-check: not run)", "")


def test_the_expected_name_is_accepted_as_a_py_file_or_a_notebook_the_rubrics_own_first():
    assert accepted_names("quiz4.py") == ("quiz4.py", "quiz4.ipynb")
    assert accepted_names("quiz4.ipynb") == ("quiz4.ipynb", "quiz4.py")


# --- files that are not notebooks the grader reads: one line each ---------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "not a notebook: the file is not valid JSON (line 1, column 2)"),
        (b'{"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}', "format version 3"),
        (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}', "not a valid"),
        (b"[" * 100_000 + b"]" * 100_000, "not a notebook"),
        (
            b'{"cells": [], "metadata": {"a": '
            + b"[" * 50_000
            + b"]" * 50_000
            + b'}, "nbformat": 4, "nbformat_minor": 5}',
            "nested",
        ),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b'{"hello": 1}', "the JSON has no cells"),
        (json.dumps({"nbformat": 4, "cells": [{}] * 5001}).encode(), "the notebook has 5001 cells, more than 5000"),
    ],
    ids=["invalid-json", "version-3", "schema", "deep-json", "deep-metadata", "binary", "no-cells", "cells"],
)
def test_a_file_that_is_not_a_readable_notebook_is_a_one_line_error(tmp_path, content, words):
    path = tmp_path / "quiz4.ipynb"
    path.write_bytes(content)
    with pytest.raises(SubmissionFileError) as caught:
        submission_source(path, content)
    message = str(caught.value)
    assert words in message and "\n" not in message and message.startswith(str(path))


def test_grade_on_a_notebook_over_the_size_limit_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "quiz4.ipynb"
    path.write_bytes(b" " * (MAX_NOTEBOOK_BYTES + 1))
    assert main([str(path), "-o", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}: the notebook is over 16 MiB" and not (tmp_path / "r.json").exists()


def test_grade_on_invalid_json_exits_2_with_one_line_instead_of_running_it_as_python(tmp_path, capsys):
    path = tmp_path / "quiz4.ipynb"
    path.write_text('{"cells": [null, ')
    assert main([str(path), "-o", str(tmp_path / "r.json")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {path}: not a notebook: the file is not valid JSON (line 1, column 18)"
    ]


# --- grading real notebooks -----------------------------------------------------------------


def test_a_notebook_with_magics_shell_escapes_and_help_gets_full_marks_and_a_note(quiz4, tmp_path):
    extra = ("%matplotlib inline\n!pip install numpy\ngrad_X?", "%%bash\necho hi > /tmp/from-a-notebook")
    path = write_notebook(tmp_path / "quiz4.ipynb", cells_with(extra=extra))
    report, document = grade(path, quiz4)
    assert document["score"] == document["max_score"] == 11
    notes = document["submission"]["notes"]
    last = len(SOLUTION_CELLS) * 2 + 2
    assert notes[0].startswith(f"cell {last} uses IPython syntax (`%matplotlib inline`, `!pip install numpy` ...)")
    assert notes[1].startswith(f"cell {last + 2} was not run: it is a cell magic (`%%bash`)")


def test_a_syntax_error_in_one_cell_costs_only_the_function_it_defines(quiz4, tmp_path):
    broken = "def grad_Z(dH, Z):\n    mask = (Z > 0\n    return dH * mask"
    path = write_notebook(tmp_path / "quiz4.ipynb", cells_with({"grad_Z": broken}))
    report, document = grade(path, quiz4)
    assert {k for k, v in statuses(document).items() if v != "passed"} == {"eq13"}
    assert document["score"] == 9
    cell = 2 * (next(i for i, c in enumerate(SOLUTION_CELLS) if c.startswith("def grad_Z(")) + 1)
    assert feedback(document, "grad_Z").startswith(
        f"grad_Z is defined in cell {cell}, which was not run: it has a syntax"
    )


def test_a_fault_is_located_by_cell_and_line_not_by_a_line_of_the_concatenated_file(quiz4, tmp_path):
    wrong = "def grad_W2(H, dS):\n    # the order is swapped\n    return dS @ H.T"
    path = write_notebook(tmp_path / "quiz4.ipynb", cells_with({"grad_W2": wrong}))
    report, document = grade(path, quiz4)
    cell = 2 * (next(i for i, c in enumerate(SOLUTION_CELLS) if c.startswith("def grad_W2(")) + 1)
    text = feedback(document, "grad_W2")
    assert f"at cell {cell}, line 3: `return dS @ H.T`" in text, text
    assert " at line " not in text


def test_a_cell_that_raises_while_the_notebook_loads_is_located_by_cell_and_line(quiz4, tmp_path):
    path = write_notebook(tmp_path / "quiz4.ipynb", cells_with(extra=("x = 1\nprint(grad_X(dY, W))",)))
    report, document = grade(path, quiz4)
    cell = 2 * (len(SOLUTION_CELLS) + 1)
    assert document["score"] == 0, "as in a .py file: the import fails, as Restart & Run All would stop there"
    assert document["notice"].startswith("Your file could not be imported: NameError")
    assert f"at cell {cell}, line 2: `print(grad_X(dY, W))`" in document["notice"]


def test_a_forbidden_import_in_a_cell_is_located_by_cell_and_line(quiz4, tmp_path):
    cells = cells_with({"grad_X": "def grad_X(dY, W):\n    import torch\n    return dY @ W.T"})
    path = write_notebook(tmp_path / "quiz4.ipynb", cells, markdown=False)
    report, document = grade(path, quiz4)
    cell = next(i for i, c in enumerate(SOLUTION_CELLS) if c.startswith("def grad_X(")) + 1
    assert statuses(document)["eq1"] != "passed" and document["score"] == 9
    assert f"grad_X uses `torch` (cell {cell}, line 2)" in feedback(document, "grad_X")


def test_a_notebook_defining_a_function_twice_is_graded_on_the_last_definition(quiz4, tmp_path):
    wrong = "def grad_H(dS, W2):\n    return -dS @ W2.T"
    path = write_notebook(tmp_path / "quiz4.ipynb", cells_with(extra=(wrong,)))
    report, document = grade(path, quiz4)
    assert statuses(document)["eq12"] != "passed" and document["score"] == 10
    assert any(n.startswith("grad_H is defined more than once") for n in document["submission"]["notes"])


def test_a_colab_notebook_with_outputs_widgets_and_no_cell_ids_gets_full_marks(quiz4, tmp_path):
    path = write_json(tmp_path / "quiz4.ipynb", colab_notebook(SOLUTION_CELLS))
    report, document = grade(path, quiz4)
    assert document["score"] == 11 and document["submission"]["notes"] == []
    assert "ran" not in document["output"], "stored outputs are never shown"


def test_stored_outputs_and_attachments_are_never_trusted_or_shown(quiz4, tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("\n\n".join(SOLUTION_CELLS))
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="Total: 11/11 STORED-OUTPUT")]
    note = nbformat.v4.new_markdown_cell("![x](attachment:x.png)", attachments={"x.png": {"image/png": "QUJD" * 1000}})
    notebook.cells = [note, cell]
    path = tmp_path / "quiz4.ipynb"
    nbformat.write(notebook, path)
    report, document = grade(path, quiz4)
    assert document["score"] == 11
    assert "STORED-OUTPUT" not in json.dumps(document) and "QUJD" not in json.dumps(document)


def test_grade_prints_the_notes_and_writes_the_report_beside_the_notebook(tmp_path, monkeypatch):
    path = write_notebook(tmp_path / "quiz4.ipynb", cells_with(extra=("!ls",)))
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main([str(path)]) == 0
    text = out.getvalue()
    assert "Total: 11/11" in text and "Notes:" in text and "uses IPython syntax (`!ls`)" in text
    assert json.loads((tmp_path / "quiz4.report.json").read_text())["score"] == 11


@pytest.mark.slow
def test_a_notebook_saved_by_a_real_kernel_is_graded_like_its_code(quiz4, tmp_path):
    nbclient = pytest.importorskip("nbclient", reason="nbclient (a test extra) runs the notebook in a real kernel")
    pytest.importorskip("ipykernel", reason="ipykernel (a test extra) is the kernel nbclient starts")
    extra = "%precision 3\nX = np.ones((2, 3))\nprint(grad_X(np.ones((2, 4)), np.ones((3, 4))).shape)"
    notebook = nbformat.reads(nbformat.writes(nbformat.v4.new_notebook()), as_version=4)
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in cells_with(extra=(extra,))]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert notebook.cells[-1].outputs[0]["text"].strip() == "(2, 3)", "the kernel ran every cell"
    path = tmp_path / "quiz4.ipynb"
    nbformat.write(notebook, path)
    report, document = grade(path, quiz4)
    assert document["score"] == 11
    assert document["output"].strip() == "(2, 3)", "what the code prints now, not what the kernel stored"


@pytest.mark.slow
def test_every_fixture_as_a_notebook_gets_exactly_the_scores_of_its_py_file(quiz4, quiz4_fast, tmp_path):
    """The whole corpus, correct and buggy: same seed, same statuses, scores and diagnoses."""
    names = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.py"))
    differences = []
    for name in names:
        rubric = quiz4_fast if "timeout" in name else quiz4
        py = tmp_path / name.replace("/", "_")
        shutil.copy(CORPUS / name, py)
        notebook = notebook_from_py(py, py.with_suffix(".ipynb"))
        _, from_py = grade(py, rubric, seed=SEED)
        _, from_notebook = grade(notebook, rubric, seed=SEED)
        for a, b in zip(from_py["equations"], from_notebook["equations"]):
            mine = (a["status"], a["score"], (a["diagnosis"] or {}).get("mistake_id"))
            theirs = (b["status"], b["score"], (b["diagnosis"] or {}).get("mistake_id"))
            if mine != theirs:
                differences.append(f"{name} {a['id']}: .py {mine}, notebook {theirs}")
        if from_py["score"] != from_notebook["score"]:
            differences.append(f"{name}: .py {from_py['score']}, notebook {from_notebook['score']}")
    assert differences == []
    assert len(names) >= 40
