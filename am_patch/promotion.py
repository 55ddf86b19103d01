"""The stages after the gates: promotion (or its skipping), live gates, push and audit."""

from __future__ import annotations

import logging

from am_patch import audit, crash, gates, landing, policy, publish, scope
from am_patch import workspace as wsp
from am_patch.context import RunContext
from am_patch.errors import Category, Refusal, RunnerError, Stage
from am_patch.landing import Landing
from am_patch.options import Mode
from am_patch.repo import CommitOid, Snapshot
from am_patch.runlog import say
from am_patch.stages import check_policy, gate_tree, gate_workspace

log = logging.getLogger("am_patch")


# --- promotion --------------------------------------------------------------------------------


def promote_workspace(ctx: RunContext) -> None:
    """Commit the promotion set on the workspace base, rebased and re-gated while main moves,
    then fast-forward live main to it."""
    assert ctx.workspace is not None and ctx.gated is not None
    cfg, live, ws, gated = ctx.config, ctx.live, ctx.workspace, ctx.gated
    paths = _promotion_set(ctx, ws, gated)
    if not paths:
        if not cfg.allow_no_op:
            raise Refusal(Category.NOOP, "nothing left to promote")
        say("[promotion] nothing to promote, allowed by -n")
        ctx.finished = True
        return
    for attempt in range(cfg.max_rebase_attempts + 1):
        ctx.hold_landing()  # another run's landing ends first; main stays put while held
        live_head = live.ref_commit(f"refs/heads/{ctx.branch}")
        if live_head is None or live_head == ws.meta.base:
            break
        if attempt == cfg.max_rebase_attempts:
            raise Refusal(
                Category.LIVE_CHANGED,
                f"{ctx.branch} kept moving during {cfg.max_rebase_attempts} re-gates; "
                "rerun when it is quiet",
            )
        if attempt < cfg.max_rebase_attempts - 1:
            ctx.let_go_of_landing()  # rebasing and gating again take long: others may land
        else:  # the last rebase keeps the lock: however busy main is, this one then lands
            say("[promotion] last rebase allowed: holding the landing lock until it lands")
        paths = landing.carry_over(live, cfg, base=ws.meta.base, live_head=live_head, paths=paths)
        if not paths:
            ctx.summary.files = []
            ctx.finished = True
            return
        tree = live.tree_with(live.tree_of(live_head), gated.tree, paths)
        ws = ctx.workspace = wsp.move_base(live, ws, live_head, tree)
        gated = ctx.gated = gate_workspace(ctx, ws, paths)
    base_tree = live.tree_of(ws.meta.base)
    tree = live.tree_with(base_tree, gated.tree, paths)
    changes = live.diff_trees(base_tree, tree)
    # a rebase combines the patch with main's new commits: judge what lands once more
    unsafe = scope.unsafe_entries(live, tree, changes, config=cfg)
    if unsafe:
        raise RunnerError(Stage.SCOPE, Category.UNSAFE, "unsafe change: " + "; ".join(unsafe[:3]))
    check_policy(ctx, base_tree, tree, tuple(c.path for c in changes))
    # what --overwrite-workspace dropped is not promoted: list exactly what the commit changes
    ctx.summary.files = [(c.status, c.path) for c in changes]
    commit = live.commit(tree, [ws.meta.base], f"Issue {ctx.options.issue}: {ws.meta.message}")
    live.set_branch(ws.branch, commit)
    log.info("promotion plan: %s", ", ".join(paths))
    crash.point("commit")
    _land(ctx, Landing(branch=ctx.branch, old=ws.meta.base, new=commit, paths=paths))


def _promotion_set(ctx: RunContext, ws: wsp.Workspace, gated: Snapshot) -> tuple[str, ...]:
    """The paths to promote from the gated workspace: its changes in scope, gate outputs
    blessed, and the undeclared ones with -a."""
    declared = ctx.patch.files if ctx.patch is not None else ws.meta.files
    report = scope.of_snapshot(
        ctx.live, base=ws.meta.base, snap=gated, declared=declared, config=ctx.config
    )
    if report.unsafe:
        raise RunnerError(
            Stage.GATES,
            Category.UNSAFE,
            "the gates left an unsafe change: " + ", ".join(report.unsafe[:3]),
        )
    paths = report.promotion_set(allow_undeclared=ctx.config.allow_undeclared_paths)
    left_out = sorted(set(report.touched) - set(paths))
    if left_out:
        log.info("changed by the gates but not promoted: %s", ", ".join(left_out))
    ctx.summary.files = [(c.status, c.path) for c in report.changes if c.path in paths]
    return paths


