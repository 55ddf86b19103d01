"""The policy that judges patches, and who may change it: a change to it never lands without a
human saying so (`--allow-policy-change`, AM_PATCH_ALLOW_POLICY_CHANGE=1 for the hooks, a push
option for the server).

The policy is every config key but the few workflow ones (config.WORKFLOW), and the files that
decide what runs outside the jail: `.pre-commit-config.yaml` (the pre-commit framework runs its
hooks on your commits and on am-patch's push) and the files of an in-tree `core.hooksPath`.
A change is judged by its effect: config files are compared by the policy they carry, so an
edit of pyproject.toml outside [tool.am_patch] is no policy change.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from am_patch import config
from am_patch.errors import Category, Refusal, RunnerError, Stage
from am_patch.flags import ALLOW_POLICY_CHANGE
from am_patch.repo import Repo

HOOK_CONFIGS = (".pre-commit-config.yaml",)
CONFIG_FILES = (*config.CONFIG_CANDIDATES, "pyproject.toml")
ALLOW_ENV = "AM_PATCH_ALLOW_POLICY_CHANGE"  # the hooks take no arguments: a human sets this
PUSH_OPTION = "am-patch-allow-policy-change"  # `git push -o ...`, read by pre-receive
FLAG = ALLOW_POLICY_CHANGE


def values(cfg: config.Config) -> dict[str, str]:
    """The policy a config holds, key by key, as comparable text."""
    found = {key: repr(getattr(cfg, key)) for key in config.policy_keys()}
    for spec in cfg.gates:
        found[f"gates.{spec.name}"] = repr(spec)
    return found


def hooks_dir(repo: Repo) -> str | None:
    """core.hooksPath as a repo-relative path when it lies inside the work tree, else None."""
    configured = repo.config_value("core.hooksPath")
    if not configured or repo.is_bare:
        return None
    path = Path(os.path.normpath(repo.root / os.path.expanduser(configured)))
    return path.relative_to(repo.root).as_posix() if path.is_relative_to(repo.root) else None


def changes(
    repo: Repo,
    old_tree: str,
    new_tree: str,
    changed: Iterable[str],
    *,
    explicit: str | None = None,
) -> list[str]:
    """How going from old_tree to new_tree (which differ in `changed`) changes the policy, one
    line per key or file; empty when it does not. `explicit` is a repo-relative --config."""
    changed = set(changed)
    found: list[str] = []
    if changed & {*CONFIG_FILES, *((explicit,) if explicit else ())}:
        before = _policy_of(repo, old_tree, explicit)
        after = _policy_of(repo, new_tree, explicit)
        for key in sorted(before.keys() | after.keys()):
            if before.get(key) != after.get(key):
                found.append(f"{key}: {_short(before.get(key))} -> {_short(after.get(key))}")
    hooks = hooks_dir(repo)
    for path in sorted(changed):
        if path in HOOK_CONFIGS or (hooks and (path + "/").startswith(hooks.rstrip("/") + "/")):
            found.append(f"{path}: changed (it decides what git hooks run, outside any jail)")
    return found


def _policy_of(repo: Repo, tree: str, explicit: str | None) -> dict[str, str]:
    def read(rel: str) -> bytes | None:
        entry = repo.entry(tree, rel)
        return repo.blob_bytes(entry[0]) if entry is not None else None

    try:
        return values(config.load_in_tree(read, explicit))
    except Refusal as exc:  # a config that does not load is a policy of its own
        return {"config": f"invalid ({exc.message})"}


def _short(text: str | None) -> str:
    if text is None:
        return "(none)"
    return text if len(text) <= 80 else text[:77] + "..."


def refuse(found: list[str], *, how: str) -> RunnerError:
    """SCOPE:POLICY listing what the change does to the policy, and how a human allows it."""
    shown = "; ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
    return RunnerError(
        Stage.SCOPE,
        Category.POLICY,
        f"the change alters the policy that judges later patches ({shown}); only a human may "
        f"do that: {how}",
    )
