"""Working directories as trees: snapshots, exact restores, exports and path checkouts."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, FileMode, FileStatus

from am_patch.errors import Category, Refusal
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
    ignored_paths: list[str] = field(default_factory=list)  # not descended into
    write: bool = True

    def ignored(self, rel: str, is_dir: bool) -> bool:
        if rel in self.tracked or (is_dir and rel in self.tracked_dirs):
            return False
        if self.repo.path_is_ignored(rel + "/" if is_dir else rel):
            self.ignored_paths.append(rel + "/" if is_dir else rel)
            return True
        return False

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


_IN_PROGRESS = (
    ("MERGE_HEAD", "a merge"),
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase or git am"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ("REVERT_HEAD", "a revert"),
)


def _write_failed(exc: pygit2.GitError) -> Refusal:
    return Refusal(Category.LIVE_DIRTY, f"writing live files or the index failed: {exc}")


def _remove(path: Path) -> None:
    """Remove what is at path, never following a link: a directory whole, anything else."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        remove_tree(path)
    else:
        path.unlink()


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
        return Snapshot(
            tree,
            walk.entries,
            tuple(walk.nested),
            tuple(walk.unsupported),
            tuple(walk.ignored_paths),
        )

    def restore(
        self, tree: str, tracked_in: str | None = None, *, ignored: Iterable[str] | None = None
    ) -> None:
        """Make the working directory match tree exactly. Ignored files are left alone, unless
        ignored lists those of a snapshot: the ignored files and directories not in it go."""
        walked = self.snapshot(tracked_in or tree, write=False)
        current = walked.entries
        target = self.tree_entries(tree)
        for path in walked.unsupported:  # FIFOs, sockets, undecodable names: never in any tree
            _remove(self.root / path)
            prune_empty_dirs(self.root, path)
        for path in sorted(set(current) - set(target), reverse=True):
            (self.root / path).unlink()
            prune_empty_dirs(self.root, path)
        for path, (oid, mode) in target.items():
            if current.get(path) == (oid, mode):
                continue
            self._write_file(path, oid, mode)
        if ignored is None:
            return
        # walked again: what is ignored is decided by the restored .gitignore files
        now = self.snapshot(tracked_in or tree, write=False).ignored
        for path in sorted(set(now) - set(ignored), reverse=True):
            full = self.root / path.rstrip("/")
            if path.endswith("/"):
                remove_tree(full)
            else:
                full.unlink()
            prune_empty_dirs(self.root, path.rstrip("/"))

    def _write_file(self, path: str, oid: str, mode: int) -> None:
        dest = self.root / path
        for parent in reversed(dest.relative_to(self.root).parents):
            full = self.root / parent
            if full.is_symlink() or (full.exists() and not full.is_dir()):
                full.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove(dest)  # whatever is there, a FIFO too: writing one would block
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

    def dirty_paths(self, paths: Iterable[str], incoming: str | None = None) -> list[str]:
        """Of paths, those a landing must not write: their working-tree or index state differs
        from HEAD, a parent of theirs is a file or symlink, or they are untracked in HEAD (ignored
        or not) yet not incoming's version (any untracked one when incoming is None)."""
        tree = self.tree_of(incoming) if incoming else None
        paths = list(paths)
        replaced = frozenset(paths)  # a directory or file this landing replaces wholly is no block
        dirty = []
        for path in paths:
            if self._blocked_parent(path, replaced):
                dirty.append(path)
                continue
            if (self.root / path).is_dir() and not (self.root / path).is_symlink():
                if not self._replaceable_dir(path, replaced):
                    dirty.append(path)
                continue
            try:
                flags = self.raw.status_file(path)
            except KeyError:
                continue
            except pygit2.GitError:
                dirty.append(path)
                continue
            if flags == FileStatus.CURRENT:
                continue
            same = tree is not None and _on_disk(self.root / path) == self.entry(tree, path)
            if not (flags & FileStatus.IGNORED and same):
                dirty.append(path)
        return dirty

    def _blocked_parent(self, path: str, replaced: frozenset[str]) -> bool:
        """A parent directory of path exists in the working tree as a file or symlink that is
        not a clean tracked file the same landing replaces."""
        parent = self.root
        for part in path.split("/")[:-1]:
            parent = parent / part
            if parent.is_symlink() or (os.path.lexists(parent) and not parent.is_dir()):
                rel = parent.relative_to(self.root).as_posix()
                return rel not in replaced or not self._clean(rel)
        return False

    def _replaceable_dir(self, path: str, replaced: frozenset[str]) -> bool:
        """A directory where the landing puts a file: only when everything in it is a clean
        tracked file the landing removes (an untracked or ignored file of yours blocks it)."""
        for dirpath, _, files in os.walk(self.root / path):
            for name in files:
                rel = Path(dirpath, name).relative_to(self.root).as_posix()
                if rel not in replaced or not self._clean(rel):
                    return False
        return True

    def _clean(self, rel: str) -> bool:
        try:
            return self.raw.status_file(rel) == FileStatus.CURRENT
        except (KeyError, pygit2.GitError):
            return False

    def index_locked(self) -> bool:
        """Another git process holds this working tree's index (index.lock exists)."""
        return (Path(self.raw.path) / "index.lock").exists()

    def operation_in_progress(self) -> str | None:
        """The merge, rebase, cherry-pick or revert git has started here and not finished."""
        git_dir = Path(self.raw.path)
        for name, what in _IN_PROGRESS:
            if (git_dir / name).exists():
                return what
        return None

    def conflicted_paths(self) -> list[str]:
        """Paths the index holds unresolved merge conflicts for."""
        index = self.raw.index
        index.read(False)
        if index.conflicts is None:
            return []
        return sorted({e.path for entries in index.conflicts for e in entries if e is not None})

    def differs_from(self, commit: str, paths: Iterable[str]) -> list[str]:
        """Of paths, those whose working-tree file is not commit's version (content and mode;
        a path commit lacks must be absent). Only these files are hashed, nothing is written."""
        tree = self.tree_of(commit)
        return [p for p in paths if _on_disk(self.root / p) != self.entry(tree, p)]

    def write_paths(self, commit: str, paths: Iterable[str]) -> None:
        """Files of paths as in commit (removed where it lacks them), without the index: for
        when another process holds it."""
        tree = self.tree_of(commit)
        for path in paths:
            got = self.entry(tree, path)
            if got is not None:
                if _on_disk(self.root / path) != got:
                    self._write_file(path, *got)
            elif (self.root / path).is_symlink() or (self.root / path).is_file():
                (self.root / path).unlink()
                prune_empty_dirs(self.root, path)

    def index_matches(self, commit: str, paths: Iterable[str]) -> bool:
        """The index on disk has commit's entries for paths (none where commit lacks them)."""
        index = self.raw.index
        index.read(True)  # drop what a failed write left in memory
        tree = self.tree_of(commit)
        for path in paths:
            want = self.entry(tree, path)
            held = (str(index[path].id), int(index[path].mode)) if path in index else None
            if held != want:
                return False
        return True

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
        try:
            index.write()
        except pygit2.GitError as exc:
            raise _write_failed(exc) from exc

    def checkout_paths(self, commit: str, paths: list[str], *, force: bool = False) -> None:
        """Bring paths of commit into index and working tree; unless force, never clobber edits."""
        if not paths:
            return
        tree = self.raw[commit].peel(pygit2.Tree)
        base = (
            CheckoutStrategy.FORCE
            if force
            else CheckoutStrategy.SAFE | CheckoutStrategy.DONT_OVERWRITE_IGNORED
        )
        strategy = (
            base | CheckoutStrategy.DISABLE_PATHSPEC_MATCH | CheckoutStrategy.RECREATE_MISSING
        )
        # a file already as commit has it is left alone (an ignored one would block SAFE)
        stale = [p for p in paths if _on_disk(self.root / p) != self.entry(str(tree.id), p)]
        try:
            if stale:  # no paths at all would mean every path
                self.raw.checkout_tree(tree, paths=stale, strategy=strategy)  # type: ignore[no-untyped-call]
            # checkout skips files already matching on disk; their index entries must match too
            index = self.raw.index
            index.read(False)
            for path in paths:
                if self.entry(str(tree.id), path) is not None:
                    index.add(path)
                elif path in index:
                    index.remove(path)
            index.write()
        except pygit2.GitError as exc:
            raise _write_failed(exc) from exc
