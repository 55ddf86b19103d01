"""Talking to origin with the git CLI: credentials, ssh config and hooks are git's business."""

from __future__ import annotations

from am_patch import proc
from am_patch.errors import Category, RunnerError, Stage
from am_patch.repo import Repo

LS_REMOTE_NO_MATCH = 2


def fetch(live: Repo, remote: str, branch: str) -> None:
    """Update <remote>/<branch>; a branch the remote does not have yet is not an error."""
    env = proc.clean_git_env()
    refspec = f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"
    result = proc.run(
        ["git", "fetch", "--no-tags", remote, refspec], cwd=live.root, env=env, timeout_s=300
    )
    if result.ok:
        return
    probe = proc.run(
        ["git", "ls-remote", "--exit-code", remote, f"refs/heads/{branch}"],
        cwd=live.root,
        env=env,
        timeout_s=300,
    )
    if probe.returncode == LS_REMOTE_NO_MATCH:
        return
    raise RunnerError(Stage.PREFLIGHT, Category.GIT, f"git fetch {remote} failed: {result.tail(2)}")


def check_not_behind(live: Repo, remote: str, branch: str) -> None:
    """PREFLIGHT:ORIGIN_AHEAD when <remote>/<branch> has commits that local <branch> lacks."""
    theirs = live.ref_commit(f"refs/remotes/{remote}/{branch}")
    ours = live.ref_commit(f"refs/heads/{branch}")
    if theirs is None or ours is None or live.is_ancestor(theirs, ours):
        return
    missing = live.commits_between(ours, theirs)
    raise RunnerError(
        Stage.PREFLIGHT,
        Category.ORIGIN_AHEAD,
        f"{remote}/{branch} has {len(missing)} commit(s) that local {branch} lacks: "
        f"run 'git pull --rebase {remote} {branch}' and rerun (or -u to skip this check)",
    )


def push(live: Repo, remote: str, commit: str, branch: str) -> tuple[bool, str]:
    """Push exactly commit to <remote>/<branch>; (ok, git's last lines)."""
    result = proc.run(
        ["git", "push", remote, f"{commit}:refs/heads/{branch}"],
        cwd=live.root,
        env=proc.clean_git_env(),
        timeout_s=600,
    )
    return result.ok, result.tail(3)
