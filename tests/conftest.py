"""Shared fixtures (the bundled rubric, a faster copy of it, a grade-and-validate helper) and the suite's profiles.

Plain ``pytest`` runs a fast profile: the ``slow`` and ``redteam`` tests are deselected
unless ``--full`` is given (the README's test command and ``.ci/run`` give it), a ``-m``
expression chooses, or test paths are named. A ``root`` test runs only where the
sandbox can drop to its own uid; elsewhere it is skipped with the one reason why.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from grader.assignment.rubric import load_rubric
from grader.grading.pipeline import grade_submission
from grader.grading.report import report_to_dict, validate_report
from grader.sandbox.host import SandboxHost
from grader.sandbox.outcomes import Limits
from grader.sandbox.protection import python_paths, unreadable_for_others
from grader.sandbox.session import Sandbox

REPO = Path(__file__).resolve().parent.parent
QUIZ4_RUBRIC = REPO / "rubrics" / "quiz4.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


FAST_PROFILE_DESELECTS = ("slow", "redteam")


def pytest_addoption(parser):
    parser.addoption(
        "--full", action="store_true", help="run the whole suite, slow and red-team tests included (as CI does)"
    )


def fast_profile(config) -> bool:
    return not (config.getoption("--full") or config.getoption("markexpr") or config.option.file_or_dir)


def pytest_report_header(config):
    if fast_profile(config):
        return "fast profile: slow and red-team tests deselected (--full runs everything)"
    return None


def pytest_collection_modifyitems(config, items):
    if not fast_profile(config):
        return
    kept, dropped = [], []
    for item in items:
        (dropped if any(item.get_closest_marker(m) for m in FAST_PROFILE_DESELECTS) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_runtest_setup(item):
    """``@pytest.mark.root``: needs root and a sandbox uid that can run the interpreter, else one skip reason.

    ``root(readable_on_host=True)``: the test runs without the minimal root (or runs the
    grader itself as another uid), so the interpreter must be readable on the host.
    """
    marker = item.get_closest_marker("root")
    if marker is None:
        return
    problems = item.config.stash.setdefault(ROOT_PROBLEMS_KEY, {})
    on_host = bool(marker.kwargs.get("readable_on_host"))
    if on_host not in problems:
        problems[on_host] = sandbox_uid_problem(on_host)
    if problems[on_host]:
        pytest.skip(problems[on_host])


def sandbox_uid_problem(readable_on_host: bool) -> str | None:
    """Why the sandbox can't run a submission as its own uid here, or None (probed with a real child)."""
    if os.geteuid() != 0:
        return "needs root: the sandbox drops to a uid of its own only as root, as on Gradescope"
    if readable_on_host:
        blocked = unreadable_for_others(python_paths())
        if blocked:
            return (
                f"the interpreter isn't readable by the sandbox uid outside the minimal root ({blocked}); "
                "run the suite with a Python every user can read, e.g. a venv made from /usr/bin/python3"
            )
        return None
    probe_host = SandboxHost(use_zygote=False)
    limits = Limits(time_limit=5.0, import_time_limit=20.0, memory_bytes=1 << 30, output_bytes=1 << 16, processes=64)
    try:
        with Sandbox(b"", "probe.py", limits, host=probe_host) as box:
            box.ensure_started()
            protections = box.protections
    finally:
        probe_host.close()
    if protections.privilege_drop:
        return None
    why = next((n for n in protections.notes if "privilege drop" in n), "; ".join(protections.notes))
    return f"the sandbox uid can't run the interpreter here: {why}"


def pytest_configure(config):
    """A rubric cache of the test run's own (grader/cache.py), so no test reads or fills ~/.cache."""
    folder = tempfile.mkdtemp(prefix="grader-test-cache-")
    config.stash[CACHE_KEY] = (folder, os.environ.get("GRADER_CACHE_DIR"))
    os.environ["GRADER_CACHE_DIR"] = folder


def pytest_unconfigure(config):
    SESSION_HOST.close()
    folder, before = config.stash[CACHE_KEY]
    shutil.rmtree(folder, ignore_errors=True)
    if before is None:
        os.environ.pop("GRADER_CACHE_DIR", None)
    else:
        os.environ["GRADER_CACHE_DIR"] = before


CACHE_KEY = pytest.StashKey[tuple[str, str | None]]()
ROOT_PROBLEMS_KEY = pytest.StashKey[dict[bool, str | None]]()
# What the test process has learned about the machine, shared by `grade` as by one batch
# worker; a test about the host itself takes the `host` fixture, a fresh one.
SESSION_HOST = SandboxHost()


@pytest.fixture
def host():
    """A fresh SandboxHost: its own zygote, no uid known clean, no mechanism known to fail."""
    fresh = SandboxHost()
    yield fresh
    fresh.close()


def write_rubric_copy(tmp: Path, source: Path = QUIZ4_RUBRIC, **settings) -> Path:
    """A copy of a rubric with absolute module paths and some settings overridden."""
    document = yaml.safe_load(source.read_text())
    for key in ("reference", "template", "mistakes"):
        if key in document:
            document[key] = str((source.parent / document[key]).resolve())
    document.setdefault("settings", {}).update(settings)
    path = tmp / source.name
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def quiz4():
    return load_rubric(QUIZ4_RUBRIC)


@pytest.fixture(scope="session")
def quiz4_fast(tmp_path_factory):
    """Quiz 4 with a 1-second call limit, for submissions that hang."""
    return load_rubric(write_rubric_copy(tmp_path_factory.mktemp("rubric"), time_limit=1.0, import_time_limit=5.0))


def grade(path, rubric, **kwargs):
    """Grade a file and return (report, document), the document checked against the schema."""
    kwargs.setdefault("host", SESSION_HOST)
    report = grade_submission(path, rubric, **kwargs)
    document = report_to_dict(report)
    validate_report(document)
    return report, document


def statuses(document) -> dict[str, str]:
    """Each counted item's status: a 0-point check (quiz 4's end-to-end item) grades no equation of its own,
    and tests of where points go leave it out (tests/test_end_to_end_item.py is about it)."""
    return {eq["id"]: eq["status"] for eq in document["equations"] if eq.get("counted", True)}
