"""Shared fixtures: the bundled rubric, a faster copy of it, and a grade-and-validate helper."""

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

REPO = Path(__file__).resolve().parent.parent
QUIZ4_RUBRIC = REPO / "rubrics" / "quiz4.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
    return {eq["id"]: eq["status"] for eq in document["equations"]}
