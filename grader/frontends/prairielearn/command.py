"""``grade prairielearn build|run``: the question folder, and what its entrypoint calls."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from grader.errors import GraderError, UnsoundRubricError


def run_prairielearn_command(argv: Sequence[str]) -> int:
    """``grade prairielearn build [--rubric R] -o DIR`` and ``grade prairielearn run [--root DIR] [--rubric R]``."""
    from grader.assignment.rubric import resolve_rubric_path
    from grader.frontends.cli import Parser  # here, not at the top: grader.frontends.cli imports this module
    from grader.frontends.prairielearn.build import DEFAULT_IMAGE, build_question
    from grader.frontends.prairielearn.runner import DEFAULT_ROOT, ROOT_ENV, grade_paths, run_grader

    parser = Parser(prog="grade prairielearn", description="Run as a PrairieLearn external grader.")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=Parser)
    build = actions.add_parser("build", help="write a question folder to put in a course's questions/")
    build.add_argument("--rubric", help="a rubric file or bundled name (default: the bundled one)")
    build.add_argument("-o", "--output", required=True, help="the question folder to write")
    build.add_argument("--image", default=DEFAULT_IMAGE, help=f"the grading image (default: {DEFAULT_IMAGE})")
    build.add_argument("--timeout", type=int, help="seconds per grading job (default: the rubric's worst case)")
    run = actions.add_parser("run", help="grade /grade/student into /grade/results/results.json (what run.sh calls)")
    run.add_argument("--root", help=f"the grading root (default: ${ROOT_ENV} or {DEFAULT_ROOT})")
    run.add_argument("--rubric", help="a rubric file (default: the one the question was built for)")
    args = parser.parse_args(argv)
    if args.action == "build":
        try:
            folder = build_question(resolve_rubric_path(args.rubric), args.output, args.image, args.timeout)
        except UnsoundRubricError as err:  # exit 1, as `grade validate` does for the same finding
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"Wrote {folder}: copy it into your course's questions/ folder and sync.")
        return 0
    from grader.sandbox.host import SandboxHost

    host = SandboxHost()
    host.start_zygote()  # numpy loads in the zygote while the grader sets up
    paths = grade_paths(args.root)
    try:
        document = run_grader(paths, Path(args.rubric) if args.rubric else None, host)
    except OSError as err:  # results.json itself could not be written: run.sh's fallback takes over
        raise GraderError(f"{paths.results_file}: cannot write the results ({err.strerror})") from err
    finally:
        host.close()
    shown = f"score {document['score']:g}" if document.get("gradable", True) else "not gradable"
    print(f"results.json: {shown}")
    return 0
