"""What the parent accepts from a child: checked fields, clean text, no stale or forged frames."""

from __future__ import annotations

import json
import os
import struct
import threading
import time

import pytest

from grader.errors import ProtocolError
from grader.sandbox.processes import Transcript
from grader.sandbox.wire import FrameReader, Timeout, clean_text, encode_frame, parse_names, parse_reply, write_all


def later(seconds: float = 2.0) -> float:
    return time.monotonic() + seconds


def reader_for(data: bytes) -> FrameReader:
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return FrameReader(read)


def test_clean_text_removes_what_could_rewrite_a_terminal_and_keeps_lines_and_tabs():
    text = "ok\tfine\nTotal: 0/11\rTotal: 11/11\x1b[2J\u202eevil\x00"
    cleaned = clean_text(text, 200)
    assert "\x1b" not in cleaned and "\r" not in cleaned and "\u202e" not in cleaned and "\x00" not in cleaned
    assert cleaned.startswith("ok\tfine\nTotal: 0/11\nTotal: 11/11")


def test_clean_text_turns_a_lone_surrogate_into_text_that_utf8_can_hold():
    cleaned = clean_text("bad \udc80 byte", 100)
    cleaned.encode("utf-8")  # would raise on a surrogate
    assert cleaned.startswith("bad ") and cleaned.endswith(" byte")


def test_clean_text_of_something_that_is_not_text_is_empty():
    assert clean_text(None, 10) == "" and clean_text(["x"], 10) == ""


def test_a_reply_for_another_call_is_refused():
    with pytest.raises(ProtocolError, match="different call"):
        parse_reply({"id": 3, "status": "ok", "len": 80}, 4, ("X",))


@pytest.mark.parametrize(
    "header",
    [
        {"id": 1, "status": "passed"},
        {"id": True, "status": "ok", "len": 80},
        {"id": 1, "status": "ok"},
        {"id": 1, "status": "ok", "len": "80"},
        {"id": 1, "status": "exception", "mutated": 5},
        {"id": 1, "status": "exception", "where": "line 1"},
        {"id": 1, "status": "exception", "where": {"lineno": -2}},
        {"id": 1, "status": "bad_return", "problem": "anything"},
        {"id": 1, "status": "exception", "message": ["a", "list"]},
    ],
    ids=[
        "unknown-status",
        "bool-id",
        "no-length",
        "text-length",
        "int-mutated",
        "text-where",
        "bad-line",
        "problem",
        "list-message",
    ],
)
def test_a_reply_with_a_field_of_the_wrong_kind_is_a_protocol_error_not_a_crash(header):
    with pytest.raises(ProtocolError):
        parse_reply(header, 1, ("X",))


def test_only_the_calls_own_argument_names_can_be_reported_as_mutated():
    reply = parse_reply({"id": 1, "status": "ok", "len": 80, "mutated": ["dY", "rubric", 7, "W"]}, 1, ("dY", "W"))
    assert reply.mutated == ("dY", "W")


def test_the_names_a_child_reports_are_identifiers_only():
    assert parse_names(["grad_X", "not a name", 3, "\x1b[2J", "grad_S"]) == ("grad_X", "grad_S")
    with pytest.raises(ProtocolError):
        parse_names("grad_X")


def test_a_header_nested_too_deeply_is_a_protocol_error_not_a_recursion_error():
    body = b"[" * 60000
    with pytest.raises(ProtocolError, match="nested too deeply"):
        reader_for(b"GRDR" + struct.pack(">I", len(body)) + body).read_header(later())


def test_draining_drops_what_was_written_before_the_request():
    forged = encode_frame({"id": 9, "status": "ok"}) * 3
    reader = reader_for(forged)
    assert reader.drain() == len(forged)
    with pytest.raises(EOFError):
        reader.read_header(later())


def test_writing_to_a_child_that_never_reads_times_out_instead_of_blocking():
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        with pytest.raises(Timeout):
            write_all(write, b"x" * (4 << 20), later(0.2))
    finally:
        os.close(read)
        os.close(write)


