"""Ctrl-C that never lands inside a write to the Optuna or MLflow store.

A ``KeyboardInterrupt`` raised while SQLAlchemy is inside a SQLite transaction leaves the
database locked for that process: every later call fails with "database is locked", so the
interrupted trial could be neither marked failed nor its run ended. Inside
:func:`deferred_interrupt` a first Ctrl-C is held back and raised as soon as the block ends;
a second one is raised at once, for a store that does not answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import signal
import threading
from types import FrameType


class _State:
    depth = 0
    pending = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _State.depth and not _State.pending:
        _State.pending = True
        return
    _State.pending = False
    raise KeyboardInterrupt


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold back a Ctrl-C that arrives in the block until it ends (main thread only: the only
    one Python delivers signals to; elsewhere, and under a handler of the caller's own, the
    block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.getsignal(signal.SIGINT)
    if handler is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    elif handler is not _on_sigint:
        yield
        return
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
        if not _State.depth and _State.pending:
            _State.pending = False
            raise KeyboardInterrupt
