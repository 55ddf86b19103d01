"""Working directories as trees: snapshots, exact restores, exports and path checkouts."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, FileMode

from am_patch.repo.objects import (
    BLOB,
    EXEC,
    LINK,
    Snapshot,
    TreeOid,
    is_git_component,
    prune_empty_dirs,
    remove_tree,
)
from am_patch.repo.trees import Trees


@dataclass(slots=True)
class _Walk:
    repo: pygit2.Repository
    root: Path
    tracked: frozenset[str]
    tracked_dirs: frozenset[str]
    entries: dict[str, tuple[str, int]] = field(default_factory=dict)
    nested: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    write: bool = True

    def ignored(self, rel: str, is_dir: bool) -> bool:
        if rel in self.tracked or (is_dir and rel in self.tracked_dirs):
            return False
        return bool(self.repo.path_is_ignored(rel + "/" if is_dir else rel))

    def blob(self, data_path: Path, link: bool) -> str:
        if link:
            target = os.fsencode(os.readlink(data_path))
            oid = self.repo.create_blob(target) if self.write else pygit2.hash(target)
        elif self.write:
            oid = self.repo.create_blob_fromdisk(str(data_path))
        else:
            oid = pygit2.hashfile(str(data_path))
        return str(oid)

    def walk(self, directory: Path, prefix: str) -> None:
        with os.scandir(directory) as it:
            items = sorted(it, key=lambda e: e.name)
        for item in items:
            rel = prefix + item.name
            if not prefix and item.name == ".git":
                continue
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                self.unsupported.append(rel.encode("utf-8", "replace").decode())
                continue
            st = item.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                if not self.ignored(rel, False):
                    self.entries[rel] = (self.blob(Path(item.path), True), LINK)
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
                    self.entries[rel] = (self.blob(Path(item.path), False), mode)
            elif not self.ignored(rel, False):
                self.unsupported.append(rel)


def _on_disk(path: Path) -> tuple[str, int] | None:
    """A file's blob id and mode as git would store it; None when nothing is there."""
    try:
        st = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISLNK(st.st_mode):
        return str(pygit2.hash(os.fsencode(os.readlink(path)))), LINK
    if stat.S_ISREG(st.st_mode):
        return str(pygit2.hashfile(str(path))), EXEC if st.st_mode & 0o111 else BLOB
    return "", st.st_mode  # a directory or special file: never a blob of any commit


class Workdir(Trees):
    """The working directory of a repository or worktree; `Repo` builds on it."""

    @property
    def root(self) -> Path:
        """The working tree; for a bare repository, its git directory."""
        return Path(self.raw.workdir or self.raw.path).resolve()

    def snapshot(self, tracked_in: str | None = None, *, write: bool = True) -> Snapshot:
        """The working directory as a tree: tracked_in's files plus untracked, not ignored."""
        tracked = frozenset(self.tree_entries(tracked_in)) if tracked_in else frozenset()
        dirs = frozenset(p.rsplit("/", i)[0] for p in tracked for i in range(1, p.count("/") + 1))
        walk = _Walk(self.raw, self.root, tracked, dirs, write=write)
        walk.walk(self.root, "")
        index = pygit2.Index()
        for path, (oid, mode) in walk.entries.items():
            index.add(pygit2.IndexEntry(path, pygit2.Oid(hex=oid), FileMode(mode)))
        tree = TreeOid(str(index.write_tree(self.raw))) if write else TreeOid("")
        return Snapshot(tree, walk.entries, tuple(walk.nested), tuple(walk.unsupported))

    def restore(self, tree: str, tracked_in: str | None = None) -> None:
        """Make the working directory match tree exactly (ignored files are left alone)."""
        current = self.snapshot(tracked_in or tree, write=False).entries
        target = self.tree_entries(tree)
        for path in sorted(set(current) - set(target), reverse=True):
            (self.root / path).unlink()
            prune_empty_dirs(self.root, path)
        for path, (oid, mode) in target.items():
            if current.get(path) == (oid, mode):
                continue
            self._write_file(path, oid, mode)

    def _write_file(self, path: str, oid: str, mode: int) -> None:
        dest = self.root / path
        for parent in reversed(dest.relative_to(self.root).parents):
            full = self.root / parent
            if full.is_symlink() or (full.exists() and not full.is_dir()):
                full.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        elif dest.is_dir():
            remove_tree(dest)
        data = self.blob_bytes(oid)
        if mode == LINK:
            os.symlink(os.fsdecode(data), dest)
            return
        dest.write_bytes(data)
        dest.chmod(0o755 if mode == EXEC else 0o644)

    def export_tree(self, tree: str, directory: Path) -> None:
        """Write tree's files into directory without touching this repository's index or HEAD."""
        directory.mkdir(parents=True, exist_ok=True)
        strategy = CheckoutStrategy.FORCE | CheckoutStrategy.DONT_UPDATE_INDEX
        self.raw.checkout_tree(  # type: ignore[no-untyped-call]
            self.raw[tree].peel(pygit2.Tree), directory=str(directory), strategy=strategy
        )

    def reset_index(self, tree: str) -> None:
        index = self.raw.index
        index.read_tree(self.raw[tree].peel(pygit2.Tree))
        index.write()

    def dirty_paths(self, paths: Iterable[str]) -> list[str]:
        """Of paths, those whose working-tree or index state differs from HEAD."""
        dirty = []
        for path in paths:
            try:
                flags = self.raw.status_file(path)
            except KeyError:
                continue
            except pygit2.GitError:
                dirty.append(path)
                continue
            if flags != pygit2.enums.FileStatus.CURRENT and not (
                flags & pygit2.enums.FileStatus.IGNORED
            ):
                dirty.append(path)
        return dirty

    def differs_from(self, commit: str, paths: Iterable[str]) -> list[str]:
        """Of paths, those whose working-tree file is not commit's version (content and mode;
        a path commit lacks must be absent). Only these files are hashed, nothing is written."""
        tree = self.tree_of(commit)
        return [p for p in paths if _on_disk(self.root / p) != self.entry(tree, p)]

    def reset_index_paths(self, commit: str, paths: Iterable[str]) -> None:
        """Index entries of paths as in commit (removed where it lacks them); files untouched."""
        index = self.raw.index
        index.read(False)
        tree = self.tree_of(commit)
        for path in paths:
            got = self.entry(tree, path)
            if got is not None:
                index.add(pygit2.IndexEntry(path, pygit2.Oid(hex=got[0]), FileMode(got[1])))
            elif path in index:
                index.remove(path)
        index.write()

    def checkout_paths(self, commit: str, paths: list[str], *, force: bool = False) -> None:
        """Bring paths of commit into index and working tree; unless force, never clobber edits."""
        if not paths:
            return
        tree = self.raw[commit].peel(pygit2.Tree)
        base = CheckoutStrategy.FORCE if force else CheckoutStrategy.SAFE
        strategy = (
            base | CheckoutStrategy.DISABLE_PATHSPEC_MATCH | CheckoutStrategy.RECREATE_MISSING
        )
        self.raw.checkout_tree(tree, paths=paths, strategy=strategy)  # type: ignore[no-untyped-call]
        # checkout skips files already matching on disk; their index entries must match too
        index = self.raw.index
        index.read(False)
        for path in paths:
            if self.entry(str(tree.id), path) is not None:
                index.add(path)
            elif path in index:
                index.remove(path)
        index.write()
