"""Hostile notebooks, graded as root as on Gradescope: the red-team outcomes hold for notebooks too.

Nothing of a notebook runs in the grader: its code cells become Python source and go to
the same sandbox as a .py file. So these cases check what is new with notebooks (cell
magics and shell escapes that would run a shell, outputs and attachments that are most of
the file, functions defined twice) and that hostile .py cases keep their exact outcome
when the same code comes as notebook cells. Each case leaves nothing behind, as in
test_redteam.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from harness import EXPECTED, REPO, SUBMISSIONS, SandboxUids, changed, fingerprints, results_root, run_case, survivors
from test_redteam import check_report

from notebooks import code_cells, notebook_from_py, notebook_of

pytestmark = pytest.mark.redteam
SOLUTION_CELLS = code_cells((REPO / "solutions" / "quiz4.py").read_text())
OWNED = "ATTACK SUCCEEDED"
SHELL_OWNED = 'ATTACK" "SUCCEEDED'  # what a shell would turn into OWNED: the notes quote the source, not this


def replaced(cells: list[str], function: str, text: str) -> list[str]:
    return [text if cell.startswith(f"def {function}(") else cell for cell in cells]


def cell_magic_shell(name: str, root: Path) -> nbformat.NotebookNode:
    """Cell magics and shell escapes that would write into the world-writable results folder (under ``root``)."""
    results = root / name.removesuffix(".ipynb") / "results"
    return notebook_of(
        SOLUTION_CELLS
        + [
            f"%%bash\necho {SHELL_OWNED} > {results}/owned\ncp /etc/shadow {results}/",
            f"%%script python3\nopen('{results}/owned-too', 'w').write('ATTACK' + ' SUCCEEDED')",
            f"!echo {SHELL_OWNED} > {results}/owned-by-escape\nsecrets = !cat /etc/shadow\n%env SECRET=1",
        ]
    )


def huge_output_blob(name: str, root: Path) -> nbformat.NotebookNode:
    """10 MiB of stored output claiming full marks, beside a grad_X with a sign error."""
    cells = replaced(SOLUTION_CELLS, "grad_X", "def grad_X(dY, W):\n    return -dY @ W.T")
    notebook = notebook_of(cells)
    claim = f"Total: 11/11 {OWNED}\n" + json.dumps({"score": 11, "equations": []}) + "\n"
    blob = claim * (10 * 2**20 // len(claim))
    last = next(c for c in reversed(notebook.cells) if c.cell_type == "code")
    last.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=blob),
        nbformat.v4.new_output("display_data", data={"text/html": f"<script>{OWNED}</script>"}),
    ]
    return notebook


def mostly_attachments(name: str, root: Path) -> nbformat.NotebookNode:
    """A notebook that is 99 % image attachments (15 MiB) around 10 KB of code."""
    notebook = notebook_of(SOLUTION_CELLS)
    for i in range(5):
        picture = nbformat.v4.new_markdown_cell(f"![plot](attachment:p{i}.png) {OWNED}")
        picture.attachments = {f"p{i}.png": {"image/png": "iVBORw0K" * (3 * 2**20 // 8)}}
        notebook.cells.insert(2 * i, picture)
    return notebook


def defined_twice(name: str, root: Path) -> nbformat.NotebookNode:
    """The right grad_Z, then a later cell that replaces it: the later one is what a kernel would have."""
    return notebook_of(SOLUTION_CELLS + ["def grad_Z(dH, Z):\n    raise NotImplementedError"])


CASES = {
    "nb_cell_magic_shell.ipynb": (
        cell_magic_shell,
        {"status": {}, "score": 11, "report_excludes": [OWNED, "root:"], "notes": ["IPython syntax", "cell magic"]},
    ),
    "nb_huge_output_blob.ipynb": (
        huge_output_blob,
        # 15 MB of JSON (290,000 output lines) read and validated: more than the usual 3 s
        {"status": {"eq1": "failed"}, "score": 9, "report_excludes": [OWNED], "max_seconds": 5},
    ),
    "nb_mostly_attachments.ipynb": (
        mostly_attachments,
        {"status": {}, "score": 11, "report_excludes": [OWNED, "iVBORw0K"], "parent_peak_mb": 400, "max_seconds": 5},
    ),
    "nb_defined_twice.ipynb": (
        defined_twice,
        {
            "status": {"eq13": "not_implemented"},
            "score": 9,
            "words": {"eq13": "not implemented yet"},
            "notes": ["grad_Z is defined more than once"],
        },
    ),
}
# hostile .py cases whose exact outcome must hold when their code comes as notebook cells
AS_CELLS = ["secret_files.py", "secret_environment.py", "tamper_files.py", "forged_printed_report.py", "exit_os.py"]


def check_run(run, spec: dict) -> dict:
    document = check_report(run, spec)
    uids = SandboxUids(os.getpid(), run.grader_pid)
    assert survivors(uids) == [], "a process of the submission outlived grade"
    assert run.seconds <= spec.get("max_seconds", 3), f"grade took {run.seconds:.1f} s"
    sandbox = document["sandbox"]
    assert sandbox["privilege_drop"] and sandbox["minimal_filesystem"] and sandbox["syscall_filter"]
    for words in spec.get("notes", ()):
        assert any(words in note for note in document["submission"]["notes"]), document["submission"]["notes"]
    if spec.get("parent_peak_mb"):
        assert run.parent_peak_bytes < spec["parent_peak_mb"] << 20, f"the grader held {run.parent_peak_bytes} bytes"
    return document


@pytest.fixture(scope="module")
def rubric(tmp_path_factory):
    from harness import write_public_rubric

    from conftest import write_rubric_copy

    root = results_root()
    yield write_public_rubric(
        write_rubric_copy(tmp_path_factory.mktemp("redteam-nb"), time_limit=1.0, import_time_limit=3.0), root
    )
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.root
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_notebook_gets_its_expected_grade_and_leaves_nothing_behind(case, rubric, tmp_path):
    build, spec = CASES[case]
    path = tmp_path / case
    nbformat.write(build(case, rubric.parent.parent), path)  # the results root is the rubric's folder's parent
    before = fingerprints()
    run = run_case(case, spec, rubric, source=path)
    check_run(run, spec)
    assert changed(before, fingerprints()) == []


@pytest.mark.root
@pytest.mark.parametrize("case", AS_CELLS)
def test_a_hostile_file_split_into_notebook_cells_gets_the_same_grade_as_the_file(case, rubric, tmp_path):
    spec = EXPECTED[case]
    path = notebook_from_py(SUBMISSIONS / case, tmp_path / Path(case).with_suffix(".ipynb").name)
    before = fingerprints()
    run = run_case(f"nb_{Path(case).stem}.ipynb", spec, rubric, source=path)
    check_run(run, spec)
    assert changed(before, fingerprints()) == []
