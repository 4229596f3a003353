"""Python source from a notebook's code cells, with a map from its lines back to the cells.

One conversion for both sides, so they run exactly the same Python: the grader
(``grader/grading/notebook.py``, once nbformat has validated the file) and the student's
self-check (``selfcheck.py``, which reads the ``.ipynb`` with ``json`` alone, since a
student may not have nbformat). So: the standard library only, and nothing runs here.

The source is the code cells in notebook order, each after a ``# %% cell N`` line (the
"percent" format editors know). Markdown and raw cells, outputs, attachments and
metadata are left out. Cells are numbered from 1 counting every cell from the top, as
JupyterLab's and VS Code's cell counters do. IPython syntax that is not Python is never
run: a cell magic (``%%bash``) costs its whole cell; a line magic (``%matplotlib``), a
shell escape (``!pip``, ``x = !ls``) or help (``np.dot?``) becomes ``pass``. Such lines
are found where the parser stops (so a ``!`` inside a string is left alone), and only in
a cell that is not Python as it stands. A cell that still doesn't parse is left out,
which costs only the functions it defines. Every such change becomes a note. A cell that
imports the self-check (the bundle notebook's last cell) is left out silently: it checks
the work in the kernel and has no place in a grade.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass

LINE_BREAK = re.compile(r"\r\n|\r|\n")  # Python's own line ends (str.splitlines also splits on \f, \x1c...)
IPYTHON_LINE = re.compile(r"^\s*(?:[%!?]|[\w.,\[\]\s]+=\s*[%!])|\?\s*$")
SELFCHECK = "selfcheck"  # the bundle's self-check module, which its notebook's last cell runs
PARSE_BUDGET_CHARS = 8_000_000  # parsed while looking for IPython lines one at a time, per notebook
MAX_LISTED = 10  # cell numbers named in one note
MAX_NOTES = 20
DEFINED = re.compile(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


@dataclass(frozen=True)
class NotebookSource:
    """The Python a notebook amounts to, and how to point back into the notebook.

    ``lines[i]`` is (cell number, line in that cell) for line ``i + 1`` of ``source``;
    line 0 is a cell's ``# %%`` header. ``not_run`` maps a function name to why the cell
    defining it was left out.
    """

    source: str
    lines: tuple[tuple[int, int], ...]
    notes: tuple[str, ...]
    not_run: tuple[tuple[str, str], ...]

    def locate(self, lineno: int) -> str:
        """Line ``lineno`` of the source in the notebook's terms: "cell 7, line 3"."""
        if not 0 < lineno <= len(self.lines):
            return f"line {lineno}"
        cell, line = self.lines[lineno - 1]
        return f"cell {cell}, line {line}" if line else f"cell {cell}"


def cell_text(source: object) -> str:
    """A cell's source as one string: files hold it as a string or a list of lines."""
    if isinstance(source, list):
        return "".join(part for part in source if isinstance(part, str))
    return source if isinstance(source, str) else ""


def parse_problem(text: str) -> SyntaxError | None:
    """Why ``text`` would not compile as a file, or None: parse errors and the compiler's own
    (``return`` or ``await`` outside a function). Nothing runs; constant folding is bounded by CPython."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "\\d" and `is 1` warnings are the student's business
            compile(text, "<cell>", "exec", dont_inherit=True)
    except SyntaxError as err:
        return err
    except (ValueError, RecursionError, MemoryError) as err:  # a null byte (before 3.12), absurd nesting
        return SyntaxError(type(err).__name__ if not str(err) else str(err)[:100])
    return None


def neutralise(lines: list[str], budget: list[int]) -> tuple[list[str], list[str], SyntaxError | None]:
    """The cell with its IPython lines turned into ``pass``: (lines, what was neutralised, error left).

    A line is a candidate only where the parser stops, so a ``!`` or ``%`` inside a string
    or a continued expression is never touched. Each stop re-parses the whole cell; once
    the notebook's ``budget`` of characters parsed is spent (cells of 50,000 shell escapes
    would otherwise cost minutes in the grader's own process) the remaining candidates
    are neutralised at once and the cell parsed one last time.
    """
    lines = list(lines)
    changed: list[str] = []
    while True:
        text = "\n".join(lines)
        budget[0] -= len(text)
        error = parse_problem(text)
        if error is None:
            return lines, changed, None
        index = (error.lineno or 0) - 1
        if not 0 <= index < len(lines) or not is_ipython(lines[index]):
            return lines, changed, error
        if budget[0] < 0:
            for i, line in enumerate(lines):
                if is_ipython(line):
                    changed.append(line.strip())
                    lines[i] = as_pass(line)
            return lines, changed, parse_problem("\n".join(lines))
        changed.append(lines[index].strip())
        lines[index] = as_pass(lines[index])


def is_ipython(line: str) -> bool:
    return bool(IPYTHON_LINE.search(line)) and not line.lstrip().startswith("#")


def as_pass(line: str) -> str:
    return line[: len(line) - len(line.lstrip())] + "pass"


def runs_selfcheck(tree: ast.Module) -> bool:
    """Does the cell import the student's self-check (``from selfcheck import check``)?"""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == SELFCHECK and not node.level:
            return True
        if isinstance(node, ast.Import) and any(alias.name == SELFCHECK for alias in node.names):
            return True
    return False


