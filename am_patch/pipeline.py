"""A run, stage by stage: the stages of each mode in order, each inside a boundary that names its
stage in any refusal, then the summary and the archives.

The stages, as the README lists them: preflight, workspace, patch, scope, gates, promotion, live
gates, push, audit, archives. Modes differ by their stage lists (`stages_for`), never by flags
checked inside a stage.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from am_patch import __version__, archive, config, events, stages
from am_patch import promotion as after
from am_patch.context import RunContext
from am_patch.errors import Category, Refusal, RunnerError, Stage
from am_patch.interrupts import Terminated, signal_of, stop_signals_raise
from am_patch.layout import Layout, UnsafePath
from am_patch.lock import issue_lock
from am_patch.options import Mode, RunOptions
from am_patch.progress import Progress
from am_patch.repo import Repo
from am_patch.runlog import RunLog, Summary, say

log = logging.getLogger("am_patch")

Failure = Callable[[RunContext, BaseException], None]


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage: its name (as the README says it), the stage its refusals are reported as,
    what it does, and what a failure in it must undo."""

    name: str
    reported_as: Stage
    run: Callable[[RunContext], None]
    on_failure: Failure | None = None


PREFLIGHT = StageSpec("preflight", Stage.PREFLIGHT, stages.check_live)
# workspace mode: a failed patch, scope or gate rolls the attempt back; a failure before the
# fast-forward keeps the gated result in the workspace, un-promoted
PREPARE = StageSpec("workspace", Stage.PREFLIGHT, stages.prepare_workspace)
PATCH = StageSpec("patch", Stage.PATCH, stages.apply_patch, stages.roll_back_attempt)
SCOPE = StageSpec("scope", Stage.SCOPE, stages.check_scope, stages.roll_back_attempt)
GATES = StageSpec("gates", Stage.GATES, stages.gate, stages.roll_back_attempt)
PROMOTION = StageSpec(
    "promotion", Stage.PROMOTION, after.promote_workspace, after.after_failed_landing
)
LIVE_GATES = StageSpec("live gates", Stage.LIVE_GATES, after.live_gates, after.after_failed_landing)
PUSH = StageSpec("push", Stage.PUSH, after.push, after.after_failed_landing)
AUDIT = StageSpec("audit", Stage.AUDIT, after.run_audit, after.after_failed_landing)
SKIP = StageSpec("promotion", Stage.PROMOTION, after.skip_promotion)
# --finalize-workspace: the workspace as it is, hand edits included
OPEN = StageSpec("workspace", Stage.PREFLIGHT, stages.open_workspace)
WORKSPACE_SCOPE = StageSpec("scope", Stage.SCOPE, stages.check_workspace_scope)
WORKSPACE_GATES = StageSpec("gates", Stage.GATES, stages.gate)
# -f: the live tree's changes, gated in a scratch export and committed in place
LIVE_SCOPE = StageSpec("scope", Stage.SCOPE, stages.check_live_scope)
SCRATCH_GATES = StageSpec("gates", Stage.GATES, stages.gate_scratch)
COMMIT_LIVE = StageSpec("promotion", Stage.PROMOTION, after.commit_live)


def _plain(spec: StageSpec) -> StageSpec:
    return StageSpec(spec.name, spec.reported_as, spec.run)


def stages_for(options: RunOptions) -> tuple[StageSpec, ...]:
    """The stages of a run of options' mode, in order."""
    checked: tuple[StageSpec, ...]
    landed: tuple[StageSpec, ...]
    if options.mode is Mode.WORKSPACE:
        checked = (PREFLIGHT, PREPARE, PATCH, SCOPE, GATES)
        landed = (PROMOTION, LIVE_GATES, PUSH, AUDIT)
    elif options.mode is Mode.FINALIZE_WORKSPACE:
        gates = SCRATCH_GATES if options.test_mode else WORKSPACE_GATES  # test mode touches none
        checked = (PREFLIGHT, OPEN, WORKSPACE_SCOPE, gates)
        landed = tuple(map(_plain, (PROMOTION, LIVE_GATES, PUSH, AUDIT)))
    else:
        checked = (PREFLIGHT, LIVE_SCOPE, SCRATCH_GATES)
        landed = (COMMIT_LIVE, _plain(PUSH), _plain(AUDIT))
    return checked + (landed if options.lands else (SKIP,))


def _run_stage(ctx: RunContext, spec: StageSpec) -> None:
    """The stage's boundary: a refusal from below gets the stage's name; a failure of any kind
    first undoes what the stage asks for."""
    try:
        with events.stage(spec.name):
            spec.run(ctx)
    except (Refusal, UnsafePath) as exc:
        staged = (
            RunnerError.at(spec.reported_as, exc)
            if isinstance(exc, Refusal)
            else RunnerError(spec.reported_as, Category.UNSAFE, str(exc))
        )
        if spec.on_failure is not None:
            spec.on_failure(ctx, staged)
        if staged is exc:
            raise
        raise staged from exc
    except BaseException as exc:
        if spec.on_failure is not None:
            spec.on_failure(ctx, exc)
        raise


@dataclass(frozen=True, slots=True)
class Outcome:
    summary: Summary
    signal: int | None = None  # the run was interrupted by this signal


