"""Scope policy: what a change may touch. Shared by the runner and the git hooks."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from am_patch.config import Config
from am_patch.errors import Category, RunnerError, Stage
from am_patch.repo import LINK, Change, Repo, is_git_component


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


def link_escapes(path: str, target: bytes) -> str | None:
    """Why a symlink at path pointing at target is unsafe, or None."""
    text = os.fsdecode(target)
    if text.startswith("/"):
        return f"{path}: symlink to an absolute path ({text})"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), text))
    if resolved == ".." or resolved.startswith("../"):
        return f"{path}: symlink leaves the repository ({text})"
    if any(is_git_component(p) for p in resolved.split("/")):
        return f"{path}: symlink into .git ({text})"
    return None


def unsafe_entries(
    repo: Repo, tree: str, changes: Iterable[Change], *, nested: Sequence[str] = ()
) -> list[str]:
    """Symlinks leaving the repo, paths inside .git, nested repositories."""
    problems = [f"{n}: nested git repository" for n in nested]
    for change in changes:
        if any(is_git_component(part) for part in change.path.split("/")):
            problems.append(f"{change.path}: path inside .git")
        elif change.mode == LINK:
            entry = repo.entry(tree, change.path)
            if entry is not None:
                reason = link_escapes(change.path, repo.blob_bytes(entry[0]))
                if reason:
                    problems.append(reason)
    return problems


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
    unsafe = unsafe_entries(repo, new_tree, changes, nested=nested)
    unsafe += [f"{u}: not a regular file, directory or symlink" for u in unsupported]
    return ScopeReport(
        changes=changes,
        declared=tuple(declared),
        undeclared=tuple(sorted(touched - declared_set - blessed_set)),
        untouched=tuple(sorted(declared_set - touched)),
        blessed=tuple(sorted(touched & blessed_set - declared_set)),
        unsafe=tuple(unsafe),
    )


def check(report: ScopeReport, config: Config) -> None:
    """Raise the first scope failure that applies under the config's allowances."""
    if report.unsafe:
        raise RunnerError(Stage.SCOPE, Category.UNSAFE, _listing("unsafe change", report.unsafe))
    if not report.changes:
        if config.allow_no_op:
            return
        raise RunnerError(
            Stage.SCOPE, Category.NOOP, "the patch changed nothing (use -n to allow a no-op)"
        )
    if report.undeclared and not config.allow_undeclared_paths:
        raise RunnerError(
            Stage.SCOPE,
            Category.UNDECLARED,
            _listing("changed but not in FILES", report.undeclared)
            + " (add them to FILES, or -a to allow)",
        )
    if report.untouched and not config.allow_untouched_files:
        raise RunnerError(
            Stage.SCOPE,
            Category.UNTOUCHED,
            _listing("declared in FILES but unchanged", report.untouched)
            + " (fix FILES, or -t to allow)",
        )


def _listing(what: str, items: Sequence[str]) -> str:
    shown = ", ".join(items[:5])
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return f"{what}: {shown}{more}"
