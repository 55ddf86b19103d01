"""pre-commit: the commit being made (the index) against the active issue's scope and the gates."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from am_patch import policy, scope
from am_patch.config import Config
from am_patch.errors import Category, Refusal
from am_patch.layout import Layout
from am_patch.repo import Repo
from am_patch.workspace import Meta

if TYPE_CHECKING:
    from am_patch.treecheck import TreeCheck


IssueFiles = tuple[str, tuple[str, ...]]  # an issue and its FILES
NO_ISSUE = "none"  # AM_PATCH_ISSUE=none: a hand commit that belongs to no issue


def declared_files(layout: Layout, issue: str | None) -> list[IssueFiles]:
    """(issue, FILES) of `issue` when given (its workspace, else its patch input), else of every
    open workspace; empty when no issue is active."""
    patches = layout.patches
    if issue is not None and issue.lower() == NO_ISSUE:
        return []  # a commit for no issue: judged by the path policy alone
    if issue is not None:
        meta = layout.workspace(f"issue_{issue}") / "meta.json"
        if meta.is_file():
            return [(issue, Meta.read(meta).files)]
        from am_patch import patchfile  # see check_gates: imported only when needed

        try:
            found = patchfile.load(patches, issue, None, ascii_only=False)
        except Refusal as exc:
            raise Refusal(
                Category.UNDECLARED,
                f"issue {issue} (--issue or AM_PATCH_ISSUE): no workspace and no patch input "
                f"({exc.message})",
            ) from exc
        return [(issue, tuple(found.files))]
    metas = sorted(layout.workspaces.glob("issue_*/meta.json"))
    return [(m.issue_id, m.files) for m in map(Meta.read, metas)]


def out_of_scope(paths: Iterable[str], scopes: list[IssueFiles], config: Config) -> list[str]:
    """Why paths leave the active scope: none when they fit one issue's FILES (plus blessed
    outputs), else each path outside, and with several open issues, how to pick one."""
    paths = sorted(paths)
    blessed = set(config.blessed_outputs)
    outside = {
        issue: [p for p in paths if p not in set(files) | blessed] for issue, files in scopes
    }
    if not scopes or any(not left for left in outside.values()):
        return []
    if len(scopes) == 1:
        ((issue, left),) = outside.items()
        return [f"{p}: not in the FILES of issue {issue}" for p in left] + [_next_step([issue])]
    issues = [issue for issue, _ in scopes]
    listed = ", ".join(issues)
    stray = [p for p in paths if all(p in left for left in outside.values())]
    return [f"{p}: not in the FILES of any open issue ({listed})" for p in stray] + [
        f"the staged paths fit no single open issue ({listed}): commit one issue's files at a "
        "time, or name the issue: AM_PATCH_ISSUE=ID git commit ...",
        _next_step(issues),
    ]


def _next_step(issues: list[str]) -> str:
    """How out of a refusal by open workspaces: another issue, no issue, or drop a stale one."""
    drop = " / ".join(f"am-patch --drop-workspace {issue}" for issue in issues[:3])
    return (
        f"for another issue: AM_PATCH_ISSUE=ID git commit ...; for no issue (the path policy "
        f"alone): AM_PATCH_ISSUE={NO_ISSUE} git commit ...; a workspace left by a failed attempt "
        f"keeps its issue open: {drop} (its changes are saved in patches/unsuccessful/)"
    )


def check_scope(repo: Repo, config: Config, issue: str | None) -> list[str]:
    """Problems with the staged change: an interrupted landing, the path policy, and the scope
    of the active issue (`issue`, else any one open workspace's)."""
    layout = Layout(repo.root, repo.common_dir)
    if layout.journal.exists():
        return [
            "an am-patch landing was interrupted (or is in progress), so the index may hold files "
            "main does not have yet; run 'am-patch-hook recover' to finish or roll it back"
        ]
    tree = repo.index_tree()
    changes = repo.diff_trees(repo.head_tree(), tree)
    problems = scope.unsafe_entries(repo, tree, changes, config=config)
    if os.environ.get(policy.ALLOW_ENV) != "1":
        found = policy.changes(repo, repo.head_tree(), tree, [c.path for c in changes])
        if found:
            problems += [f"policy: {line}" for line in found]
            problems.append(
                f"only a human may change the policy: {policy.ALLOW_ENV}=1 git commit ..."
            )
    return problems + out_of_scope((c.path for c in changes), declared_files(layout, issue), config)


def check_gates(repo: Repo, config: Config, tree: str, base: str) -> TreeCheck:
    """The configured gates on exactly `tree` in a temp checkout; the work tree is untouched."""
    # Imported here, not at the top: the scope hook runs on every commit and must start fast
    # (bench/hook_scope.py); the gate machinery costs it a fifth of its start-up.
    from am_patch import treecheck
    from am_patch.progress import Progress
    from am_patch.verdicts import VerdictCache

    touched = [c.path for c in repo.diff_trees(base, tree)]
    cache = VerdictCache(Layout(repo.root, repo.common_dir), enabled=config.gate_cache)
    with Progress(sys.stderr) as progress:
        return treecheck.check_tree(
            config,
            repo,
            tree=tree,
            touched=touched,
            cache=cache,
            project_root=repo.root,
            trusted=base,
            progress=progress,
        )
