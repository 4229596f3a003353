"""``grade prairielearn build``: a PrairieLearn question folder that grades with this grader.

The folder goes into a course's ``questions/`` as it is:

* ``info.json``: a v3 question graded externally. ``externalGradingOptions`` names an
  image with Python and numpy (PrairieLearn's own ``prairielearn/grader-python`` by
  default; it also has PyYAML and jsonschema), the entrypoint ``/grade/tests/run.sh``, a
  timeout that covers the rubric's worst case (every call timing out; PrairieLearn allows
  600 s at most), and networking off. ``serverFilesCourse`` is not used: everything the
  grader needs travels in ``tests/``, so one question is self-contained.
* ``question.html``: the assignment's title, a ``<pl-file-editor>`` for the expected
  ``.py`` file pre-filled with the template (a ``<pl-file-upload>`` for an ``.ipynb``),
  and the results and file preview in the submission panel.
* ``tests/``: the grader package, the rubric with its reference, template and mistake
  catalog (under ``assignment/``, as in the Gradescope zip), a manifest naming the rubric,
  and ``run.sh`` (a real file beside this module). PrairieLearn mounts it at ``/grade/tests``, out of students' sight.

A rebuild into the same folder keeps the question's ``uuid`` (PrairieLearn identifies a
question by it: a new one would orphan the students' submissions) and replaces ``tests/``.
"""

from __future__ import annotations

import html
import json
import math
import shutil
import uuid
from pathlib import Path

from grader.assignment.rubric import Rubric, load_rubric
from grader.errors import GraderError
from grader.files import write_bytes_atomic
from grader.frontends.gradescope.build import check_rubric, packaged_grader
from grader.frontends.prairielearn.runner import MANIFEST

HERE = Path(__file__).resolve().parent
DEFAULT_IMAGE = "prairielearn/grader-python"
ENTRYPOINT = "/grade/tests/run.sh"
MAX_TIMEOUT = 600  # PrairieLearn's ceiling for externalGradingOptions.timeout
STARTUP_SECONDS = 30  # the grader's own start and the results, beyond what the sandbox bounds


class BuildError(GraderError):
    """The output folder can't take a question (it holds something else)."""


def grading_timeout(rubric: Rubric) -> int:
    """Seconds that cover a submission whose every call times out and restarts, within PrairieLearn's 600."""
    s = rubric.settings
    calls = (s.visible_cases + s.hidden_cases) * len(rubric.equations)
    worst = s.import_time_limit + calls * (s.time_limit + s.import_time_limit) + STARTUP_SECONDS
    return min(MAX_TIMEOUT, math.ceil(worst))


def info_document(rubric: Rubric, question_uuid: str, image: str, timeout: int) -> dict:
    return {
        "uuid": question_uuid,
        "title": rubric.title,
        "topic": "Autograder",
        "tags": ["grader", rubric.assignment],
        "type": "v3",
        "singleVariant": True,
        "gradingMethod": "External",
        "externalGradingOptions": {
            "enabled": True,
            "image": image,
            "entrypoint": ENTRYPOINT,
            "timeout": timeout,
            "enableNetworking": False,
        },
    }


def question_html(rubric: Rubric, filename: str) -> str:
    """The question page: what to submit, the editor or upload element, and where results appear."""
    name = html.escape(filename, quote=True)
    if filename.endswith(".ipynb"):
        element = f'  <pl-file-upload file-names="{name.replace(",", chr(92) + ",")}"></pl-file-upload>'
    else:
        element = f'  <pl-file-editor file-name="{name}" ace-mode="ace/mode/python" source-file-name="{name}">'
        element += "</pl-file-editor>"
    return (
        "<pl-question-panel>\n"
        f"  <p>{html.escape(rubric.title)}</p>\n"
        f"  <p>Write your answers in <code>{name}</code> and submit it. Each part is run on a visible case,\n"
        "  whose inputs and expected values you will see, and on hidden cases, whose inputs are drawn\n"
        "  for your file and not shown. Only numpy is available; the grader runs your code in a sandbox.</p>\n"
        f"{element}\n"
        "</pl-question-panel>\n\n"
        "<pl-submission-panel>\n"
        "  <pl-external-grader-results></pl-external-grader-results>\n"
        "  <pl-file-preview></pl-file-preview>\n"
        "</pl-submission-panel>\n"
    )


def tests_entries(rubric: Rubric) -> dict[str, tuple[bytes, int]]:
    """Every file of ``tests/``: the grader, the assignment, the manifest and run.sh."""
    entries = packaged_grader(rubric, MANIFEST)
    entries["run.sh"] = ((HERE / "run.sh").read_bytes(), 0o755)
    return entries


def existing_uuid(folder: Path) -> str | None:
    """The uuid of a question built here before; an error if the folder holds something else."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        raise BuildError(f"{folder}: exists and is not a folder")
    info = folder / "info.json"
    if not info.is_file():
        if any(folder.iterdir()):
            raise BuildError(f"{folder}: not empty and not a question folder; give an empty or new folder")
        return None
    try:
        found = json.loads(info.read_text(encoding="utf-8"))["uuid"]
        return str(uuid.UUID(found))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise BuildError(f"{info}: has no readable uuid ({err}); fix or remove it before rebuilding") from err


def build_question(
    rubric_path: str | Path, output: str | Path, image: str = DEFAULT_IMAGE, timeout: int | None = None
) -> Path:
    """Write (or rewrite) the question folder for a rubric that validates; returns its path."""
    check_rubric(rubric_path)  # a wrong answer key would grade a whole class
    rubric = load_rubric(rubric_path)
    folder = Path(output)
    question_uuid = existing_uuid(folder) or str(uuid.uuid4())
    if timeout is not None and not 1 <= timeout <= MAX_TIMEOUT:
        raise BuildError(f"--timeout must be between 1 and {MAX_TIMEOUT} seconds (PrairieLearn's limit)")
    entries = tests_entries(rubric)
    filename = rubric.submission_filename or rubric.template.name
    shutil.rmtree(folder / "tests", ignore_errors=True)
    for name, (data, mode) in sorted(entries.items()):
        target = folder / "tests" / name
        write_bytes_atomic(target, data)
        target.chmod(mode)
    info = info_document(rubric, question_uuid, image, timeout or grading_timeout(rubric))
    write_bytes_atomic(folder / "info.json", (json.dumps(info, indent=4) + "\n").encode())
    write_bytes_atomic(folder / "question.html", question_html(rubric, filename).encode())
    if not filename.endswith(".ipynb"):  # the editor starts from the template
        write_bytes_atomic(folder / filename, rubric.template.read_bytes())
    return folder
