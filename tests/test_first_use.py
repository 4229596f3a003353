"""A first-time user's path: any Python as root, the suite's profiles, students' text, no numpy.

The sandbox uid must be able to run the interpreter. Inside the minimal root that is
decided by the bound folders' own modes only (their parents are made fresh, 0755), so a
pyenv Python under a home folder of mode 0700 still gets the privilege drop; without
the minimal root the host's modes decide.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import conftest
import grader.sandbox.protection as protection
from conftest import QUIZ4_RUBRIC, REPO
from grader.frontends.bundle import build_student_bundle
from grader.untrusted.confine import RootLayout


@pytest.fixture
def private_home(tmp_path) -> Path:
    """An installation at home/inst (0755) under a home folder of mode 0700, with a venv beside it."""
    home = tmp_path / "home"
    (home / "inst" / "bin").mkdir(parents=True)
    (home / "inst" / "lib").mkdir()
    python = home / "inst" / "bin" / "python3"
    python.write_bytes(b"")
    python.chmod(0o755)
    (home / "venv" / "bin").mkdir(parents=True)
    (home / "venv" / "bin" / "python").symlink_to(python)
    for folder in (home / "inst", home / "inst" / "bin", home / "inst" / "lib", home / "venv", home / "venv" / "bin"):
        folder.chmod(0o755)
    home.chmod(0o700)
    return home


def test_a_python_under_a_private_home_is_reachable_in_the_minimal_root_but_not_on_the_host(private_home):
    paths = [private_home / "venv" / "bin" / "python", private_home / "inst" / "lib"]
    bound = [str(private_home / "inst"), str(private_home / "venv")]
    assert protection.unreachable_in_minimal_root(paths, bound) is None
    assert protection.unreadable_for_others(paths) is not None


def test_in_the_minimal_root_a_bound_folder_s_own_mode_still_counts(private_home):
    (private_home / "inst").chmod(0o700)
    blocked = protection.unreachable_in_minimal_root(
        [private_home / "inst" / "bin" / "python3"], [str(private_home / "inst")]
    )
    assert blocked == f"{private_home / 'inst'} (mode drwx------)"


def test_a_link_out_of_the_bound_folders_is_not_reachable_in_the_minimal_root(private_home):
    blocked = protection.unreachable_in_minimal_root(
        [private_home / "venv" / "bin" / "python"], [str(private_home / "venv")]
    )
    assert blocked is not None and "not in the minimal root" in blocked


@pytest.fixture
def planned_for(private_home, monkeypatch):
    """The protection plan as root for a Python installed in ``private_home``."""
    inst = private_home / "inst"
    layout = RootLayout(dirs=(str(inst), str(private_home / "venv")), links=(), files=(), devices=())
    monkeypatch.setattr(protection, "is_root", lambda: True)
    monkeypatch.setattr(protection, "root_layout", lambda: layout)
    monkeypatch.setattr(protection, "python_paths", lambda: [private_home / "venv" / "bin" / "python", inst / "lib"])
    return lambda failed={}: protection.plan_protections([], failed)


def test_as_root_the_plan_drops_privileges_for_a_python_under_a_private_home(planned_for):
    plan = planned_for()
    assert plan.privilege_drop and plan.minimal_filesystem and plan.kill_all_processes
    assert not any("privilege drop" in note for note in plan.notes)


@pytest.mark.parametrize("mechanism", ["minimal_filesystem", "namespaces"])
def test_without_the_minimal_root_the_host_s_modes_decide_and_the_plan_says_why(planned_for, private_home, mechanism):
    plan = planned_for({mechanism: "refused by this test"})
    assert not plan.minimal_filesystem and not plan.privilege_drop
    assert plan.kill_all_processes == plan.syscall_filter
    note = next(n for n in plan.notes if n.startswith("no privilege drop"))
    assert str(tmp_ancestor_blocked(private_home)) in note and "a Python every user can read" in note


def tmp_ancestor_blocked(home: Path) -> Path:
    """The first folder from / down to ``home`` that other users can't enter (pytest's tmp root, or home)."""
    for folder in [*reversed(home.parents), home]:
        if not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    raise AssertionError("nothing blocks")


def test_the_skip_reasons_of_root_tests_name_the_precondition(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert conftest.sandbox_uid_problem(False).startswith("needs root: ")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(conftest, "unreadable_for_others", lambda paths: "/root (mode drwx------)")
    reason = conftest.sandbox_uid_problem(True)
    assert "the interpreter isn't readable by the sandbox uid" in reason and "/root (mode drwx------)" in reason


def collected(*options: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_plain_pytest_leaves_out_slow_and_redteam_tests_and_full_runs_them():
    fast, full = collected(), collected("--full")
    assert "deselected" in fast.splitlines()[-1] and "deselected" not in full.splitlines()[-1]
    assert "tests/redteam/test_redteam.py::" not in fast and "tests/redteam/test_redteam.py::" in full
    assert "test_fixture_corpus.py::" in full
    assert "tests/test_cli.py::" in fast


def test_unknown_markers_are_errors():
    options = Path(REPO / "pyproject.toml").read_text()
    assert 'addopts = "--strict-markers"' in options


def test_ci_runs_the_readme_s_test_command_as_written_with_the_default_python():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("python3 -m venv") and "pytest" in line)
    assert "--full" in command
    assert command in ci.splitlines()
    assert "PATH=" not in ci, "CI must meet the machine's default python3"


# -- what students are told -------------------------------------------------------------------


def test_the_template_points_students_to_the_self_check_not_to_the_grader():
    text = (REPO / "student_template" / "quiz4.py").read_text()
    assert "selfcheck.py" in text and "`grade " not in text and "pip install" not in text


NO_NUMPY_PYTHON = "/usr/bin/python3"


def python_without_numpy() -> str | None:
    if not os.path.exists(NO_NUMPY_PYTHON):
        return None
    probe = subprocess.run([NO_NUMPY_PYTHON, "-c", "import numpy"], capture_output=True)
    return NO_NUMPY_PYTHON if probe.returncode != 0 else None


@pytest.mark.skipif(python_without_numpy() is None, reason=f"needs {NO_NUMPY_PYTHON} without numpy")
def test_the_self_check_on_a_python_without_numpy_says_in_one_line_to_install_it(tmp_path):
    bundle = build_student_bundle(QUIZ4_RUBRIC, tmp_path / "student.zip")
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path)
    folder = tmp_path / "quiz4"
    shutil.copy(REPO / "solutions" / "quiz4.py", folder / "quiz4.py")
    done = subprocess.run(
        [NO_NUMPY_PYTHON, "selfcheck.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "needs numpy" in lines[0] and "-m pip install numpy" in lines[0] and NO_NUMPY_PYTHON in lines[0]
