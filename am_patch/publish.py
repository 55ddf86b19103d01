"""Talking to origin with the git CLI: credentials, ssh config and hooks are git's business."""

from __future__ import annotations

from dataclasses import dataclass

from am_patch import git
from am_patch.config import Config
from am_patch.errors import Category, Refusal
from am_patch.repo import Repo
from am_patch.runlog import Summary, say

LS_REMOTE_NO_MATCH = 2


def fetch(live: Repo, remote: str, branch: str) -> None:
    """Update <remote>/<branch>; a branch the remote does not have yet is not an error."""
    refspec = f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"
    result = git.run(["fetch", "--no-tags", remote, refspec], cwd=live.root, timeout_s=300)
    if result.ok:
        return
    probe = git.run(
        ["ls-remote", "--exit-code", remote, f"refs/heads/{branch}"], cwd=live.root, timeout_s=300
    )
    if probe.returncode == LS_REMOTE_NO_MATCH:
        return
    raise Refusal(Category.GIT, f"git fetch {remote} failed: {result.tail(2)}")


def check_not_behind(live: Repo, remote: str, branch: str) -> None:
    """PREFLIGHT:ORIGIN_AHEAD when <remote>/<branch> has commits that local <branch> lacks."""
    theirs = live.ref_commit(f"refs/remotes/{remote}/{branch}")
    ours = live.ref_commit(f"refs/heads/{branch}")
    if theirs is None or ours is None or live.is_ancestor(theirs, ours):
        return
    missing = live.commits_between(ours, theirs)
    raise Refusal(
        Category.ORIGIN_AHEAD,
        f"{remote}/{branch} has {len(missing)} commit(s) that local {branch} lacks: "
        f"run 'git pull --rebase {remote} {branch}' and rerun (or -u to skip this check)",
    )


@dataclass(frozen=True, slots=True)
class Pushed:
    ok: bool
    said: str  # git's last lines
    behind: bool = False  # refused because the remote has commits this push lacks


def push(
    live: Repo, remote: str, commit: str, branch: str, options: tuple[str, ...] = ()
) -> Pushed:
    """Push exactly commit to <remote>/<branch>. Push options (`-o`) tell a guarded server what
    the human allowed; a server that takes none gets the push without them (its pre-receive
    then decides)."""
    args = [
        "push",
        *(f"--push-option={o}" for o in options),
        remote,
        f"{commit}:refs/heads/{branch}",
    ]
    result = git.run(args, cwd=live.root, timeout_s=600)
    if options and "does not support push options" in result.output:
        return push(live, remote, commit, branch)
    if result.ok:
        return Pushed(True, result.tail(3))
    return Pushed(False, result.tail(3), behind=_moved_past(live, remote, commit, branch))


def _moved_past(live: Repo, remote: str, commit: str, branch: str) -> bool:
    """Whether <remote>/<branch> now has commits that commit lacks: another runner landed
    first. Asked of origin itself (a fetch), not read from git's wording: a race lost between
    the server's hook and its ref update says "failed to update ref", not "fetch first"."""
    try:
        fetch(live, remote, branch)
    except Refusal:
        return False
    theirs = live.ref_commit(f"refs/remotes/{remote}/{branch}")
    return theirs is not None and not live.is_ancestor(theirs, commit)


def sync(live: Repo, config: Config, branch: str) -> None:
    """Preflight: fetch, then PREFLIGHT:ORIGIN_AHEAD unless -u; nothing to do without a remote."""
    if not live.has_remote(config.remote):
        say(f"[preflight] no remote {config.remote!r}: nothing to fetch, push will be skipped")
        return
    fetch(live, config.remote, branch)
    if config.skip_up_to_date:
        say("[preflight] origin check skipped (-u): the push may fail")
        return
    check_not_behind(live, config.remote, branch)


def report(pushed: Pushed, config: Config, branch: str, summary: Summary) -> None:
    """Put the push's outcome in the summary: a failed push keeps the commit and says how to
    reconcile; it fails the run only with --require-push-success."""
    summary.push = "OK" if pushed.ok else "FAIL"
    say(f"[push] {summary.push}")
    if pushed.ok:
        return
    hint = (
        f"the commit stays on local {branch}; run 'git pull --rebase {config.remote} "
        f"{branch}' then 'git push {config.remote} {branch}'"
    )
    summary.notes.append(f"PUSH DETAIL: {pushed.said.splitlines()[-1] if pushed.said else ''}")
    summary.notes.append(f"NEXT: {hint}")
    if config.require_push_success:
        raise Refusal(Category.FAILED, f"git push failed; {hint}")
