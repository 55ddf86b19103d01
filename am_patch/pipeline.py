"""The stages of a run, in order, per mode; every mode lands through the same promotion path."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from am_patch import (
    apply,
    archive,
    audit,
    crash,
    gates,
    patchfile,
    promote,
    publish,
    sandbox,
    scope,
)
from am_patch import workspace as wsp
from am_patch.config import Config, describe
from am_patch.errors import Category, RunnerError, Stage
from am_patch.repo import CommitOid, Repo, Snapshot, _rmtree
from am_patch.runlog import Summary, say
from am_patch.verdicts import VerdictCache

log = logging.getLogger("am_patch")

ROLLBACK_STAGES = (Stage.PATCH, Stage.SCOPE, Stage.GATES)


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
    cache: VerdictCache = field(init=False)

    def __post_init__(self) -> None:
        self.cache = VerdictCache(self.live.common_dir, enabled=self.config.gate_cache)

    @property
    def patches_dir(self) -> Path:
        return self.live.root / "patches"

    @property
    def issue(self) -> str:
        return self.request.issue_id or "live"

    @property
    def zip_label(self) -> str:
        """patched_<label>_v<NN>.zip: issue<ID>, or finalize_live."""
        return f"issue{self.request.issue_id}" if self.request.issue_id else "finalize_live"

    def execute(self) -> None:
        log.info("effective config:\n%s", "\n".join(describe(self.config)))
        recovered = promote.recover(self.live)
        if recovered:
            say(f"[preflight] {recovered}")
        branch = preflight_git(self.live, self.config)
        if self.request.mode is Mode.FINALIZE_LIVE:
            sync_with_origin(self.live, self.config, branch)
            self._finalize_live(branch)
        elif self.request.mode is Mode.FINALIZE_WORKSPACE:
            sync_with_origin(self.live, self.config, branch)
            self._finalize_workspace(branch)
        else:
            self._workspace_mode(branch)

    # --- workspace mode -------------------------------------------------------------------

    def _workspace_mode(self, branch: str) -> None:
        cfg = self.config
        arg = self.request.patch_arg
        if self.request.rerun_latest:
            arg = str(latest_archived(self.patches_dir, self.issue))
            say(f"[preflight] rerunning {Path(arg).relative_to(self.patches_dir)}")
        self.patch = patchfile.load(
            self.patches_dir, self.issue, arg, ascii_only=cfg.ascii_only_patch
        )
        say(
            f"[preflight] {self.patch.kind} {self.patch.path.name}: "
            f"{len(self.patch.files)} file(s) declared"
        )
        sync_with_origin(self.live, cfg, branch)
        crash.point("preflight")
        live_head = self.live.head_commit()
        if live_head is None:
            raise RunnerError(Stage.PREFLIGHT, Category.GIT, f"{branch} has no commits yet")
        label = f"test_{self.issue}_{os.getpid()}" if cfg.test_mode else f"issue_{self.issue}"
        self.ws = wsp.prepare(
            self.live,
            self.patches_dir,
            label=label,
            issue_id=self.issue,
            live_head=live_head,
            message=self.request.message,
            files=self.patch.files,
            update_base=cfg.update_workspace,
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
        if cfg.soft_reset_workspace:
            wsp.soft_reset(self.live, ws)
        say(
            f"[workspace] {ws.repo_dir.relative_to(self.live.root)} "
            f"(base {ws.meta.base[:12]}, attempt {ws.meta.attempt})"
        )
        wsrepo = ws.open()
        checkpoint = wsrepo.snapshot(tracked_in=ws.meta.base)
        log.info("checkpoint tree %s", checkpoint.tree)
        crash.point("workspace")
        try:
            self._apply_patch(ws)
            crash.point("patch")
            report = self._scope(ws, wsrepo)
            if not report.changes:
                say("[scope] nothing changed, allowed by -n: nothing to commit")
                return
            before = self.last_snapshot.tree if self.last_snapshot else None
            final = self._gate_workspace(ws, report.touched, before)
        except RunnerError as exc:
            if exc.stage is Stage.PATCH:  # keep what the patch left for the failure zip
                self.last_snapshot = wsrepo.snapshot(tracked_in=ws.meta.base)
            if exc.stage in ROLLBACK_STAGES:
                self._rollback(ws, wsrepo, checkpoint)
            raise
        crash.point("gates")
        if cfg.test_mode or cfg.disable_promotion:
            self._report_files(ws, final, self.patch.files)
            what = "--test-mode" if cfg.test_mode else "--disable-promotion"
            say(
                f"[promotion] skipped ({what}): live and origin are unchanged"
                + ("" if cfg.test_mode else "; the workspace keeps the change")
            )
            self.summary.notes.append(f"PROMOTION: skipped ({what})")
            return
        self._promote_workspace(ws, final, branch, self.request.message, self.patch.files)

    def _apply_patch(self, ws: wsp.Workspace) -> None:
        assert self.patch is not None
        inputs = ws.dir / "input"
        if inputs.exists():
            _rmtree(inputs)
        inputs.mkdir()
        if self.patch.kind is patchfile.Kind.SCRIPT:
            jail = self._patch_jail(ws).with_exposed(inputs)
            self.summary.sandbox = jail.description
            log.info("sandbox: %s", jail.description)
            sandbox.probe(jail, Path(sys.executable))
            script = inputs / self.patch.path.name
            shutil.copyfile(self.patch.path, script)
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
        )

    def _scope(self, ws: wsp.Workspace, wsrepo: Repo) -> scope.ScopeReport:
        assert self.patch is not None
        after = wsrepo.snapshot(tracked_in=ws.meta.base)
        self.last_snapshot = after
        report = scope.evaluate(
            self.live,
            base_tree=self.live.tree_of(ws.meta.base),
            new_tree=after.tree,
            declared=self.patch.files,
            config=self.config,
            nested=after.nested_repos,
            unsupported=after.unsupported,
        )
        self.summary.files = [(c.status, c.path) for c in report.changes]
        scope.check(report, self.config)
        if report.changes:
            say(f"[scope] {len(report.changes)} file(s) changed, all in scope")
        return report

    def _rollback(self, ws: wsp.Workspace, wsrepo: Repo, checkpoint: Snapshot) -> None:
        if self.config.rollback_workspace_on_fail == "never":
            say(
                "[rollback] NOT rolled back (rollback_workspace_on_fail=never): "
                "the workspace keeps its failed state for repair"
            )
            return
        wsrepo.restore(checkpoint.tree, tracked_in=ws.meta.base)
        self.live.set_branch(ws.branch, ws.meta.base)
        wsrepo.reset_index(self.live.tree_of(ws.meta.base))
        say("[rollback] workspace restored to its exact pre-patch state")

    # --- gates ----------------------------------------------------------------------------

    def _gate_workspace(
        self, ws: wsp.Workspace, touched: tuple[str, ...], before: str | None
    ) -> Snapshot:
        """Gate the workspace; the snapshot the gates leave (formatter edits included)."""
        wsrepo = ws.open()

        def fingerprint() -> dict[str, tuple[str, int]]:
            return wsrepo.snapshot(tracked_in=ws.meta.base, write=False).entries

        planned, verdicts = self._gate_dir(
            ws.repo_dir, ws.cache_dir, touched, before, Stage.GATES, fingerprint
        )
        final = ws.open().snapshot(tracked_in=ws.meta.base)
        self.last_snapshot = final
        gates.record(planned, verdicts, self.cache, final.tree)
        return final

    def _gate_dir(
        self,
        workdir: Path,
        cache_dir: Path,
        touched: tuple[str, ...],
        tree: str | None,
        stage: Stage,
        fingerprint: gates.Fingerprint,
    ) -> tuple[list[gates.Planned], list[gates.Verdict]]:
        """Run the gates on workdir; a failure (or any file change by a checking gate) raises."""
        cfg = self.config
        python = gates.python_for(cfg, self.live.root)
        planned = gates.plan(
            cfg, changed=touched, root=workdir, python=python, run_all=cfg.run_all_gates
        )
        jails = gates.make_jails(
            cfg,
            live_root=self.live.root,
            git_common_dir=self.live.common_dir,
            workdir=workdir,
            cache_dir=cache_dir,
        )
        verdicts = gates.run_all(
            planned,
            jails,
            cfg,
            keep_going=cfg.allow_gates_fail,
            cache=self.cache,
            tree=tree,
            fingerprint=fingerprint,
        )
        self.summary.gates = [v.label for v in verdicts]
        for verdict in verdicts:
            say(f"[{stage.lower()}] {verdict.label}")
        failed = [v for v in verdicts if not v.ok]
        tampered = [v for v in verdicts if v.changed]
        if tampered:  # never allowed, not even with -g: the tree on disk is not the gated one
            raise RunnerError(
                stage,
                tampered[0].name.upper(),
                f"gate {tampered[0].name} changed {', '.join(tampered[0].changed[:3])} while it "
                "ran; only formatters (rewrites = true) may change files",
            )
        if failed and not cfg.allow_gates_fail:
            first = failed[0]
            if first.result is not None:
                print(first.result.tail(20), flush=True)
            timed_out = first.result is not None and first.result.timed_out
            raise RunnerError(
                stage,
                first.name.upper(),
                f"gate {first.name} failed"
                + (" (timed out)" if timed_out else "")
                + "; its full output is in the log",
            )
        if failed:
            say(f"[{stage.lower()}] {len(failed)} gate(s) failed; continuing because of -g")
        return planned, verdicts

    # --- promotion --------------------------------------------------------------------------

    def _report_files(
        self, ws: wsp.Workspace, final: Snapshot, declared: tuple[str, ...]
    ) -> tuple[str, ...]:
        report = scope.evaluate(
            self.live,
            base_tree=self.live.tree_of(ws.meta.base),
            new_tree=final.tree,
            declared=declared,
            config=self.config,
            nested=final.nested_repos,
            unsupported=final.unsupported,
        )
        if report.unsafe:
            raise RunnerError(
                Stage.GATES,
                Category.UNSAFE,
                "the gates left an unsafe change: " + ", ".join(report.unsafe[:3]),
            )
        paths = report.promotion_set(allow_undeclared=self.config.allow_undeclared_paths)
        left_out = sorted(set(report.touched) - set(paths))
        if left_out:
            log.info("changed by the gates but not promoted: %s", ", ".join(left_out))
        self.summary.files = [(c.status, c.path) for c in report.changes if c.path in paths]
        return paths

    def _promote_workspace(
        self,
        ws: wsp.Workspace,
        final: Snapshot,
        branch: str,
        message: str,
        declared: tuple[str, ...],
    ) -> None:
        cfg = self.config
        paths = self._report_files(ws, final, declared)
        if not paths:
            if cfg.allow_no_op:
                say("[promotion] nothing to promote, allowed by -n")
                return
            raise RunnerError(Stage.PROMOTION, Category.NOOP, "nothing left to promote")
        for _ in range(cfg.max_rebase_attempts + 1):
            live_head = self.live.ref_commit(f"refs/heads/{branch}")
            if live_head is None or live_head == ws.meta.base:
                break
            ws, final, paths = self._rebase(ws, final, paths, live_head)
            if not paths:
                self.summary.files = []
                return
        else:
            raise RunnerError(
                Stage.PROMOTION,
                Category.LIVE_CHANGED,
                f"{branch} kept moving during {cfg.max_rebase_attempts} re-gates; "
                "rerun when it is quiet",
            )
        self.ws = ws
        tree = self.live.tree_with(self.live.tree_of(ws.meta.base), final.tree, paths)
        commit = self.live.commit(tree, [ws.meta.base], f"Issue {self.issue}: {message}")
        self.live.set_branch(ws.branch, commit)
        log.info("promotion plan: %s", ", ".join(paths))
        crash.point("commit")
        self._land(branch, ws.meta.base, commit, paths, workdir=ws.repo_dir)
        if cfg.delete_workspace_on_success:
            wsp.remove(self.live, ws)
        else:
            ws.open().reset_index(tree)
        audit.run(self.live, cfg)

    def _rebase(
        self, ws: wsp.Workspace, final: Snapshot, paths: tuple[str, ...], live_head: CommitOid
    ) -> tuple[wsp.Workspace, Snapshot, tuple[str, ...]]:
        """main moved: carry the promotion set onto it (per policy) and gate that tree again."""
        cfg = self.config
        base = ws.meta.base
        moved = {
            c.path
            for c in self.live.diff_trees(self.live.tree_of(base), self.live.tree_of(live_head))
        }
        overlap = sorted(moved & set(paths))
        commits = self.live.commits_between(base, live_head)
        if overlap:
            shown = ", ".join(overlap[:5])
            subjects = "; ".join(f"{c[:10]} {s}" for c, s in commits[:3])
            if cfg.live_changed_resolution == "fail":
                raise RunnerError(
                    Stage.PROMOTION,
                    Category.LIVE_CHANGED,
                    f"main moved since the workspace base and changed {shown} ({subjects}); "
                    "rerun with -W, --overwrite-live or --overwrite-workspace",
                )
            if cfg.live_changed_resolution == "overwrite_workspace":
                paths = tuple(p for p in paths if p not in overlap)
                say(f"[promotion] live version kept for {shown} (--overwrite-workspace)")
                if not paths:
                    if cfg.allow_no_op:
                        say("[promotion] nothing left to promote, allowed by -n")
                        return ws, final, ()
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
        tree = self.live.tree_with(self.live.tree_of(live_head), final.tree, paths)
        ws = wsp.move_base(self.live, ws, live_head, tree)
        final = self._gate_workspace(ws, paths, tree)
        return ws, final, paths

    def _land(
        self,
        branch: str,
        old: CommitOid,
        commit: CommitOid,
        paths: tuple[str, ...],
        *,
        workdir: Path,
    ) -> None:
        """Fast-forward, live gates (undo on failure), push."""
        landing = promote.Landing(branch=branch, old=old, new=commit, paths=paths)
        promote.land(self.live, landing)
        self.summary.commit = commit
        say(f"[promotion] {branch} fast-forwarded to {commit[:12]}")
        crash.point("landed")
        try:
            self._live_gates(commit, paths, workdir)
        except RunnerError:
            promote.undo(self.live, landing)
            self.summary.commit = None
            say(f"[live gates] failed: {branch} is back at {old[:12]}, nothing pushed")
            raise
        self._push(commit, branch)
        crash.point("pushed")

    def _live_gates(self, commit: CommitOid, paths: tuple[str, ...], workdir: Path) -> None:
        """The verdict for the promoted tree: cached when that exact tree was gated."""
        cfg = self.config
        tree = self.live.tree_of(commit)
        python = gates.python_for(cfg, self.live.root)
        planned = gates.plan(
            cfg, changed=paths, root=workdir, python=python, run_all=cfg.run_all_gates
        )
        if gates.all_cached(planned, self.cache, tree):
            say("[live gates] cached: this exact tree already passed every gate")
            return
        check = self.patches_dir / "workspaces" / f".live_gates_{os.getpid()}"
        try:
            self.live.export_tree(tree, check / "repo")
            self._gate_dir(
                check / "repo",
                check / "cache",
                paths,
                tree,
                Stage.LIVE_GATES,
                gates.dir_fingerprint(check / "repo"),
            )
        finally:
            if check.exists():
                _rmtree(check)

    def _push(self, commit: CommitOid, branch: str) -> None:
        cfg = self.config
        if not self.live.has_remote(cfg.remote):
            self.summary.push = "SKIPPED"
            say(f"[push] skipped: no remote {cfg.remote!r}")
            return
        ok, said = publish.push(self.live, cfg.remote, commit, branch)
        self.summary.push = "OK" if ok else "FAIL"
        say(f"[push] {self.summary.push}")
        if not ok:
            hint = (
                f"the commit stays on local {branch}; run 'git pull --rebase {cfg.remote} "
                f"{branch}' then 'git push {cfg.remote} {branch}'"
            )
            self.summary.notes.append(f"PUSH DETAIL: {said.splitlines()[-1] if said else ''}")
            self.summary.notes.append(f"NEXT: {hint}")
            if cfg.require_push_success:
                raise RunnerError(Stage.PUSH, Category.FAILED, f"git push failed; {hint}")

    # --- finalize modes ---------------------------------------------------------------------

    def _finalize_workspace(self, branch: str) -> None:
        ws = wsp.open_existing(self.live, self.patches_dir, f"issue_{self.issue}")
        if ws is None:
            raise RunnerError(
                Stage.PREFLIGHT,
                Category.WORKSPACE,
                f"no workspace for issue {self.issue} under patches/workspaces/",
            )
        self.ws = ws
        self.patch = None
        wsrepo = ws.open()
        snap = wsrepo.snapshot(tracked_in=ws.meta.base)
        self.last_snapshot = snap
        report = scope.evaluate(
            self.live,
            base_tree=self.live.tree_of(ws.meta.base),
            new_tree=snap.tree,
            declared=ws.meta.files,
            config=self.config,
            nested=snap.nested_repos,
            unsupported=snap.unsupported,
        )
        self.summary.files = [(c.status, c.path) for c in report.changes]
        if not report.changes:
            raise RunnerError(
                Stage.PREFLIGHT,
                Category.WORKSPACE,
                f"workspace of issue {self.issue} has nothing to promote",
            )
        scope.check(report, self.config)
        say(
            f"[workspace] finalizing {ws.repo_dir.relative_to(self.live.root)} "
            f"(base {ws.meta.base[:12]}): {len(report.changes)} change(s)"
        )
        final = self._gate_workspace(ws, report.touched, snap.tree)
        self._promote_workspace(ws, final, branch, ws.meta.message, ws.meta.files)

    def _finalize_live(self, branch: str) -> None:
        cfg = self.config
        head = self.live.head_commit()
        if head is None:
            raise RunnerError(Stage.PREFLIGHT, Category.GIT, f"{branch} has no commits yet")
        snap = self.live.snapshot(tracked_in=head)
        self.last_snapshot = snap
        changes = self.live.diff_trees(self.live.tree_of(head), snap.tree)
        paths = tuple(c.path for c in changes)
        self.summary.files = [(c.status, c.path) for c in changes]
        unsafe = scope.unsafe_entries(self.live, snap.tree, changes, nested=snap.nested_repos)
        if unsafe:
            raise RunnerError(Stage.SCOPE, Category.UNSAFE, "unsafe change: " + unsafe[0])
        if not changes:
            if cfg.allow_no_op:
                say("[finalize] the live tree is clean, allowed by -n: nothing to commit")
                return
            raise RunnerError(
                Stage.PROMOTION,
                Category.NOOP,
                "the live tree has no changes to finalize (-n to allow)",
            )
        say(f"[finalize] {len(changes)} live change(s) to gate and commit")
        check = self.patches_dir / "workspaces" / f".finalize_{os.getpid()}"
        try:
            self.live.export_tree(snap.tree, check / "repo")
            planned, verdicts = self._gate_dir(
                check / "repo",
                check / "cache",
                paths,
                snap.tree,
                Stage.GATES,
                gates.dir_fingerprint(check / "repo"),
            )
            gated = self.live.tree_from_dir(snap.tree, check / "repo", paths)
        finally:
            if check.exists():
                _rmtree(check)
        gates.record(planned, verdicts, self.cache, gated)
        commit = self.live.commit(gated, [head], self.request.message)
        if gated != snap.tree:
            say("[finalize] the formatter changed some files; the live files get its version")
        self._land_live(branch, head, commit, paths, snap)
        audit.run(self.live, cfg)

    def _land_live(
        self,
        branch: str,
        head: CommitOid,
        commit: CommitOid,
        paths: tuple[str, ...],
        snap: Snapshot,
    ) -> None:
        """Finalize-live: the changes already are in the working tree; move the ref, sync index."""
        now = self.live.snapshot(tracked_in=head, write=False).entries
        changed_meanwhile = [p for p in paths if now.get(p) != snap.entries.get(p)]
        if changed_meanwhile:
            raise RunnerError(
                Stage.PROMOTION,
                Category.LIVE_DIRTY,
                "live files changed during the run: " + ", ".join(changed_meanwhile),
            )
        if not self.live.cas_ref(f"refs/heads/{branch}", head, commit, "am-patch: finalize"):
            raise RunnerError(
                Stage.PROMOTION,
                Category.LIVE_CHANGED,
                f"{branch} moved during the run; nothing was committed",
            )
        self.live.checkout_paths(commit, list(paths), force=True)
        self.summary.commit = commit
        say(f"[promotion] {branch} now at {commit[:12]}")
        self._push(commit, branch)

    # --- after the summary -------------------------------------------------------------------

    def archive(self) -> None:
        """File the input away and write the success or failure zip (never in test mode)."""
        if self.config.test_mode or (self.summary.success and self.config.disable_promotion):
            return  # nothing landed: the input stays in patches/ for the real run
        if (self.summary.code or "").startswith(Stage.PREFLIGHT):
            return  # the patch never ran: it stays in the inbox, the log says why
        if self.summary.success:
            if self.patch is not None and self.request.mode is Mode.WORKSPACE:
                archive.file_input(self.patch.path, self.patches_dir / "successful")
            zip_path = archive.success_zip(self.live.root, self.patches_dir)
            archive.prune_failure_zips(
                self.patches_dir, self.zip_label, self.config.failure_zips_keep
            )
        else:
            if self.patch is not None and self.request.mode is Mode.WORKSPACE:
                archive.file_input(self.patch.path, self.patches_dir / "unsuccessful")
            files = self._archived_files()
            if self.failed_member is not None:
                files[f"failed_member/{self.failed_member.name}"] = self.failed_member.data
            if not files:
                return  # nothing beyond the log, which is in patches/logs already
            zip_path = archive.failure_zip(self.patches_dir, self.zip_label, self.log_path, files)
        self.summary.notes.append(f"ARCHIVE: {zip_path.relative_to(self.live.root)}")

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


def latest_archived(patches_dir: Path, issue_id: str) -> Path:
    """The newest archived input of exactly this issue (issue_3, never issue_37)."""
    pattern = re.compile(rf"issue_{re.escape(issue_id)}(_v\d+)?\.(py|patch|diff|zip)")
    found = [
        p
        for sub in ("successful", "unsuccessful")
        if (patches_dir / sub).is_dir()
        for p in (patches_dir / sub).iterdir()
        if p.is_file() and pattern.fullmatch(p.name)
    ]
    if not found:
        raise RunnerError(
            Stage.PREFLIGHT,
            Category.PATCH_PATH,
            f"-l: no archived input of issue {issue_id} in patches/successful "
            "or patches/unsuccessful",
        )
    return max(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


def preflight_git(live: Repo, cfg: Config) -> str:
    """The branch this run lands on: main, or the current branch with --allow-non-main."""
    branch = live.head_branch()
    if branch is None:
        raise RunnerError(Stage.PREFLIGHT, Category.GIT, "HEAD is detached: check out main first")
    if branch != cfg.main_branch and not cfg.allow_non_main:
        raise RunnerError(
            Stage.PREFLIGHT,
            Category.GIT,
            f"live repo is on {branch!r}, not {cfg.main_branch!r} (--allow-non-main to proceed)",
        )
    return branch


def sync_with_origin(live: Repo, cfg: Config, branch: str) -> None:
    if not live.has_remote(cfg.remote):
        say(f"[preflight] no remote {cfg.remote!r}: nothing to fetch, push will be skipped")
        return
    publish.fetch(live, cfg.remote, branch)
    if cfg.skip_up_to_date:
        say("[preflight] origin check skipped (-u): the push may fail")
        return
    publish.check_not_behind(live, cfg.remote, branch)
