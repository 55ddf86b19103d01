"""Repositories and worktrees opened with pygit2: refs, commits, history, worktrees."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pygit2
from pygit2.enums import RepositoryOpenFlag

from am_patch.errors import Category, Refusal
from am_patch.repo.objects import ZERO_OID, CommitOid, TreeOid, remove_tree
from am_patch.repo.walk import Memory
from am_patch.repo.workdir import Workdir


class Repo(Workdir):
    """A repository or worktree opened with pygit2."""

    @classmethod
    def discover(cls, start: Path) -> Repo:
        try:
            found = pygit2.discover_repository(str(start))
            if found is None:
                raise KeyError(str(start))
            raw = pygit2.Repository(found)
        except (KeyError, pygit2.GitError) as exc:
            raise Refusal(Category.GIT, f"not inside a git repository: {start}") from exc
        if raw.is_bare or raw.workdir is None:
            raise Refusal(Category.GIT, f"{start} is a bare repository")
        return cls(raw)

    @classmethod
    def open(cls, path: Path, memory: Memory | None = None) -> Repo:
        """The repository or worktree at path; memory is what its files were last seen as."""
        return cls(pygit2.Repository(str(path)), memory)

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

    def resolve(self, rev: str) -> CommitOid | None:
        """The commit a revision names (an id, a ref, HEAD~1, ...); None when it names none."""
        try:
            return CommitOid(str(self.raw.revparse_single(rev).peel(pygit2.Commit).id))
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            return None

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

    def commit_time(self, commit: str) -> float:
        """When commit was made (its committer time), in seconds since the epoch."""
        return float(self.raw[commit].peel(pygit2.Commit).commit_time)

    def point_head(self, target: str) -> None:
        """HEAD at a branch (refs/heads/...) or, detached, at a commit id."""
        self.raw.set_head(target if target.startswith("refs/") else pygit2.Oid(hex=target))

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

    def set_config(self, key: str, value: str) -> None:
        """Set key in this repository's own config file."""
        self.raw.config[key] = value

    def config_value(self, key: str) -> str | None:
        try:
            return str(self.raw.config[key])
        except KeyError:
            return None

    def add_worktree(self, name: str, path: Path, branch: str) -> None:
        ref = self.raw.branches.local[branch]
        # libgit2 makes <common dir>/worktrees with a plain mkdir: two runs adding their first
        # worktrees at once, one failed with "directory exists"
        (self.common_dir / "worktrees").mkdir(exist_ok=True)
        self.raw.add_worktree(name, str(path), ref)

    def worktree_at(self, path: Path) -> str | None:
        """git's name for the worktree at path, if it knows one there."""
        for name in self.raw.list_worktrees():
            if Path(self.raw.lookup_worktree(name).path).resolve() == path.resolve():
                return str(name)
        return None

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
            remove_tree(path)
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