def _land(ctx: RunContext, moved: Landing) -> None:
    landing.land(ctx.live, moved)
    ctx.landing = moved
    ctx.summary.commit = moved.new
    say(f"[promotion] {moved.branch} fast-forwarded to {moved.new[:12]}")
    crash.point("landed")


def commit_live(ctx: RunContext) -> None:
    """-f: commit the gated live tree on HEAD and move the branch to it in place; the files
    already are in the working tree (a formatter's edits aside, which follow)."""
    assert ctx.head is not None and ctx.snapshot is not None
    live, head, snap = ctx.live, ctx.head, ctx.snapshot
    ctx.hold_landing()
    commit = live.commit(ctx.gated_tree, [head], ctx.options.message)
    if ctx.gated_tree != snap.tree:
        say("[finalize] the formatter changed some files; the live files get its version")
    # the live changes plus any file a formatter rewrote; each must still be as the run read it
    paths: list[str] = [c.path for c in live.diff_trees(live.tree_of(head), live.tree_of(commit))]
    now = live.snapshot(tracked_in=head, write=False).entries
    changed_meanwhile = [p for p in paths if now.get(p) != snap.entries.get(p)]
    if changed_meanwhile:
        raise Refusal(
            Category.LIVE_DIRTY,
            "live files changed during the run: " + ", ".join(changed_meanwhile),
        )
    journal = landing.move_in_place(live, ctx.branch, head, commit, paths)
    ctx.summary.commit = commit
    ctx.landing = Landing(branch=ctx.branch, old=head, new=commit, paths=tuple(paths))
    landing.sync_in_place(live, ctx.branch, commit, paths, journal)
    say(f"[promotion] {ctx.branch} now at {commit[:12]}")


def skip_promotion(ctx: RunContext) -> None:
    """--test-mode or --disable-promotion: the run stops after the gates; live and origin stay
    as they are, and a real workspace keeps the gated result, recorded as un-promoted."""
    options = ctx.options
    what = "--test-mode" if options.test_mode else "--disable-promotion"
    kept = ""
    if ctx.workspace is not None and ctx.gated is not None:  # workspace mode, finalize-workspace
        _promotion_set(ctx, ctx.workspace, ctx.gated)
        kept = "the workspace keeps the change"
        if options.mode is Mode.WORKSPACE and not options.test_mode:
            hold_result(ctx)
    elif options.mode is Mode.FINALIZE_LIVE and ctx.snapshot is not None:
        if ctx.gated_tree != ctx.snapshot.tree:
            say("[finalize] the formatter would change some files; they are left as they are")
        kept = "your live edits stay uncommitted"
    say(
        f"[promotion] skipped ({what}): live and origin are unchanged"
        + ("" if options.test_mode or not kept else f"; {kept}")
    )
    ctx.summary.notes.append(f"PROMOTION: skipped ({what})")


def hold_result(ctx: RunContext) -> None:
    """The gated result stays in the workspace without landing: meta.json records it as it is
    now, so a rerun sets it aside instead of applying the patch on top of it."""
    ws, checkpoint = ctx.workspace, ctx.checkpoint
    if ws is None or checkpoint is None or ctx.attempt_base is None or not ws.repo_dir.is_dir():
        return
    after = ws.open().snapshot(tracked_in=ws.meta.base).tree
    ctx.workspace = wsp.hold(
        ctx.live, ws, base=ctx.attempt_base, before=checkpoint.tree, after=after
    )


def after_failed_landing(ctx: RunContext, exc: BaseException) -> None:
    """A failure in promotion or live gates of workspace mode: not landed (a re-gate after a
    rebase, PROMOTION, LIVE_GATES, a crash before the fast-forward), so the gated result stays
    in the workspace; landed (a push or audit failure): nothing of the attempt to undo."""
    if ctx.summary.commit is None and getattr(exc, "stage", None) not in (Stage.PUSH, Stage.AUDIT):
        hold_result(ctx)
    elif ctx.workspace is not None:
        ctx.workspace = wsp.end_attempt(ctx.workspace)


# --- live gates, push, audit ------------------------------------------------------------------


def live_gates(ctx: RunContext) -> None:
    """The verdict for the promoted tree: cached when that exact tree was gated; on a failure
    the fast-forward is undone and nothing is pushed."""
    assert ctx.landing is not None
    moved = ctx.landing
    try:
        _gate_landed(ctx, moved.new, moved.paths)
    except Refusal:
        for path in landing.undo(ctx.live, moved):
            say(f"[live gates] kept your edit of {path}, made while the live gates ran")
        ctx.summary.commit = None
        say(f"[live gates] failed: {moved.branch} is back at {moved.old[:12]}, nothing pushed")
        raise


