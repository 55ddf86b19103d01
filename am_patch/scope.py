"""Scope policy: what a change may touch. Shared by the runner and the git hooks."""

from __future__ import annotations

import fnmatch
import os
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from am_patch import policy
from am_patch.config import Config
from am_patch.errors import Category, Refusal
from am_patch.repo import GITLINK, LINK, Change, Repo, Snapshot, is_git_component


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeReport:
    changes: tuple[Change, ...]
    declared: tuple[str, ...]
    undeclared: tuple[str, ...]
    untouched: tuple[str, ...]
    blessed: tuple[str, ...]
    unsafe: tuple[str, ...]

    @property
    def touched(self) -> tuple[str, ...]:
        return tuple(c.path for c in self.changes)

    def promotion_set(self, *, allow_undeclared: bool) -> tuple[str, ...]:
        """Declared-and-touched, blessed outputs, and undeclared when allowed."""
        declared = set(self.declared)
        keep = {p for p in self.touched if p in declared}
        keep.update(self.blessed)
        if allow_undeclared:
            keep.update(self.undeclared)
        return tuple(sorted(keep))


def link_escapes(
    path: str, target: bytes, link_at: Callable[[str], bytes | None] | None = None
) -> str | None:
    """Why a symlink at path pointing at target is unsafe, or None.

    link_at(p) is the target of another symlink at repo path p (None if p is no symlink): a
    chain such as `here -> .`, `out -> here/here/..` leaves the repository although the text
    of each link, normalised alone, stays inside.
    """
    text = os.fsdecode(target)
    if text.startswith("/"):
        return f"{path}: symlink to an absolute path ({text})"
    resolved = _resolve_link(posixpath.dirname(path), text, link_at or (lambda _: None))
    if resolved is None:
        return f"{path}: symlink leaves the repository ({text})"
    if any(is_git_component(p) for p in resolved):
        return f"{path}: symlink into .git ({text})"
    return None


def _resolve_link(
    start: str, text: str, link_at: Callable[[str], bytes | None]
) -> list[str] | None:
    """The repo path text resolves to from directory start, or None if it leaves the repo."""
    resolved = [p for p in start.split("/") if p]
    pending = text.split("/")
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        inner = link_at("/".join(resolved))
        if inner is None:
            continue
        hops += 1
        inner_text = os.fsdecode(inner)
        if hops > 40 or inner_text.startswith("/"):
            return None  # a loop, or a chain through an absolute link
        resolved.pop()
        pending = inner_text.split("/") + pending
    return resolved


def unsafe_entries(
    repo: Repo,
    tree: str,
    changes: Iterable[Change],
    *,
    nested: Sequence[str] = (),
    config: Config | None = None,
) -> list[str]:
    """The path policy: symlinks leaving the repo, .git, nested repos, forbidden, oversized.

    When a change adds, removes or retargets a symlink, every symlink of the tree is resolved
    again, not only the changed ones: `docs/L -> d/../..` stays inside while `docs/d` is a link
    to `sub1/sub2`, and leaves the repository once `docs/d` is retargeted to `.`. A change that
    involves no symlink cannot alter how any link resolves (resolution is lexical).
    """
    changes = list(changes)
    problems = [f"{n}: nested git repository" for n in nested]
    if any(change.involves_link for change in changes):
        problems += unsafe_links(repo, tree)
    forbidden = config.forbidden_paths if config else ()
    max_bytes = config.max_file_bytes if config else 0
    for change in changes:
        if change.status == "D":
            continue
        if any(is_git_component(part) for part in change.path.split("/")):
            problems.append(f"{change.path}: path inside .git")
            continue
        if change.mode == GITLINK:
            problems.append(f"{change.path}: nested repository (gitlink)")
            continue
        pattern = next((p for p in forbidden if fnmatch.fnmatchcase(change.path, p)), None)
        if pattern:
            problems.append(f"{change.path}: forbidden by forbidden_paths ({pattern})")
            continue
        entry = repo.entry(tree, change.path)
        if entry is None or change.mode == LINK:
            continue
        if max_bytes and repo.blob_size(entry[0]) > max_bytes:
            problems.append(f"{change.path}: larger than max_file_bytes={max_bytes}")
    return problems


