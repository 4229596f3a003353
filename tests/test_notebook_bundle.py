"""The student bundle's notebook: generated from the rubric and template, and its self-check cell agrees with the grader."""

from __future__ import annotations

import importlib.util
import json
import linecache
import re
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import FIXTURES, QUIZ4_RUBRIC, grade
from grader.assignment.rubric import load_rubric
from grader.frontends.bundle import build_student_bundle
from grader.frontends.student_notebook import SELFCHECK_CELL, template_pieces
from notebooks import named_cells

CORPUS = FIXTURES / "quiz4"
# a correct file, wrong values, a mask at the kink, a transposed shape, a missing function
KERNEL_FIXTURES = ["correct/einsum.py", "buggy/eq9_mean.py", "buggy/eq13_mask_ge_zero.py", "buggy/eq15_missing.py"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bundle")
    with zipfile.ZipFile(build_student_bundle(QUIZ4_RUBRIC, folder / "student.zip")) as archive:
        archive.extractall(folder)
    return folder / "quiz4"


def filled(bundle: Path, fixture: str, path: Path) -> Path:
    """The bundled notebook with each stub replaced by the fixture's function (and deleted if it has none)."""
    notebook = nbformat.read(bundle / "quiz4.ipynb", as_version=4)
    pieces = named_cells((CORPUS / fixture).read_text())
    cells = []
    for cell in notebook.cells:
        match = re.match(r"def (\w+)\(", cell.source) if cell.cell_type == "code" else None
        if match and match.group(1) not in pieces:
            continue
        if match:
            cell.source = pieces.pop(match.group(1))
        elif cell.cell_type == "code" and cell.source.startswith("import numpy"):
            cell.source = pieces.pop("", cell.source)
        cells.append(cell)
    helpers = [nbformat.v4.new_code_cell(text) for text in pieces.values()]  # the fixture's own helpers
    notebook.cells = cells[:2] + helpers + cells[2:]
    nbformat.write(notebook, path)
    return path


def table(text: str) -> dict[str, str]:
    """function -> its visible-case statuses, from the self-check's printed table."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("function")) + 2
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        name, statuses, *_ = re.split(r"\s{2,}", line.strip())
        rows[name] = statuses
    return rows


def grader_verdicts(document: dict) -> dict[str, str]:
    """Each function's visible verdicts; the end-to-end check (its cases grade several outputs) is no function's."""
    return {
        eq["function"]: ", ".join(c["status"] for c in eq["cases"] if c["visible"])
        for eq in document["equations"]
        if not any("outputs" in c for c in eq["cases"])
    }


def test_the_notebook_is_a_valid_v4_notebook_with_each_part_its_stub_and_the_self_check_last(bundle, quiz4):
    notebook = nbformat.read(bundle / "quiz4.ipynb", as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4 and notebook.metadata.kernelspec.name == "python3"
    markdown = [c.source for c in notebook.cells if c.cell_type == "markdown"]
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    _, setup, stubs = template_pieces(quiz4.template.read_text())
    assert code[0] == setup and code[-1] == SELFCHECK_CELL
    parts = [eq for eq in quiz4.equations if not eq.outputs]  # the end-to-end check chains these, no cell of its own
    assert code[1:-1] == [stubs[eq.function] for eq in parts], "one cell per function, the template's stub"
    for eq in parts:
        part = next(text for text in markdown if text.startswith(f"## {eq.label}\n"))
        assert f"`{eq.function}({', '.join(eq.args)})`" in part and f"({eq.points:g} point" in part
        assert "Returns a float64 array of shape (" in part
    assert "Inputs: `dY` (N, H), `W` (D, H). Returns a float64 array of shape (N, D)." in next(
        t for t in markdown if "grad_X(dY, W)" in t
    )
    assert "`P` (N, C), `y` (N,)" in next(t for t in markdown if "grad_S(P, y)" in t), "a derived input's shape"


def test_the_same_rubric_and_template_give_the_same_notebook_bytes(bundle, tmp_path):
    again = build_student_bundle(QUIZ4_RUBRIC, tmp_path / "again.zip")
    with zipfile.ZipFile(again) as archive:
        assert archive.read("quiz4/quiz4.ipynb") == (bundle / "quiz4.ipynb").read_bytes()


def test_the_untouched_notebook_is_graded_as_not_implemented_without_running_the_self_check(bundle, quiz4):
    report, document = grade(bundle / "quiz4.ipynb", quiz4)
    assert {eq["status"] for eq in document["equations"]} == {"not_implemented"}
    assert document["submission"]["notes"] == [] and document["output"] == ""


def test_selfcheck_py_checks_a_notebook_from_a_shell_as_it_checks_the_same_code_as_a_py(bundle, tmp_path):
    notebook = filled(bundle, "buggy/eq9_mean.py", tmp_path / "quiz4.ipynb")
    as_py = tmp_path / "quiz4.py"
    as_py.write_text((CORPUS / "buggy/eq9_mean.py").read_text())
    runs = {}
    for path in (notebook, as_py):
        done = subprocess.run(
            [sys.executable, str(bundle / "selfcheck.py"), str(path), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert done.returncode == 1, done.stderr
        runs[path.suffix] = json.loads(done.stdout)
    assert runs[".ipynb"]["equations"] == runs[".py"]["equations"]
    assert runs[".ipynb"]["equations"][1]["cases"][0]["status"] == "wrong_values"


@pytest.mark.slow
@pytest.mark.parametrize("fixture", KERNEL_FIXTURES)
def test_the_self_check_cell_run_in_a_real_kernel_prints_the_graders_visible_verdicts(bundle, quiz4, tmp_path, fixture):
    nbclient = pytest.importorskip("nbclient", reason="nbclient (a test extra) runs the notebook in a real kernel")
    pytest.importorskip("ipykernel", reason="ipykernel (a test extra) is the kernel nbclient starts")
    path = filled(bundle, fixture, bundle / f"{Path(fixture).stem}.ipynb")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(bundle)}}
    )
    client.execute()
    printed = "".join(
        o.get("text", "") for o in notebook.cells[-1].outputs if o.output_type == "stream" and o.name == "stdout"
    )
    assert "Self-check:" in printed and "file: the functions defined in this notebook" in printed
    _, document = grade(path, quiz4)
    assert table(printed) == grader_verdicts(document)
    shell = subprocess.run(
        [sys.executable, "selfcheck.py", path.name], capture_output=True, text=True, timeout=120, cwd=bundle
    )
    assert table(shell.stdout) == table(printed), "the same table as `python selfcheck.py` prints"
    kernel_text = printed.replace("file: the functions defined in this notebook", f"file: {path.name}")
    assert kernel_text.strip() == shell.stdout.strip()


def bundled_selfcheck(bundle: Path):
    """The bundle's own selfcheck.py as a module (it reads its cases from the folder it is in)."""
    spec = importlib.util.spec_from_file_location("bundled_selfcheck", bundle / "selfcheck.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as `from selfcheck import check` would: its dataclass needs it
    spec.loader.exec_module(module)
    return module


def test_check_in_a_kernel_judges_the_functions_defined_there_and_sees_forbidden_imports(bundle):
    selfcheck = bundled_selfcheck(bundle)
    source = (CORPUS / "correct" / "einsum.py").read_text()
    source += "\n\ndef grad_H(dS, W2):\n    import torch\n    return dS @ W2.T\n"
    linecache.cache["<cell-7>"] = (len(source), None, source.splitlines(True), "<cell-7>")  # as ipykernel does
    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, "<cell-7>", "exec"), namespace)
    result = selfcheck.check_namespace(namespace, bundle)
    verdicts = {eq["function"]: eq["cases"][0]["status"] for eq in result["equations"]}
    assert verdicts.pop("grad_H") == "forbidden_import"
    assert set(verdicts.values()) == {"passed"}
    namespace["torch"] = types.ModuleType("torch")  # `import torch` at the top of a cell: every function
    result = selfcheck.check_namespace(namespace, bundle)
    assert {eq["cases"][0]["status"] for eq in result["equations"]} == {"forbidden_import"}


