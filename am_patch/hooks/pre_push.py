"""pre-push: a verdict for every pushed ref; main only moves forward from what origin has."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from am_patch import policy, scope
from am_patch.config import Config
from am_patch.hooks.pre_commit import check_gates
from am_patch.repo import ZERO_OID, Repo


@dataclass(frozen=True, slots=True)
class PushedRef:
    local_ref: str
    local_oid: str
    remote_ref: str
    remote_oid: str


def parse(lines: Iterable[str]) -> list[PushedRef]:
    refs = []
    for line in lines:
        parts = line.split()
        if len(parts) == 4:
            refs.append(PushedRef(*parts))
    return refs


def guard_main(repo: Repo, config: Config, ref: PushedRef) -> str | None:
    """Why a push to main must be refused: deletion, or a remote tip we do not descend from."""
    if ref.remote_ref != f"refs/heads/{config.main_branch}":
        return None
    if ref.local_oid == ZERO_OID:
        return f"{ref.remote_ref}: deleting {config.main_branch} is refused"
    if ref.remote_oid == ZERO_OID:
        return None
    how = f"run 'git fetch {config.remote}' and 'git rebase {config.remote}/{config.main_branch}'"
    if not repo.contains(ref.remote_oid):
        return f"{ref.remote_ref}: the remote has commits you do not have; {how}, then push"
    if not repo.is_ancestor(ref.remote_oid, ref.local_oid):
        return (
            f"{ref.remote_ref}: would rewrite the remote's history (origin is ahead or this "
            f"is a forced push); {how}, then push"
        )
    return None


def check_ref(
    repo: Repo, config: Config, ref: PushedRef, *, remote: str, run_gates: bool
) -> list[str]:
    """The problems of one pushed ref: main's history, path policy on new commits, gates."""
    reason = guard_main(repo, config, ref)
    if reason:
        return [reason]
    if ref.local_oid == ZERO_OID:
        return []
    problems: list[str] = []
    new = repo.new_commits(
        ref.local_oid, known_refs=f"refs/remotes/{remote}/", known=(ref.remote_oid,)
    )
    how = None if os.environ.get(policy.ALLOW_ENV) == "1" else f"{policy.ALLOW_ENV}=1 git push ..."
    found = scope.unsafe_commits(repo, new, config, allow_policy=how)
    problems += [f"{ref.remote_ref} {p}" for p in found]
    # a tree the path policy refused is not checked out to be gated (its symlinks leave the repo)
    if run_gates and not problems and ref.remote_ref.startswith("refs/heads/"):
        remote_known = ref.remote_oid != ZERO_OID and repo.contains(ref.remote_oid)
        base = repo.tree_of(ref.remote_oid) if remote_known else repo.empty_tree()
        checked = check_gates(repo, config, repo.tree_of(ref.local_oid), base)
        problems += [f"{ref.remote_ref}: {p}" for p in checked.problems]
    return problems


def check(
    repo: Repo, config: Config, refs: list[PushedRef], *, remote: str, run_gates: bool
) -> dict[str, list[str]]:
    """A verdict for every pushed ref (not only the first): its problems, empty when fine."""
    return {
        ref.remote_ref: check_ref(repo, config, ref, remote=remote, run_gates=run_gates)
        for ref in refs
    }
