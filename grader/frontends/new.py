"""``grade new NAME --reference solutions/NAME.py``: start the next assignment from its reference.

Writes ``rubrics/NAME.yaml`` and ``student_template/NAME.py`` (grader/assignment/scaffold.py
says what each holds) and prints what is left to do. Existing files are never
overwritten without ``--force``: a rubric half filled in is hours of an instructor's work.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from pathlib import Path

from grader.assignment.scaffold import PLACEHOLDER, rubric_text, signatures, template_text
from grader.errors import UsageError
from grader.files import write_bytes_atomic

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def new_parser() -> argparse.ArgumentParser:
    from grader.frontends.cli import Parser

    parser = Parser(prog="grade new", description="Write a starting rubric and student template from a reference.")
    parser.add_argument("name", help="the assignment's name, also the submission's file name (NAME.py)")
    parser.add_argument("--reference", required=True, help="the instructor's reference module (solutions/NAME.py)")
    parser.add_argument("--rubric", help="where to write the rubric (default: rubrics/NAME.yaml)")
    parser.add_argument("--template", help="where to write the student template (default: student_template/NAME.py)")
    parser.add_argument("--functions", help="comma-separated functions to grade (default: every public function)")
    parser.add_argument("--force", action="store_true", help="overwrite a rubric or template that exists")
    return parser


def relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def run_new_command(argv: Sequence[str]) -> int:
    args = new_parser().parse_args(argv)
    if not NAME.match(args.name):
        raise UsageError(f"grade new: {args.name!r} is not a Python module name (letters, digits, _)")
    reference = Path(args.reference)
    try:
        source = reference.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"grade new: cannot read the reference {reference} ({err})") from err
    only = [f.strip() for f in args.functions.split(",") if f.strip()] if args.functions else []
    try:
        functions = signatures(source, only)
    except SyntaxError as err:
        raise UsageError(f"grade new: {reference}: line {err.lineno}: {err.msg}") from err
    except KeyError as err:
        raise UsageError(f"grade new: {reference} defines no function {err.args[0]}") from err
    if not functions:
        raise UsageError(f"grade new: {reference} defines no public function to grade")
    rubric = Path(args.rubric or f"rubrics/{args.name}.yaml")
    template = Path(args.template or f"student_template/{args.name}.py")
    for path in (rubric, template):
        if path.exists() and not args.force:
            raise UsageError(f"grade new: {path} exists (use --force to overwrite it)")
    for path in (rubric, template):
        path.parent.mkdir(parents=True, exist_ok=True)
    text = rubric_text(args.name, relative(reference, rubric.parent), relative(template, rubric.parent), functions)
    write_bytes_atomic(rubric, text.encode())
    write_bytes_atomic(template, template_text(source, functions, reference.as_posix()).encode())
    items = text.count("\n  - id: ")
    print(f"wrote {rubric} ({items} items) and {template} ({len(functions)} functions)")
    print(f"next: replace every {PLACEHOLDER} in {rubric}, then run: grade validate {rubric}")
    return 0
