"""The stages up to the gates: preflight, workspace, patch, scope and gates, in each mode's form.

Each stage takes the run's context, calls the domain modules with what they need, and records
what they return in the context (and the summary) for the stages after it. The pipeline picks
which stages run and names the stage of any refusal.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from am_patch import (
    apply,
    archive,
    crash,
    gates,
    landing,
    patchfile,
    policy,
    preflight,
    publish,
    sandbox,
    scope,
    treecheck,
)
from am_patch import workspace as wsp
from am_patch.config import describe
from am_patch.context import RunContext
from am_patch.errors import Category, Refusal, RunnerError, Stage
from am_patch.options import Mode
from am_patch.repo import Snapshot, remove_tree
from am_patch.runlog import say, show_tail

log = logging.getLogger("am_patch")


# --- preflight ------------------------------------------------------------------------------


def check_live(ctx: RunContext) -> None:
    """Preflight: the config, an interrupted landing, the branch, the patch input, origin, the
    sandbox. Nothing is applied before all of them pass."""
    cfg, live = ctx.config, ctx.live
    log.info("effective config:\n%s", "\n".join(describe(cfg)))
    for note in cfg.notes:  # e.g. the keys of a v4 config file that mean nothing here
        say(f"[preflight] {note}")
    gates.check_python(cfg, live.root)
    if ctx.layout.journal.exists():  # a landing was killed halfway; one at a time recovers it
        ctx.hold_landing()
        recovered = landing.recover(live)
        ctx.let_go_of_landing()
        if recovered:
            say(f"[preflight] {recovered}")
    ctx.branch = preflight.live_branch(live, cfg)
    if ctx.options.mode is Mode.WORKSPACE:
        ctx.patch = _load_patch(ctx)
    publish.sync(live, cfg, ctx.branch)
    _probe_sandbox(ctx)
    ctx.head = live.ref_commit(f"refs/heads/{ctx.branch}")
    if ctx.head is None:
        raise Refusal(Category.GIT, f"{ctx.branch} has no commits yet")
    crash.point("preflight")


def _load_patch(ctx: RunContext) -> patchfile.PatchInput:
    arg = ctx.options.patch_arg
    if ctx.options.rerun_latest:
        arg = str(archive.latest_input(ctx.layout, ctx.options.issue))
        say(f"[preflight] rerunning {Path(arg).relative_to(ctx.layout.patches)}")
    patch = patchfile.load(
        ctx.layout.patches, ctx.options.issue, arg, ascii_only=ctx.config.ascii_only_patch
    )
    say(f"[preflight] {patch.kind} {patch.path.name}: {len(patch.files)} file(s) declared")
    return patch


def _probe_sandbox(ctx: RunContext) -> None:
    """Probe, once and before anything is applied, every jail this run will use: the patch
    script's, the gates' and the audit's (their interpreters may differ)."""
    cfg = ctx.config
    if cfg.sandbox != "bwrap":
        return
    script = ctx.patch is not None and ctx.patch.kind is patchfile.Kind.SCRIPT
    pythons = [Path(sys.executable)] if script else []
    audited = ctx.options.lands and cfg.post_success_audit and cfg.sandbox_audit
    if cfg.sandbox_gates or audited:
        pythons.append(gates.python_for(cfg, ctx.live.root))
    if pythons:  # in the background; sandbox_ready() waits for it before anything is applied
        ctx.probing = sandbox.Probing(
            bwrap=cfg.bwrap,
            live_root=ctx.live.root,
            git_common_dir=ctx.live.common_dir,
            pythons=pythons,
        )


def sandbox_ready(ctx: RunContext) -> None:
    """The sandbox probe started in preflight has passed: PREFLIGHT:SANDBOX otherwise, before
    anything was applied."""
    probing, ctx.probing = ctx.probing, None
    if probing is None:
        return
    try:
        probing.wait()
    except Refusal as exc:
        raise RunnerError.at(Stage.PREFLIGHT, exc) from exc


# --- workspace ------------------------------------------------------------------------------


