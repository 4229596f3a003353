"""The student bundle: the template, instructions and a self-check, with no reference and no hidden cases.

The self-check runs as a student runs it (``python selfcheck.py FILE`` in the unpacked
folder, in its own process), and on every fixture submission its verdict on each visible
case is the full grader's.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import FIXTURES, QUIZ4_RUBRIC, REPO, SESSION_HOST
from grader.assignment.reference import load_reference
from grader.assignment.rubric import load_rubric
from grader.errors import ReferenceModuleError
from grader.frontends.bundle import build_student_bundle, forward_module_source, selfcheck_equations
from grader.frontends.cli import main
from grader.grading.cases import build_cases
from grader.grading.pipeline import grade_submission
from grader.untrusted.student import selfcheck_oracle

CORPUS = FIXTURES / "quiz4"
FIXTURE_NAMES = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.py"))
HIDDEN_KEYS = {"seed", "hidden", "hidden_cases", "hidden_seed", "batch_dim", "tolerance", "reference", "mistakes"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build_student_bundle(QUIZ4_RUBRIC, tmp_path_factory.mktemp("bundle") / "quiz4-student.zip")


@pytest.fixture(scope="module")
def members(bundle) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
def folder(bundle, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("student")
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(target)
    return target / "quiz4"


@pytest.fixture(scope="module")
def cases_document(members) -> dict:
    return json.loads(members["quiz4/selfcheck_cases.json"])


def run_selfcheck(folder: Path, submission: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "selfcheck.py", str(submission), *options],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


def verdicts(folder: Path, submission: Path) -> dict[tuple[str, int], str]:
    done = run_selfcheck(folder, submission, "--json")
    assert done.returncode in (0, 1), done.stderr
    result = json.loads(done.stdout)
    return {(eq["id"], case["index"]): case["status"] for eq in result["equations"] for case in eq["cases"]}


def function_sources(path: Path, names: set[str] | None = None) -> dict[str, tuple[str, str]]:
    """Each function's whole source and its body without the docstring."""
    source = path.read_text()
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and (names is None or node.name in names):
            body = node.body[1:] if ast.get_docstring(node) else node.body
            code = "\n".join(ast.get_source_segment(source, stmt) for stmt in body)
            found[node.name] = (ast.get_source_segment(source, node), code)
    return found


def keys_of(document, skip=("inputs",)) -> set[str]:
    if isinstance(document, dict):
        return set(document) | {k for key, v in document.items() if key not in skip for k in keys_of(v, skip)}
    if isinstance(document, list):
        return {k for item in document for k in keys_of(item, skip)}
    return set()


def test_the_bundle_holds_the_template_the_instructions_and_the_self_check(members, quiz4):
    assert set(members) == {
        "quiz4/quiz4.py",
        "quiz4/quiz4.ipynb",
        "quiz4/README.md",
        "quiz4/selfcheck.py",
        "quiz4/selfcheck_oracle.py",
        "quiz4/selfcheck_faults.py",
        "quiz4/selfcheck_plans.py",
        "quiz4/notebook_cells.py",
        "quiz4/selfcheck_cases.json",
        "quiz4/selfcheck_forward.py",
    }
    assert members["quiz4/quiz4.py"] == quiz4.template.read_bytes()
    readme = members["quiz4/README.md"].decode()
    assert "python selfcheck.py" in readme and "Upload `quiz4.py`" in readme
    assert all(f"`{eq.function}(" in readme for eq in quiz4.equations)
    colab = readme[readme.index("In Colab") :].split("\n\n")[0]
    for member in members:  # a student in Colab uploads exactly what this line lists
        name = member.split("/", 1)[1]
        if name.startswith("selfcheck") or name == "notebook_cells.py":
            assert f"`{name}`" in colab, name


def test_no_reference_function_source_is_in_the_bundle(members, quiz4):
    text = "\n".join(data.decode() for data in members.values())
    answers = function_sources(quiz4.reference, {eq.function for eq in quiz4.equations})
    catalog = function_sources(quiz4.mistakes_module)
    assert len(answers) == len({eq.function for eq in quiz4.equations}) and catalog
    for name, (whole, body) in {**answers, **catalog}.items():
        assert whole not in text and body not in text, name
    assert ast.get_docstring(ast.parse(quiz4.reference.read_text())) not in text
    forward = ast.parse(members["quiz4/selfcheck_forward.py"].decode())
    defined = {node.name for node in forward.body if isinstance(node, ast.FunctionDef)}
    # the end-to-end check is not one of the self-check's parts: its forward (the whole network) stays out
    assert defined == {eq.finite_difference.forward for eq in selfcheck_equations(quiz4)}


def test_no_hidden_case_configuration_or_seed_is_in_the_bundle(members, cases_document, quiz4):
    assert not keys_of(cases_document) & HIDDEN_KEYS
    assert not [name for name in members if name.endswith((".yaml", ".yml"))], "no rubric"
    for name in ("quiz4/selfcheck_cases.json", "quiz4/README.md", "quiz4/selfcheck_forward.py"):
        assert "seed" not in members[name].decode().lower(), name
    assert "hidden" not in members["quiz4/selfcheck_cases.json"].decode()
    for eq in cases_document["equations"]:
        assert [case["index"] for case in eq["cases"]] == list(range(quiz4.settings.visible_cases))
        assert "expected" not in keys_of(eq, skip=()), "the expected values come from finite differences"