def listed(numbers: list[int]) -> str:
    words = [str(n) for n in numbers[:MAX_LISTED]]
    if len(numbers) > MAX_LISTED:
        return "cells " + ", ".join(words) + f" and {len(numbers) - MAX_LISTED} more"
    if len(words) == 1:
        return f"cell {words[0]}"
    return "cells " + ", ".join(words[:-1]) + " and " + words[-1]


def quoted(text: str, limit: int = 60) -> str:
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return "`" + text.replace("`", "'") + "`"


@dataclass(frozen=True)
class Cell:
    """One code cell as it goes into the source: its lines, or why it was left out."""

    number: int
    lines: tuple[str, ...] = ()
    why: str = ""  # non-empty: left out, and why
    defines: tuple[str, ...] = ()  # top-level functions (found by a regex in a cell that does not parse)
    neutralised: tuple[str, ...] = ()  # IPython lines turned into pass
    silent: bool = False  # left out without a note (the self-check cell)


def convert_cell(number: int, text: str, budget: list[int]) -> Cell:
    lines = LINE_BREAK.split(text)
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("%%"):
        why = f"it is a cell magic ({quoted(first.split()[0])}), which is IPython, not Python"
        return Cell(number, why=why, defines=tuple(dict.fromkeys(DEFINED.findall(text))))
    lines, changed, error = neutralise(lines, budget)
    if error is not None:
        at = f" at line {error.lineno}" if error.lineno else ""
        why = f"it has a syntax error{at} ({error.msg})"
        return Cell(number, why=why, defines=tuple(dict.fromkeys(DEFINED.findall(text))), neutralised=tuple(changed))
    tree = ast.parse("\n".join(lines))
    if runs_selfcheck(tree):  # the bundle notebook's last cell: it would import the self-check into the grade
        return Cell(number, why="the self-check", silent=True)
    defines = tuple(n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return Cell(number, tuple(lines), defines=defines, neutralised=tuple(changed))


def hoisted_futures(cells: list[Cell]) -> tuple[list[Cell], list[str], tuple[int, int]]:
    """``from __future__`` imports moved to the file's first line (a kernel compiles each cell alone,
    where they may start any cell; in one file they must come first): (cells, names, their place)."""
    names: list[str] = []
    place = (0, 0)
    result = []
    for cell in cells:
        lines = list(cell.lines)
        if lines and "__future__" in "\n".join(lines):
            for node in ast.parse("\n".join(lines)).body:
                if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                    names += [alias.name for alias in node.names if alias.name not in names]
                    place = place if place[0] else (cell.number, node.lineno)
                    for index in range(node.lineno - 1, node.end_lineno or node.lineno):
                        lines[index] = "pass" if index == node.lineno - 1 else ""
            cell = Cell(cell.number, tuple(lines), cell.why, cell.defines, cell.neutralised)
        result.append(cell)
    return result, names, place


def assemble(cells: list[Cell]) -> tuple[str, tuple[tuple[int, int], ...]]:
    cells, futures, place = hoisted_futures(cells)
    out: list[str] = [f"from __future__ import {', '.join(futures)}"] if futures else []
    where: list[tuple[int, int]] = [place] if futures else []
    for cell in cells:
        state = "" if not cell.why else " (the self-check: not run)" if cell.silent else " (not run)"
        out.append(f"# %% cell {cell.number}{state}")
        where.append((cell.number, 0))
        out += cell.lines
        where += [(cell.number, i) for i in range(1, len(cell.lines) + 1)]
    return "\n".join(out) + "\n", tuple(where)


def notebook_source(cells: list[tuple[str, object]]) -> NotebookSource:
    """The Python source of ``cells``, each a (cell type, source) pair in notebook order."""
    budget = [PARSE_BUDGET_CHARS]  # shared by the cells: see neutralise
    converted = [
        convert_cell(n, cell_text(raw), budget) for n, (kind, raw) in enumerate(cells, start=1) if kind == "code"
    ]
    for _ in range(3):  # cells that compile alone and not together (none is known): leave them out
        source, where = assemble(converted)
        error = parse_problem(source)
        if error is None or not 0 < (error.lineno or 0) <= len(where):
            break
        culprit = where[error.lineno - 1][0]
        why = f"it does not compile as part of the notebook ({error.msg})"
        converted = [Cell(c.number, why=why, defines=c.defines) if c.number == culprit else c for c in converted]
    return NotebookSource(source, where, notes_on(converted), not_run_of(converted))


def notes_on(cells: list[Cell]) -> tuple[str, ...]:
    """What the report says about the conversion, in the order a student would fix it."""
    notes: list[str] = []
    ipython = [c.number for c in cells if c.neutralised]
    examples = [line for c in cells for line in c.neutralised]
    if ipython:
        shown = ", ".join(quoted(e) for e in examples[:2]) + (" ..." if len(examples) > 2 else "")
        notes.append(
            f"{listed(ipython)} {'uses' if len(ipython) == 1 else 'use'} IPython syntax ({shown}): magics, "
            "shell escapes and help are not run, since the grader runs your code cells as plain Python"
        )
    defined = defined_in(cells)
    for cell in cells:
        if cell.why and not cell.silent:
            lost = [name for name in cell.defines if name not in defined]  # another cell's definition counts
            missing = f"; the functions it defines ({', '.join(lost)}) are missing" if lost else ""
            notes.append(f"cell {cell.number} was not run: {cell.why}{missing}")
    for name, numbers in defined.items():
        if len(numbers) > 1:
            notes.append(
                f"{name} is defined more than once ({listed(sorted(set(numbers)))}): the last definition, in "
                f"cell {numbers[-1]}, is graded, as when the notebook runs from top to bottom"
            )
    if len(notes) > MAX_NOTES:  # a notebook of a thousand broken cells gets a report, not a novel
        notes[MAX_NOTES - 1 :] = [f"and {len(notes) - MAX_NOTES + 1} more notes of the same kinds"]
    return tuple(notes)


def defined_in(cells: list[Cell]) -> dict[str, list[int]]:
    """Function name -> the cells that run and define it, once per definition."""
    defined: dict[str, list[int]] = {}
    for cell in cells:
        if not cell.why:
            for name in cell.defines:
                defined.setdefault(name, []).append(cell.number)
    return defined


def not_run_of(cells: list[Cell]) -> tuple[tuple[str, str], ...]:
    defined = defined_in(cells)
    reasons: dict[str, str] = {}
    for cell in cells:
        if cell.why and not cell.silent:
            for name in cell.defines:
                if name not in defined:
                    reasons.setdefault(name, f"{name} is defined in cell {cell.number}, which was not run: {cell.why}")
    return tuple(reasons.items())


def read_notebook_json(text: str) -> list[tuple[str, object]]:
    """The cells of a notebook file with ``json`` alone (the self-check's reader); ValueError says what is wrong.

    The grader validates notebooks against the format's schema with nbformat; a student
    may not have nbformat, so this checks only what the conversion needs.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ValueError("not a notebook: the file is not valid JSON") from err
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise ValueError("not a notebook: the JSON has no list of cells")
    if document.get("nbformat") != 4:
        raise ValueError(f"a notebook in format version {document.get('nbformat')}; version 4 is read")
    return [(c.get("cell_type", ""), c.get("source", "")) for c in document["cells"] if isinstance(c, dict)]
