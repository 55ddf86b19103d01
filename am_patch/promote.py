"""Landing the tested commit on live main: the promotion set, a compare-and-swap fast-forward of
exactly its paths (journaled against crashes), the live gates, the push."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from am_patch import audit, crash, gates, policy, publish, scope
from am_patch import workspace as wsp
from am_patch.config import Config
from am_patch.errors import Category, RunnerError, Stage
from am_patch.layout import Layout
from am_patch.repo import CommitOid, Repo, Snapshot
from am_patch.runlog import say

if TYPE_CHECKING:
    from am_patch.pipeline import Run

log = logging.getLogger("am_patch")


@dataclass(frozen=True, slots=True, kw_only=True)
class Landing:
    branch: str
    old: CommitOid
    new: CommitOid
    paths: tuple[str, ...]


def _journal(live: Repo) -> Path:
    return Layout(live.root, live.common_dir).journal


INDEX_BUSY = "another git process holds the live index (.git/index.lock)"


def check_index_free(live: Repo) -> None:
    """PROMOTION:LIVE_DIRTY while an IDE or another git command holds the live index."""
    if live.index_locked():
        raise RunnerError(
            Stage.PROMOTION,
            Category.LIVE_DIRTY,
            f"{INDEX_BUSY}; nothing was changed; rerun when it is done",
        )


def check_live_clean(live: Repo, paths: Sequence[str], incoming: CommitOid | None = None) -> None:
    """PROMOTION:LIVE_DIRTY if the user has uncommitted edits to any path we would write, or a
    file in its way (an untracked parent file, an ignored file incoming would overwrite)."""
    dirty = live.dirty_paths(paths, incoming)
    if dirty:
        shown = ", ".join(dirty[:5])
        raise RunnerError(
            Stage.PROMOTION,
            Category.LIVE_DIRTY,
            f"uncommitted live edits to files this change promotes: {shown} "
            "(commit or stash them, then rerun; nothing was changed)",
        )


def land(live: Repo, landing: Landing) -> None:
    """Fast-forward: write the paths (refusing to clobber edits), then CAS the branch ref."""
    check_live_clean(live, landing.paths, landing.new)
    check_index_free(live)
    journal = write_journal(live, landing)
    try:
        live.checkout_paths(landing.new, list(landing.paths))
        crash.point("landing")
        moved = live.cas_ref(
            f"refs/heads/{landing.branch}", landing.old, landing.new, "am-patch: fast-forward"
        )
    except BaseException as exc:
        _roll_back(live, landing, exc)
        raise
    if not moved:
        _roll_back(live, landing, None)
        raise RunnerError(
            Stage.PROMOTION,
            Category.LIVE_CHANGED,
            f"{landing.branch} moved while landing; nothing was changed, rerun",
        )
    journal.unlink(missing_ok=True)
    log.info("live %s fast-forwarded %s -> %s", landing.branch, landing.old, landing.new)


def write_journal(live: Repo, landing: Landing) -> Path:
    """Record the landing about to start, so recover() can finish or undo it after a crash."""
    layout = Layout(live.root, live.common_dir)
    record = {
        "branch": landing.branch,
        "old": landing.old,
        "new": landing.new,
        "paths": list(landing.paths),
    }
    layout.write(layout.journal, (json.dumps(record) + "\n").encode())
    return layout.journal


def _roll_back(live: Repo, landing: Landing, exc: BaseException | None) -> None:
    """The ref did not move: put the written paths back to the old commit, then drop the
    journal. If that fails too (say the index is locked), the journal stays for recover();
    a git error becomes PROMOTION:LIVE_DIRTY saying so."""
    if exc is not None and live.ref_commit(f"refs/heads/{landing.branch}") == landing.new:
        return  # main did move: the journal stays and recover() syncs the paths to it
    try:
        _sync_paths(live, landing.new, landing.old, landing.paths)
    except RunnerError as failed:
        if not _put_back_files(live, landing):
            log.warning("rolling back the landing failed (%s): journal kept for recovery", failed)
            if exc is None or isinstance(exc, RunnerError):
                raise RunnerError(
                    Stage.PROMOTION,
                    Category.LIVE_DIRTY,
                    f"landing on {landing.branch} failed ({exc or failed}) and so did rolling "
                    f"it back; am-patch did not move {landing.branch}; the next am-patch run "
                    "(or am-patch-hook recover) restores the files",
                ) from exc
            return  # an unexpected error: it propagates, the journal stays
        log.warning("rolled back the files only (%s): the index never got them", failed)
    _journal(live).unlink(missing_ok=True)
    if isinstance(exc, RunnerError):
        raise RunnerError(
            exc.stage, exc.category, f"{exc.message}; rolled back: nothing was changed, rerun"
        ) from exc


def _put_back_files(live: Repo, landing: Landing) -> bool:
    """The index cannot be written (another process locked it): put back the files am-patch
    wrote, leaving the index alone. True when that restores a consistent state: the index on
    disk still holds the old commit's entries for the paths."""
    written = [p for p in landing.paths if not live.differs_from(landing.new, [p])]
    live.write_paths(landing.old, written)
    return live.index_matches(landing.old, landing.paths)


