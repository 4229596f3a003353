"""Hostile submissions, graded as root as on Gradescope: each gets exactly its expected grade.

For every file in submissions/ (expected outcomes in expected.yaml) the run must write a
report that validates, give the attacked equations the expected status with a message
naming the cause and every other equation full marks, stay within its time budget, and
leave nothing behind: no process of a sandbox uid, no file changed in the grader, its
rubric, its reference or the venv's numpy, nothing of the sandbox's in the temporary
folders or the System V IPC tables, no other file in the results folder, and (for the
daemons) a report that is still the grader's a while after `grade` returned.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
from harness import (
    EXPECTED,
    NOBODY,
    REPO,
    Listener,
    SandboxUids,
    changed,
    expected_statuses,
    expected_words,
    files_owned_by,
    fingerprints,
    full_numpy_digest,
    report_digest,
    results_root,
    run_case,
    survivors,
    sysv_objects_of,
    write_public_rubric,
)

from conftest import write_rubric_copy
from grader.grading.report import validate_report

pytestmark = pytest.mark.redteam
DAEMON_GRACE = 2.0  # seconds a daemon would have had to rewrite a report after `grade` returned
settled: dict[str, tuple[float, str | None]] = {}  # report path -> (when written, digest), for the daemons


@pytest.fixture(scope="module")
def rubric(tmp_path_factory):
    """Quiz 4 with 1 s per call, 3 s for the import and 7 s for the whole submission, readable by any uid.

    In a private results root of this session's.
    """
    root = results_root()
    yield write_public_rubric(
        write_rubric_copy(
            tmp_path_factory.mktemp("redteam"), time_limit=1.0, import_time_limit=3.0, submission_time_limit=7.0
        ),
        root,
    )
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def numpy_before():
    """The venv's numpy, byte for byte, before the suite (each case compares a cheap fingerprint)."""
    return full_numpy_digest()


@pytest.fixture
def listener():
    opened = Listener()
    yield opened
    opened.close()


def check_report(run, spec) -> dict:
    assert run.exit_code == 0, f"grade exited with {run.exit_code}: {run.stderr[-2000:]}"
    document = run.document
    assert document is not None, f"no report at {run.report_path}"
    validate_report(document)
    assert sorted(os.listdir(run.report_path.parent)) == ["results.json"], "the report must be the only file"
    statuses = {eq["id"]: eq["status"] for eq in document["equations"] if eq.get("counted", True)}
    want = expected_statuses(spec)
    feedback = {eq["id"]: eq["feedback"] for eq in document["equations"]}
    assert statuses == want, f"expected {want}, got {statuses}; feedback: {feedback}"
    # the end-to-end check counts no points, whatever the file does; with every piece right it passes too
    (check,) = [eq for eq in document["equations"] if not eq.get("counted", True)]
    assert check["score"] == check["max_score"] == 0
    if set(want.values()) == {"passed"}:
        assert check["status"] == "passed", check["feedback"]
    for eq, words in expected_words(spec).items():
        assert words in feedback[eq], f"{eq}: expected the feedback to say {words!r}, got {feedback[eq]!r}"
    assert document["score"] == pytest.approx(spec["score"])
    assert all(eq["score"] == 0 for eq in document["equations"] if want.get(eq["id"]) not in ("passed", "partial"))
    quiet_total = f"{document['score']:g}/{document['max_score']:g}"
    assert run.stdout.strip() == quiet_total, f"the CLI printed {run.stdout!r}, expected {quiet_total!r}"
    for text in spec.get("output_includes", ()):
        assert text in document["output"]
    for text in spec.get("output_excludes", ()):
        assert text not in document["output"], f"the shown output contains {text!r}"
    everything = json.dumps(document, ensure_ascii=False) + run.stdout + run.stderr
    for text in spec.get("report_excludes", ()):
        assert text not in everything, f"the report or the CLI's output contains {text!r}"
    return document


@pytest.mark.root
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_hostile_submission_gets_its_expected_grade_and_leaves_nothing_behind(
    case, rubric, numpy_before, listener, tmp_path
):
    spec = EXPECTED[case]
    before = fingerprints()
    run = run_case(case, spec, rubric)
    document = check_report(run, spec)

    budget = spec.get("max_seconds", 3)
    assert run.seconds <= budget, f"grade took {run.seconds:.1f} s, over its {budget} s budget"
    uids = SandboxUids(os.getpid(), run.grader_pid)
    assert survivors(uids) == [], "a process of the submission outlived grade"
    assert changed(before, fingerprints()) == [], "files of the grader, its rubric, its reference or numpy changed"
    assert files_owned_by(uids) == [], "the submission left files behind"
    assert sysv_objects_of(uids) == [], "the submission left System V IPC objects behind"
    sandbox = document["sandbox"]
    assert sandbox["privilege_drop"] and sandbox["network_cut"] and sandbox["reference_hidden"]
    assert sandbox["kill_all_processes"] and sandbox["minimal_filesystem"] and sandbox["syscall_filter"]
    assert sandbox["notes"] == [] and "weaker isolation" not in run.stderr
    if spec.get("listener"):
        assert listener.accepted == [], f"the submission connected to the test's listener: {listener.accepted}"
    if spec.get("parent_peak_mb"):
        assert run.parent_peak_bytes is not None
        assert run.parent_peak_bytes < spec["parent_peak_mb"] << 20, f"the grader held {run.parent_peak_bytes} bytes"
    if spec.get("daemon"):
        settled[str(run.report_path)] = (time.monotonic(), report_digest(run.report_path))
    if spec.get("then_correct"):
        later = run_case(case + "-then-correct", {}, rubric, source=REPO / "solutions" / "quiz4.py")
        assert later.document is not None and later.document["score"] == later.document["max_score"]
    if "ATTACK SUCCEEDED" in json.dumps(document):
        pytest.fail("an attack reported success: " + json.dumps(document)[:500])


