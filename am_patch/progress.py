"""Showing that long gates are running. On a terminal: one live status line, shared by the gates
running side by side (their names, the time since the first started, the last line one of them
printed). Otherwise: a heartbeat line every few seconds. Nothing shows for gates that end within
a couple of seconds."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from am_patch.runlog import printable

SHOW_AFTER_S = 2.0
HEARTBEAT_S = 5.0
TICK_S = 0.5


class Progress:
    """Which gates run now and what they last printed; a ticker thread shows it."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        heartbeat: Callable[[str], None] | None = None,
        tty: bool | None = None,
        show_after_s: float = SHOW_AFTER_S,
        every_s: float = HEARTBEAT_S,
    ) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.heartbeat = heartbeat  # where a heartbeat line goes (the run's say); else stream
        self.show_after_s = show_after_s
        self.every_s = every_s
        self._running: dict[str, float] = {}
        self._last_line = ""
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._shown = False
        self._next_beat = 0.0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self._thread = threading.Thread(target=self._tick, daemon=True, name="progress")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self._clear()

    def started(self, name: str) -> None:
        with self._lock:
            self._running[name] = time.monotonic()

    def finished(self, name: str) -> None:
        with self._lock:
            self._running.pop(name, None)
        if not self._running:
            self._clear()

    def output(self, chunk: bytes) -> None:
        lines = [line for line in chunk.decode("utf-8", "replace").splitlines() if line.strip()]
        if lines:
            with self._lock:
                self._last_line = lines[-1].strip()

    def status(self) -> str | None:
        """The line to show now, or None while nothing has run long enough."""
        with self._lock:
            if not self._running:
                return None
            since = min(self._running.values())
            names = ", ".join(sorted(self._running))
            last = self._last_line
        elapsed = time.monotonic() - since
        if elapsed < self.show_after_s:
            return None
        line = f"[gates] running {names} ({elapsed:.0f}s)"
        return line + (f": {printable(last)[:60]}" if last else "")

    def _tick(self) -> None:
        while not self._done.wait(TICK_S):
            line = self.status()
            if line is None:
                continue
            if self.tty:
                self.stream.write("\r\x1b[K" + line)
                self.stream.flush()
                self._shown = True
            elif time.monotonic() >= self._next_beat:
                self._next_beat = time.monotonic() + self.every_s
                if self.heartbeat is not None:
                    self.heartbeat(line)
                else:
                    print(line, file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False
