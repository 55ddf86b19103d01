"""Gating exactly one tree in a scratch export (hooks, live gates, -f); no work tree is touched."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from am_patch import precommit
from am_patch.config import Config
from am_patch.gates import Planned, Verdict, all_cached, announce, plan, python_for, record
from am_patch.gating import Tree, differences, dir_fingerprint, make_jails, run_all
from am_patch.layout import Layout
from am_patch.progress import Progress
from am_patch.repo import Repo
from am_patch.sandbox import base_env
from am_patch.verdicts import VerdictCache

# the rewriting gates as a user runs them by hand before committing again
_AS_USER_RUNS = {
    "ruff_format": "ruff format",
    "ruff": "ruff check --fix",
    precommit.GATE: "pre-commit run",
}


def _hook_store(
    planned: Sequence[Planned], layout: Layout, repo: Repo, trusted: str | None, python: Path
) -> precommit.Store | None:
    """The pre_commit gate's store, prepared outside the jail from the trusted tree's config,
    when that gate will run."""
    runs = any(p.spec.name == precommit.GATE and not p.skip_reason for p in planned)
    if not runs:
        return None
    if trusted is None:
        return precommit.store_of(layout)  # nothing prepared: only what is there already
    path = base_env(python)["PATH"]
    return precommit.prepare(layout, repo, trusted, path)


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeCheck:
    verdicts: list[Verdict]
    tree: str  # the tree as the gates left it: a formatter's edits included
    rewritten: Sequence[str]  # files a formatter or fixer changed: the tree itself is not clean
    fixers: Sequence[str] = ()  # the rewriting gates that ran, as the user runs them

    @property
    def problems(self) -> list[str]:
        found = [
            f"gate {v.name} failed" + (f": {v.hint}" if v.hint else "")
            for v in self.verdicts
            if not v.ok
        ]
        if self.rewritten:
            found.append(
                "the formatter/fixer would change "
                + ", ".join(self.rewritten[:5])
                + f": run {', '.join(self.fixers) or 'the formatters'}, stage, and commit again"
            )
        return found


def check_tree(
    config: Config,
    repo: Repo,
    *,
    tree: str,
    touched: Sequence[str],
    cache: VerdictCache,
    project_root: Path,
    trusted: str | None = None,
    scratch_parent: Path | None = None,
    progress: Progress | None = None,
) -> TreeCheck:
    """Gate exactly `tree`, exported to a scratch directory; nothing else is touched.

    Nothing is exported when nothing would run: every gate skipped for `touched` (a docs-only
    commit) or cached for `tree`. The passes are recorded for the tree the gates leave, which
    is `tree` unless a formatter rewrote a file or a gate wrote a blessed output (a report).
    The tools keep their warm caches in the repository's git directory (toolcache). The
    pre_commit gate's hook environments are prepared from the config of `trusted` (a tree that
    landed: the base of the change), never from `tree`'s; without one, none are prepared.
    """
    # Planned against tree's own entries, so the skip decision is the export's. Only mypy's
    # default targets come from the project root's config; a pass cached under them is still a
    # pass of that exact command on this exact tree.
    python = python_for(config, project_root)
    early = plan(
        config,
        changed=touched,
        root=project_root,
        python=python,
        run_all=config.run_all_gates,
        exists=lambda path: repo.entry(tree, path) is not None,
        all_files=lambda: repo.tree_entries(tree).keys(),
    )
    if all_cached(early, cache, tree):
        verdicts = [
            Verdict(name=p.spec.name, ok=True, skipped=p.skip_reason, cached=not p.skip_reason)
            for p in early
        ]
        for verdict in verdicts:
            announce(verdict)
        return TreeCheck(verdicts=verdicts, tree=tree, rewritten=[])
    if scratch_parent is not None:
        scratch_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="am-patch-gates-", dir=scratch_parent) as tmp:
        root = Path(tmp) / "repo"
        repo.export_tree(tree, root)
        walk = dir_fingerprint(root)
        seen: dict[str, Tree] = {}

        def fingerprint() -> Tree:  # remembers the first and the last state
            seen["last"] = walk()
            seen.setdefault("first", seen["last"])
            return seen["last"]

        planned = plan(
            config,
            changed=touched,
            root=root,
            python=python,
            run_all=config.run_all_gates,
            all_files=lambda: repo.tree_entries(tree).keys(),
        )
        layout = Layout(repo.root, repo.common_dir)
        jails = make_jails(
            config,
            live_root=project_root,
            git_common_dir=repo.common_dir,
            workdir=root,
            scratch=Path(tmp) / "cache",
            layout=None if repo.is_bare else layout,
            pre_commit=_hook_store(planned, layout, repo, trusted, python),
        )
        verdicts = run_all(
            planned,
            jails,
            config,
            root=root,
            keep_going=config.allow_gates_fail,
            cache=cache,
            tree=tree,
            fingerprint=fingerprint,
            progress=progress,
        )
        blessed = set(config.blessed_outputs)
        # a rewriter run on its full targets (-r) may change files beyond the touched ones
        rewrote = set(differences(seen["first"], seen["last"])) - blessed
        # a blessed output is a product of the gates that lands with the tree they passed
        after = repo.tree_from_dir(tree, root, sorted(set(touched) | rewrote | blessed))
        record(planned, verdicts, cache, after)
        rewritten = [c.path for c in repo.diff_trees(tree, after) if c.path not in blessed]
        fixers = [
            _AS_USER_RUNS.get(p.spec.name, p.spec.name)
            for p in planned
            if p.spec.rewrites and not p.skip_reason
        ]
        return TreeCheck(verdicts=verdicts, tree=after, rewritten=rewritten, fixers=fixers)
