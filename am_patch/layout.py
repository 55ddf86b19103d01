"""Where am-patch keeps its own files, and how it writes them: never through a link.

Everything lives under `patches/` in the live tree (kept out of git by .git/info/exclude) or in
the git directory. A commit from elsewhere can still track a symlink under `patches/`
(`patches/am_patch.lock -> ../src/app.py`), so every write here walks from a trusted root
(the work tree or the git directory) opening each directory with O_NOFOLLOW, and opens the file
itself with O_NOFOLLOW: a link anywhere on the way is an UnsafePath naming it, never followed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(Exception):
    """am-patch would have written through a link (or into something not a directory)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}; am-patch never writes through a link: remove it")
        self.path = path


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths of am-patch's own files for one live repository."""

    root: Path  # the live work tree
    git_dir: Path  # its git common directory

    @property
    def patches(self) -> Path:
        return self.root / "patches"

    @property
    def logs(self) -> Path:
        return self.patches / "logs"

    @property
    def workspaces(self) -> Path:
        return self.patches / "workspaces"

    @property
    def pool(self) -> Path:
        """patches/workspaces/.pool: idle worktrees kept for the next issue (pool.py)."""
        return self.workspaces / ".pool"

    def workspace(self, label: str) -> Path:
        """patches/workspaces/<label>: meta.json and the worktree repo/."""
        return self.workspaces / label

    def filed(self, outcome: str) -> Path:
        """patches/successful or patches/unsuccessful: inputs filed after a run."""
        return self.patches / outcome

    @property
    def lock(self) -> Path:
        """The landing lock: one landing at a time (lock.py)."""
        return self.patches / "am_patch.lock"

    def issue_lock(self, label: str) -> Path:
        """One run of an issue at a time."""
        return self.patches / "locks" / f"{label}.lock"

    @property
    def newest_log(self) -> Path:
        return self.patches / "am_patch.log"

    @property
    def success_zip(self) -> Path:
        return self.patches / "patched_success.zip"

    @property
    def success_record(self) -> Path:
        """Which commit patched_success.zip holds, so the next one writes only what changed."""
        return self.state / "success_zip.json"

    def failure_zip(self, label: str, number: int) -> Path:
        return self.patches / f"patched_{label}_v{number:02d}.zip"

    @property
    def state(self) -> Path:
        """<git dir>/am_patch: the verdict cache and the gates' tool caches."""
        return self.git_dir / "am_patch"

    @property
    def verdicts(self) -> Path:
        return self.state / "verdicts.json"

    @property
    def journal(self) -> Path:
        """The landing journal: present while a landing may be half done."""
        return self.git_dir / "am_patch_landing.json"

    def _anchor(self, path: Path) -> Path:
        for anchor in (self.git_dir, self.root):  # the git dir may lie inside the work tree
            if path.is_relative_to(anchor):
                return anchor
        raise ValueError(f"{path} is none of am-patch's files")

    @contextlib.contextmanager
    def directory(self, path: Path, *, create: bool = True) -> Iterator[int]:
        """An open descriptor of directory path, every component checked not to be a link."""
        fd = open_dir(self._anchor(path), path, create=create)
        try:
            yield fd
        finally:
            os.close(fd)

    def mkdir(self, path: Path) -> Path:
        with self.directory(path):
            return path

    def check(self, path: Path) -> None:
        """UnsafePath when path or a directory on the way is a link; nothing is created."""
        try:
            with self.directory(path.parent, create=False) as parent:
                st = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(path, _what(path))

    def check_all(self) -> None:
        """Before a run writes anything: none of am-patch's own paths is a link."""
        for path in (self.lock, self.patches / "locks", self.logs, self.workspaces):
            self.check(path)
        for path in (self.filed("successful"), self.filed("unsuccessful"), self.success_zip):
            self.check(path)
        self.check(self.verdicts)
        self.check(self.journal)

    def open(self, path: Path, mode: str = "rb", *, exclusive: bool = False) -> IO[Any]:
        """open(path, mode) that refuses a link at path or on the way ('r', 'w', 'a', '+')."""
        flags = _mode_flags(mode) | (os.O_EXCL if exclusive else 0)
        fd = self.open_fd(path, flags)
        if "b" in mode:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding="utf-8", errors="backslashreplace")

    def open_fd(self, path: Path, flags: int, perms: int = 0o644) -> int:
        with self.directory(path.parent, create=bool(flags & os.O_CREAT)) as parent:
            try:
                return os.open(
                    path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, perms, dir_fd=parent
                )
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UnsafePath(path, _what(path)) from None
                raise

    @contextlib.contextmanager
    def exclusive(self, path: Path) -> Iterator[None]:
        """One process at a time past this point: an flock on path (a lock file of its own;
        runs side by side read-modify-write shared records under it)."""
        fd = self.open_fd(path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def write(self, path: Path, data: bytes) -> None:
        """Replace path's content atomically (a new file renamed over it; a link there is
        replaced as a link, never written through)."""
        with self.directory(path.parent) as parent:
            tmp = f".{path.name}.{os.getpid()}.tmp"
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644, dir_fd=parent
            )
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path.name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=parent)
                raise

    def symlink(self, path: Path, target: str) -> None:
        """path becomes a link to target, replacing what was there (atomically)."""
        with self.directory(path.parent) as parent:
            tmp = f".{path.name}.{os.getpid()}.link"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=parent)
            os.symlink(target, tmp, dir_fd=parent)
            os.replace(tmp, path.name, src_dir_fd=parent, dst_dir_fd=parent)

    def move(self, source: Path, dest: Path) -> None:
        """Rename source to dest, both of am-patch's files; neither side follows a link."""
        with self.directory(source.parent, create=False) as src, self.directory(dest.parent) as dst:
            os.rename(source.name, dest.name, src_dir_fd=src, dst_dir_fd=dst)


def open_dir(anchor: Path, path: Path, *, create: bool) -> int:
    """A descriptor of path (under anchor), opened one component at a time with O_NOFOLLOW."""
    fd = os.open(anchor, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        parts = path.relative_to(anchor).parts
        for number, part in enumerate(parts):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    where = anchor.joinpath(*parts[: number + 1])
                    raise UnsafePath(where, _what(where)) from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _what(path: Path) -> str:
    return f"a link to {os.readlink(path)}" if path.is_symlink() else "not a directory"


def _mode_flags(mode: str) -> int:
    plus = "+" in mode
    if mode.startswith("r"):
        return os.O_RDWR if plus else os.O_RDONLY
    base = os.O_RDWR if plus else os.O_WRONLY
    if mode.startswith("w"):
        return base | os.O_CREAT | os.O_TRUNC
    if mode.startswith("a"):
        return base | os.O_CREAT | os.O_APPEND
    if mode.startswith("x"):
        return base | os.O_CREAT | os.O_EXCL
    raise ValueError(mode)
