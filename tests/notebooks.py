"""Notebooks for tests, written by nbformat as Jupyter writes them: from a .py file, cell by cell."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def code_cells(source: str) -> list[str]:
    """A .py file cut into cells: the top-level code before the first function, then one cell per function."""
    tree = ast.parse(source)
    lines = source.splitlines()
    starts = [
        min([node.lineno] + [d.lineno for d in node.decorator_list])
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    bounds = sorted({1, *starts}) + [len(lines) + 1]
    return ["\n".join(lines[a - 1 : b - 1]).strip("\n") for a, b in zip(bounds, bounds[1:])]


def named_cells(source: str) -> dict[str, str]:
    """``code_cells`` by the function each defines ("" for the code before the first function)."""
    named = {}
    for text in code_cells(source):
        tree = ast.parse(text)
        defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        named[defs[0] if defs else ""] = text
    return named


def notebook_of(cells: list[str], markdown: bool = True) -> nbformat.NotebookNode:
    """A v4 notebook holding ``cells`` as code cells, each after a Markdown cell when ``markdown``."""
    notebook = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    for i, text in enumerate(cells, start=1):
        if markdown:
            notebook.cells.append(new_markdown_cell(f"### Part {i}"))
        notebook.cells.append(new_code_cell(text))
    return notebook


def write_notebook(path: Path, cells: list[str], markdown: bool = True) -> Path:
    nbformat.write(notebook_of(cells, markdown), path)
    return path


def notebook_from_py(py: Path, path: Path) -> Path:
    """The .py file as a notebook: a title cell, then its code cut into cells with Markdown between."""
    return write_notebook(path, code_cells(py.read_text(encoding="utf-8")))


def colab_notebook(cells: list[str]) -> dict:
    """A notebook as Colab saves it: format 4.0 with no cell ids, Colab's metadata, outputs and widgets."""
    return {
        "nbformat": 4,
        "nbformat_minor": 0,
        "metadata": {
            "colab": {"provenance": [], "collapsed_sections": []},
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
            "language_info": {"name": "python"},
            "accelerator": "GPU",
            "widgets": {"application/vnd.jupyter.widget-state+json": {"abc123": {"model_name": "LayoutModel"}}},
        },
        "cells": [
            {"cell_type": "markdown", "metadata": {"id": "intro"}, "source": ["# Quiz 4\n", "in Colab"]},
            *(
                {
                    "cell_type": "code",
                    "execution_count": i,
                    "metadata": {"id": f"c{i}", "colab": {"base_uri": "https://localhost:8080/"}, "outputId": "x"},
                    "source": [line + "\n" for line in text.split("\n")],
                    "outputs": [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}],
                }
                for i, text in enumerate(cells, start=1)
            ),
        ],
    }


def write_json(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path
