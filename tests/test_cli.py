"""The `grade` command, in-process and as a process: exit codes, the table, the report file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, write_rubric_copy
from grader.frontends.cli import main
from grader.grading.report import validate_report
from grader.sandbox.zygote_client import ONE_BLAS_THREAD


def test_grading_prints_a_table_and_writes_a_valid_report(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main([str(REPO / "examples" / "quiz4_submission.py"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "eq9" in printed and "Total:" in printed and "averaged over the batch" in printed
    assert "visible case 0" in printed and "expected  got" in printed  # a compact diff of the visible case
    document = json.loads(out.read_text())
    validate_report(document)
    assert 0 < document["score"] < document["max_score"]


def test_a_missing_submission_is_a_usage_error_with_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nope.py")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot read the submission" in err


def test_unknown_options_are_usage_errors(capsys):
    assert main(["--bogus"]) == 2
    assert "error:" in capsys.readouterr().err


def test_a_bad_rubric_names_the_file_and_key_path(tmp_path, capsys):
    rubric = write_rubric_copy(tmp_path)
    rubric.write_text(rubric.read_text().replace("points: 2", "points: two", 1))
    assert main([str(REPO / "solutions" / "quiz4.py"), "--rubric", str(rubric), "-o", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {rubric}: equations[0].points: must be a number"


def test_the_seed_option_reproduces_a_grade(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    sub = str(REPO / "examples" / "quiz4_submission.py")
    assert main([sub, "-o", str(a), "--seed", "12", "--quiet"]) == 0
    assert main([sub, "-o", str(b), "--seed", "12", "--quiet"]) == 0
    first, second = json.loads(a.read_text()), json.loads(b.read_text())
    assert first["reproduce"]["hidden_seed"] == 12 and first["reproduce"]["seed_source"] == "command line"
    first.pop("timings"), second.pop("timings")
    assert first == second


def test_validate_accepts_the_bundled_rubric(capsys):
    assert main(["validate", "--cases", "10"]) == 0
    assert "agrees with finite differences" in capsys.readouterr().out


def test_validate_catches_a_reference_that_disagrees_with_finite_differences(tmp_path, capsys):
    bad = tmp_path / "bad_reference.py"
    bad.write_text((REPO / "solutions" / "quiz4.py").read_text().replace("return dY @ W.T", "return 2 * dY @ W.T"))
    rubric = write_rubric_copy(tmp_path)
    rubric.write_text(rubric.read_text().replace(str(REPO / "solutions" / "quiz4.py"), str(bad)))
    assert main(["validate", str(rubric), "--cases", "5"]) == 1
    assert "eq1: the reference grad_X disagrees with finite differences" in capsys.readouterr().out


@pytest.mark.parametrize("seed", ["-3", "x"])
def test_a_bad_seed_is_a_usage_error(seed, capsys):
    assert main([str(REPO / "solutions" / "quiz4.py"), "--seed", seed]) == 2


def run_module(*argv, **popen):
    return subprocess.Popen([sys.executable, "-m", "grader", *argv], cwd=REPO, text=True, **popen)


def test_the_command_prints_everything_before_its_fast_exit_and_keeps_its_exit_codes(tmp_path):
    out = tmp_path / "r.json"
    with run_module(str(REPO / "solutions" / "quiz4.py"), "-o", str(out), stdout=subprocess.PIPE) as proc:
        stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Total:" in stdout and stdout.rstrip().endswith(f"Report written to {out}")
    validate_report(json.loads(out.read_text()))
    with run_module(str(tmp_path / "nope.py"), stderr=subprocess.PIPE) as proc:
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "cannot read the submission" in stderr


def test_a_reader_that_goes_away_early_costs_neither_the_report_nor_the_exit_code(tmp_path):
    out = tmp_path / "r.json"
    with run_module(
        str(REPO / "solutions" / "quiz4.py"), "-o", str(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        proc.stdout.close()  # like `grade file.py | head -0`
        stderr = proc.stderr.read()
        proc.wait(timeout=120)
    assert proc.returncode == 0 and "Traceback" not in stderr
    assert json.loads(out.read_text())["score"] == 11


@pytest.mark.parametrize("given, expected", [(None, "1"), ("4", "4")])
def test_the_command_runs_one_blas_thread_unless_the_environment_says_otherwise(given, expected):
    probe = (
        "import os, grader.frontends.cli as cli\n"
        "cli.main = lambda: print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['OMP_NUM_THREADS']) or 0\n"
        "cli.run()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ONE_BLAS_THREAD}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.split() == [expected, "1"]


def test_a_report_path_that_cannot_be_written_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main([str(REPO / "solutions" / "quiz4.py"), "-o", str(blocker / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write the report" in err


@pytest.mark.parametrize("stdout", ["closed", "full"])
def test_output_that_cannot_be_shown_costs_neither_the_report_nor_a_traceback(tmp_path, stdout):
    out = tmp_path / "r.json"
    command = f'"{sys.executable}" -m grader "{REPO / "solutions" / "quiz4.py"}" -o "{out}"'
    command += " >&-" if stdout == "closed" else " >/dev/full"
    done = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert json.loads(out.read_text())["score"] == 11


# -- the command's manners ----------------------------------------------------------------


def test_version_prints_the_version_and_exits_0(capsys):
    import grader

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"grade (grader) {grader.__version__}"


def test_help_lists_every_command_and_exits_0(capsys):
    assert main(["--help"]) == 0
    printed = capsys.readouterr().out
    for command in ("validate", "batch", "gradescope", "bundle", "prairielearn"):
        assert f"grade {command} " in printed, command


def test_a_command_s_own_help_exits_0_in_process(capsys):
    assert main(["validate", "--help"]) == 0
    assert "--cases" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--json"], ["-o", "-"], ["--json", "-o", "-"]])
def test_the_report_can_go_to_stdout_instead_of_a_file(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([str(REPO / "examples" / "quiz4_submission.py"), *argv]) == 0
    document = json.loads(capsys.readouterr().out)
    validate_report(document)
    assert 0 < document["score"] < document["max_score"]
    assert list(tmp_path.iterdir()) == [], "no report file, and none named '-'"


def test_json_with_an_output_file_writes_the_file_and_prints_the_same_report(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main([str(REPO / "examples" / "quiz4_submission.py"), "--json", "-o", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())


@pytest.mark.parametrize("cases", ["0", "-3", "x"])
def test_validate_refuses_a_number_of_cases_that_is_not_positive_with_one_line(cases, capsys):
    assert main(["validate", "--cases", cases]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--cases: must be a positive integer" in err


# -- inputs that are not what they seem ---------------------------------------------------------


def run_grade_process(path, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "grader", str(path), "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused_with_one_line_without_reading_it(device, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([device]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {device}: is not a regular file (a device), expected a .py file or a notebook"
    assert list(tmp_path.iterdir()) == []


def test_a_fifo_is_refused_with_one_line_instead_of_hanging(tmp_path):
    fifo = tmp_path / "quiz4.py"
    os.mkfifo(fifo)
    done = run_grade_process(fifo, timeout=60)  # a hang fails here, with TimeoutExpired
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {fifo}: is not a regular file (a pipe), expected a .py file or a notebook"


def test_a_file_over_the_size_limit_is_refused_after_reading_at_most_the_limit(tmp_path, capsys):
    big = tmp_path / "quiz4.py"
    big.write_bytes(b"#" * (2 * 1024 * 1024 + 1))
    assert main([str(big)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {big}: the file is over 2 MiB"


NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Quiz 4"]},
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": ["import numpy as np\n", "def grad_X(dY, W):\n", "    return dY @ W.T"],
        },
    ],
    "metadata": {"kernelspec": {"name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.mark.parametrize("prefix", ["", "\ufeff", "\n  "])
def test_a_notebook_saved_as_py_gets_a_report_that_says_so_at_the_top(prefix, tmp_path, capsys):
    """A bad file is a student fault: a report, whose notice names what the file is and what to submit."""
    path = tmp_path / "quiz4.py"
    path.write_text(prefix + json.dumps(NOTEBOOK, indent=1), encoding="utf-8")
    assert main([str(path), "-o", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    notice = json.loads((tmp_path / "r.json").read_text())["notice"]
    assert "Jupyter notebook (JSON) saved with a .py name" in notice and ".ipynb" in notice
    assert "Jupyter notebook (JSON) saved with a .py name" in out


def test_python_that_starts_with_a_dict_is_graded_not_taken_for_a_notebook(tmp_path, capsys):
    path = tmp_path / "quiz4.py"
    path.write_text('{"cells": 1}\n' + (REPO / "solutions" / "quiz4.py").read_text())
    assert main([str(path), "-o", str(tmp_path / "r.json"), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == "11/11"