def test_check_with_nothing_defined_in_the_kernel_checks_the_saved_notebook(bundle, monkeypatch, capsys):
    selfcheck = bundled_selfcheck(bundle)
    monkeypatch.chdir(bundle)
    selfcheck.check()  # this test module's globals define no grad_ function
    printed = capsys.readouterr().out
    assert "file: quiz4.ipynb" in printed and set(table(printed).values()) == {"not_implemented"}


def test_a_second_assignment_gets_its_notebook_for_free_and_the_self_check_runs_on_it(tmp_path):
    rubric_path = FIXTURES / "sigmoid" / "rubric.yaml"
    rubric = load_rubric(rubric_path)
    with zipfile.ZipFile(build_student_bundle(rubric_path, tmp_path / "s.zip")) as archive:
        archive.extractall(tmp_path)
    folder = tmp_path / rubric.assignment
    notebook = nbformat.read(folder / f"{rubric.template.stem}.ipynb", as_version=4)
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    stubs = [text.split("(")[0].removeprefix("def ") for text in code if text.startswith("def ")]
    assert stubs == [eq.function for eq in rubric.equations] and code[-1] == SELFCHECK_CELL
    done = subprocess.run(
        [sys.executable, "selfcheck.py", notebook_path := f"{rubric.template.stem}.ipynb", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )
    assert done.returncode == 1, done.stderr
    statuses = {c["status"] for eq in json.loads(done.stdout)["equations"] for c in eq["cases"]}
    assert statuses == {"not_implemented"}, notebook_path
