"""pre-commit: the commit being made (the index) against the active issue's scope and the gates."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from am_patch import scope
from am_patch.config import Config
from am_patch.errors import Category, RunnerError, Stage
from am_patch.repo import Repo
from am_patch.workspace import Meta

if TYPE_CHECKING:
    from am_patch.gates import TreeCheck


def declared_files(root: Path, issue: str | None) -> tuple[str, tuple[str, ...]] | None:
    """(issue, FILES) of --issue ID or of the one open workspace; None when no issue is active."""
    patches = root / "patches"
    if issue is not None:
        meta = patches / "workspaces" / f"issue_{issue}" / "meta.json"
        if meta.is_file():
            return issue, Meta.read(meta).files
        from am_patch import patchfile  # see check_gates: imported only when needed

        try:
            found = patchfile.load(patches, issue, None, ascii_only=False)
        except RunnerError as exc:
            raise RunnerError(
                Stage.SCOPE,
                Category.UNDECLARED,
                f"--issue {issue}: no workspace and no patch input ({exc.message})",
            ) from exc
        return issue, tuple(found.files)
    metas = sorted((patches / "workspaces").glob("issue_*/meta.json"))
    if not metas:
        return None
    if len(metas) > 1:
        names = ", ".join(m.parent.name for m in metas)
        raise RunnerError(
            Stage.SCOPE, Category.UNDECLARED, f"several open workspaces ({names}): pass --issue ID"
        )
    only = Meta.read(metas[0])
    return only.issue_id, only.files


def check_scope(repo: Repo, config: Config, issue: str | None) -> list[str]:
    """Problems with the staged change: path policy always, and the active issue's scope."""
    tree = repo.index_tree()
    changes = repo.diff_trees(repo.head_tree(), tree)
    problems = scope.unsafe_entries(repo, tree, changes, config=config)
    active = declared_files(repo.root, issue)
    if active is not None:
        issue_id, files = active
        allowed = set(files) | set(config.blessed_outputs)
        outside = sorted(c.path for c in changes if c.path not in allowed)
        problems += [f"{p}: not in the FILES of issue {issue_id}" for p in outside]
    return problems


def check_gates(repo: Repo, config: Config, tree: str, base: str) -> TreeCheck:
    """The configured gates on exactly `tree` in a temp checkout; the work tree is untouched."""
    # Imported here, not at the top: the scope hook runs on every commit and must start fast
    # (bench/hook_scope.py); the gate machinery costs it a fifth of its start-up.
    from am_patch import gates
    from am_patch.verdicts import VerdictCache

    touched = [c.path for c in repo.diff_trees(base, tree)]
    cache = VerdictCache(repo.common_dir, enabled=config.gate_cache)
    return gates.check_tree(
        config, repo, tree=tree, touched=touched, cache=cache, project_root=repo.root
    )