def unsafe_links(repo: Repo, tree: str) -> list[str]:
    """Every symlink of tree whose whole chain, resolved lexically from the repository root,
    leaves the repository or enters .git."""
    links = repo.links(tree)
    found = (link_escapes(path, target, links.get) for path, target in sorted(links.items()))
    return [reason for reason in found if reason]


def evaluate(
    repo: Repo,
    *,
    base_tree: str,
    new_tree: str,
    declared: Sequence[str],
    config: Config,
    nested: Sequence[str] = (),
    unsupported: Sequence[str] = (),
) -> ScopeReport:
    changes = tuple(repo.diff_trees(base_tree, new_tree))
    touched = {c.path for c in changes}
    blessed_set = set(config.blessed_outputs)
    declared_set = set(declared)
    unsafe = unsafe_entries(repo, new_tree, changes, nested=nested, config=config)
    unsafe += [f"{u}: not a regular file, directory or symlink" for u in unsupported]
    return ScopeReport(
        changes=changes,
        declared=tuple(declared),
        undeclared=tuple(sorted(touched - declared_set - blessed_set)),
        untouched=tuple(sorted(declared_set - touched)),
        blessed=tuple(sorted(touched & blessed_set - declared_set)),
        unsafe=tuple(unsafe),
    )


def unsafe_commits(
    repo: Repo, commits: Iterable[str], config: Config, *, allow_policy: str | None = None
) -> list[str]:
    """The path policy on each commit's own change (against its first parent), and any change
    to the policy unless allowed (`allow_policy` is None when a human allowed it, else how to),
    as '<short id>: <problem>' lines; what the pre-push and pre-receive hooks refuse."""
    problems = []
    for commit in commits:
        parent = repo.first_parent(commit)
        base = repo.tree_of(parent) if parent else repo.empty_tree()
        tree = repo.tree_of(commit)
        changes = repo.diff_trees(base, tree)
        found = unsafe_entries(repo, tree, changes, config=config)
        if allow_policy is not None and parent:  # a root commit sets the policy, changes none
            paths = [c.path for c in changes]
            found += [f"policy: {p}" for p in policy.changes(repo, base, tree, paths)]
        problems += [f"{commit[:10]}: {p}" for p in found]
    if allow_policy and any(": policy: " in p for p in problems):
        problems.append(f"only a human may change the policy: {allow_policy}")
    return problems


def of_snapshot(
    repo: Repo, *, base: str, snap: Snapshot, declared: Sequence[str], config: Config
) -> ScopeReport:
    """evaluate() from base commit's tree to a working-directory snapshot."""
    return evaluate(
        repo,
        base_tree=repo.tree_of(base),
        new_tree=snap.tree,
        declared=declared,
        config=config,
        nested=snap.nested_repos,
        unsupported=snap.unsupported,
    )


def check(report: ScopeReport, config: Config) -> None:
    """Raise the first scope failure that applies under the config's allowances."""
    if report.unsafe:
        raise Refusal(Category.UNSAFE, _listing("unsafe change", report.unsafe))
    if not report.changes:
        if config.allow_no_op:
            return
        raise Refusal(Category.NOOP, "the patch changed nothing (use -n to allow a no-op)")
    if report.undeclared and not config.allow_undeclared_paths:
        raise Refusal(
            Category.UNDECLARED,
            _listing("changed but not in FILES", report.undeclared)
            + " (add them to FILES, or -a to allow)",
        )
    if report.untouched and not config.allow_untouched_files:
        raise Refusal(
            Category.UNTOUCHED,
            _listing("declared in FILES but unchanged", report.untouched)
            + " (fix FILES, or -t to allow)",
        )


def _listing(what: str, items: Sequence[str]) -> str:
    shown = ", ".join(items[:5])
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return f"{what}: {shown}{more}"
