"""``grade gradescope build [--rubric R] [-o ZIP]`` and ``grade gradescope run [--root DIR] [--rubric R]``.

Exit codes as ``grade`` has them: 0 when the zip or results.json was written; 1 when
``build`` refuses a rubric that ``grade validate`` faults (the reference disagrees with
finite differences, ...), with that problem on one line; 2 for usage and file errors.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from grader.errors import GraderError, UnsoundRubricError
from grader.frontends.cli import Parser


def gradescope_parser() -> Parser:
    from grader.frontends.gradescope.runner import DEFAULT_ROOT, ROOT_ENV

    parser = Parser(prog="grade gradescope", description="Run as a Gradescope autograder.")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=Parser)
    build = actions.add_parser("build", help="write the autograder zip to upload to Gradescope")
    build.add_argument("--rubric", help="a rubric file or bundled name (default: the bundled one)")
    build.add_argument("-o", "--output", default="autograder.zip", help="the zip to write (default: autograder.zip)")
    run = actions.add_parser("run", help="grade /autograder/submission into results.json (what run_autograder calls)")
    run.add_argument("--root", help=f"the autograder root (default: ${ROOT_ENV} or {DEFAULT_ROOT})")
    run.add_argument("--rubric", help="a rubric file (default: the one the zip was built for)")
    return parser


def build_command(rubric: str | None, output: str) -> int:
    from grader.assignment.rubric import resolve_rubric_path
    from grader.frontends.gradescope.build import build_autograder

    try:
        path = build_autograder(resolve_rubric_path(rubric), output)
    except UnsoundRubricError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"Wrote {path}: upload it as the autograder of a Gradescope programming assignment.")
    return 0


def run_command(root: str | None, rubric: str | None) -> int:
    from grader.sandbox.host import SandboxHost

    host = SandboxHost()
    host.start_zygote()  # numpy loads in the zygote while the grader sets up
    from grader.frontends.gradescope.results import points
    from grader.frontends.gradescope.runner import autograder_paths, run_autograder

    paths = autograder_paths(root)
    try:
        document = run_autograder(paths, Path(rubric) if rubric else None, host)
    except OSError as err:  # results.json itself could not be written: run_autograder's fallback takes over
        raise GraderError(f"{paths.results_file}: cannot write the results ({err.strerror})") from err
    finally:
        host.close()
    print(f"results.json: {points(document['score'])} points")
    return 0


def run_gradescope_command(argv: Sequence[str]) -> int:
    args = gradescope_parser().parse_args(argv)
    if args.action == "build":
        return build_command(args.rubric, args.output)
    return run_command(args.root, args.rubric)