def run(live: Repo, options: RunOptions) -> Outcome:
    """One run, under its issue's lock and with its own log: the stages of its mode, then the
    summary and the archives. Every failure of the run ends up in the summary. Runs of other
    issues go on side by side; only their landings take turns (the landing lock)."""
    layout = Layout(live.root, live.common_dir)
    try:
        layout.check_all()
    except UnsafePath as exc:
        raise RunnerError(Stage.PREFLIGHT, Category.UNSAFE, str(exc)) from exc
    summary = Summary(issue_id=options.issue_id, mode=options.mode, message=options.message)
    signal: int | None = None
    with (
        stop_signals_raise() as stop,
        issue_lock(layout, options.log_label, wait_s=options.wait_s) as lock,
        RunLog(layout, options.log_label) as runlog,
    ):
        live.add_exclude("/patches/")
        summary.log_path = str(runlog.path.relative_to(live.root))
        log.info(
            "am-patch %s: issue %s %r in %s",
            __version__,
            options.issue_id,
            options.message,
            live.root,
        )
        if lock.took_over:
            log.info("took over a stale lock left by a dead run (%s)", lock.took_over)
        ctx: RunContext | None = None
        try:
            ctx = _context(live, options, summary, runlog)
            try:
                with Progress(heartbeat=say) as ctx.progress:
                    for spec in stages_for(ctx.options):
                        if ctx.finished:
                            break
                        _run_stage(ctx, spec)
            finally:
                for cleanup in ctx.cleanups:
                    cleanup()
                ctx.let_go_of_landing()
                if ctx.workspace is not None and ctx.workspace.repo_dir.is_dir():
                    ctx.workspace.memory.persist()  # what its files are: the next run reads less
        except RunnerError as exc:
            summary.code, summary.reason = exc.code, exc.message
            log.info("failure fingerprint: %s %s", exc.code, exc.message)
        except (KeyboardInterrupt, Terminated) as exc:
            signal = signal_of(exc)
            why = str(exc) if isinstance(exc, Terminated) else "interrupted by Ctrl-C"
            stopped = RunnerError(Stage.INTERNAL, Category.INTERRUPTED, why)
            summary.code, summary.reason = stopped.code, stopped.message
            ctx = None  # an interrupted run files nothing away: its input stays in patches/
        except Exception as exc:
            log.info("unexpected error:\n%s", traceback.format_exc())
            bug = RunnerError(Stage.INTERNAL, Category.BUG, f"{type(exc).__name__}: {exc}")
            summary.code, summary.reason = bug.code, bug.message + " (a bug; see the log)"
        stop.armed = False
        runlog.log_summary(summary)  # before archiving: the failure zip carries the whole log
        if ctx is not None:
            try:
                with events.stage("archives"):
                    _archive(ctx)
            except UnsafePath as exc:  # the result stands; nothing was written through the link
                summary.notes.append(f"ARCHIVE: refused: {exc}")
        runlog.write_json(summary)
    return Outcome(summary, signal)


def _context(live: Repo, options: RunOptions, summary: Summary, runlog: RunLog) -> RunContext:
    try:
        cfg = config.load(
            live.root, explicit=options.config, overrides=options.overrides, cli=options.flag_keys
        )
    except Refusal as exc:
        raise RunnerError.at(Stage.PREFLIGHT, exc) from exc
    options = options.resolved(cfg)
    if options.test_mode:
        summary.mode = "test-mode"
    return RunContext(live=live, config=cfg, options=options, summary=summary, log_path=runlog.path)


# --- archives -------------------------------------------------------------------------------


def _archive(ctx: RunContext) -> None:
    """File the input away and write the success or failure zip (never in test mode)."""
    options, summary = ctx.options, ctx.summary
    if options.test_mode or (summary.success and options.disable_promotion):
        return  # nothing landed: the input stays in patches/ for the real run
    if (summary.code or "").startswith(Stage.PREFLIGHT):
        return  # the patch never ran: it stays in the inbox, the log says why
    if summary.success:
        if ctx.patch is not None:
            _file_input(ctx, "successful")
        head = ctx.live.head_commit()
        zip_path = ctx.layout.success_zip
        if head is not None:
            zip_path = archive.success_zip(ctx.layout, ctx.live, head)
        archive.prune_failure_zips(ctx.layout, options.zip_label, ctx.config.failure_zips_keep)
    else:
        if ctx.patch is not None:
            _file_input(ctx, "unsuccessful")
        files = _archived_files(ctx)
        if ctx.failed_member is not None:
            files[f"failed_member/{ctx.failed_member.name}"] = ctx.failed_member.data
        if not files:
            return  # nothing beyond the log, which is in patches/logs already
        zip_path = archive.failure_zip(ctx.layout, options.zip_label, ctx.log_path, files)
    summary.notes.append(f"ARCHIVE: {zip_path.relative_to(ctx.live.root)}")


def _file_input(ctx: RunContext, outcome: str) -> None:
    assert ctx.patch is not None
    filed = archive.file_input(ctx.layout, ctx.patch.path, outcome)
    ctx.summary.archived_input = str(filed.relative_to(ctx.live.root))


def _archived_files(ctx: RunContext) -> dict[str, bytes]:
    """The declared and changed files as the patch (and gates) left them."""
    snap = ctx.snapshot
    if snap is None:
        return {}
    wanted = {path for _, path in ctx.summary.files}
    if ctx.patch is not None:
        wanted |= set(ctx.patch.files)
    elif ctx.workspace is not None:
        wanted |= set(ctx.workspace.meta.files)
    return {p: ctx.live.blob_bytes(snap.entries[p][0]) for p in wanted if p in snap.entries}