@pytest.mark.root
def test_no_report_changes_after_grade_returned_even_with_a_daemon_running(rubric):
    """One shared wait for every daemon case, so the suite pays it once."""
    if not settled:
        pytest.skip("no daemon case ran in this session")
    last = max(when for when, _ in settled.values())
    time.sleep(max(0.0, last + DAEMON_GRACE - time.monotonic()))
    changed = [path for path, (_, digest) in settled.items() if report_digest(Path(path)) != digest]
    assert changed == []
    assert survivors(SandboxUids(os.getpid())) == []


@pytest.mark.root
def test_the_venvs_numpy_is_byte_for_byte_unchanged_by_the_suite(numpy_before):
    assert full_numpy_digest() == numpy_before


NONROOT = sorted(case for case, spec in EXPECTED.items() if "nonroot" in spec)


@pytest.mark.root(readable_on_host=True)  # the grader itself runs as uid 65534
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to run as uid 65534")
@pytest.mark.parametrize("case", NONROOT)
def test_without_root_a_hostile_submission_is_contained_as_far_as_the_platform_allows_and_says_so(
    case, rubric, listener
):
    spec = {**EXPECTED[case], **EXPECTED[case]["nonroot"]}
    already = frozenset(p.split()[0] for p in survivors({NOBODY}, wait=0))
    run = run_case(case, spec, rubric, as_nobody=True)
    document = check_report(run, spec)
    assert run.seconds <= spec.get("max_seconds", 3) + 1
    assert survivors({NOBODY}, excluding=already) == [], "a process of the submission outlived grade"
    sandbox = document["sandbox"]
    assert not sandbox["privilege_drop"] and not sandbox["reference_hidden"] and not sandbox["minimal_filesystem"]
    assert sandbox["syscall_filter"] and sandbox["network_cut"] and sandbox["kill_all_processes"]
    assert "not running as root" in sandbox["notes"][0]
    assert listener.accepted == [], f"the submission connected to the test's listener: {listener.accepted}"
    assert run.stderr.strip().splitlines()[-1].startswith("note: graded with weaker isolation (not running as root")


@pytest.mark.root(readable_on_host=True)  # the grader itself runs as uid 65534
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to run as uid 65534")
def test_without_root_a_batch_survives_submissions_that_attack_every_grader_process(rubric):
    """Issue 16: the filter used to protect only the parent, the zygote and the group, so a
    submission in `grade batch` killed the batch's worker, forkserver and main process (exit 137)."""
    import subprocess
    import sys
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="grader-redteam-batch-"))
    try:
        base.chmod(0o755)
        submissions, out = base / "in", base / "out"
        submissions.mkdir(mode=0o755)
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        attacks = {"alice": "tamper_kill_ancestors.py", "bob": "tamper_async_signal.py"}
        for student, case in attacks.items():
            shutil.copy(REPO / "tests" / "redteam" / "submissions" / case, submissions / f"{student}.py")
        shutil.copy(REPO / "solutions" / "quiz4.py", submissions / "carol.py")
        for path in submissions.iterdir():
            path.chmod(0o644)
        setpriv = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
        command = [*setpriv, sys.executable, "-m", "grader", "batch", "in", "-o", "out", "--jobs", "2"]
        done = subprocess.run(
            [*command, "--rubric", str(rubric)], cwd=base, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"grade batch exited with {done.returncode}: {done.stderr[-2000:]}"
        for student in ("alice", "bob", "carol"):
            report = json.loads((out / "reports" / f"{student}.json").read_text(encoding="utf-8"))
            assert report["score"] == report["max_score"] == 11, student
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_each_session_grades_in_a_private_results_folder_of_its_own(rubric):
    """Two runs of the suite on one machine never share a results folder (the hostile files glob for them)."""
    mine = rubric.parent.parent
    other = results_root()
    try:
        assert mine != other and mine.parent == other.parent == Path("/tmp")
        assert mine.name.startswith("grader-redteam-") and other.name.startswith("grader-redteam-")
        assert stat.S_IMODE(other.stat().st_mode) == 0o755 and list(other.iterdir()) == []
    finally:
        shutil.rmtree(other)
