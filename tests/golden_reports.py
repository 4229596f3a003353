"""Golden reports of the quiz-4 fixture corpus: grading it with ``grade batch``, normalising, (re)writing.

    python tests/golden_reports.py            # regenerate tests/fixtures/golden/quiz4/ from this tree

``tests/test_golden_reports.py`` grades the corpus (``tests/fixtures/quiz4``) with
``grade batch -j 2`` and compares every report with its golden file here. The
golden files are what the grader's reports say, so a speed-up (issue 15) or a
refactoring must leave them alone: regenerating is legitimate only for a change of
behaviour that an issue asks for (new feedback wording, another case count, a schema
change...), and the commit that regenerates names that issue and says what changed.
Regenerate with the one command above, then read ``git diff --stat`` and a few diffs
before committing: a change nobody asked for is a bug, not a new golden.

What the comparison leaves out, because it depends on the machine or the moment
rather than on the submission, rubric and seed:

* ``timings``: wall-clock seconds;
* ``grader.code_sha256``, ``grader.python``, ``grader.numpy``: the grader's own
  code hash (any edit of the grader changes it, a pure speed-up included) and the
  versions installed; the golden set records the numpy it was made with, since float
  fields could differ in their last digits under another numpy or BLAS;
* ``sandbox.memory_bound``: cgroup v2, cgroup v1 or a per-process limit is the
  machine's choice (the other protections are compared: the test runs as root, as
  on Gradescope, where each one is expected in force);
* in an equation where the grader found the submission ``nondeterministic`` (it draws
  unseeded random numbers, as ``buggy/eq15_random_noise.py`` does), and in an end-to-end
  check of such a submission (it calls the same functions), what its cases say about the
  numbers returned (``got``, ``diff`` and the errors): they differ from run to run by
  design, and the verdicts and messages that remain still have to match;
* where the corpus and the repository lie: the folder the batch read is written
  ``<class>`` and the repository ``<repo>`` in every string (paths, the reproduce
  command, tracebacks).

To keep the repository small, each nested list of numbers (a visible case's inputs,
expected and got) is replaced by the sha256 of its JSON text: still compared exactly,
without 60 kB of numbers per fixture.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "quiz4"
RUBRIC = REPO / "rubrics" / "quiz4.yaml"
GOLDEN = REPO / "tests" / "fixtures" / "golden" / "quiz4"
MADE_WITH = "made_with.json"
ARRAY_FIELDS = ("expected", "got")
# What a case says about the numbers the submission returned: for a submission that draws
# random numbers of its own (the grader names it ``nondeterministic``), they differ by design.
ANSWER_FIELDS = ("got", "diff", "max_abs_error", "relative_error", "fd_max_abs_error")


def fixture_names() -> list[str]:
    """``correct/matmul.py``, ``buggy/eq10_mean.py``...: every submission of the corpus."""
    return sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.py"))


def submission_id(name: str) -> str:
    """The id (and file stem) a fixture gets in the flat class folder: ``buggy--eq10_mean``."""
    return name.removesuffix(".py").replace("/", "--")


def make_class(folder: Path) -> None:
    """The corpus as one flat class folder (``grade batch`` would take ``correct/`` for one student)."""
    folder.mkdir(parents=True)
    for name in fixture_names():
        shutil.copyfile(CORPUS / name, folder / f"{submission_id(name)}.py")


def digest(value: object) -> str:
    """A short fingerprint of a JSON value (64 bits: enough to notice any change, not a security measure)."""
    return "sha256:" + hashlib.sha256(json.dumps(value, allow_nan=False).encode()).hexdigest()[:16]


def replace_text(value: object, replacements: list[tuple[str, str]]) -> object:
    """Every string in a JSON value with the machine's folders replaced by placeholders."""
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [replace_text(v, replacements) for v in value]
    if isinstance(value, dict):
        return {k: replace_text(v, replacements) for k, v in value.items()}
    return value


