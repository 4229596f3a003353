"""The child reads the parent's argument arrays as ``np.load`` would, and sees a mutation as before.

The child decodes the headers the parent writes itself (``np.load`` parses each with
``ast.literal_eval``, the dearest part of a call); anything else still goes to
``np.load``, so every image gives exactly what ``np.load(..., allow_pickle=False)`` gives.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from grader.sandbox.requests import encode_array
from grader.untrusted.arrays import load_array, unchanged
from grader.untrusted.protocol import plain_npy_layout

DTYPES = ["<f8", ">f8", "<f4", "<f2", "<i8", ">i4", "<i2", "|i1", "|u1", "<u8", "|b1", "<c16", "<c8", "<g"]
SHAPES = [(0,), (1,), (7,), (2, 3), (0, 4), (4, 0), (1, 1, 1), (3, 1, 2, 2), (1,) * 30, (123456, 0)]


def npy(arr, **options) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, arr, **options)
    return buffer.getvalue()


def np_load(payload: bytes):
    return np.load(io.BytesIO(payload), allow_pickle=False)


def assert_same_array(got, expected):
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()
    assert got.flags.writeable and got.flags.c_contiguous and got.flags.aligned


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_array_the_parent_sends_is_read_directly_and_is_what_np_load_gives(dtype, shape):
    values = (np.arange(int(np.prod(shape))) % 5 - 2).astype(dtype).reshape(shape)
    payload = encode_array(values)
    assert plain_npy_layout(payload) is not None, "the parent's header takes the direct path"
    assert_same_array(load_array(payload), np_load(payload))


def test_a_zero_dimensional_image_is_read_directly_as_zero_dimensional():
    payload = npy(np.array(2.5))
    assert plain_npy_layout(payload)[1] == ()
    assert_same_array(load_array(payload), np_load(payload))
    assert load_array(payload).ndim == 0


def test_nan_infinities_and_negative_zero_keep_their_bits():
    payload = encode_array(np.array([np.nan, -np.inf, np.inf, -0.0, 5e-324]))
    assert_same_array(load_array(payload), np_load(payload))


def test_a_loaded_argument_does_not_share_memory_with_the_payload():
    payload = encode_array(np.zeros(4))
    arr = load_array(payload)
    arr[:] = 7.0
    assert np.array_equal(load_array(payload), np.zeros(4))


@pytest.mark.parametrize(
    "payload",
    [
        npy(np.asfortranarray(np.arange(6.0).reshape(2, 3))),
        npy(np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")])),
        npy(np.array(["ab", "c"])),
        npy(np.zeros((2, 3))) + b"\x00" * 8,  # np.load ignores data past the shape's
    ],
    ids=["fortran-order", "structured", "unicode", "trailing-bytes"],
)
def test_an_image_the_parent_never_writes_still_loads_as_np_load_loads_it(payload):
    expected = np_load(payload)
    got = load_array(payload)
    assert got.dtype == expected.dtype and got.shape == expected.shape and np.array_equal(got, expected)


def header_image(text: bytes, data: bytes = b"") -> bytes:
    text += b" " * (64 - (10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


@pytest.mark.parametrize(
    "header",
    [
        b"{'descr': '<f8', 'fortran_order': False, 'shape': (2), }",  # an int, not a tuple
        b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, ), }",
        b"{'descr': '<f8', 'fortran_order': False, 'shape': (02,), }",
        b"{'fortran_order': False, 'descr': '<f8', 'shape': (2,), }",
        b"{'descr': '<f8', 'fortran_order': True, 'shape': (2,), }",
        b"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
        b"{'descr': '<f0', 'fortran_order': False, 'shape': (2,), }",
    ],
)
def test_a_header_off_the_parents_exact_form_is_left_to_np_load(header):
    payload = header_image(header, b"\x00" * 16)
    assert plain_npy_layout(payload) is None
    try:
        expected = np_load(payload)
    except ValueError:
        with pytest.raises(ValueError):
            load_array(payload)
    else:
        assert_same_array(load_array(payload), expected)


@pytest.mark.parametrize(
    "payload",
    [
        encode_array(np.zeros((2, 3)))[:-8],  # data cut short
        npy(np.array([None, 1], dtype=object), allow_pickle=True),
        b"\x93NUMPY\x01\x00",
        b"not an array at all",
    ],
    ids=["short-data", "pickle", "no-header", "garbage"],
)
def test_what_np_load_refuses_is_refused(payload):
    with pytest.raises(ValueError):
        np_load(payload)
    with pytest.raises(ValueError):
        load_array(payload)


@pytest.mark.parametrize(
    ("before", "after", "same"),
    [
        (np.arange(6.0), np.arange(6.0), True),
        (np.array([0.0, np.nan]), np.array([-0.0, np.nan]), True),  # equal values, other bytes
        (np.array([np.nan]), np.array([np.nan]), True),
        (np.arange(6.0), np.arange(6.0) + [0, 0, 0, 0, 0, 1], False),
        (np.arange(6.0), np.arange(6.0).reshape(2, 3), False),
        (np.zeros(2), np.zeros(2, dtype=np.int64), True),  # the same values under another dtype
        (np.ones(2), np.ones(2).view(np.int64), False),
    ],
)
def test_an_argument_counts_as_mutated_exactly_when_its_values_changed(before, after, same):
    expected = after.shape == before.shape and np.array_equal(after, before, equal_nan=True)
    assert expected == same
    assert unchanged(after, before) == same
