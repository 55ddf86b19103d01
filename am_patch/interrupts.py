"""Ctrl-C, SIGTERM and SIGHUP during a run: they unwind it like an error, so the workspace is
rolled back and the summary printed, and a shell sees 128 + the signal number."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger("am_patch")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """SIGTERM or SIGHUP: a BaseException like KeyboardInterrupt, so no `except Exception`
    swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def signal_of(exc: BaseException) -> int:
    """The signal behind an interruption: SIGINT for Ctrl-C."""
    return exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT)


@dataclass(slots=True)
class Stop:
    """Only the first stop signal raises, and only while armed: a second one, or one after the
    run's outcome is known, must not cut the rollback, the archive or the summary short."""

    signum: int | None = None
    armed: bool = True

    def handle(self, signum: int, _frame: object) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if first and self.armed:
            raise Terminated(signum)
        log.info("%s received while the run ends: finishing", signal.Signals(signum).name)


@contextmanager
def stop_signals_raise() -> Iterator[Stop]:
    """SIGTERM and SIGHUP raise Terminated for the duration of the block (main thread only:
    Python delivers signals nowhere else)."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {signum: signal.signal(signum, stop.handle) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
