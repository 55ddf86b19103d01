"""Reading and composing git trees and blobs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pygit2
from pygit2.enums import FileMode

from am_patch.repo.objects import LINK, Change, RepoPath, TreeOid
from am_patch.repo.walk import Memory


class Trees:
    """Tree and blob access of a pygit2 repository; `Repo` builds on it."""

    def __init__(self, raw: pygit2.Repository, memory: Memory | None = None) -> None:
        self.raw = raw
        self.memory = memory or Memory()

    def tree_of(self, commit: str) -> TreeOid:
        return TreeOid(str(self.raw[commit].peel(pygit2.Commit).tree_id))

    def tree_entries(self, tree: str) -> dict[str, tuple[str, int]]:
        index = pygit2.Index()
        index.read_tree(self.raw[tree].peel(pygit2.Tree))
        return {e.path: (str(e.id), int(e.mode)) for e in index}

    def entry(self, tree: str, path: str) -> tuple[str, int] | None:
        """The blob id and mode of the file (or link, or gitlink) at path; None when tree has
        nothing there or a directory."""
        try:
            obj = self.raw[tree].peel(pygit2.Tree)[path]
        except KeyError:
            return None
        if obj.filemode == FileMode.TREE:
            return None
        return str(obj.id), int(obj.filemode)

    def links(self, tree: str) -> dict[str, bytes]:
        """Every symlink of tree: its path and target."""
        index = pygit2.Index()
        index.read_tree(self.raw[tree].peel(pygit2.Tree))
        return {e.path: self.blob_bytes(str(e.id)) for e in index if int(e.mode) == LINK}

    def blob_size(self, oid: str) -> int:
        return int(self.raw[oid].peel(pygit2.Blob).size)

    def blob_bytes(self, oid: str) -> bytes:
        return bytes(self.raw[oid].peel(pygit2.Blob).data)

    def contains(self, oid: str) -> bool:
        return oid in self.raw

    def empty_tree(self) -> TreeOid:
        return TreeOid(str(self.raw.TreeBuilder().write()))

    def diff_trees(self, old: str, new: str) -> list[Change]:
        diff = self.raw[old].peel(pygit2.Tree).diff_to_tree(self.raw[new].peel(pygit2.Tree))
        changes = []
        for delta in diff.deltas:
            status = delta.status_char()
            mode = int(delta.new_file.mode) if status != "D" else 0
            old_mode = int(delta.old_file.mode) if status != "A" else 0
            changes.append(Change(status, RepoPath(delta.new_file.path), mode, old_mode))
        return changes

    def patch_text(self, old: str, new: str) -> str:
        """The change from tree old to tree new as a git patch, binary files included (what
        `git apply` takes back)."""
        diff = (
            self.raw[old]
            .peel(pygit2.Tree)
            .diff_to_tree(
                self.raw[new].peel(pygit2.Tree), flags=pygit2.enums.DiffOption.SHOW_BINARY
            )
        )
        return diff.patch or ""

    def tree_with(self, base: str, source: str, paths: Iterable[str]) -> TreeOid:
        """base's tree with each path taken from source's tree (absent there: removed)."""
        index = pygit2.Index()
        index.read_tree(self.raw[base].peel(pygit2.Tree))
        for path in paths:
            got = self.entry(source, path)
            if got is None:
                if path in index:
                    index.remove(path)
            else:
                oid, mode = got
                index.add(pygit2.IndexEntry(path, pygit2.Oid(hex=oid), FileMode(mode)))
        return TreeOid(str(index.write_tree(self.raw)))

    def tree_from_dir(self, base: str, directory: Path, paths: Iterable[str]) -> TreeOid:
        """base's tree with each path as it is now in directory (missing there: removed)."""
        index = pygit2.Index()
        index.read_tree(self.raw[base].peel(pygit2.Tree))
        for path in paths:
            full = directory / path
            if full.is_symlink():
                oid = self.raw.create_blob(os.fsencode(os.readlink(full)))
                index.add(pygit2.IndexEntry(path, oid, FileMode.LINK))
            elif full.is_file():
                mode = FileMode.BLOB_EXECUTABLE if full.stat().st_mode & 0o111 else FileMode.BLOB
                index.add(pygit2.IndexEntry(path, self.raw.create_blob_fromdisk(str(full)), mode))
            elif path in index:
                index.remove(path)
        return TreeOid(str(index.write_tree(self.raw)))