def prepare_workspace(ctx: RunContext) -> None:
    """The issue's workspace (or a throw-away one in test mode), and a checkpoint of it: an
    attempt in progress is recorded before the patch touches anything."""
    assert ctx.patch is not None and ctx.head is not None
    options = ctx.options
    ws = wsp.prepare(
        ctx.live,
        ctx.layout,
        label=options.label,
        issue_id=options.issue,
        live_head=ctx.head,
        message=options.message,
        files=ctx.patch.files,
        update_base=options.update_workspace,
        soft_reset_first=options.soft_reset_workspace,
    )
    if options.test_mode:
        ctx.cleanups.append(lambda: _drop_throwaway(ctx))
    say(
        f"[workspace] {ws.repo_dir.relative_to(ctx.live.root)} "
        f"(base {ws.meta.base[:12]}, attempt {ws.meta.attempt})"
    )
    repo = ws.open()
    seen = repo.as_seen() if ws.fresh else None  # made by this run: nothing else to read
    ctx.checkpoint = seen or repo.snapshot(tracked_in=ws.meta.base)
    ctx.attempt_base = ws.meta.base
    log.info("checkpoint tree %s", ctx.checkpoint.tree)
    # in meta.json until the attempt ends: a run killed with no chance to roll back leaves it,
    # and the next run restores the checkpoint instead of patching on top
    ctx.workspace = wsp.begin_attempt(ws, ctx.checkpoint.tree)
    crash.point("workspace")


def _drop_throwaway(ctx: RunContext) -> None:
    ws = ctx.workspace
    if ws is not None:
        wsp.retire(ctx.live, ws, ws.meta.base, ctx.config.workspace_pool, ctx.snapshot)
        say("[test-mode] throw-away workspace deleted")


def open_workspace(ctx: RunContext) -> None:
    """--finalize-workspace: the issue's existing workspace; a half-patched one is restored."""
    ws = wsp.open_existing(ctx.live, ctx.layout, f"issue_{ctx.options.issue}")
    if ws is None:
        raise Refusal(
            Category.WORKSPACE,
            f"no workspace for issue {ctx.options.issue} under patches/workspaces/",
        )
    if ws.meta.pending is not None and ws.meta.pending.interrupted:
        if ctx.options.test_mode:  # test mode never changes a real workspace
            raise Refusal(
                Category.WORKSPACE,
                f"a killed attempt left the workspace of issue {ctx.options.issue} half-patched; "
                "a run without --test-mode restores it",
            )
        ws = wsp.recover_killed(ctx.live, ws)  # never land a half-applied patch
    ctx.workspace = ws


# --- patch ----------------------------------------------------------------------------------


def apply_patch(ctx: RunContext) -> None:
    """The patch script in the jail, or the diffs with git apply."""
    assert ctx.patch is not None and ctx.workspace is not None
    sandbox_ready(ctx)
    ws = ctx.workspace
    inputs = ws.input_dir
    if os.path.lexists(inputs):
        remove_tree(inputs)
    ctx.layout.mkdir(inputs)
    if ctx.patch.kind is patchfile.Kind.SCRIPT:
        jail = _patch_jail(ctx, ws).with_exposed(inputs)  # probed in preflight
        ctx.summary.sandbox = jail.description
        log.info("sandbox: %s", jail.description)
        script = inputs / ctx.patch.path.name
        ctx.layout.write(script, ctx.patch.data)
        apply.run_script(jail, script, timeout_s=ctx.config.patch_timeout_s)
    else:
        ctx.summary.sandbox = "none needed (a diff is applied by git apply, no code runs)"
        for diff in ctx.patch.diffs:
            ctx.failed_member = diff
            apply.apply_diffs(ws.repo_dir, [diff], inputs)
        ctx.failed_member = None
    crash.point("patch")


def _patch_jail(ctx: RunContext, ws: wsp.Workspace) -> sandbox.Jail:
    enabled = ctx.config.sandbox == "bwrap"
    if not enabled:
        say(
            "[sandbox] WARNING: SANDBOX DISABLED (--unsafe-no-sandbox): the patch script "
            "runs with your full access to files, network and environment"
        )
    return sandbox.make_jail(
        bwrap=ctx.config.bwrap,
        enabled=enabled,
        writable=ws.repo_dir,
        live_root=ctx.live.root,
        git_common_dir=ctx.live.common_dir,
        python=Path(sys.executable),
        bounds=ctx.config.bounds,
    )


