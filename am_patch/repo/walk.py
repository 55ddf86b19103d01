"""Walking a working directory as git status does: every entry is lstat'ed, and only a file whose
stat changed since it was last seen is read and hashed.

A file rewritten in place changes its ctime (and a replaced one its inode); a jailed patch can
set a file's mtime back, never its ctime or inode, so (device, inode, ctime, mtime, size, mode)
unchanged means content unchanged. A stat taken within RACY_NS of the walk that recorded it is
not trusted: file system clocks are coarse, and a second write in the same tick would keep it.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from am_patch.repo.objects import BLOB, EXEC, LINK, is_git_component

Stat = tuple[int, int, int, int, int, int]  # device, inode, ctime ns, mtime ns, size, mode
RACY_NS = 100_000_000


def stat_of(st: os.stat_result) -> Stat:
    return (st.st_dev, st.st_ino, st.st_ctime_ns, st.st_mtime_ns, st.st_size, st.st_mode)


@dataclass(frozen=True, slots=True)
class Known:
    """A working directory as last seen: each file's blob id, mode and stat, and their tree."""

    tree: str
    files: Mapping[str, tuple[str, int, Stat]]
    taken_ns: int  # when that walk started

    def oid_if_unchanged(self, rel: str, now: Stat) -> str | None:
        seen = self.files.get(rel)
        if seen is None or seen[2] != now or seen[2][2] >= self.taken_ns - RACY_NS:
            return None
        return seen[0]

    def to_json(self) -> bytes:
        files = {path: [oid, mode, *st] for path, (oid, mode, st) in self.files.items()}
        data = {"tree": self.tree, "taken_ns": self.taken_ns, "files": files}
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Known | None:
        """None for anything but a record this module wrote (it is only ever a shortcut)."""
        try:
            raw = json.loads(data)
            files = {
                str(path): (str(v[0]), int(v[1]), (*map(int, v[2:8]),))
                for path, v in raw["files"].items()
            }
            return cls(str(raw["tree"]), files, int(raw["taken_ns"]))  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError, IndexError):
            return None


@dataclass(slots=True)
class Memory:
    """What a workspace was last seen as, kept in memory during a run and on disk between runs
    (outside the worktree: the patch cannot write it)."""

    path: Path | None = None
    write: Callable[[Path, bytes], None] | None = None
    known: Known | None = None
    loaded: bool = False

    def get(self) -> Known | None:
        if not self.loaded:
            self.loaded = True
            if self.path is not None and self.path.is_file() and not self.path.is_symlink():
                self.known = Known.from_json(self.path.read_bytes())
        return self.known

    def forget(self) -> None:
        self.known, self.loaded = None, True

    def persist(self) -> None:
        if self.path is not None and self.write is not None and self.known is not None:
            self.write(self.path, self.known.to_json())


@dataclass(slots=True)
class Walk:
    """One walk of a working directory: its entries (a blob id and mode each), their stats, and
    what a tree cannot hold."""

    repo: pygit2.Repository
    is_tracked: Callable[[str], bool]
    is_tracked_dir: Callable[[str], bool]
    known: Known | None = None
    write: bool = True
    trusted: pygit2.Tree | None = None  # a tree just checked out: its blob ids are the files'
    entries: dict[str, tuple[str, int]] = field(default_factory=dict)
    stats: dict[str, Stat] = field(default_factory=dict)
    nested: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    ignored_paths: list[str] = field(default_factory=list)  # not descended into
    started_ns: int = field(default_factory=time.time_ns)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        if self.is_tracked(rel) or (is_dir and self.is_tracked_dir(rel)):
            return False
        if self.repo.path_is_ignored(rel + "/" if is_dir else rel):
            self.ignored_paths.append(rel + "/" if is_dir else rel)
            return True
        return False

    def blob(self, path: str, rel: str, st: os.stat_result, link: bool) -> str:
        now = stat_of(st)
        self.stats[rel] = now
        if self.known is not None:
            oid = self.known.oid_if_unchanged(rel, now)
            if oid is not None:
                return oid
        if self.trusted is not None and rel in self.trusted:
            entry = self.trusted[rel]
            if entry.type_str != "tree":
                return str(entry.id)
        if link:
            target = os.fsencode(os.readlink(path))
            found = pygit2.hash(target)
            if self.write and found not in self.repo:
                self.repo.create_blob(target)
        else:
            found = pygit2.hashfile(path)
            if self.write and found not in self.repo:  # only new content is stored
                self.repo.create_blob_fromdisk(path)
        return str(found)

    def walk(self, directory: Path, prefix: str) -> None:
        try:
            with os.scandir(directory) as it:
                items = sorted(it, key=lambda e: e.name)
        except PermissionError:  # a patch may chmod a directory of its own to 000
            self.unsupported.append(prefix.rstrip("/"))
            return
        for item in items:
            rel = prefix + item.name
            if not prefix and item.name == ".git":
                continue
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:  # kept as os.fsdecode gives it, so restore can remove it
                self.unsupported.append(rel)
                continue
            st = item.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                if not self.ignored(rel, False):
                    self.entries[rel] = (self.blob(item.path, rel, st, True), LINK)
            elif stat.S_ISDIR(st.st_mode):
                if self.ignored(rel, True):
                    continue
                if os.path.lexists(os.path.join(item.path, ".git")) or is_git_component(item.name):
                    self.nested.append(rel)
                    continue
                self.walk(Path(item.path), rel + "/")
            elif stat.S_ISREG(st.st_mode):
                if not self.ignored(rel, False):
                    mode = EXEC if st.st_mode & 0o111 else BLOB
                    self.entries[rel] = (self.blob(item.path, rel, st, False), mode)
            elif not self.ignored(rel, False):
                self.unsupported.append(rel)

    def known_now(self, tree: str) -> Known:
        files = {p: (oid, mode, self.stats[p]) for p, (oid, mode) in self.entries.items()}
        return Known(tree, files, self.started_ns)