def test_output_already_taken_is_fixed_even_if_the_child_rewrites_its_file(tmp_path):
    transcript = Transcript(tmp_path)
    capture = transcript.new_capture()
    os.write(capture.fileno(), b"shown before the hidden cases\n")
    transcript.absorb()
    frozen = len(transcript.data)
    os.pwrite(capture.fileno(), b"LEAK: hidden inputs 0.123456\n", 0)
    transcript.close_capture()
    assert bytes(transcript.data[:frozen]) == b"shown before the hidden cases\n"
    assert not list(tmp_path.iterdir()), "the capture file is removed once absorbed"


def test_each_child_gets_a_fresh_capture_and_the_transcript_keeps_the_order(tmp_path):
    transcript = Transcript(tmp_path, keep=64)
    for text in (b"first\n", b"second\n"):
        capture = transcript.new_capture()
        os.write(capture.fileno(), text)
    transcript.close_capture()
    assert bytes(transcript.data) == b"first\nsecond\n"
    big = transcript.new_capture()
    os.write(big.fileno(), b"x" * 1000)
    transcript.close_capture()
    assert len(transcript.data) == 64


def test_a_frame_round_trips_through_the_reader():
    header = {"id": 1, "status": "exception", "type": "ValueError", "message": "m", "where": {"lineno": 3}}
    assert reader_for(encode_frame(header)).read_header(later()) == json.loads(json.dumps(header))


def test_frames_for_other_calls_are_skipped_and_this_calls_reply_is_read():
    stale = encode_frame({"id": 7, "status": "ok", "len": 3}, b"abc")
    forged = encode_frame({"id": 9, "status": "ok", "len": 0})
    mine = encode_frame({"id": 8, "status": "missing"})
    header = reader_for(stale + forged + mine).read_reply_header(8, later(), max_skip=1 << 20)
    assert header == {"id": 8, "status": "missing"}


def test_a_frame_for_another_call_with_an_impossible_payload_is_a_protocol_error():
    forged = encode_frame({"id": 7, "status": "ok", "len": 1 << 40})
    with pytest.raises(ProtocolError):
        reader_for(forged).read_reply_header(8, later(), max_skip=1 << 20)


RACING = b"""
import sys
import time

import numpy as np


def forge(a):
    child = sys.modules["__main__"]
    request = sys._getframe(1).f_locals["request"]  # the child's own frame: its call's id
    payload = child.encode_float64(np.zeros(3))
    child.write_frame(child.OUT_FD, {"id": request["id"], "status": "ok", "shape": [3], "len": len(payload)}, payload)
    time.sleep(0.3)  # the real reply comes after the parent took the forged one and moved on
    return a


def twice(a):
    return 2 * a
"""


def test_a_reply_forged_for_its_own_call_costs_that_call_only_even_when_the_real_one_comes_late(host):
    import numpy as np

    from grader.sandbox.outcomes import CallStatus, Limits
    from grader.sandbox.session import Sandbox

    limits = Limits(time_limit=2.0, import_time_limit=10.0, memory_bytes=1 << 30, output_bytes=1 << 20, processes=64)
    with Sandbox(RACING, "racing.py", limits, expected_calls=3, host=host) as box:
        forged = box.call("forge", [("a", np.ones(3))], (3,), False)
        after = [box.call("twice", [("a", np.ones(3))], (3,), True) for _ in range(2)]
    assert forged.status == CallStatus.OK and np.array_equal(forged.value, np.zeros(3))
    for outcome in after:
        assert outcome.status == CallStatus.OK and np.array_equal(outcome.value, 2 * np.ones(3)), outcome


def clean_text_per_character(value: object, limit: int) -> str:
    """clean_text as it was written first, character by character: the fast one must equal it."""
    import unicodedata

    text = value if isinstance(value, str) else ""
    text = text[:limit].encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    bidi = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    return "".join(
        "\ufffd" if (ch not in "\n\t" and unicodedata.category(ch) == "Cc") or ch in bidi else ch for ch in text
    )


