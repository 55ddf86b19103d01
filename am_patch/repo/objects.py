"""Plain values of the git data layer: object ids, modes, changes, snapshots, path helpers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NewType

from pygit2.enums import FileMode

CommitOid = NewType("CommitOid", str)
TreeOid = NewType("TreeOid", str)
RepoPath = NewType("RepoPath", str)

LINK = int(FileMode.LINK)
BLOB = int(FileMode.BLOB)
EXEC = int(FileMode.BLOB_EXECUTABLE)
GITLINK = int(FileMode.COMMIT)
ZERO_OID = "0" * 40


def is_git_component(name: str) -> bool:
    """True for `.git` and the spellings that mean `.git` on case-folding or NTFS file systems."""
    return name.rstrip(". ").lower() == ".git"


@dataclass(frozen=True, slots=True)
class Change:
    status: str  # A, M, D or T (type change)
    path: RepoPath
    mode: int  # new mode, 0 when deleted
    old_mode: int = 0  # 0 when added

    @property
    def involves_link(self) -> bool:
        """A symlink appears, goes or is retargeted: other links' resolution may change."""
        return LINK in (self.mode, self.old_mode)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A working directory as a tree, plus what a tree cannot hold."""

    tree: TreeOid
    entries: dict[str, tuple[str, int]]
    nested_repos: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # ignored files, and ignored directories (as "dir/") whole


def prune_empty_dirs(root: Path, rel: str) -> None:
    parent = (root / rel).parent
    while parent != root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def remove_tree(path: Path) -> None:
    """Remove a directory tree even where a patch made directories unreadable or read-only;
    never follows a link (a link at path itself is removed as a link)."""
    if path.is_symlink():
        path.unlink()
        return
    os.chmod(path, 0o700)
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
    shutil.rmtree(path)


def iter_parents(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])