def _gate_landed(ctx: RunContext, commit: CommitOid, paths: tuple[str, ...]) -> None:
    cfg, live = ctx.config, ctx.live
    tree = live.tree_of(commit)
    python = gates.python_for(cfg, live.root)
    planned = gates.plan(
        cfg,
        changed=paths,
        root=live.root,
        python=python,
        run_all=cfg.run_all_gates,
        exists=lambda path: live.entry(tree, path) is not None,
        all_files=lambda: live.tree_entries(tree).keys(),
    )
    if gates.all_cached(planned, ctx.cache, tree):
        say("[live gates] cached: this exact tree already passed every gate")
        return
    left = gate_tree(ctx, tree, paths, Stage.LIVE_GATES)
    if left != tree:
        log.info("live gates: the formatter would still change the landed tree (%s)", left)


def push(ctx: RunContext) -> None:
    """Push exactly the landed commit (telling a guarded server when a human allowed a policy
    change), then drop the workspace (or keep it, based on the landed commit, with -k).

    When origin refuses it because another runner pushed first, the landing is undone, live
    main fast-forwarded to origin's, and the result rebased onto it, gated again, landed and
    pushed again, at most max_rebase_attempts times: origin only ever gets a gated tree, and
    after a success live main is what origin accepted.
    """
    assert ctx.landing is not None
    cfg, live = ctx.config, ctx.live
    if not live.has_remote(cfg.remote):
        ctx.summary.push = "SKIPPED"
        say(f"[push] skipped: no remote {cfg.remote!r}")
    else:
        options = (policy.PUSH_OPTION,) if ctx.policy_changed else ()
        for attempt in range(cfg.max_rebase_attempts + 1):
            pushed = publish.push(live, cfg.remote, ctx.landing.new, ctx.branch, options)
            if pushed.ok or not pushed.behind or ctx.workspace is None:
                break
            if attempt == cfg.max_rebase_attempts:
                break
            _catch_up_with_origin(ctx)
            assert ctx.landing is not None
        publish.report(pushed, cfg, ctx.branch, ctx.summary)
    crash.point("pushed")
    ctx.let_go_of_landing()
    ws = ctx.workspace
    if ws is None or ctx.options.mode is Mode.FINALIZE_LIVE:
        return
    if ctx.config.delete_workspace_on_success:
        wsp.retire(ctx.live, ws, ctx.landing.new, ctx.config.workspace_pool, ctx.snapshot)
    else:
        ctx.workspace = wsp.keep_landed(ctx.live, ws, ctx.landing.new)


def _catch_up_with_origin(ctx: RunContext) -> None:
    """Origin moved since preflight: undo the landing, fast-forward live main to origin's, and
    land the result again on top (rebased and gated again, as when live main moves)."""
    assert ctx.landing is not None
    cfg, live, moved = ctx.config, ctx.live, ctx.landing
    say(
        "[push] origin has commits this landing lacks (another runner pushed first): undoing "
        "the landing, fetching, and rebasing onto them"
    )
    for path in landing.undo(live, moved):
        say(f"[push] kept your edit of {path}")
    ctx.summary.commit, ctx.landing = None, None
    publish.fetch(live, cfg.remote, ctx.branch)
    theirs = live.ref_commit(f"refs/remotes/{cfg.remote}/{ctx.branch}")
    if theirs is None or not live.is_ancestor(moved.old, theirs):
        raise RunnerError(
            Stage.PUSH,
            Category.FAILED,
            f"{cfg.remote}/{ctx.branch} no longer descends from {moved.old[:12]} (rewritten?); "
            "nothing was pushed and live main is back where it was",
        )
    paths = tuple(c.path for c in live.diff_trees(live.tree_of(moved.old), live.tree_of(theirs)))
    try:
        landing.land(live, Landing(branch=ctx.branch, old=moved.old, new=theirs, paths=paths))
    except Refusal as exc:
        raise RunnerError.at(Stage.PROMOTION, exc) from exc
    say(f"[push] live {ctx.branch} fast-forwarded to {cfg.remote}'s {theirs[:12]}")
    for stage, step in ((Stage.PROMOTION, promote_workspace), (Stage.LIVE_GATES, live_gates)):
        try:
            step(ctx)
        except Refusal as exc:
            raise RunnerError.at(stage, exc) from exc
    if ctx.landing is None:
        raise RunnerError(
            Stage.PROMOTION, Category.NOOP, "nothing left to promote on top of origin's main"
        )


def run_audit(ctx: RunContext) -> None:
    assert ctx.landing is not None
    audit.run(ctx.live, ctx.config, ctx.summary.push, ctx.landing.new)
