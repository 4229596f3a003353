"""A submission as Python source: a ``.py`` file as it is, a Jupyter notebook turned into its code.

Notebooks (``.ipynb``, format 4, as Jupyter, JupyterLab and Colab save them) are read
here, in the trusted parent, with the ecosystem's own library: nbformat validates the
file against the format's schema. What the sandboxed child then gets is Python source
exactly as for a ``.py`` submission (``grader/untrusted/student/notebook_cells.py`` makes it, the
same code the student's self-check uses), so every protection holds for notebooks too.
Nothing of the notebook's outputs, attachments or metadata is used or shown.

A file that is not a notebook the grader can read (not JSON, another format version,
over the size limit, failing the schema) is a ``SubmissionFileError`` with one line
saying so, like an unreadable ``.py`` file.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.errors import SubmissionFileError
from grader.sandbox.outcomes import CallOutcome

if TYPE_CHECKING:  # imported when a notebook is graded: `grade file.py` never loads it
    from grader.untrusted.student.notebook_cells import NotebookSource

MAX_SUBMISSION_BYTES = 2 * 1024 * 1024  # a .py file, or the code of a notebook's cells
MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024  # outputs and images make notebooks far bigger than their code
MAX_CELLS = 5000  # real notebooks have hundreds; each costs a schema check and a compile here
NOTEBOOK_SUFFIX = ".ipynb"
SUBMISSION_SUFFIXES = (".py", NOTEBOOK_SUFFIX)


def is_notebook(path: str | Path) -> bool:
    return Path(path).suffix.lower() == NOTEBOOK_SUFFIX


def is_submission_name(name: str) -> bool:
    """A file name the grader can grade: a ``.py`` file or a notebook."""
    return name.endswith(".py") or name.lower().endswith(NOTEBOOK_SUFFIX)


def max_bytes(path: str | Path) -> int:
    """The size limit of a submission file of this kind."""
    return MAX_NOTEBOOK_BYTES if is_notebook(path) else MAX_SUBMISSION_BYTES


def accepted_names(wanted: str) -> tuple[str, ...]:
    """The names that count as the rubric's expected file: ``hw.py`` or ``hw.ipynb``, the named one first."""
    stem = wanted.rsplit(".", 1)[0] if is_submission_name(wanted) else wanted
    first = wanted if is_submission_name(wanted) else f"{stem}.py"
    return tuple(dict.fromkeys([first, f"{stem}.py", f"{stem}{NOTEBOOK_SUFFIX}"]))


def module_filename(name: str) -> str:
    """The file name the child compiles the source under: always a ``.py`` name."""
    return f"{name.rsplit('.', 1)[0]}.py" if is_notebook(name) else name


@dataclass(frozen=True)
class SubmissionSource:
    """The Python the child runs, and how the report points into the file the student wrote."""

    source: bytes
    notebook: NotebookSource | None = None

    def where(self, lineno: int) -> dict:
        """Line ``lineno`` of ``source`` as facts ``feedback`` words: the line, and in a notebook its cell."""
        where: dict = {"lineno": lineno}
        if self.notebook is not None and 0 < lineno <= len(self.notebook.lines):
            cell, line = self.notebook.lines[lineno - 1]
            where.update(cell=cell, cell_line=line)
        return where

    def located(self, outcome: CallOutcome) -> CallOutcome:
        """``outcome`` with the line of its fault placed in the notebook ("cell 7, line 3"); a .py's as it is."""
        lineno = (outcome.where or {}).get("lineno")
        if self.notebook is None or not lineno:
            return outcome
        return dataclasses.replace(outcome, where={**outcome.where, **self.where(lineno)})

    @property
    def notes(self) -> tuple[str, ...]:
        return self.notebook.notes if self.notebook else ()

    def not_run(self, function: str) -> str | None:
        """Why ``function`` is missing when the notebook cell defining it was left out."""
        return dict(self.notebook.not_run).get(function) if self.notebook else None


def submission_source(path: Path, data: bytes) -> SubmissionSource:
    """The Python source of a submission's bytes (read by ``read_submission``)."""
    if not is_notebook(path):
        return SubmissionSource(data)
    from grader.untrusted.student.notebook_cells import notebook_source

    converted = notebook_source(read_cells(path, data))
    source = converted.source.encode("utf-8", "replace")  # a lone surrogate in JSON
    if len(source) > MAX_SUBMISSION_BYTES:
        raise SubmissionFileError(f"{path}: the notebook's code cells hold over {MAX_SUBMISSION_BYTES >> 20} MiB")
    return SubmissionSource(source, converted)


def read_cells(path: Path, data: bytes) -> list[tuple[str, object]]:
    """The (type, source) of every cell of a valid format-4 notebook, else a one-line SubmissionFileError."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise SubmissionFileError(f"{path}: not a notebook: the file is not UTF-8 text") from err
    except ValueError as err:
        where = f" (line {err.lineno}, column {err.colno})" if isinstance(err, json.JSONDecodeError) else ""
        raise SubmissionFileError(f"{path}: not a notebook: the file is not valid JSON{where}") from err
    except RecursionError as err:
        raise SubmissionFileError(f"{path}: not a notebook: the JSON is nested too deeply") from err
    if not isinstance(document, dict) or "cells" not in document and "worksheets" not in document:
        raise SubmissionFileError(f"{path}: not a notebook: the JSON has no cells")
    cells = document.get("cells")
    if isinstance(cells, list) and len(cells) > MAX_CELLS:  # bounds the schema check and the conversion
        raise SubmissionFileError(f"{path}: the notebook has {len(cells)} cells, more than {MAX_CELLS}")
    version = document.get("nbformat")
    if version != 4:
        shown = version if isinstance(version, int) and not isinstance(version, bool) else "unknown"
        raise SubmissionFileError(
            f"{path}: a notebook in format version {shown}; the grader reads version 4, which Jupyter, "
            "JupyterLab and Colab save: open it there and save it again"
        )
    import nbformat  # here: `grade file.py` never pays for importing it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. cells without ids: nbformat still accepts those
            nbformat.validate(document)  # the plain dict: a NotebookNode of every output line would cost more
    except nbformat.ValidationError as err:
        at = "/".join(str(p) for p in getattr(err, "absolute_path", ()) or ())
        detail = str(getattr(err, "message", "") or err).splitlines()[0][:200]
        raise SubmissionFileError(f"{path}: not a valid notebook: {detail}{f' (at {at})' if at else ''}") from err
    except RecursionError as err:
        raise SubmissionFileError(f"{path}: not a valid notebook: it is nested too deeply") from err
    return [(cell.get("cell_type", ""), cell.get("source", "")) for cell in document["cells"]]
