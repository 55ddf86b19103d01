"""What runs side by side must not do at once: flock'd files naming their holder.

One lock per issue (patches/locks/issue_<ID>.lock): a second run of the same issue is refused
at once, or waits a bounded time. One landing lock per live repository (patches/am_patch.lock):
the compare-and-swap of main, the sync of the promoted paths, the live gates and the push, and
the recovery of a landing a killed run left, happen one run at a time. The kernel drops an flock
when its holder dies, so a dead holder's lock is free at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from types import TracebackType

from am_patch.errors import Category, Refusal
from am_patch.layout import Layout

log = logging.getLogger("am_patch")

POLL_S = 0.2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lock:
    """An flock on path. `wait_s` None waits as long as it takes; 0 refuses at once
    (PREFLIGHT:LOCK naming the holder); more waits that long first."""

    def __init__(self, layout: Layout, path: Path, *, wait_s: float | None = 0) -> None:
        self.layout = layout
        self.path = path
        self.wait_s = wait_s
        self._fd: int | None = None
        self.took_over: str | None = None

    def __enter__(self) -> Lock:
        fd = self.layout.open_fd(self.path, os.O_RDWR | os.O_CREAT)
        try:
            self._take(fd)
        except BaseException:
            os.close(fd)
            raise
        previous = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if previous:
            pid = previous.split()[0].removeprefix("pid=")
            if pid.isdigit() and not _alive(int(pid)):
                self.took_over = previous
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"pid={os.getpid()} started={started}\n".encode(), 0)
        self._fd = fd
        return self

    def _take(self, fd: int) -> None:
        if self.wait_s is None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a signal still interrupts it
            return
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                    waited = f" after waiting {self.wait_s:g}s" if self.wait_s else ""
                    raise Refusal(
                        Category.LOCK,
                        f"another am-patch run holds {self.path} ({holder}){waited}; wait for "
                        "it to finish, or rerun with --wait SECONDS",
                    ) from None
                time.sleep(POLL_S)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def issue_lock(layout: Layout, label: str, *, wait_s: float = 0) -> Lock:
    """The lock of one issue's runs (label: issue_<ID>, or finalize_live)."""
    return Lock(layout, layout.issue_lock(label), wait_s=wait_s)


def landing_lock(layout: Layout) -> Lock:
    """The live repository's landing lock; waited for as long as the landing before takes."""
    return Lock(layout, layout.lock, wait_s=None)
