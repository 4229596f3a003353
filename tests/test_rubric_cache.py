"""A rubric that passed the schema check once is read back from the cache, and only an exact copy is."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
import yaml

from conftest import QUIZ4_RUBRIC, REPO, write_rubric_copy
from grader.assignment.cache import read_cached, store_cached
from grader.assignment.rubric import load_rubric
from grader.errors import RubricError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("GRADER_CACHE_DIR", str(folder))
    return folder


def entries(folder):
    return sorted((folder / "rubrics").glob("*.json")) if (folder / "rubrics").is_dir() else []


def test_the_cache_folder_is_made_where_none_exists_yet(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh-account" / ".cache"))
    load_rubric(QUIZ4_RUBRIC)
    assert len(entries(tmp_path / "fresh-account" / ".cache" / "grader")) == 1


def test_a_checked_rubric_is_stored_once_and_loads_the_same_from_the_cache(cache):
    first = load_rubric(QUIZ4_RUBRIC)
    assert len(entries(cache)) == 1
    second = load_rubric(QUIZ4_RUBRIC)
    assert second == first
    assert len(entries(cache)) == 1


def test_a_cached_rubric_loads_without_importing_yaml_or_jsonschema(cache):
    load_rubric(QUIZ4_RUBRIC)
    probe = (
        "import sys; from grader.assignment.rubric import load_rubric; "
        f"load_rubric({str(QUIZ4_RUBRIC)!r}); "
        "print(sorted(m for m in ('yaml', 'jsonschema') if m in sys.modules))"
    )
    env = {**os.environ, "GRADER_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


def test_an_edited_rubric_is_checked_again_and_its_error_reported(cache, tmp_path):
    path = write_rubric_copy(tmp_path)
    load_rubric(path)
    document = yaml.safe_load(path.read_text())
    document["equations"][3]["points"] = "x"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(RubricError, match=r"equations\[3\]\.points: must be a number"):
        load_rubric(path)


def test_a_corrupt_or_foreign_entry_is_a_miss_and_is_rewritten(cache):
    load_rubric(QUIZ4_RUBRIC)
    (entry,) = entries(cache)
    good = entry.read_text()
    for damage in ("{not json", json.dumps({"key": "someone else's", "document": {"assignment": "x"}}), "[]"):
        entry.write_text(damage)
        assert load_rubric(QUIZ4_RUBRIC).assignment == "quiz4"
        assert entry.read_text() == good


def test_the_cache_can_be_turned_off_and_an_unwritable_one_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_CACHE_DIR", "")
    assert load_rubric(QUIZ4_RUBRIC).assignment == "quiz4"
    blocker = tmp_path / "a-file-not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("GRADER_CACHE_DIR", str(blocker / "cache"))
    assert load_rubric(QUIZ4_RUBRIC).assignment == "quiz4"


def test_only_documents_that_survive_json_unchanged_are_stored(cache):
    store_cached("rubrics", "a" * 64, {1: "an integer key JSON would turn into a string"})
    store_cached("rubrics", "b" * 64, {"x": float("nan")})
    assert entries(cache) == []
    store_cached("rubrics", "c" * 64, {"seed": 2**63 - 1, "rtol": 1e-5, "names": ["a", None, True]})
    assert read_cached("rubrics", "c" * 64) == {"seed": 2**63 - 1, "rtol": 1e-5, "names": ["a", None, True]}


def test_an_entry_that_does_not_build_a_rubric_is_a_miss_not_an_error(cache):
    first = load_rubric(QUIZ4_RUBRIC)
    (entry,) = entries(cache)
    stored = json.loads(entry.read_text())
    del stored["document"]["equations"]
    for damage in (json.dumps(stored), "[" * 100_000 + "]" * 100_000):
        entry.write_text(damage)
        assert load_rubric(QUIZ4_RUBRIC) == first


def test_the_cache_is_private_and_an_entry_others_could_write_or_a_link_is_ignored(cache, tmp_path):
    load_rubric(QUIZ4_RUBRIC)
    (entry,) = entries(cache)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700 and stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    key = entry.stem
    assert read_cached("rubrics", key) is not None
    entry.chmod(0o666)
    assert read_cached("rubrics", key) is None
    elsewhere = tmp_path / "elsewhere.json"
    entry.chmod(0o600)
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)  # a private file, but reached through a link someone could swap
    assert read_cached("rubrics", key) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a file of another account")
def test_an_entry_of_another_account_is_ignored_by_root(cache):
    load_rubric(QUIZ4_RUBRIC)
    (entry,) = entries(cache)
    os.chown(entry, 65534, 65534)
    assert read_cached("rubrics", entry.stem) is None
