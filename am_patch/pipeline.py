"""The stages of a run, in order, per mode; every mode lands through the same promotion path."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from am_patch import (
    apply,
    archive,
    crash,
    finalize,
    gates,
    patchfile,
    policy,
    preflight,
    promote,
    publish,
    sandbox,
    scope,
    treecheck,
)
from am_patch import workspace as wsp
from am_patch.config import Config, describe
from am_patch.errors import Category, RunnerError, Stage
from am_patch.layout import Layout
from am_patch.repo import CommitOid, Repo, Snapshot, remove_tree
from am_patch.runlog import Summary, say, show_tail
from am_patch.verdicts import VerdictCache

log = logging.getLogger("am_patch")


class Mode(StrEnum):
    WORKSPACE = "workspace"
    FINALIZE_LIVE = "finalize-live"
    FINALIZE_WORKSPACE = "finalize-workspace"


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    mode: Mode
    issue_id: str | None
    message: str
    patch_arg: str | None = None
    rerun_latest: bool = False
    allow_policy_change: bool = False  # a human said so on the command line; never a config key
    config_rel: str | None = None  # --config, when it is a file of the work tree


@dataclass(slots=True)
class Run:
    """One run of any mode; `archive()` files everything away after the summary is written."""

    live: Repo
    config: Config
    request: Request
    summary: Summary
    log_path: Path
    patch: patchfile.PatchInput | None = None
    ws: wsp.Workspace | None = None
    last_snapshot: Snapshot | None = None
    failed_member: patchfile.Diff | None = None
    policy_changed: bool = False  # what lands changes the policy (allowed on the command line)
    cache: VerdictCache = field(init=False)
    layout: Layout = field(init=False)

    def __post_init__(self) -> None:
        self.layout = Layout(self.live.root, self.live.common_dir)
        self.cache = VerdictCache(self.layout, enabled=self.config.gate_cache)

    @property
    def patches_dir(self) -> Path:
        return self.layout.patches

    @property
    def issue(self) -> str:
        return self.request.issue_id or "live"

    @property
    def zip_label(self) -> str:
        """patched_<label>_v<NN>.zip: issue<ID>, or finalize_live."""
        return f"issue{self.request.issue_id}" if self.request.issue_id else "finalize_live"

    def execute(self) -> None:
        log.info("effective config:\n%s", "\n".join(describe(self.config)))
        gates.check_python(self.config, self.live.root)
        recovered = promote.recover(self.live)
        if recovered:
            say(f"[preflight] {recovered}")
        branch = preflight.live_branch(self.live, self.config)
        if self.request.mode is Mode.FINALIZE_LIVE:
            publish.sync(self.live, self.config, branch)
            self._preflight_sandbox(script=False)
            finalize.live_tree(self, branch)
        elif self.request.mode is Mode.FINALIZE_WORKSPACE:
            publish.sync(self.live, self.config, branch)
            self._preflight_sandbox(script=False)
            finalize.workspace(self, branch)
        else:
            self._workspace_mode(branch)

    def _preflight_sandbox(self, *, script: bool) -> None:
        """Probe, once and before anything is applied, every jail this run's config will use:
        the patch script's, the gates' and the audit's (their interpreters may differ)."""
        cfg = self.config
        if cfg.sandbox != "bwrap":
            return
        pythons = [Path(sys.executable)] if script else []
        lands = not (cfg.test_mode or cfg.disable_promotion)
        if cfg.sandbox_gates or (lands and cfg.post_success_audit and cfg.sandbox_audit):
            pythons.append(gates.python_for(cfg, self.live.root))
        if pythons:
            sandbox.preflight(
                bwrap=cfg.bwrap,
                live_root=self.live.root,
                git_common_dir=self.live.common_dir,
                pythons=pythons,
            )

    # --- workspace mode -------------------------------------------------------------------

    def _workspace_mode(self, branch: str) -> None:
        cfg = self.config
        arg = self.request.patch_arg
        if self.request.rerun_latest:
            arg = str(archive.latest_input(self.layout, self.issue))
            say(f"[preflight] rerunning {Path(arg).relative_to(self.patches_dir)}")
        self.patch = patchfile.load(
            self.patches_dir, self.issue, arg, ascii_only=cfg.ascii_only_patch
        )
        say(
            f"[preflight] {self.patch.kind} {self.patch.path.name}: "
            f"{len(self.patch.files)} file(s) declared"
        )
        publish.sync(self.live, cfg, branch)
        self._preflight_sandbox(script=self.patch.kind is patchfile.Kind.SCRIPT)
        crash.point("preflight")
        live_head = self.live.head_commit()
        if live_head is None:
            raise RunnerError(Stage.PREFLIGHT, Category.GIT, f"{branch} has no commits yet")
        label = f"test_{self.issue}_{os.getpid()}" if cfg.test_mode else f"issue_{self.issue}"
        self.ws = wsp.prepare(
            self.live,
            self.layout,
            label=label,
            issue_id=self.issue,
            live_head=live_head,
            message=self.request.message,
            files=self.patch.files,
            update_base=cfg.update_workspace,
            soft_reset_first=cfg.soft_reset_workspace,
        )
        try:
            self._patch_and_land(branch)
        finally:
            if cfg.test_mode and self.ws is not None:
                wsp.remove(self.live, self.ws)
                say("[test-mode] throw-away workspace deleted")

    def _patch_and_land(self, branch: str) -> None:
        cfg, ws = self.config, self.ws
        assert ws is not None and self.patch is not None
        say(
            f"[workspace] {ws.repo_dir.relative_to(self.live.root)} "
            f"(base {ws.meta.base[:12]}, attempt {ws.meta.attempt})"
        )
        wsrepo = ws.open()
        checkpoint = wsrepo.snapshot(tracked_in=ws.meta.base)
        log.info("checkpoint tree %s", checkpoint.tree)
        # in meta.json until the attempt ends: a run killed with no chance to roll back leaves
        # it, and the next run restores the checkpoint instead of patching on top
        self.ws = ws = wsp.begin_attempt(ws, checkpoint.tree)
        crash.point("workspace")
        try:
            self._apply_patch(ws)
            crash.point("patch")
            report = self._scope(ws, wsrepo)
            if not report.changes:
                say("[scope] nothing changed, allowed by -n: nothing to commit")
                self.ws = wsp.end_attempt(ws)
                return
            final = self.gate_workspace(ws, report.touched, self.last_snapshot)
        except BaseException as exc:  # a crash, Ctrl-C, SIGTERM too: the next attempt starts clean
            if isinstance(exc, RunnerError) and exc.stage is Stage.PATCH:
                # keep what the patch left for the failure zip
                self.last_snapshot = wsrepo.snapshot(tracked_in=ws.meta.base)
            self._rollback(ws, wsrepo, checkpoint)
            self.ws = wsp.end_attempt(ws)
            raise
        crash.point("gates")
        if cfg.test_mode or cfg.disable_promotion:
            promote.promotion_set(self, ws, final, self.patch.files)
            promote.say_skipped(self, "the workspace keeps the change")
            if not cfg.test_mode:
                self._hold_result(ws.meta.base, checkpoint.tree)
            return
        try:
            promote.promote_workspace(
                self, ws, final, branch, self.request.message, self.patch.files
            )
        except BaseException as exc:
            # not landed (a re-gate after a rebase, PROMOTION, LIVE_GATES, a crash before the
            # fast-forward): the result stays in the workspace
            landed_stages = (Stage.PUSH, Stage.AUDIT)
            if self.summary.commit is None and getattr(exc, "stage", None) not in landed_stages:
                self._hold_result(ws.meta.base, checkpoint.tree)
            elif self.ws is not None:
                self.ws = wsp.end_attempt(self.ws)  # landed: nothing of the attempt to undo
            raise

    def _hold_result(self, base: CommitOid, before: str) -> None:
        """The gated result stays in the workspace without landing: meta.json records it as it
        is now, so a rerun sets it aside instead of applying the patch on top of it."""
        assert self.ws is not None
        if not self.ws.repo_dir.is_dir():
            return
        after = self.ws.open().snapshot(tracked_in=self.ws.meta.base).tree
        self.ws = wsp.hold(self.live, self.ws, base=base, before=before, after=after)

    def _apply_patch(self, ws: wsp.Workspace) -> None:
        assert self.patch is not None
        inputs = ws.dir / "input"
        if os.path.lexists(inputs):
            remove_tree(inputs)
        self.layout.mkdir(inputs)
        if self.patch.kind is patchfile.Kind.SCRIPT:
            jail = self._patch_jail(ws).with_exposed(inputs)  # probed in preflight
            self.summary.sandbox = jail.description
            log.info("sandbox: %s", jail.description)
            script = inputs / self.patch.path.name
            self.layout.write(script, self.patch.data)
            apply.run_script(jail, script, timeout_s=self.config.patch_timeout_s)
            return
        self.summary.sandbox = "none needed (a diff is applied by git apply, no code runs)"
        for diff in self.patch.diffs:
            self.failed_member = diff
            apply.apply_diffs(ws.repo_dir, [diff], inputs)
        self.failed_member = None

    def _patch_jail(self, ws: wsp.Workspace) -> sandbox.Jail:
        enabled = self.config.sandbox == "bwrap"
        if not enabled:
            say(
                "[sandbox] WARNING: SANDBOX DISABLED (--unsafe-no-sandbox): the patch script "
                "runs with your full access to files, network and environment"
            )
        return sandbox.make_jail(
            bwrap=self.config.bwrap,
            enabled=enabled,
            writable=ws.repo_dir,
            live_root=self.live.root,
            git_common_dir=self.live.common_dir,
            python=Path(sys.executable),
            bounds=self.config.bounds,
        )

    def _scope(self, ws: wsp.Workspace, wsrepo: Repo) -> scope.ScopeReport:
        assert self.patch is not None
        after = wsrepo.snapshot(tracked_in=ws.meta.base)
        self.last_snapshot = after
        report = scope.of_snapshot(
            self.live, base=ws.meta.base, snap=after, declared=self.patch.files, config=self.config
        )
        self.summary.files = [(c.status, c.path) for c in report.changes]
        scope.check(report, self.config)
        self.check_policy(self.live.tree_of(ws.meta.base), after.tree, report.touched)
        if report.changes:
            say(f"[scope] {len(report.changes)} file(s) changed, all in scope")
        return report

    def check_policy(self, old_tree: str, new_tree: str, changed: tuple[str, ...]) -> None:
        """SCOPE:POLICY when going from old_tree to new_tree changes the policy, unless the
        command line says --allow-policy-change; then the change is shown and remembered, so
        the push tells a guarded server so too."""
        found = policy.changes(
            self.live, old_tree, new_tree, changed, explicit=self.request.config_rel
        )
        if not found:
            return
        if not self.request.allow_policy_change:
            raise policy.refuse(found, how=f"rerun with {policy.FLAG} if you mean it")
        if not self.policy_changed:
            for line in found:
                say(f"[scope] policy change allowed by {policy.FLAG}: {line}")
        self.policy_changed = True

    def _rollback(self, ws: wsp.Workspace, wsrepo: Repo, checkpoint: Snapshot) -> None:
        if self.config.rollback_workspace_on_fail == "never":
            say(
                "[rollback] NOT rolled back (rollback_workspace_on_fail=never): "
                "the workspace keeps its failed state for repair"
            )
            return
        wsrepo.restore(checkpoint.tree, tracked_in=ws.meta.base, ignored=checkpoint.ignored)
        self.live.set_branch(ws.branch, ws.meta.base)
        wsrepo.reset_index(self.live.tree_of(ws.meta.base))
        say("[rollback] workspace restored to its exact pre-patch state")

    # --- gates (every mode) ------------------------------------------------------------------

    def gate_workspace(
        self, ws: wsp.Workspace, touched: tuple[str, ...], current: Snapshot | None = None
    ) -> Snapshot:
        """Gate exactly the tree the workspace would land, in a scratch export; the gates' edits
        (formatters, blessed outputs) are written back, so the workspace is what was gated.

        Ignored files in the workspace never land, so the gates must not see them either.
        `current` is the workspace's snapshot when the caller has just taken it.
        """
        wsrepo = ws.open()
        snap = current or wsrepo.snapshot(tracked_in=ws.meta.base)
        checked = treecheck.check_tree(
            self.config,
            self.live,
            tree=snap.tree,
            touched=touched,
            cache=self.cache,
            project_root=self.live.root,
            scratch_parent=ws.dir,  # the export is this issue's, next to its worktree
            cache_dir=ws.cache_dir,
        )
        self._judge(checked.verdicts, Stage.GATES)
        if checked.tree != snap.tree:
            wsrepo.restore(checked.tree, tracked_in=ws.meta.base)
            snap = wsrepo.snapshot(tracked_in=ws.meta.base)
            if snap.tree != checked.tree:  # e.g. a blessed output the workspace ignores
                log.info("the workspace holds %s, the gates passed %s", snap.tree, checked.tree)
        self.last_snapshot = snap
        return snap

    def gate_tree(self, tree: str, touched: tuple[str, ...], stage: Stage) -> str:
        """Gate exactly tree in a scratch export under patches/workspaces; the tree the gates
        leave, which differs from tree only where a formatter rewrote a file."""
        checked = treecheck.check_tree(
            self.config,
            self.live,
            tree=tree,
            touched=touched,
            cache=self.cache,
            project_root=self.live.root,
            scratch_parent=self.layout.mkdir(self.layout.workspaces),
        )
        self._judge(checked.verdicts, stage)
        return checked.tree

    def _judge(self, verdicts: list[gates.Verdict], stage: Stage) -> None:
        """Show the verdicts; a failure raises unless -g (a gate that changed files always does)."""
        self.summary.gates = [v.label for v in verdicts]
        for verdict in verdicts:
            say(f"[{stage.lower()}] {verdict.label}")
        failed = [v for v in verdicts if not v.ok]
        if not failed:
            return
        if self.config.allow_gates_fail and not any(v.changed for v in failed):
            say(f"[{stage.lower()}] {len(failed)} gate(s) failed; continuing because of -g")
            return
        if failed[0].result is not None and not failed[0].changed:
            show_tail(failed[0].result.tail(20))
        raise gates.failure(verdicts, stage)

    # --- after the summary -------------------------------------------------------------------

    def archive(self) -> None:
        """File the input away and write the success or failure zip (never in test mode)."""
        if self.config.test_mode or (self.summary.success and self.config.disable_promotion):
            return  # nothing landed: the input stays in patches/ for the real run
        if (self.summary.code or "").startswith(Stage.PREFLIGHT):
            return  # the patch never ran: it stays in the inbox, the log says why
        if self.summary.success:
            if self.patch is not None and self.request.mode is Mode.WORKSPACE:
                self._file_input("successful")
            zip_path = archive.success_zip(self.layout)
            archive.prune_failure_zips(self.layout, self.zip_label, self.config.failure_zips_keep)
        else:
            if self.patch is not None and self.request.mode is Mode.WORKSPACE:
                self._file_input("unsuccessful")
            files = self._archived_files()
            if self.failed_member is not None:
                files[f"failed_member/{self.failed_member.name}"] = self.failed_member.data
            if not files:
                return  # nothing beyond the log, which is in patches/logs already
            zip_path = archive.failure_zip(self.layout, self.zip_label, self.log_path, files)
        self.summary.notes.append(f"ARCHIVE: {zip_path.relative_to(self.live.root)}")

    def _file_input(self, outcome: str) -> None:
        assert self.patch is not None
        filed = archive.file_input(self.layout, self.patch.path, outcome)
        self.summary.archived_input = str(filed.relative_to(self.live.root))

    def _archived_files(self) -> dict[str, bytes]:
        """The declared and changed files as the patch (and gates) left them."""
        snap = self.last_snapshot
        if snap is None:
            return {}
        wanted = {path for _, path in self.summary.files}
        if self.patch is not None:
            wanted |= set(self.patch.files)
        elif self.ws is not None:
            wanted |= set(self.ws.meta.files)
        return {p: self.live.blob_bytes(snap.entries[p][0]) for p in wanted if p in snap.entries}
