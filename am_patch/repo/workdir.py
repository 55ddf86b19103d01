"""Working directories as trees: snapshots, exact restores, exports and path checkouts."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, FileMode, FileStatus

from am_patch.errors import Category, Refusal
from am_patch.repo.objects import (
    BLOB,
    EXEC,
    LINK,
    Change,
    Snapshot,
    TreeOid,
    prune_empty_dirs,
    remove_tree,
)
from am_patch.repo.trees import Trees
from am_patch.repo.walk import Known, Memory, Stat, Walk, stat_of

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

    memory: Memory  # what it was last seen as (set by Trees.__init__)

    @property
    def root(self) -> Path:
        """The working tree; for a bare repository, its git directory."""
        return Path(self.raw.workdir or self.raw.path).resolve()

    def snapshot(self, tracked_in: str | None = None, *, write: bool = True) -> Snapshot:
        """The working directory as a tree: tracked_in's files plus untracked, not ignored.

        Only files whose stat changed since this directory was last seen (`memory`) are read;
        the tree is the last one seen with just the differences applied.
        """
        walk = self._walk(tracked_in, write=write)
        tree = TreeOid("")
        if write:
            tree = self._tree_of_walk(walk)
            self.memory.known = walk.known_now(tree)
        return Snapshot(
            tree,
            walk.entries,
            tuple(walk.nested),
            tuple(walk.unsupported),
            tuple(walk.ignored_paths),
        )

    def as_seen(self) -> Snapshot | None:
        """The directory as memory holds it, read from nothing: for one this run has just made
        exactly a tree (no untracked or ignored file)."""
        known = self.memory.get()
        if known is None:
            return None
        entries = {path: (oid, mode) for path, (oid, mode, _) in known.files.items()}
        return Snapshot(TreeOid(known.tree), entries)

    def _walk(self, tracked_in: str | None, *, write: bool, trust: str | None = None) -> Walk:
        """Walk the directory; with `trust` (a tree just checked out), a file's blob id is
        tree's and nothing is read."""
        tree = self.raw[tracked_in].peel(pygit2.Tree) if tracked_in else None

        def tracked(rel: str) -> bool:
            return tree is not None and rel in tree

        trusted = self.raw[trust].peel(pygit2.Tree) if trust else None
        known = None if trusted is not None else self.memory.get()
        walk = Walk(self.raw, tracked, tracked, known=known, write=write, trusted=trusted)
        walk.walk(self.root, "")
        return walk

    def _tree_of_walk(self, walk: Walk) -> TreeOid:
        """The walk's entries as a tree: the known tree with the differences, else from scratch."""
        known = walk.known
        index = pygit2.Index()
        if known is not None and known.tree in self.raw:
            index.read_tree(self.raw[known.tree].peel(pygit2.Tree))
            for path in known.files.keys() - walk.entries.keys():
                index.remove(path)
            changed = {
                p: v for p, v in walk.entries.items() if known.files.get(p, ("", 0))[:2] != v
            }
        else:
            changed = walk.entries
        for path, (oid, mode) in changed.items():
            index.add(pygit2.IndexEntry(path, pygit2.Oid(hex=oid), FileMode(mode)))
        return TreeOid(str(index.write_tree(self.raw)))

    def assume(self, tree: str) -> None:
        """The directory was just checked out from tree: remember its files as tree's, with their
        stats now, without reading one."""
        walk = self._walk(tree, write=False, trust=tree)
        self.memory.known = walk.known_now(tree)

    def switch(self, tree: str) -> None:
        """The directory holds exactly what memory says (a pooled worktree): make it tree by
        writing only the files that differ."""
        known = self.memory.get()
        assert known is not None
        files = dict(known.files)
        self._apply(self.diff_trees(known.tree, tree), tree, files)
        self.memory.known = Known(tree, files, known.taken_ns)

    def restore(
        self, tree: str, tracked_in: str | None = None, *, ignored: Iterable[str] | None = None
    ) -> None:
        """Make the working directory match tree exactly. Ignored files are left alone, unless
        ignored lists those of a snapshot: the ignored files and directories not in it go.

        The directory is walked (reading only files whose stat changed) and taken as a tree;
        only the files that tree and the target differ in are touched.
        """
        walked = self._walk(tracked_in or tree, write=True)
        for path in walked.unsupported:  # FIFOs, sockets, undecodable names: never in any tree
            _remove(self.root / path)
            prune_empty_dirs(self.root, path)
        files = {p: (*v, walked.stats[p]) for p, v in walked.entries.items()}
        changes = self.diff_trees(self._tree_of_walk(walked), tree)
        self._apply(changes, tree, files)
        self.memory.known = Known(tree, files, walked.started_ns)
        if ignored is None:
            return
        gitignores = [c.path for c in changes if c.path.rsplit("/", 1)[-1] == ".gitignore"]
        # what is ignored is decided by the restored .gitignore files: walk again if one changed
        now = (
            self._walk(tracked_in or tree, write=False).ignored_paths
            if gitignores
            else walked.ignored_paths
        )
        for path in sorted(set(now) - set(ignored), reverse=True):
            full = self.root / path.rstrip("/")
            if path.endswith("/"):
                remove_tree(full)
            else:
                full.unlink()
            prune_empty_dirs(self.root, path.rstrip("/"))

    def remove_paths(self, paths: Iterable[str]) -> None:
        """Remove files and directories ("dir/") a walk listed, never following a link."""
        for path in sorted(paths, reverse=True):
            _remove(self.root / path.rstrip("/"))
            prune_empty_dirs(self.root, path.rstrip("/"))

    def _apply(
        self, changes: list[Change], tree: str, files: dict[str, tuple[str, int, Stat]]
    ) -> None:
        """Write the changes that lead to tree (deletions first), and keep `files` (what each
        file is, and its stat) up to date: a written file's stat is the one it has now."""
        for change in changes:
            if change.status == "D" or self.entry(tree, change.path) is None:
                _remove(self.root / change.path)
                prune_empty_dirs(self.root, change.path)
                files.pop(change.path, None)
        for change in changes:
            entry = self.entry(tree, change.path)
            if entry is not None:
                self._write_file(change.path, *entry)
                files[change.path] = (*entry, stat_of(os.lstat(self.root / change.path)))

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
