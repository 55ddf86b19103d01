"""One run per live repository: an flock'd file naming its holder."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from types import TracebackType

from am_patch.errors import Category, Refusal
from am_patch.layout import Layout

log = logging.getLogger("am_patch")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """The kernel drops an flock when its holder dies, so a dead holder's lock is free at once."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.path = layout.lock
        self._fd: int | None = None
        self.took_over: str | None = None

    def __enter__(self) -> RunLock:
        fd = self.layout.open_fd(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Refusal(
                Category.LOCK,
                f"another am-patch run holds {self.path} ({holder}); wait for it to finish",
            ) from None
        previous = os.read(fd, 200).decode(errors="replace").strip()
        if previous:
            pid = previous.split()[0].removeprefix("pid=")
            if pid.isdigit() and not _alive(int(pid)):
                self.took_over = previous
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"pid={os.getpid()} started={started}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