@pytest.mark.parametrize(
    "text",
    [
        "".join(map(chr, range(0x110000))),  # every code point, lone surrogates included
        "".join(map(chr, range(128))) * 3 + "a\r\nb\rc\n\r",  # ASCII only: the shortcut
        "plain printable text, the usual description: ndarray of dtype float64 and shape (8, 7)",
        "",
    ],
    ids=["every-code-point", "ascii", "printable", "empty"],
)
def test_clean_text_replaces_exactly_what_the_per_character_rule_replaces(text):
    assert clean_text(text, len(text) + 1) == clean_text_per_character(text, len(text) + 1)
    assert clean_text(text, 50) == clean_text_per_character(text, 50)


def counting_reads(monkeypatch, reader: FrameReader) -> list[int]:
    """Patch os.read to record, at each read, how many bytes the reader already holds."""
    held: list[int] = []
    real_read = os.read

    def read(fd: int, n: int) -> bytes:
        held.append(len(reader.buffer))
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", read)
    return held


def array_reply(call_id: int = 7) -> bytes:
    import numpy as np

    from grader.untrusted.protocol import encode_float64

    payload = encode_float64(np.arange(56.0).reshape(8, 7))
    return encode_frame({"id": call_id, "status": "ok", "len": len(payload)}, payload)


def test_a_whole_reply_is_read_from_the_pipe_in_one_read(monkeypatch):
    reader = reader_for(array_reply())
    reads = counting_reads(monkeypatch, reader)
    header = reader.read_reply_header(7, later(), 1 << 20)
    shape, value = reader.read_array(header["len"], 56, later(), max_skip=1 << 20)
    assert shape == (8, 7) and value[7, 6] == 55.0
    assert len(reads) == 1


def test_draining_drops_what_was_read_ahead_as_well_as_what_is_in_the_pipe():
    forged = encode_frame({"id": 8, "status": "ok", "len": 0}) * 2
    reader = reader_for(encode_frame({"id": 7, "status": "exception"}) + forged)
    assert reader.read_reply_header(7, later(), 1 << 20)["status"] == "exception"
    assert len(reader.buffer) == len(forged), "read ahead with the reply"
    assert reader.drain() == len(forged)
    with pytest.raises(EOFError):
        reader.read_header(later())


def test_bytes_already_read_ahead_are_still_not_served_past_the_deadline():
    reader = reader_for(array_reply())
    reader.read_exact(8, later())
    assert reader.buffer
    with pytest.raises(Timeout):
        reader.read_exact(8, time.monotonic() - 1)


def test_the_reader_holds_at_most_one_chunk_beyond_what_was_asked_for(monkeypatch):
    from grader.sandbox.wire import CHUNK

    read, write = os.pipe()
    reader = FrameReader(read)
    size = 5 * CHUNK + 123
    writer = threading.Thread(target=lambda: (os.write(write, b"x" * size), os.close(write)))
    writer.start()
    try:
        held = counting_reads(monkeypatch, reader)
        assert reader.read_exact(10, later()) == b"x" * 10
        assert len(reader.buffer) < CHUNK
        reader.skip(size - 10, later())
        assert max(held) < 2 * CHUNK, "skipping holds no more than a chunk it asked for and one read ahead"
        assert not reader.buffer
    finally:
        writer.join()
        os.close(read)


def test_a_reply_cut_short_raises_eof_even_with_part_of_it_read_ahead():
    reader = reader_for(array_reply()[:-5])
    header = reader.read_reply_header(7, later(), 1 << 20)
    with pytest.raises(EOFError):
        reader.read_array(header["len"], 56, later(), max_skip=1 << 20)


def test_a_process_state_is_read_from_proc_running_dead_or_gone():
    import subprocess

    from grader.sandbox.processes import process_state

    assert process_state(os.getpid()) == "R"
    child = subprocess.Popen(["true"])
    deadline = later(5)
    while process_state(child.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process_state(child.pid) == "Z", "exited, not yet reaped"
    child.wait()
    assert process_state(child.pid) is None
