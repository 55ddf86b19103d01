"""Snapshots of a directory's files, for asserting that a run left them byte for byte alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Directories the gates and test runs write into; never part of a snapshot.
TOOL_CACHES = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})


def file_states(root: Path, *, skip_git_pointer: bool = False) -> dict[str, tuple[str, bytes]]:
    """Every file under root but tool caches, by posix path relative to root: its kind
    ("file", "exec" or "link") and its bytes (a link's target). skip_git_pointer leaves out
    root/.git, the file a worktree points at its repository with."""
    states: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in TOOL_CACHES)
        for name in filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if skip_git_pointer and rel == ".git":
                continue
            if path.is_symlink():
                states[rel] = ("link", os.readlink(path).encode())
            else:
                kind = "exec" if path.stat().st_mode & stat.S_IXUSR else "file"
                states[rel] = (kind, path.read_bytes())
    return states