def normalise(document: dict, class_folder: Path) -> dict:
    """A report without what depends on the machine or the moment (see the module docstring)."""
    document = json.loads(json.dumps(document))  # a deep copy
    document.pop("timings", None)
    for key in ("code_sha256", "python", "numpy"):
        document.get("grader", {}).pop(key, None)
    document.get("sandbox", {}).pop("memory_bound", None)
    equations = document.get("equations", ())
    random_submission = any(case["status"] == "nondeterministic" for eq in equations for case in eq["cases"])
    for equation in equations:
        random_answers = any(case["status"] == "nondeterministic" for case in equation["cases"])
        chain = any("outputs" in case for case in equation["cases"])  # it calls the random function too
        for case in equation["cases"]:
            if random_answers or (chain and random_submission):
                for part in [case, *case.get("outputs", {}).values()]:
                    for key in ANSWER_FIELDS:
                        part.pop(key, None)
            if "inputs" in case:
                case["inputs"] = {name: digest(v) for name, v in case["inputs"].items()}
            for key in ARRAY_FIELDS:
                if key in case:
                    case[key] = digest(case[key])
    # longest first: the class folder may lie inside the repository (never in a test, but cheap to get right)
    places = sorted({str(class_folder.resolve()), str(class_folder)}, key=len, reverse=True)
    replacements = [(p, "<class>") for p in places] + [(str(REPO), "<repo>")]
    return replace_text(document, replacements)


def grade_corpus(work: Path, jobs: int = 2) -> dict[str, dict]:
    """Every fixture's report from one ``grade batch`` run, normalised, by fixture name."""
    from grader.frontends.cli import main

    class_folder, outdir = work / "class", work / "out"
    make_class(class_folder)
    code = main(["batch", str(class_folder), "-o", str(outdir), "--rubric", str(RUBRIC), "-j", str(jobs)])
    if code != 0:
        raise RuntimeError(f"grade batch on the corpus exited with {code}")
    reports = {}
    for name in fixture_names():
        document = json.loads((outdir / "reports" / f"{submission_id(name)}.json").read_text(encoding="utf-8"))
        reports[name] = normalise(document, class_folder)
    return reports


def golden_path(name: str) -> Path:
    return GOLDEN / f"{submission_id(name)}.json"


def render(document: dict) -> str:
    """Indented JSON with each case on one line of its own: small, and a changed case is a one-line diff."""
    cases: list[str] = []

    def placeholder(case: dict) -> str:
        cases.append(json.dumps(case, ensure_ascii=False, sort_keys=True))
        return f"<case {len(cases) - 1}>"

    shell = {
        **document,
        "equations": [{**eq, "cases": [placeholder(c) for c in eq["cases"]]} for eq in document.get("equations", ())],
    }
    text = json.dumps(shell, indent=1, ensure_ascii=False, sort_keys=True)
    text = re.sub(r'"<case (\d+)>"', lambda m: cases[int(m[1])], text) + "\n"
    if json.loads(text) != document:  # a string that looked like a placeholder
        raise ValueError("render: the one-case-per-line layout does not read back as the document")
    return text


def read_golden(name: str) -> dict:
    return json.loads(golden_path(name).read_text(encoding="utf-8"))


def made_with() -> dict:
    """What the golden set was made with (numpy's version: float fields may differ under another)."""
    import numpy

    return {"numpy": numpy.__version__, "python": sys.version.split()[0], "fixtures": len(fixture_names())}


def regenerate() -> None:
    """Grade the corpus and rewrite every golden file (stale ones removed)."""
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        reports = grade_corpus(Path(tmp))
    if GOLDEN.is_dir():
        shutil.rmtree(GOLDEN)
    GOLDEN.mkdir(parents=True)
    for name, document in reports.items():
        golden_path(name).write_text(render(document), encoding="utf-8")
    (GOLDEN / MADE_WITH).write_text(json.dumps(made_with(), indent=1) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in GOLDEN.iterdir())
    print(f"wrote {len(reports)} golden reports to {GOLDEN} ({size / 1024:.0f} kB); now read `git diff --stat`")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    regenerate()
