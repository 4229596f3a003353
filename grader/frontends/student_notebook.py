"""The student bundle's notebook: the assignment as Jupyter cells, generated from the rubric and the template.

Never written by hand, so a new assignment gets one for free: a Markdown cell with the
template's instructions; the template's imports and other top-level code in one code
cell; for each part, a Markdown cell (its label, which holds the equation, the function
with its arguments, the shapes and the points) and a code cell with the template's stub
of that function; a last cell that runs the self-check in the kernel
(``from selfcheck import check; check()``). Cell ids are fixed and the JSON is written
by nbformat, so the same rubric and template give the same bytes.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from grader.assignment.rubric import Equation, InputSpec, Rubric

SELFCHECK_CELL = "from selfcheck import check\n\ncheck()"


def shape_text(shape: Sequence[str | int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def input_shape(spec: InputSpec, specs: dict[str, InputSpec]) -> str:
    """A drawn input's shape; a derived one has the shape of what it is derived from."""
    if spec.shape:
        return shape_text(spec.shape)
    sources = [specs[name] for name in spec.derive_from if name in specs and specs[name].shape]
    return shape_text(sources[0].shape) if sources else "derived"


def part_markdown(eq: Equation) -> str:
    specs = {spec.name: spec for spec in eq.inputs}
    shapes = ", ".join(f"`{name}` {input_shape(specs[name], specs)}" for name in eq.args if name in specs)
    points = f"{eq.points:g} point{'s' if eq.points != 1 else ''}"
    return (
        f"## {eq.label}\n\n"
        f"Implement `{eq.function}({', '.join(eq.args)})` ({points}).\n\n"
        f"Inputs: {shapes}. Returns a float64 array of shape {shape_text(eq.returns)}."
    )


def template_pieces(source: str) -> tuple[str, str, dict[str, str]]:
    """(module docstring, other top-level code, {function: its source}) of the template, in its order."""
    tree = ast.parse(source)
    lines = source.splitlines()
    docstring = ast.get_docstring(tree) or ""
    body = tree.body[1:] if docstring else tree.body
    setup: list[str] = []
    functions: dict[str, str] = {}
    for node in body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        text = "\n".join(lines[start - 1 : node.end_lineno])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[node.name] = text
        else:
            setup.append(text)
    return docstring, "\n".join(setup), functions


def student_notebook(rubric: Rubric, checked: Sequence[Equation]) -> bytes:
    """The notebook's bytes (nbformat 4) for a rubric; ``checked`` are the parts the self-check covers."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    docstring, setup, functions = template_pieces(rubric.template.read_text(encoding="utf-8"))
    stem = (rubric.submission_filename or rubric.template.name).rsplit(".", 1)[0]
    intro = (
        f"# {rubric.title}\n\n{docstring}\n\n"
        f"Fill in each function's cell, keeping its name and arguments, then run every cell from the top; "
        f"the last one checks your functions on the visible cases. Upload this notebook (`{stem}.ipynb`) "
        "to Gradescope: its code cells are graded as Python, so magics (`%`), shell commands (`!`) and help "
        "(`?`) are not run there."
    )
    cells = [new_markdown_cell(intro)]
    if setup.strip():
        cells.append(new_code_cell(setup))
    answers = {eq.function for eq in rubric.equations}
    for eq in rubric.equations:
        if eq.outputs:
            continue  # an end-to-end check chains functions that have cells of their own
        cells.append(new_markdown_cell(part_markdown(eq)))
        stub = functions.get(eq.function) or f"def {eq.function}({', '.join(eq.args)}):\n    raise NotImplementedError"
        cells.append(new_code_cell(stub))
    helpers = [text for name, text in functions.items() if name not in answers]
    cells += [new_code_cell(text) for text in helpers]
    left_out = [f"`{eq.function}`" for eq in rubric.equations if eq not in checked and not eq.outputs]
    later = f" It leaves out {', '.join(left_out)}, whose results are shown later." if left_out else ""
    cells.append(
        new_markdown_cell(
            "## Self-check\n\nRuns each function on its visible case and compares it with finite differences "
            "(`selfcheck.py` and its files must be beside this notebook; in Colab, upload them first). "
            f"Passing it does not guarantee full marks: the autograder also runs hidden cases.{later}"
        )
    )
    cells.append(new_code_cell(SELFCHECK_CELL))
    for number, cell in enumerate(cells, start=1):
        cell["id"] = f"cell-{number}"
    notebook = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(notebook)
    return nbformat.writes(notebook).encode("utf-8") + b"\n"
