"""The finalize modes: -f (commit the live tree's changes) and --finalize-workspace ID."""

from __future__ import annotations

from typing import TYPE_CHECKING

from am_patch import audit, crash, policy, promote, publish, scope
from am_patch import workspace as wsp
from am_patch.errors import Category, RunnerError, Stage
from am_patch.repo import CommitOid, Snapshot
from am_patch.runlog import say

if TYPE_CHECKING:
    from am_patch.pipeline import Run


def workspace(run: Run, branch: str) -> None:
    """The open workspace's changes against its base, hand edits included, gated and landed."""
    ws = wsp.open_existing(run.live, run.layout, f"issue_{run.issue}")
    if ws is None:
        raise RunnerError(
            Stage.PREFLIGHT,
            Category.WORKSPACE,
            f"no workspace for issue {run.issue} under patches/workspaces/",
        )
    if ws.meta.pending is not None and ws.meta.pending.interrupted:
        if run.config.test_mode:  # test mode never changes a real workspace
            raise RunnerError(
                Stage.PREFLIGHT,
                Category.WORKSPACE,
                f"a killed attempt left the workspace of issue {run.issue} half-patched; "
                "a run without --test-mode restores it",
            )
        ws = wsp.recover_killed(run.live, ws)  # never land a half-applied patch
    run.ws = ws
    snap = ws.open().snapshot(tracked_in=ws.meta.base)
    run.last_snapshot = snap
    report = scope.of_snapshot(
        run.live, base=ws.meta.base, snap=snap, declared=ws.meta.files, config=run.config
    )
    run.summary.files = [(c.status, c.path) for c in report.changes]
    if not report.changes:
        raise RunnerError(
            Stage.PREFLIGHT,
            Category.WORKSPACE,
            f"workspace of issue {run.issue} has nothing to promote",
        )
    scope.check(report, run.config)
    run.check_policy(run.live.tree_of(ws.meta.base), snap.tree, report.touched)
    say(
        f"[workspace] finalizing {ws.repo_dir.relative_to(run.live.root)} "
        f"(base {ws.meta.base[:12]}): {len(report.changes)} change(s)"
    )
    if run.config.test_mode:  # gate a scratch export: test mode never touches a real workspace
        run.gate_tree(snap.tree, report.touched, Stage.GATES)
        promote.say_skipped(run, "")
        return
    final = run.gate_workspace(ws, report.touched, snap)
    if run.config.disable_promotion:
        promote.say_skipped(run, "the workspace keeps the change")
        return
    promote.promote_workspace(run, ws, final, branch, ws.meta.message, ws.meta.files)


def live_tree(run: Run, branch: str) -> None:
    """-f MESSAGE: gate the live tree's changes as they are, then commit them on branch."""
    head = run.live.head_commit()
    if head is None:
        raise RunnerError(Stage.PREFLIGHT, Category.GIT, f"{branch} has no commits yet")
    snap = run.live.snapshot(tracked_in=head)
    run.last_snapshot = snap
    changes = run.live.diff_trees(run.live.tree_of(head), snap.tree)
    paths = tuple(c.path for c in changes)
    run.summary.files = [(c.status, c.path) for c in changes]
    unsafe = scope.unsafe_entries(
        run.live, snap.tree, changes, nested=snap.nested_repos, config=run.config
    )
    if unsafe:
        raise RunnerError(Stage.SCOPE, Category.UNSAFE, "unsafe change: " + unsafe[0])
    run.check_policy(run.live.tree_of(head), snap.tree, paths)
    if not changes:
        if run.config.allow_no_op:
            say("[finalize] the live tree is clean, allowed by -n: nothing to commit")
            return
        raise RunnerError(
            Stage.PROMOTION,
            Category.NOOP,
            "the live tree has no changes to finalize (-n to allow)",
        )
    say(f"[finalize] {len(changes)} live change(s) to gate and commit")
    gated = run.gate_tree(snap.tree, paths, Stage.GATES)
    if run.config.test_mode or run.config.disable_promotion:
        if gated != snap.tree:
            say("[finalize] the formatter would change some files; they are left as they are")
        promote.say_skipped(run, "your live edits stay uncommitted")
        return
    commit = run.live.commit(gated, [head], run.request.message)
    if gated != snap.tree:
        say("[finalize] the formatter changed some files; the live files get its version")
    _land_in_place(run, branch, head, commit, snap)
    audit.run(run.live, run.config, run.summary.push, commit)


def _land_in_place(
    run: Run,
    branch: str,
    head: CommitOid,
    commit: CommitOid,
    snap: Snapshot,
) -> None:
    """The changes already are in the working tree: move the ref, sync the index, push.

    The commit's paths are the live changes plus any file a formatter rewrote (with -r, also
    files beyond the changed ones); each must still be as the run read it.
    """
    paths: list[str] = [
        c.path for c in run.live.diff_trees(run.live.tree_of(head), run.live.tree_of(commit))
    ]
    now = run.live.snapshot(tracked_in=head, write=False).entries
    changed_meanwhile = [p for p in paths if now.get(p) != snap.entries.get(p)]
    if changed_meanwhile:
        raise RunnerError(
            Stage.PROMOTION,
            Category.LIVE_DIRTY,
            "live files changed during the run: " + ", ".join(changed_meanwhile),
        )
    promote.check_index_free(run.live)
    # Journaled as a landing from commit to commit: if the run dies after the ref moved,
    # recover() syncs index and files to it; before, main is not at either end, so recover()
    # leaves the user's edits (the change itself) alone.
    landing = promote.Landing(branch=branch, old=commit, new=commit, paths=tuple(paths))
    journal = promote.write_journal(run.live, landing)
    if not run.live.cas_ref(f"refs/heads/{branch}", head, commit, "am-patch: finalize"):
        journal.unlink()
        raise RunnerError(
            Stage.PROMOTION,
            Category.LIVE_CHANGED,
            f"{branch} moved during the run; nothing was committed",
        )
    run.summary.commit = commit
    crash.point("landed")
    try:
        run.live.checkout_paths(commit, paths, force=True)
    except RunnerError as exc:
        raise RunnerError(
            Stage.PROMOTION,
            Category.LIVE_DIRTY,
            f"{branch} is at {commit[:12]} but its index could not follow ({exc}); "
            "the next am-patch run (or am-patch-hook recover) syncs it; commit nothing before",
        ) from exc
    journal.unlink()
    say(f"[promotion] {branch} now at {commit[:12]}")
    options = (policy.PUSH_OPTION,) if run.policy_changed else ()
    publish.push_landed(run.live, run.config, commit, branch, run.summary, options)