def test_the_bundle_carries_exactly_the_graders_visible_inputs(cases_document, quiz4):
    built = build_cases(quiz4, load_reference(quiz4), hidden_seed=0, hidden=False)
    for eq in cases_document["equations"]:
        for case, graders in zip(eq["cases"], built[eq["id"]]):
            assert case["dims"] == dict(graders.dims)
            for name, spec in case["inputs"].items():
                mine, theirs = selfcheck_oracle.decode_array(spec), graders.inputs[name]
                assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), (eq["id"], name)


def test_the_kink_convention_travels_as_a_side_not_as_values(cases_document):
    kinks = {eq["id"]: eq["finite_difference"].get("kink") for eq in cases_document["equations"]}
    assert kinks["eq13"] == {"input": "Z", "at": 0.0, "side": "left"}
    assert [eq_id for eq_id, kink in kinks.items() if kink] == ["eq13"]


def test_one_sided_differences_give_the_slope_beside_and_at_a_kink():
    def relu(z):
        return np.maximum(z, 0.0)

    z = np.array([[-1.0, 0.0, 1e-7, -1e-7, 2.0]])
    upstream = np.ones_like(z)
    spec = {"args": ["Z"], "wrt": "Z", "upstream": "U", "kink": {"input": "Z", "at": 0.0}}
    inputs = {"Z": z, "U": upstream}
    grad, mask = selfcheck_oracle.finite_difference(relu, spec, inputs, 1e-6, "left")
    assert mask.all() and np.allclose(grad, [[0, 0, 1, 0, 1]], atol=1e-9)
    grad, _ = selfcheck_oracle.finite_difference(relu, spec, inputs, 1e-6, "right")
    assert np.allclose(grad, [[0, 1, 1, 0, 1]], atol=1e-9)
    _, mask = selfcheck_oracle.finite_difference(relu, spec, inputs, 1e-6, None)
    assert mask.tolist() == [[True, False, True, True, True]]


def test_the_self_check_on_the_template_says_every_function_is_still_to_write(folder, quiz4):
    done = run_selfcheck(folder, folder / "quiz4.py")
    assert done.returncode == 1
    assert done.stdout.count("not_implemented") == len(selfcheck_equations(quiz4))
    assert "0 of 8 functions pass their visible case" in done.stdout


def test_the_self_check_passes_a_correct_file_and_says_what_to_fix_in_a_wrong_one(folder):
    done = run_selfcheck(folder, CORPUS / "correct" / "einsum.py")
    assert done.returncode == 0, done.stdout
    done = run_selfcheck(folder, REPO / "examples" / "quiz4_submission.py")
    assert done.returncode == 1
    assert "grad_S returned wrong values" in done.stdout and "shape convention" in done.stdout
    assert run_selfcheck(folder, folder / "nope.py").returncode == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_self_check_verdicts_on_visible_cases_equal_the_full_graders(folder, quiz4, name):
    visible_only = dataclasses.replace(quiz4, settings=dataclasses.replace(quiz4.settings, hidden_cases=0))
    report = grade_submission(CORPUS / name, visible_only, host=SESSION_HOST)
    parts = {eq.id for eq in selfcheck_equations(quiz4)}  # the end-to-end check is the autograder's alone
    graders = {
        (r.equation.id, c.index): c.status.value for r in report.equations for c in r.cases if r.equation.id in parts
    }
    assert verdicts(folder, CORPUS / name) == graders


def test_a_forward_function_that_reaches_an_answer_is_refused(tmp_path, quiz4):
    reference = tmp_path / "reference.py"
    reference.write_text(quiz4.reference.read_text() + "\n\ndef matmul(A, B):\n    return grad_X(A, B.T)\n")
    leaky = dataclasses.replace(quiz4, reference=reference)
    with pytest.raises(ReferenceModuleError, match="reaches grad_X"):
        forward_module_source(leaky, selfcheck_equations(leaky))


def test_parts_shown_only_later_are_left_out_of_the_self_check(tmp_path):
    document = yaml.safe_load(QUIZ4_RUBRIC.read_text())
    for key in ("reference", "template", "mistakes"):
        document[key] = str((QUIZ4_RUBRIC.parent / document[key]).resolve())
    document["equations"][5]["visibility"] = "after_due_date"
    rubric = tmp_path / "quiz4.yaml"
    rubric.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    with zipfile.ZipFile(build_student_bundle(rubric, tmp_path / "b.zip")) as archive:
        cases = json.loads(archive.read("quiz4/selfcheck_cases.json"))
        readme = archive.read("quiz4/README.md").decode()
    assert "eq13" not in {eq["id"] for eq in cases["equations"]}
    assert "leaves out `grad_Z`" in readme


def test_a_second_assignment_gets_a_working_bundle_too(tmp_path):
    sigmoid = FIXTURES / "sigmoid"
    with zipfile.ZipFile(build_student_bundle(sigmoid / "rubric.yaml", tmp_path / "s.zip")) as archive:
        archive.extractall(tmp_path)
    folder = tmp_path / load_rubric(sigmoid / "rubric.yaml").assignment
    assert (folder / "template.py").read_bytes() == (sigmoid / "template.py").read_bytes()
    assert set(verdicts(folder, sigmoid / "submissions" / "correct.py").values()) == {"passed"}
    wrong = verdicts(folder, sigmoid / "submissions" / "buggy.py")
    assert {eq_id for (eq_id, _), status in wrong.items() if status != "passed"} == {"sigmoid", "bias"}


def test_the_command_writes_the_bundle_and_reports_usage_errors(tmp_path, capsys):
    out = tmp_path / "quiz4-student.zip"
    assert main(["bundle", "student", "-o", str(out)]) == 0
    assert zipfile.is_zipfile(out) and "no reference code" in capsys.readouterr().out
    assert main(["bundle"]) == 2
    assert main(["bundle", "teacher"]) == 2