def roll_back_attempt(ctx: RunContext, exc: BaseException) -> None:
    """A patch, scope or gate failure (a crash, Ctrl-C and SIGTERM too): the workspace back to
    its checkpoint, so the next attempt starts clean."""
    ws, checkpoint = ctx.workspace, ctx.checkpoint
    if ws is None or checkpoint is None:
        return
    repo = ws.open()
    if isinstance(exc, Refusal) and ctx.snapshot is None:
        ctx.snapshot = repo.snapshot(tracked_in=ws.meta.base)  # what the patch left, to zip
    if ctx.config.rollback_workspace_on_fail == "never":
        say(
            "[rollback] NOT rolled back (rollback_workspace_on_fail=never): "
            "the workspace keeps its failed state for repair"
        )
    else:
        repo.restore(checkpoint.tree, tracked_in=ws.meta.base, ignored=checkpoint.ignored)
        ctx.live.set_branch(ws.branch, ws.meta.base)
        repo.reset_index(ctx.live.tree_of(ws.meta.base))
        say("[rollback] workspace restored to its exact pre-patch state")
    ctx.workspace = wsp.end_attempt(ws)


# --- scope ----------------------------------------------------------------------------------


def check_scope(ctx: RunContext) -> None:
    """What the patch changed, from the workspace base to the files on disk, against FILES,
    the path policy and the policy."""
    assert ctx.workspace is not None and ctx.patch is not None
    ws = ctx.workspace
    report = _judge_workspace(ctx, ws, ctx.patch.files)
    if not report.changes:
        say("[scope] nothing changed, allowed by -n: nothing to commit")
        ctx.workspace = wsp.end_attempt(ws)
        ctx.finished = True
        return
    say(f"[scope] {len(report.changes)} file(s) changed, all in scope")


def check_workspace_scope(ctx: RunContext) -> None:
    """--finalize-workspace: the workspace's changes against its base, hand edits included."""
    assert ctx.workspace is not None
    ws = ctx.workspace
    report = _judge_workspace(ctx, ws, ws.meta.files, nothing_is_ok=False)
    say(
        f"[workspace] finalizing {ws.repo_dir.relative_to(ctx.live.root)} "
        f"(base {ws.meta.base[:12]}): {len(report.changes)} change(s)"
    )


def _judge_workspace(
    ctx: RunContext, ws: wsp.Workspace, declared: tuple[str, ...], *, nothing_is_ok: bool = True
) -> scope.ScopeReport:
    snap = ws.open().snapshot(tracked_in=ws.meta.base)
    ctx.snapshot = snap
    report = scope.of_snapshot(
        ctx.live, base=ws.meta.base, snap=snap, declared=declared, config=ctx.config
    )
    ctx.summary.files = [(c.status, c.path) for c in report.changes]
    ctx.touched = report.touched
    if not report.changes and not nothing_is_ok:
        raise RunnerError(
            Stage.PREFLIGHT,
            Category.WORKSPACE,
            f"workspace of issue {ctx.options.issue} has nothing to promote",
        )
    scope.check(report, ctx.config)
    check_policy(ctx, ctx.live.tree_of(ws.meta.base), snap.tree, report.touched)
    return report


def check_live_scope(ctx: RunContext) -> None:
    """-f: the live tree's changes against HEAD: the path policy and the policy."""
    assert ctx.head is not None
    live, head = ctx.live, ctx.head
    snap = live.snapshot(tracked_in=head)
    ctx.snapshot = snap
    changes = live.diff_trees(live.tree_of(head), snap.tree)
    ctx.touched = tuple(c.path for c in changes)
    ctx.summary.files = [(c.status, c.path) for c in changes]
    unsafe = scope.unsafe_entries(
        live, snap.tree, changes, nested=snap.nested_repos, config=ctx.config
    )
    if unsafe:
        raise Refusal(Category.UNSAFE, "unsafe change: " + unsafe[0])
    check_policy(ctx, live.tree_of(head), snap.tree, ctx.touched)
    if not changes:
        if ctx.config.allow_no_op:
            say("[finalize] the live tree is clean, allowed by -n: nothing to commit")
            ctx.finished = True
            return
        raise RunnerError(
            Stage.PROMOTION, Category.NOOP, "the live tree has no changes to finalize (-n to allow)"
        )
    say(f"[finalize] {len(changes)} live change(s) to gate and commit")


