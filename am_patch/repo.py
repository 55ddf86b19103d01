"""The only module that imports pygit2: repositories, worktrees, trees, snapshots and refs."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NewType

import pygit2
from pygit2.enums import CheckoutStrategy, FileMode, RepositoryOpenFlag

from am_patch.errors import Category, RunnerError, Stage

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


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A working directory as a tree, plus what a tree cannot hold."""

    tree: TreeOid
    entries: dict[str, tuple[str, int]]
    nested_repos: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()


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


class Repo:
    """A repository or worktree opened with pygit2."""

    def __init__(self, raw: pygit2.Repository) -> None:
        self.raw = raw

    @classmethod
    def discover(cls, start: Path) -> Repo:
        try:
            found = pygit2.discover_repository(str(start))
            if found is None:
                raise KeyError(str(start))
            raw = pygit2.Repository(found)
        except (KeyError, pygit2.GitError) as exc:
            raise RunnerError(
                Stage.PREFLIGHT, Category.GIT, f"not inside a git repository: {start}"
            ) from exc
        if raw.is_bare or raw.workdir is None:
            raise RunnerError(Stage.PREFLIGHT, Category.GIT, f"{start} is a bare repository")
        return cls(raw)

    @classmethod
    def open(cls, path: Path) -> Repo:
        return cls(pygit2.Repository(str(path)))

    @classmethod
    def try_open(cls, path: Path) -> Repo | None:
        try:
            return cls(pygit2.Repository(str(path)))
        except (KeyError, pygit2.GitError):
            return None

    @classmethod
    def open_from_env(cls, path: Path) -> Repo:
        """Open as git would for a hook: GIT_DIR, GIT_INDEX_FILE, quarantine object dirs."""
        return cls(pygit2.Repository(str(path), RepositoryOpenFlag.FROM_ENV))

    @property
    def is_bare(self) -> bool:
        return bool(self.raw.is_bare)

    @property
    def root(self) -> Path:
        """The working tree; for a bare repository, its git directory."""
        return Path(self.raw.workdir or self.raw.path).resolve()

    @property
    def git_dir(self) -> Path:
        return Path(self.raw.path).resolve()

    @property
    def common_dir(self) -> Path:
        """The main repository's git directory, shared by all its worktrees."""
        commondir = self.git_dir / "commondir"
        if commondir.is_file():
            return (self.git_dir / commondir.read_text().strip()).resolve()
        return self.git_dir

    def has_remote(self, name: str) -> bool:
        return name in self.raw.remotes.names()

    # --- refs and commits -------------------------------------------------------------

    def head_branch(self) -> str | None:
        """The checked-out branch's short name, None when HEAD is detached."""
        if self.raw.head_is_detached:
            return None
        return self.raw.head.shorthand

    def head_commit(self) -> CommitOid | None:
        if self.raw.head_is_unborn:
            return None
        return CommitOid(str(self.raw.head.target))

    def ref_commit(self, refname: str) -> CommitOid | None:
        ref = self.raw.references.get(refname)
        if ref is None:
            return None
        return CommitOid(str(ref.resolve().target))

    def tree_of(self, commit: str) -> TreeOid:
        return TreeOid(str(self.raw[commit].peel(pygit2.Commit).tree_id))

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        if ancestor == descendant:
            return True
        return bool(self.raw.descendant_of(descendant, ancestor))

    def commits_between(self, old: str, new: str) -> list[tuple[CommitOid, str]]:
        """Commits reachable from new but not old, newest first, with their subject lines."""
        walker = self.raw.walk(new, pygit2.enums.SortMode.TOPOLOGICAL)
        walker.hide(old)
        return [
            (CommitOid(str(c.id)), c.message.splitlines()[0] if c.message else "") for c in walker
        ]

    def commit(self, tree: str, parents: Iterable[str], message: str) -> CommitOid:
        """Write a commit object (no ref moves); author and committer from git config or env."""
        try:
            sig = self.raw.default_signature
        except (KeyError, pygit2.GitError):
            sig = pygit2.Signature("am-patch", "am-patch@localhost")
        oid = self.raw.create_commit(
            None, sig, sig, message, pygit2.Oid(hex=tree), [pygit2.Oid(hex=p) for p in parents]
        )
        return CommitOid(str(oid))

    def set_branch(self, name: str, commit: str) -> None:
        self.raw.branches.local.create(name, self.raw[commit].peel(pygit2.Commit), force=True)

    def cas_ref(self, refname: str, old: str, new: str, message: str) -> bool:
        """Move refname from old to new only if it still points at old."""
        ref = self.raw.references.get(refname)
        if ref is None or str(ref.target) != old:
            return False
        try:
            ref.set_target(pygit2.Oid(hex=new), message)
        except pygit2.GitError:
            return False
        return True

    # --- trees ------------------------------------------------------------------------

    def tree_entries(self, tree: str) -> dict[str, tuple[str, int]]:
        index = pygit2.Index()
        index.read_tree(self.raw[tree].peel(pygit2.Tree))
        return {e.path: (str(e.id), int(e.mode)) for e in index}

    def entry(self, tree: str, path: str) -> tuple[str, int] | None:
        try:
            obj = self.raw[tree].peel(pygit2.Tree)[path]
        except KeyError:
            return None
        return str(obj.id), int(obj.filemode)

    def blob_size(self, oid: str) -> int:
        return int(self.raw[oid].peel(pygit2.Blob).size)

    def contains(self, oid: str) -> bool:
        return oid in self.raw

    def empty_tree(self) -> TreeOid:
        return TreeOid(str(self.raw.TreeBuilder().write()))

    def head_tree(self) -> TreeOid:
        """HEAD's tree, or the empty tree on an unborn branch."""
        head = self.head_commit()
        return self.tree_of(head) if head else self.empty_tree()

    def index_tree(self) -> TreeOid:
        """The index (GIT_INDEX_FILE when opened from the environment) as a tree."""
        return TreeOid(str(self.raw.index.write_tree()))

    def first_parent(self, commit: str) -> CommitOid | None:
        parents = self.raw[commit].peel(pygit2.Commit).parent_ids
        return CommitOid(str(parents[0])) if parents else None

    def new_commits(
        self,
        tip: str,
        *,
        known_refs: str = "refs/",
        known: tuple[str, ...] = (),
        limit: int = 10_000,
    ) -> list[CommitOid]:
        """Commits reachable from tip but from no ref under known_refs nor known, oldest first."""
        order = pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE
        walker = self.raw.walk(tip, order)
        hidden = [
            str(self.raw.references[r].resolve().target)
            for r in self.raw.references
            if r.startswith(known_refs)
        ]
        for oid in (*hidden, *known):
            if oid != ZERO_OID and oid in self.raw:
                walker.hide(oid)
        found = []
        for commit in walker:
            found.append(CommitOid(str(commit.id)))
            if len(found) >= limit:
                break
        return found

    def config_value(self, key: str) -> str | None:
        try:
            return str(self.raw.config[key])
        except KeyError:
            return None

    def blob_bytes(self, oid: str) -> bytes:
        return bytes(self.raw[oid].peel(pygit2.Blob).data)

    def diff_trees(self, old: str, new: str) -> list[Change]:
        diff = self.raw[old].peel(pygit2.Tree).diff_to_tree(self.raw[new].peel(pygit2.Tree))
        changes = []
        for delta in diff.deltas:
            status = delta.status_char()
            mode = int(delta.new_file.mode) if status != "D" else 0
            changes.append(Change(status, RepoPath(delta.new_file.path), mode))
        return changes

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

    # --- working directories ----------------------------------------------------------

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
            _prune_empty_dirs(self.root, path)
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
            _rmtree(dest)
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

    # --- worktrees --------------------------------------------------------------------

    def add_worktree(self, name: str, path: Path, branch: str) -> None:
        ref = self.raw.branches.local[branch]
        self.raw.add_worktree(name, str(path), ref)

    def prune_worktree(self, name: str) -> bool:
        """Forget a worktree whose directory is gone; True if one was pruned."""
        if name not in self.raw.list_worktrees():
            return False
        wt = self.raw.lookup_worktree(name)
        if Path(wt.path).exists() and not wt.is_prunable:
            return False
        wt.prune(True)
        return True

    def remove_worktree(self, name: str, path: Path) -> None:
        if path.exists():
            _rmtree(path)
        if name in self.raw.list_worktrees():
            self.raw.lookup_worktree(name).prune(True)

    def delete_branch(self, name: str) -> None:
        branch = self.raw.branches.local.get(name)
        if branch is not None:
            branch.delete()

    def add_exclude(self, pattern: str) -> None:
        """Keep pattern out of git status through info/exclude, once."""
        exclude = self.common_dir / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        text = exclude.read_text() if exclude.exists() else ""
        if pattern not in text.splitlines():
            sep = "" if not text or text.endswith("\n") else "\n"
            exclude.write_text(f"{text}{sep}{pattern}\n")


def _prune_empty_dirs(root: Path, rel: str) -> None:
    parent = (root / rel).parent
    while parent != root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _rmtree(path: Path) -> None:
    """Remove a tree even where a patch made directories read-only."""
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
    os.chmod(path, 0o700)
    shutil.rmtree(path)


def iter_parents(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])