def undo(live: Repo, landing: Landing) -> None:
    """Put the branch, index and paths back to the old commit (a live gate failed)."""
    if live.cas_ref(f"refs/heads/{landing.branch}", landing.new, landing.old, "am-patch: undo"):
        for path in _sync_paths(live, landing.new, landing.old, landing.paths):
            say(f"[live gates] kept your edit of {path}, made while the live gates ran")
        log.info("promotion undone: %s back at %s", landing.branch, landing.old)


def _sync_paths(live: Repo, written: str, target: str, paths: Sequence[str]) -> list[str]:
    """Index and files of paths back to target, except a file that no longer is what am-patch
    wrote (commit `written`): the user edited it meanwhile, so only its index entry moves.
    The edited paths that differ from target too: the edits to report."""
    edited = live.differs_from(written, paths)
    live.checkout_paths(target, [p for p in paths if p not in edited], force=True)
    live.reset_index_paths(target, edited)
    return live.differs_from(target, edited)


def recover(live: Repo) -> str | None:
    """Finish or roll back a landing a killed run left half done; a message if there was one."""
    journal = _journal(live)
    if not journal.is_file():
        return None
    if live.index_locked():
        raise RunnerError(
            Stage.PREFLIGHT,
            Category.GIT,
            f"{INDEX_BUSY} and an interrupted am-patch landing waits to be recovered; "
            "nothing was changed; rerun when it is done",
        )
    data = json.loads(journal.read_text(encoding="utf-8"))
    branch, old, new = data["branch"], data["old"], data["new"]
    paths = [str(p) for p in data["paths"]]
    at = live.ref_commit(f"refs/heads/{branch}")
    target = new if at == new else old
    kept: list[str] = []
    if at in (old, new):
        kept = _sync_paths(live, new, target, paths)
    journal.unlink()
    message = f"recovered an interrupted landing: {branch} at {at}, paths synced to {target}"
    return message + "".join(f"; kept your edit of {path}" for path in kept)


def carry_over(
    live: Repo, config: Config, *, base: CommitOid, live_head: CommitOid, paths: tuple[str, ...]
) -> tuple[str, ...]:
    """main moved from base to live_head: the paths to carry onto it, per live_changed_resolution.

    Paths main did not touch are always carried. Paths it did touch fail the run (`fail`), keep the
    workspace version (`overwrite_live`) or keep main's (`overwrite_workspace`, which may leave
    nothing: PROMOTION:NOOP unless -n, then an empty tuple).
    """
    moved = {c.path for c in live.diff_trees(live.tree_of(base), live.tree_of(live_head))}
    overlap = sorted(moved & set(paths))
    commits = live.commits_between(base, live_head)
    if overlap:
        shown = ", ".join(overlap[:5])
        if config.live_changed_resolution == "fail":
            subjects = "; ".join(f"{c[:10]} {s}" for c, s in commits[:3])
            raise RunnerError(
                Stage.PROMOTION,
                Category.LIVE_CHANGED,
                f"main moved since the workspace base and changed {shown} ({subjects}); "
                "rerun with -W, --overwrite-live or --overwrite-workspace",
            )
        if config.live_changed_resolution == "overwrite_workspace":
            paths = tuple(p for p in paths if p not in overlap)
            say(f"[promotion] live version kept for {shown} (--overwrite-workspace)")
            if not paths:
                if config.allow_no_op:
                    say("[promotion] nothing left to promote, allowed by -n")
                    return ()
                raise RunnerError(
                    Stage.PROMOTION,
                    Category.NOOP,
                    "every promoted file was changed on main and dropped "
                    "by --overwrite-workspace; nothing left to promote",
                )
        else:
            say(f"[promotion] workspace version wins for {shown} (--overwrite-live)")
    say(
        f"[promotion] main moved ({len(commits)} new commit(s)); rebasing onto "
        f"{live_head[:12]} and gating the rebased tree again"
    )
    return paths


# --- the promotion stage of a run ------------------------------------------------------------


def say_skipped(run: Run, kept: str) -> None:
    """--test-mode or --disable-promotion stops the run after the gates; kept says what holds
    the gated change (nothing does in test mode)."""
    what = "--test-mode" if run.config.test_mode else "--disable-promotion"
    say(
        f"[promotion] skipped ({what}): live and origin are unchanged"
        + ("" if run.config.test_mode else f"; {kept}")
    )
    run.summary.notes.append(f"PROMOTION: skipped ({what})")


