"""The ``grade`` command: a thin layer over the library.

    grade SUBMISSION [--rubric R] [-o REPORT.json | -o - | --json] [--seed N] [--html PAGE]
    grade validate [RUBRIC] [--cases N]
    grade gradescope build|run ...     (grader/frontends/gradescope/)
    grade bundle student ...           (grader/frontends/bundle.py)
    grade batch INPUT -o OUTDIR ...    (grader/frontends/batch/; also ``grade batch merge`` and ``export``)
    grade prairielearn build|run ...   (grader/frontends/prairielearn/)
    grade new NAME --reference R       (grader/frontends/new.py)

Exit codes: 0 whenever a report was written (whatever the score) or a rubric
validated; 1 when ``validate`` finds the reference and finite differences disagree;
2 for usage, file or rubric errors, with one line that says what to fix; 130 for
Ctrl-C and 128 + the signal for SIGTERM or SIGHUP, after one line (the sandbox and
every process of the submission are stopped on the way out).

Each command imports what it needs when it runs: ``grade FILE`` starts the sandbox's
zygote first (``grader/sandbox/zygote_client.py`` is light to import for that reason),
so the child's Python and numpy load while the grader loads its own modules and numpy,
the rubric and the cases.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from grader.errors import GraderError, UsageError


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the grader is so ``with Sandbox`` blocks unwind and kill their children."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum, frame) -> NoReturn:
    for number in (signal.SIGTERM, signal.SIGHUP):  # one is enough: a second must not cut the unwinding short
        signal.signal(number, signal.SIG_IGN)
    raise Stopped(signum)


class ParserExit(Exception):
    """``--help`` or ``--version`` printed what was asked: the command ends with this code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit; the CLI reports and returns 2
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None):  # the same for --help and --version
        if message:
            print(message, file=sys.stderr, end="")
        raise ParserExit(status)


COMMANDS_HELP = """\
other commands (each has its own --help):
  grade validate [RUBRIC] [--cases N]       check a rubric and its reference against finite differences
  grade batch INPUT -o OUTDIR [-j N] ...    grade a class: gradebook, summary page, resumable, shards
  grade gradescope build|run ...            build (or run) the Gradescope autograder zip
  grade bundle student -o ZIP ...           the students' bundle: template, instructions, self-check
  grade prairielearn build|run ...          build (or run) a PrairieLearn question
  grade new NAME --reference R              start an assignment: a rubric and template from its reference
"""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def version_text() -> str:
    import grader

    return f"grade (grader) {grader.__version__}"