def check_policy(ctx: RunContext, old_tree: str, new_tree: str, changed: tuple[str, ...]) -> None:
    """SCOPE:POLICY when going from old_tree to new_tree changes the policy, unless the command
    line says --allow-policy-change; then the change is shown and remembered, so the push tells
    a guarded server so too."""
    found = policy.changes(ctx.live, old_tree, new_tree, changed, explicit=ctx.options.config_rel)
    if not found:
        return
    if not ctx.options.allow_policy_change:
        raise policy.refuse(found, how=f"rerun with {policy.FLAG} if you mean it")
    if not ctx.policy_changed:
        for line in found:
            say(f"[scope] policy change allowed by {policy.FLAG}: {line}")
    ctx.policy_changed = True


# --- gates ----------------------------------------------------------------------------------


def gate(ctx: RunContext) -> None:
    """The gates on exactly the tree the workspace would land."""
    assert ctx.workspace is not None
    sandbox_ready(ctx)
    ctx.gated = gate_workspace(ctx, ctx.workspace, ctx.touched, ctx.snapshot)
    crash.point("gates")


def gate_scratch(ctx: RunContext) -> None:
    """The gates on a scratch export of the change (-f, and test mode's --finalize-workspace):
    no workspace and no live file is touched."""
    assert ctx.snapshot is not None
    sandbox_ready(ctx)
    ctx.gated_tree = gate_tree(ctx, ctx.snapshot.tree, ctx.touched, Stage.GATES)


def gate_workspace(
    ctx: RunContext, ws: wsp.Workspace, touched: tuple[str, ...], current: Snapshot | None = None
) -> Snapshot:
    """Gate exactly the tree the workspace would land, in a scratch export; the gates' edits
    (formatters, blessed outputs) are written back, so the workspace is what was gated.

    Ignored files in the workspace never land, so the gates must not see them either.
    `current` is the workspace's snapshot when the caller has just taken it.
    """
    repo = ws.open()
    snap = current or repo.snapshot(tracked_in=ws.meta.base)
    checked = treecheck.check_tree(
        ctx.config,
        ctx.live,
        tree=snap.tree,
        touched=touched,
        cache=ctx.cache,
        project_root=ctx.live.root,
        trusted=ctx.live.tree_of(ws.meta.base),
        scratch_parent=ws.dir,  # the export is this issue's, next to its worktree
        progress=ctx.progress,
    )
    judge(ctx, checked.verdicts, Stage.GATES)
    if checked.tree != snap.tree:
        repo.restore(checked.tree, tracked_in=ws.meta.base)
        snap = repo.snapshot(tracked_in=ws.meta.base)
        if snap.tree != checked.tree:  # e.g. a blessed output the workspace ignores
            log.info("the workspace holds %s, the gates passed %s", snap.tree, checked.tree)
    ctx.snapshot = snap
    return snap


def gate_tree(ctx: RunContext, tree: str, touched: tuple[str, ...], stage: Stage) -> str:
    """Gate exactly tree in a scratch export under patches/workspaces; the tree the gates
    leave, which differs from tree only where a formatter rewrote a file."""
    checked = treecheck.check_tree(
        ctx.config,
        ctx.live,
        tree=tree,
        touched=touched,
        cache=ctx.cache,
        project_root=ctx.live.root,
        trusted=ctx.live.tree_of(ctx.head) if ctx.head is not None else None,
        scratch_parent=ctx.layout.mkdir(ctx.layout.workspaces),
        progress=ctx.progress,
    )
    judge(ctx, checked.verdicts, stage)
    return checked.tree


def judge(ctx: RunContext, verdicts: list[gates.Verdict], stage: Stage) -> None:
    """Show the verdicts; a failure raises unless -g (a gate that changed files always does)."""
    ctx.summary.gates = [v.label for v in verdicts]
    for verdict in verdicts:
        say(f"[{stage.lower()}] {verdict.label}")
    failed = [v for v in verdicts if not v.ok]
    if not failed:
        return
    if ctx.config.allow_gates_fail and not any(v.changed for v in failed):
        say(f"[{stage.lower()}] {len(failed)} gate(s) failed; continuing because of -g")
        return
    if failed[0].result is not None and not failed[0].changed:
        show_tail(failed[0].result.tail(20))
    raise gates.failure(verdicts, stage)
