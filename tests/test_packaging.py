"""A non-editable install (a wheel) carries the bundled rubric, reference and template, and grades by default."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO


@pytest.mark.slow
def test_a_wheel_install_grades_with_the_bundled_rubric(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("grader-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "grader/untrusted/launch.py",
        "grader/untrusted/child.py",
        "grader/untrusted/zygote.py",
        "grader/schemas/report.schema.json",
        "grader/frontends/gradescope/setup.sh",
        "grader/frontends/gradescope/run_autograder",
        "grader/frontends/gradescope/fallback_results.json",
        "grader/frontends/prairielearn/run.sh",
        "grader/frontends/prairielearn/fallback_results.json",
        "grader/schemas/prairielearn_results.schema.json",
    ):
        assert needed in names
    assert any(n.endswith("data/share/grader/rubrics/quiz4.yaml") for n in names)
    assert any(n.endswith("data/share/grader/solutions/quiz4.py") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr
    document = grade_installed(venv, REPO / "examples" / "quiz4_submission.py", tmp_path)
    assert document["grader"]["rubric"] == str(venv / "share" / "grader" / "rubrics" / "quiz4.yaml")
    assert 0 < document["score"] < document["max_score"]

    # the second assignment is installed too, and a file named layers.py picks its rubric
    submission = tmp_path / "layers.py"
    submission.write_bytes((REPO / "solutions" / "layers.py").read_bytes())
    document = grade_installed(venv, submission, tmp_path)
    assert document["grader"]["rubric"] == str(venv / "share" / "grader" / "rubrics" / "layers.yaml")
    assert document["score"] == document["max_score"] > 0

    built = subprocess.run(
        [str(venv / "bin" / "grade"), "gradescope", "build", "-o", str(tmp_path / "autograder.zip")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr
    with zipfile.ZipFile(tmp_path / "autograder.zip") as archive:
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        assert archive.read("run_autograder").startswith(b"#!/usr/bin/env bash")
    assert modes["setup.sh"] & 0o777 == modes["run_autograder"] & 0o777 == 0o755
    assert "grader/frontends/gradescope/fallback_results.json" in modes


def grade_installed(venv: Path, submission: Path, folder: Path) -> dict:
    """The report of the installed `grade` on one file, run from ``folder`` (it must exit 0)."""
    report = folder / "r.json"
    graded = subprocess.run(
        [str(venv / "bin" / "grade"), str(submission), "-o", str(report), "--quiet"],
        capture_output=True,
        text=True,
        cwd=folder,
    )
    assert graded.returncode == 0, graded.stderr
    return json.loads(report.read_text())
