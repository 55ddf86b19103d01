"""pre-receive on a bare repository: read-only through git's quarantine; never writes a ref."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from am_patch import policy, scope
from am_patch.config import Config
from am_patch.repo import ZERO_OID, Repo

MAX_COMMITS = 10_000


def check(repo: Repo, config: Config, lines: Iterable[str]) -> list[str]:
    """Fast-forward only on main; path policy on every new commit of every ref, and no change
    to the in-tree policy unless the pusher said so (`git push -o am-patch-allow-policy-change`,
    which needs receive.advertisePushOptions: `am-patch-hook install --server` sets it)."""
    allowed = policy.PUSH_OPTION in push_options(os.environ)
    problems: list[str] = []
    main = f"refs/heads/{config.main_branch}"
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        old, new, ref = parts
        if new == ZERO_OID:
            if ref == main:
                problems.append(f"{ref}: deleting {config.main_branch} is refused")
            continue
        if ref == main and old != ZERO_OID and not repo.is_ancestor(old, new):
            problems.append(
                f"{ref}: not a fast-forward; fetch, rebase onto {config.main_branch} and push again"
            )
            continue
        commits = repo.new_commits(new, limit=MAX_COMMITS + 1)
        if len(commits) > MAX_COMMITS:  # never let the commits past the limit in unchecked
            problems.append(
                f"{ref}: more than {MAX_COMMITS} new commits in one push; push them in batches"
            )
            continue
        how = None if allowed else f"push with -o {policy.PUSH_OPTION}"
        found = scope.unsafe_commits(repo, commits, config, allow_policy=how)
        problems += [f"{ref} {p}" for p in found]
    return problems


def push_options(environ: Mapping[str, str]) -> list[str]:
    """The push options (`git push -o X`) git hands the hook in its environment."""
    count = int(environ.get("GIT_PUSH_OPTION_COUNT", "0") or 0)
    return [environ.get(f"GIT_PUSH_OPTION_{i}", "") for i in range(count)]