def promotion_set(
    run: Run, ws: wsp.Workspace, final: Snapshot, declared: tuple[str, ...]
) -> tuple[str, ...]:
    """The paths to promote from the gated workspace: its changes in scope, gate outputs blessed."""
    report = scope.of_snapshot(
        run.live, base=ws.meta.base, snap=final, declared=declared, config=run.config
    )
    if report.unsafe:
        raise RunnerError(
            Stage.GATES,
            Category.UNSAFE,
            "the gates left an unsafe change: " + ", ".join(report.unsafe[:3]),
        )
    paths = report.promotion_set(allow_undeclared=run.config.allow_undeclared_paths)
    left_out = sorted(set(report.touched) - set(paths))
    if left_out:
        log.info("changed by the gates but not promoted: %s", ", ".join(left_out))
    run.summary.files = [(c.status, c.path) for c in report.changes if c.path in paths]
    return paths


def promote_workspace(
    run: Run,
    ws: wsp.Workspace,
    final: Snapshot,
    branch: str,
    message: str,
    declared: tuple[str, ...],
) -> None:
    """Commit the promotion set on the workspace base, rebased and re-gated while main moves,
    then land it, gate it live and push it."""
    cfg = run.config
    paths = promotion_set(run, ws, final, declared)
    if not paths:
        if cfg.allow_no_op:
            say("[promotion] nothing to promote, allowed by -n")
            return
        raise RunnerError(Stage.PROMOTION, Category.NOOP, "nothing left to promote")
    for _ in range(cfg.max_rebase_attempts + 1):
        live_head = run.live.ref_commit(f"refs/heads/{branch}")
        if live_head is None or live_head == ws.meta.base:
            break
        paths = carry_over(run.live, cfg, base=ws.meta.base, live_head=live_head, paths=paths)
        if not paths:
            run.summary.files = []
            return
        tree = run.live.tree_with(run.live.tree_of(live_head), final.tree, paths)
        ws = run.ws = wsp.move_base(run.live, ws, live_head, tree)
        final = run.gate_workspace(ws, paths)
    else:
        raise RunnerError(
            Stage.PROMOTION,
            Category.LIVE_CHANGED,
            f"{branch} kept moving during {cfg.max_rebase_attempts} re-gates; "
            "rerun when it is quiet",
        )
    base_tree = run.live.tree_of(ws.meta.base)
    tree = run.live.tree_with(base_tree, final.tree, paths)
    # a rebase combines the patch with main's new commits: judge the links of what lands
    landed = run.live.diff_trees(base_tree, tree)
    unsafe = scope.unsafe_entries(run.live, tree, landed, config=cfg)
    if unsafe:
        raise RunnerError(Stage.SCOPE, Category.UNSAFE, "unsafe change: " + "; ".join(unsafe[:3]))
    run.check_policy(base_tree, tree, tuple(c.path for c in landed))
    # what --overwrite-workspace dropped is not promoted: list exactly what the commit changes
    run.summary.files = [(c.status, c.path) for c in run.live.diff_trees(base_tree, tree)]
    commit = run.live.commit(tree, [ws.meta.base], f"Issue {run.issue}: {message}")
    run.live.set_branch(ws.branch, commit)
    log.info("promotion plan: %s", ", ".join(paths))
    crash.point("commit")
    _land_gate_push(run, Landing(branch=branch, old=ws.meta.base, new=commit, paths=paths))
    if cfg.delete_workspace_on_success:
        wsp.remove(run.live, ws)
    else:
        run.ws = wsp.keep_landed(run.live, ws, commit)
    audit.run(run.live, cfg, run.summary.push, commit)


def _land_gate_push(run: Run, landing: Landing) -> None:
    """Fast-forward, then the live gates (undone on failure), then push."""
    land(run.live, landing)
    run.summary.commit = landing.new
    say(f"[promotion] {landing.branch} fast-forwarded to {landing.new[:12]}")
    crash.point("landed")
    try:
        _live_gates(run, landing.new, landing.paths)
    except RunnerError:
        undo(run.live, landing)
        run.summary.commit = None
        say(f"[live gates] failed: {landing.branch} is back at {landing.old[:12]}, nothing pushed")
        raise
    options = (policy.PUSH_OPTION,) if run.policy_changed else ()
    publish.push_landed(run.live, run.config, landing.new, landing.branch, run.summary, options)
    crash.point("pushed")


def _live_gates(run: Run, commit: CommitOid, paths: tuple[str, ...]) -> None:
    """The verdict for the promoted tree: cached when that exact tree was gated."""
    cfg = run.config
    tree = run.live.tree_of(commit)
    planned = gates.plan(
        cfg,
        changed=paths,
        root=run.live.root,
        python=gates.python_for(cfg, run.live.root),
        run_all=cfg.run_all_gates,
    )
    if gates.all_cached(planned, run.cache, tree):
        say("[live gates] cached: this exact tree already passed every gate")
        return
    left = run.gate_tree(tree, paths, Stage.LIVE_GATES)
    if left != tree:
        log.info("live gates: the formatter would still change the landed tree (%s)", left)
