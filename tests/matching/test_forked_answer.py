"""A task run in a forked process that ends once it has answered."""

from __future__ import annotations

import multiprocessing

import pytest

from matching.core.engine import forked_answer

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork"
)


def _large() -> bytes:
    return b"x" * (1 << 20)  # past a pipe's buffer: the helper waits to be read


def _fails() -> None:
    raise ValueError("the helper's own error")


def test_the_answer_comes_back_whatever_its_size():
    with forked_answer(_large) as answer:
        assert answer() == _large()
        assert answer() == _large()  # asked twice, read once


def test_the_helpers_error_is_raised_here():
    with forked_answer(_fails) as answer, pytest.raises(ValueError, match="own error"):
        answer()


def test_a_helper_whose_answer_is_not_asked_for_is_ended():
    with forked_answer(_large):
        pass  # leaving without reading: the helper, blocked on its answer, is ended