def grade_parser() -> Parser:
    parser = Parser(
        prog="grade",
        description="Grade a gradient-homework submission in a sandbox.",
        epilog=COMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submission", help="the student's .py file or Jupyter notebook (.ipynb)")
    parser.add_argument("--rubric", help="a rubric file, or the name of a bundled rubric (default: the bundled one)")
    parser.add_argument(
        "-o",
        "--output",
        help="where to write the JSON report (default: SUBMISSION_STEM.report.json; '-': on stdout, instead of the table)",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON report on stdout instead of the table")
    parser.add_argument("--seed", type=int, help="the hidden-case seed (default: derived from the rubric and the file)")
    parser.add_argument("--quiet", action="store_true", help="print only the total")
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--html", metavar="PAGE", help="also write a per-student HTML page (grader/frontends/page.py)")
    return parser


def validate_parser() -> Parser:
    parser = Parser(prog="grade validate", description="Check a rubric and its reference against finite differences.")
    parser.add_argument("rubric", nargs="?", help="a rubric file or bundled name (default: the bundled one)")
    parser.add_argument("--cases", type=positive_int, default=50, help="cases per equation (default 50)")
    return parser


def run_grade(argv: Sequence[str]) -> int:
    args = grade_parser().parse_args(argv)
    if args.seed is not None and args.seed < 0:
        raise UsageError("grade: --seed must be a non-negative integer")
    from grader.sandbox.host import SandboxHost

    host = SandboxHost()
    host.start_zygote()  # numpy loads in the zygote while the grader imports its own modules
    from grader.assignment.rubric import load_rubric, resolve_rubric_path
    from grader.frontends.terminal import isolation_warning, render_report
    from grader.grading.pipeline import grade_submission
    from grader.grading.report import display_text, report_to_dict, write_report

    try:
        rubric = load_rubric(resolve_rubric_path(args.rubric, args.submission))
        report = grade_submission(Path(args.submission), rubric, seed=args.seed, host=host)
    finally:
        host.close()
    to_stdout = args.json or args.output == "-"
    output = None
    if args.output != "-" and (args.output or not args.json):
        output = Path(args.output) if args.output else Path(f"{Path(args.submission).stem}.report.json")
        try:
            write_report(report, output)
        except OSError as err:
            raise UsageError(f"{display_text(output)}: cannot write the report ({err.strerror})") from err
    if args.html:
        from grader.frontends.page import write_page

        try:
            write_page(report, Path(args.html))
        except OSError as err:
            raise UsageError(f"{display_text(args.html)}: cannot write the page ({err.strerror})") from err
    try:
        if to_stdout:
            # ASCII escapes: the same document on any terminal encoding
            print(json.dumps(report_to_dict(report), indent=2, allow_nan=False))
        elif args.quiet:
            print(f"{report.score:g}/{report.max_score:g}")
        else:
            print(render_report(report))
            print(f"\nReport written to {display_text(output)}")
    except OSError:
        pass  # a reader that went away (`grade f.py | head -3`), a full disk: the report is written, which counts
    warning = isolation_warning(report)
    if warning:
        print(warning, file=sys.stderr)
    return 0


def run_validate(argv: Sequence[str]) -> int:
    from grader.assignment.rubric import resolve_rubric_path
    from grader.assignment.validate import validate_rubric

    args = validate_parser().parse_args(argv)
    path = resolve_rubric_path(args.rubric)
    problems = validate_rubric(path, cases=args.cases)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{path}: {len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{path}: the rubric is valid and the reference agrees with finite differences")
    return 0


COMMANDS = {  # the function running each command, imported only when it runs
    "validate": "grader.frontends.cli:run_validate",
    "gradescope": "grader.frontends.gradescope.command:run_gradescope_command",
    "bundle": "grader.frontends.bundle:run_bundle_command",
    "batch": "grader.frontends.batch.command:run_batch_command",
    "prairielearn": "grader.frontends.prairielearn.command:run_prairielearn_command",
    "new": "grader.frontends.new:run_new_command",
}


def run_command(name: str, argv: Sequence[str]) -> int:
    module, function = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), function)(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in COMMANDS and not Path(argv[0]).is_file():
            return run_command(argv[0], argv[1:])
        return run_stoppable(run_grade, argv)
    except ParserExit as done:
        return done.code
    except GraderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def run_stoppable(command, argv: Sequence[str]) -> int:
    """Run ``command``, turning Ctrl-C, SIGTERM and SIGHUP into one line and an exit code.

    The two signals become an exception (``Stopped``) in the main thread, as Ctrl-C
    already is, so every ``with Sandbox`` on the way out kills the submission's
    processes instead of leaving a child spinning until its CPU limit. Handlers are
    installed only from the main thread (tests may call ``main`` from another) and
    restored afterwards (tests call ``main`` in-process).
    """
    previous = {}
    if threading_is_main():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, _raise_stopped)
    try:
        return command(argv)
    except KeyboardInterrupt as err:
        signum = err.signum if isinstance(err, Stopped) else signal.SIGINT
        why = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        print(f"\n{why}: no report was written", file=sys.stderr)
        return 128 + signum
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def run() -> NoReturn:
    """The ``grade`` console script and ``python -m grader``: ``main()``, then exit at once.

    It runs the grader with one BLAS thread unless the environment says otherwise.

    ``main`` stops what it starts (sandboxes and their children, batch workers) and
    writes its files atomically before it returns, and the zygote ends when this
    process does (end of file on its socket, or the kernel's parent-death signal). So
    the time Python would spend tearing down numpy and every module at exit buys
    nothing (bench/bench_grade.py prints what it costs).
    """
    # Before numpy loads. The grader's matrices are tiny, so one BLAS thread is the
    # fastest anyway, and OpenBLAS's pool would otherwise spin on the core the zygote is
    # importing numpy on (bench/bench_grade.py prints that CPU time).
    from grader.sandbox.zygote_client import ONE_BLAS_THREAD

    for key, value in ONE_BLAS_THREAD.items():
        os.environ.setdefault(key, value)
    try:
        code = main()
    except BrokenPipeError:  # another command's reader went away mid-way: stop, as a pipeline expects
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None when the descriptor was closed (`grade f.py >&-`)
                stream.flush()
        except (OSError, ValueError):
            pass  # terminal output is best effort: the exit code is about the files written
    os._exit(code)


if __name__ == "__main__":
    run()
