"""The live event stream (--events PATH, or - for stdout): one JSON object per line, written and
flushed as it happens, for a dashboard or an agent following a run.

Every event has `v` (SCHEMA, the schema's version), `ts` (ISO 8601, UTC, milliseconds) and
`event`; the README lists the events and their fields. While a stage runs, a `heartbeat` event
follows every HEARTBEAT_S seconds. Without --events every call here does nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

SCHEMA = 1
HEARTBEAT_S = 5.0


class Stream:
    """Where events go; one writer per process, safe across the gates' threads."""

    def __init__(self, handle: IO[str], *, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.handle = handle
        self.heartbeat_s = heartbeat_s
        self._lock = threading.Lock()
        self._stage: tuple[str, float] | None = None
        self._done = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="events")
        self._ticker.start()

    def emit(self, event: str, **fields: Any) -> None:
        stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        line = json.dumps({"v": SCHEMA, "ts": stamp, "event": event, **fields}, default=str)
        with self._lock:
            try:
                self.handle.write(line + "\n")
                self.handle.flush()
            except (OSError, ValueError):  # the reader went away: the run goes on without it
                pass

    def stage(
        self, name: str, status: str, elapsed_s: float | None = None, *, ok: bool = True
    ) -> None:
        with self._lock:
            self._stage = (name, time.monotonic()) if status == "start" else None
        fields: dict[str, Any] = {"stage": name, "status": status}
        if elapsed_s is not None:
            fields |= {"elapsed_s": round(elapsed_s, 3), "ok": ok}
        self.emit("stage", **fields)

    def _tick(self) -> None:
        while not self._done.wait(self.heartbeat_s):
            with self._lock:
                current = self._stage
            if current is not None:
                name, since = current
                self.emit("heartbeat", stage=name, elapsed_s=round(time.monotonic() - since, 1))

    def close(self) -> None:
        self._done.set()
        self._ticker.join()


_stream: Stream | None = None


def emit(event: str, **fields: Any) -> None:
    """One event, when a stream is open."""
    if _stream is not None:
        _stream.emit(event, **fields)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """`stage` start and end events around the block; heartbeats while it runs."""
    if _stream is None:
        yield
        return
    started = time.monotonic()
    _stream.stage(name, "start")
    ok = False
    try:
        yield
        ok = True
    finally:
        _stream.stage(name, "end", time.monotonic() - started, ok=ok)


@contextlib.contextmanager
def streaming(target: str | None, *, heartbeat_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Events to target for the block: a file (appended to, made private), or "-" for stdout,
    in which case what am-patch prints for humans goes to stderr instead."""
    global _stream
    if target is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        if target == "-":
            handle = sys.stdout
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        else:
            fd = os.open(Path(target), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            handle = stack.enter_context(os.fdopen(fd, "w", encoding="utf-8"))
        _stream = Stream(handle, heartbeat_s=heartbeat_s)
        try:
            yield
        finally:
            _stream.close()
            _stream = None
