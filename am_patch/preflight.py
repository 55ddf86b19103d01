"""Preflight checks of the live repository: the branch a run lands on, and nothing else busy."""

from __future__ import annotations

from am_patch.config import Config
from am_patch.errors import Category, Refusal
from am_patch.repo import Repo


def live_branch(live: Repo, cfg: Config) -> str:
    """The branch this run lands on: main, or the current branch with --allow-non-main.
    Refused while another git process or an unfinished merge, rebase, cherry-pick or revert
    holds the live repo: a landing could not update its index."""
    if live.index_locked():
        raise Refusal(
            Category.GIT,
            "another git process holds the live index (.git/index.lock); "
            "rerun when it is done (remove the file only if no git process is running)",
        )
    operation = live.operation_in_progress()
    conflicts = live.conflicted_paths()
    if operation or conflicts:
        what = f"{operation} in progress" if operation else "unresolved conflicts"
        shown = f" (conflicts in {', '.join(conflicts[:5])})" if conflicts and operation else ""
        listed = f" in {', '.join(conflicts[:5])}" if conflicts and not operation else ""
        raise Refusal(
            Category.GIT,
            f"the live repo has {what}{shown}{listed}: finish or abort it first",
        )
    branch = live.head_branch()
    if branch is None:
        raise Refusal(Category.GIT, "HEAD is detached: check out main first")
    if branch != cfg.main_branch and not cfg.allow_non_main:
        raise Refusal(
            Category.GIT,
            f"live repo is on {branch!r}, not {cfg.main_branch!r} (--allow-non-main to proceed)",
        )
    return branch
