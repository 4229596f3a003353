"""Atomic writes never leave half a file, and never replace a device or a pipe they were pointed at."""

from __future__ import annotations

import os
import stat
import threading

from conftest import REPO
from grader.files import write_bytes_atomic
from grader.frontends.cli import main


def test_a_report_replaces_a_regular_file_whole(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left beside it


def test_a_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_bytes_atomic(fifo, b"report")
    reader.join(timeout=10)
    assert received == [b"report"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_grading_into_dev_null_leaves_dev_null_a_device(capsys):
    assert main([str(REPO / "solutions" / "quiz4.py"), "-o", os.devnull, "--quiet"]) == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert capsys.readouterr().out.strip() == "11/11"
