"""The parent's reader accepts only strict float64 .npy payloads and never over-allocates."""

from __future__ import annotations

import io
import os
import struct
import time

import numpy as np
import pytest

from grader.errors import ProtocolError
from grader.sandbox.wire import FrameReader, encode_frame, kept_elements, parse_npy_header


def reader_for(data: bytes) -> FrameReader:
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return FrameReader(read)


def npy(arr) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, arr, allow_pickle=False)
    return buffer.getvalue()


def later() -> float:
    return time.monotonic() + 2


def test_a_float64_array_of_the_expected_size_is_read_back_exactly():
    arr = np.arange(6, dtype="<f8").reshape(2, 3)
    data = npy(arr)
    shape, value = reader_for(data).read_array(len(data), 6, later(), max_skip=1 << 20)
    assert shape == (2, 3) and np.array_equal(value, arr)


def test_an_array_of_another_size_is_recorded_by_shape_and_skipped():
    data = npy(np.zeros((4, 5)))
    shape, value = reader_for(data).read_array(len(data), 6, later(), max_skip=1 << 20)
    assert shape == (4, 5) and value is None


@pytest.mark.parametrize(
    "arr", [np.zeros(3, dtype=">f8"), np.zeros(3, dtype="<f4"), np.asfortranarray(np.zeros((2, 3)))]
)
def test_anything_but_little_endian_float64_in_c_order_is_refused(arr):
    data = npy(arr)
    with pytest.raises(ProtocolError):
        reader_for(data).read_array(len(data), arr.size, later(), max_skip=1 << 20)


def test_a_header_claiming_a_huge_array_is_refused_before_allocating():
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }"
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    with pytest.raises(ProtocolError):
        reader_for(data).read_array(len(data) + 8 * 10**11, 6, later(), max_skip=1 << 20)
    with pytest.raises(ProtocolError, match="plausible|carries"):
        reader_for(data).read_array(len(data) + 48, 6, later(), max_skip=1 << 20)


def test_a_frame_without_the_marker_or_with_a_huge_header_is_refused():
    with pytest.raises(ProtocolError):
        reader_for(b"XXXX\x00\x00\x00\x02{}").read_header(later())
    with pytest.raises(ProtocolError):
        reader_for(b"GRDR" + struct.pack(">I", 1 << 30)).read_header(later())
    assert reader_for(encode_frame({"a": 1})).read_header(later()) == {"a": 1}


@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (5, 0, 3), (1, 1, 4), (123456, 2), (1, 2, 1, 2, 1, 2, 1, 2)])
def test_every_header_numpy_writes_for_float64_gives_back_its_shape(shape):
    data = npy(np.zeros(shape))
    header = data[10 : 10 + struct.unpack("<H", data[8:10])[0]]
    assert parse_npy_header(header) == shape


@pytest.mark.parametrize(
    "shape_text, tail",
    [("(07,)", "\n"), ("(3, 007)", "\n"), ("(3,)", "\n\n"), ("(3,)", ""), ("(3,,)", "\n"), ("(-3,)", "\n")],
    ids=["leading-zero", "leading-zeros", "second-newline", "no-newline", "double-comma", "negative"],
)
def test_a_header_numpy_would_never_write_is_a_protocol_error_not_a_crash(shape_text, tail):
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}{tail}".encode()
    with pytest.raises(ProtocolError):
        parse_npy_header(header)


def test_an_empty_array_whose_declared_extent_is_huge_is_recorded_by_shape_and_never_built():
    data = npy(np.empty((2**31 - 1, 0)))
    shape, value = reader_for(data).read_array(len(data), 6, later(), max_skip=1 << 20)
    assert shape == (2**31 - 1, 0) and value is None
    small = npy(np.empty((3, 0)))
    assert reader_for(small).read_array(len(small), 6, later(), max_skip=1 << 20)[1].shape == (3, 0)


def test_the_parent_reads_answers_up_to_sixteen_times_the_expected_size_to_name_a_mistake_by_value():
    assert kept_elements((1, 9)) == 4096 and kept_elements((64, 64)) == 16 * 64 * 64


def test_the_report_lists_no_array_whose_nested_lists_would_be_too_many():
    from grader.grading.report import MAX_LISTED_CELLS, _array

    assert _array(np.empty((2**31 - 1, 0))) is None and _array(np.empty((MAX_LISTED_CELLS + 1, 0))) is None
    assert _array(np.empty((3, 0))) == [[], [], []]


@pytest.mark.parametrize(
    "value",
    [
        np.arange(40.0).reshape(5, 8),
        np.arange(72.0).reshape(8, 9).T,  # not C-contiguous: sent in C order
        np.zeros((0, 3)),
        np.array(2.5),
        np.arange(6, dtype=np.int64),
        np.ones((2, 3), dtype=np.float32),
        np.array([[True, False]]),
        np.zeros((1,) * 30),  # many dimensions: still a short header
        np.arange(3, dtype=">f8"),
        np.arange(4, dtype=np.uint8).reshape(2, 2),
        np.arange(3, dtype=np.int8),
        np.ones(3, dtype=np.float16),
        np.ones((2, 1), dtype=np.complex128),
        np.ones(2, dtype=np.longdouble),
        np.zeros((10**6, 0)),  # a long first dimension: less room left for it to grow
        np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]),  # structured: numpy's own header writer
        np.array(["ab", "c"]),
    ],
    ids=[
        "matrix",
        "transposed",
        "empty",
        "scalar",
        "int64",
        "float32",
        "bool",
        "30-d",
        "big-endian",
        "uint8",
        "int8",
        "float16",
        "complex",
        "longdouble",
        "long-axis",
        "structured",
        "unicode",
    ],
)
def test_an_encoded_input_array_is_byte_for_byte_what_np_save_writes(value):
    from grader.sandbox.requests import encode_array

    sent = np.ascontiguousarray(value)  # as before: C order, and at least one dimension
    saved = io.BytesIO()
    np.save(saved, sent, allow_pickle=False)
    assert encode_array(value) == saved.getvalue()
    assert np.array_equal(np.load(io.BytesIO(encode_array(value)), allow_pickle=False), sent)


@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<i8", "|b1", "|u1", "<c16"])
def test_plain_number_arrays_get_their_header_written_directly(dtype):
    from grader.sandbox.requests import plain_npy_header

    value = np.zeros((3, 2), dtype=dtype)
    header = plain_npy_header(value.dtype, value.shape)
    assert header is not None and npy(value).startswith(header) and len(header) % 64 == 0
