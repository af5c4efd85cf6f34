"""Ctrl-C inside a store write is held back until the write ends; a second one is not."""

from __future__ import annotations

from collections.abc import Iterator
import os
import signal

import pytest

from framework.tracking.interrupt import deferred_interrupt


@pytest.fixture(autouse=True)
def _restore_sigint_handler() -> Iterator[None]:
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # delivered before kill() returns to Python code


def test_a_ctrl_c_in_the_block_is_raised_when_the_block_ends() -> None:
    finished = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupt():
        ctrl_c()
        finished.append("the write")
    assert finished == ["the write"]
    with deferred_interrupt():  # nothing is left pending for the next block
        finished.append("the next write")
    assert finished == ["the write", "the next write"]


def test_a_second_ctrl_c_is_raised_at_once() -> None:
    finished = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupt():
        ctrl_c()
        ctrl_c()
        finished.append("the write")
    assert finished == []


def test_outside_a_block_ctrl_c_is_raised_at_once() -> None:
    with deferred_interrupt():
        pass
    with pytest.raises(KeyboardInterrupt):
        ctrl_c()
        pytest.fail("not interrupted")


def test_a_handler_of_the_callers_own_is_left_alone() -> None:
    calls = []
    signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    with deferred_interrupt():
        ctrl_c()
    assert calls == [signal.SIGINT]
