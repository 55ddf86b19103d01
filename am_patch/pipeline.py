"""The stages of a run, in order: preflight, workspace, patch, scope, gates, promotion, push."""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from am_patch import archive, gates, patchfile, promote, publish, sandbox, scope, workspace
from am_patch.config import Config, describe
from am_patch.errors import Category, RunnerError, Stage
from am_patch.proc import run as run_process
from am_patch.repo import CommitOid, Repo, Snapshot
from am_patch.runlog import Summary, say

log = logging.getLogger("am_patch")

ROLLBACK_STAGES = (Stage.PATCH, Stage.SCOPE, Stage.GATES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    issue_id: str
    message: str
    patch_arg: str | None


@dataclass(slots=True)
class WorkspaceRun:
    """One workspace-mode run; `archive()` files everything away after the summary is written."""

    live: Repo
    config: Config
    request: Request
    summary: Summary
    log_path: Path
    patch: patchfile.PatchInput | None = None
    ws: workspace.Workspace | None = None
    last_snapshot: Snapshot | None = None
    landed: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def patches_dir(self) -> Path:
        return self.live.root / "patches"

    # --- the stages ---------------------------------------------------------------------

    def execute(self) -> None:
        cfg = self.config
        log.info("effective config:\n%s", "\n".join(describe(cfg)))
        branch = preflight_git(self.live, cfg)
        self.patch = patchfile.load(
            self.patches_dir,
            self.request.issue_id,
            self.request.patch_arg,
            ascii_only=cfg.ascii_only_patch,
        )
        say(f"[preflight] patch {self.patch.path.name}: {len(self.patch.files)} declared file(s)")
        recovered = promote.recover(self.live)
        if recovered:
            say(f"[preflight] {recovered}")
        sync_with_origin(self.live, cfg, branch)
        live_head = self.live.head_commit()
        if live_head is None:
            raise RunnerError(Stage.PREFLIGHT, Category.GIT, f"{branch} has no commits yet")

        self.ws = workspace.prepare(
            self.live,
            workspace.workspace_dir(self.patches_dir, self.request.issue_id),
            issue_id=self.request.issue_id,
            live_head=live_head,
            message=self.request.message,
            files=self.patch.files,
            update_base=cfg.update_workspace,
        )
        ws, wsrepo = self.ws, self.ws.open()
        say(
            f"[workspace] {ws.repo_dir.relative_to(self.live.root)} "
            f"(base {ws.meta.base[:12]}, attempt {ws.meta.attempt})"
        )
        patch_jail = self._patch_jail(ws)
        self.summary.sandbox = patch_jail.description
        log.info("sandbox: %s", patch_jail.description)
        sandbox.probe(patch_jail, Path(sys.executable))

        base_tree = self.live.tree_of(ws.meta.base)
        checkpoint = wsrepo.snapshot(tracked_in=ws.meta.base)
        log.info("checkpoint tree %s", checkpoint.tree)
        try:
            self._run_patch(patch_jail, ws)
            after = wsrepo.snapshot(tracked_in=ws.meta.base)
            self.last_snapshot = after
            report = scope.evaluate(
                self.live,
                base_tree=base_tree,
                new_tree=after.tree,
                declared=self.patch.files,
                config=cfg,
                nested=after.nested_repos,
                unsupported=after.unsupported,
            )
            self.summary.files = [(c.status, c.path) for c in report.changes]
            scope.check(report, cfg)
            if not report.changes:
                say("[scope] no change, allowed by -n: nothing to commit")
                return
            say(f"[scope] {len(report.changes)} file(s) changed, all in scope")
            final = self._gate(ws, report.touched, stage=Stage.GATES)
        except RunnerError as exc:
            if exc.stage in ROLLBACK_STAGES:
                self._rollback(wsrepo, checkpoint)
            raise
        self._promote(ws, wsrepo, base_tree, final, branch)

    def _patch_jail(self, ws: workspace.Workspace) -> sandbox.Jail:
        enabled = self.config.sandbox == "bwrap"
        if not enabled:
            say(
                "[sandbox] WARNING: SANDBOX DISABLED (--unsafe-no-sandbox): the patch script runs "
                "with your full access to files, network and environment"
            )
        inputs = ws.dir / "input"
        inputs.mkdir(exist_ok=True)
        jail = sandbox.make_jail(
            bwrap=self.config.bwrap,
            enabled=enabled,
            writable=ws.repo_dir,
            live_root=self.live.root,
            git_common_dir=self.live.common_dir,
            python=Path(sys.executable),
        )
        return jail.with_exposed(inputs)

    def _run_patch(self, jail: sandbox.Jail, ws: workspace.Workspace) -> None:
        assert self.patch is not None
        script = ws.dir / "input" / self.patch.path.name
        shutil.copyfile(self.patch.path, script)
        say(f"[patch] running {script.name} in the workspace")
        timeout = self.config.patch_timeout_s or None
        result = jail.run([sys.executable, str(script)], timeout_s=timeout)
        if result.timed_out:
            raise RunnerError(
                Stage.PATCH,
                Category.TIMEOUT,
                f"{script.name} ran longer than patch_timeout_s={self.config.patch_timeout_s}s",
            )
        if not result.ok:
            print(result.tail(15), flush=True)
            raise RunnerError(
                Stage.PATCH,
                Category.EXEC,
                f"{script.name} exited with {result.returncode}: {result.tail(1)}",
            )

    def _gate(self, ws: workspace.Workspace, touched: tuple[str, ...], *, stage: Stage) -> Snapshot:
        """Run the gates in the workspace; the snapshot they leave (formatter edits included)."""
        cfg = self.config
        python = gates.python_for(cfg, self.live.root)
        ws.cache_dir.mkdir(exist_ok=True)
        src = ws.repo_dir / "src"
        env = {
            "MYPY_CACHE_DIR": str(ws.cache_dir / "mypy"),
            "RUFF_CACHE_DIR": str(ws.cache_dir / "ruff"),
            "PYTHONPATH": str(src if src.is_dir() else ws.repo_dir),
        }
        jail = sandbox.make_jail(
            bwrap=cfg.bwrap,
            enabled=cfg.sandbox == "bwrap" and cfg.sandbox_gates,
            writable=ws.repo_dir,
            live_root=self.live.root,
            git_common_dir=self.live.common_dir,
            python=python,
            extra_writable=(ws.cache_dir,),
            extra_env=env,
        )
        planned = gates.plan(
            cfg, changed=touched, root=ws.repo_dir, python=python, run_all=cfg.run_all_gates
        )
        verdicts = gates.run_all(planned, jail, cfg, keep_going=cfg.allow_gates_fail)
        self.summary.gates = [v.label for v in verdicts]
        for verdict in verdicts:
            say(f"[gates] {verdict.label}")
        failed = [v for v in verdicts if not v.ok]
        if failed and not cfg.allow_gates_fail:
            first = failed[0]
            if first.result is not None:
                print(first.result.tail(20), flush=True)
            raise RunnerError(
                stage,
                first.name.upper(),
                f"gate {first.name} failed"
                + (" (timed out)" if first.result and first.result.timed_out else "")
                + "; its full output is in the log",
            )
        if failed:
            say(f"[gates] {len(failed)} gate(s) failed, continuing because of -g")
        return ws.open().snapshot(tracked_in=ws.meta.base)

    def _rollback(self, wsrepo: Repo, checkpoint: Snapshot) -> None:
        assert self.ws is not None
        if self.config.rollback_workspace_on_fail == "never":
            say("[rollback] workspace kept in its failed state (rollback_workspace_on_fail=never)")
            return
        wsrepo.restore(checkpoint.tree, tracked_in=self.ws.meta.base)
        self.live.set_branch(self.ws.branch, self.ws.meta.base)
        wsrepo.reset_index(self.live.tree_of(self.ws.meta.base))
        say("[rollback] workspace restored to its pre-patch state")

    def _promote(
        self, ws: workspace.Workspace, wsrepo: Repo, base_tree: str, final: Snapshot, branch: str
    ) -> None:
        cfg = self.config
        self.last_snapshot = final
        assert self.patch is not None
        report = scope.evaluate(
            self.live,
            base_tree=base_tree,
            new_tree=final.tree,
            declared=self.patch.files,
            config=cfg,
            nested=final.nested_repos,
            unsupported=final.unsupported,
        )
        if report.unsafe:
            raise RunnerError(
                Stage.GATES,
                Category.UNSAFE,
                "gates left an unsafe change: " + ", ".join(report.unsafe[:3]),
            )
        paths = report.promotion_set(allow_undeclared=cfg.allow_undeclared_paths)
        left_out = sorted(set(report.touched) - set(paths))
        if left_out:
            log.info("changed by the gates but not promoted: %s", ", ".join(left_out))
        self.summary.files = [(c.status, c.path) for c in report.changes if c.path in paths]
        if cfg.test_mode or cfg.disable_promotion:
            say("[promotion] disabled: nothing lands on live; the workspace keeps the change")
            return
        base = ws.meta.base
        tree = self.live.tree_with(base_tree, final.tree, paths)
        live_head = self.live.ref_commit(f"refs/heads/{branch}")
        if live_head != base:
            raise RunnerError(
                Stage.PROMOTION,
                Category.LIVE_CHANGED,
                f"{branch} moved since the workspace base {base[:12]}: rerun with -W",
            )
        message = f"Issue {self.request.issue_id}: {self.request.message}"
        commit = self.live.commit(tree, [base], message)
        self.live.set_branch(ws.branch, commit)
        log.info("promotion plan: %s", ", ".join(paths))
        promote.land(self.live, promote.Landing(branch=branch, old=base, new=commit, paths=paths))
        self.landed = True
        self.summary.commit = commit
        say(f"[promotion] {branch} fast-forwarded to {commit[:12]}")
        self._push(commit, branch)
        if cfg.delete_workspace_on_success:
            workspace.remove(self.live, ws)
        else:
            wsrepo.reset_index(tree)
        run_audit(self.live, cfg)

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

    # --- after the summary ---------------------------------------------------------------

    def archive(self) -> None:
        """File the input away and write the success or failure zip."""
        if self.patch is None or self.config.test_mode:
            return
        issue = self.request.issue_id
        if self.summary.success:
            archive.file_input(self.patch.path, self.patches_dir / "successful")
            zip_path = archive.success_zip(self.live.root, self.patches_dir)
            archive.prune_failure_zips(self.patches_dir, issue, self.config.failure_zips_keep)
        else:
            archive.file_input(self.patch.path, self.patches_dir / "unsuccessful")
            zip_path = archive.failure_zip(
                self.patches_dir, issue, self.log_path, self._archived_files()
            )
        self.summary.notes.append(f"ARCHIVE: {zip_path.relative_to(self.live.root)}")

    def _archived_files(self) -> dict[str, bytes]:
        """The declared and changed files as the patch (and gates) left them."""
        snap = self.last_snapshot
        if snap is None or self.patch is None:
            return {}
        wanted = set(self.patch.files) | {path for _, path in self.summary.files}
        return {p: self.live.blob_bytes(snap.entries[p][0]) for p in wanted if p in snap.entries}


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
        say("[preflight] origin check skipped (-u)")
        return
    publish.check_not_behind(live, cfg.remote, branch)


def run_audit(live: Repo, cfg: Config) -> None:
    if not cfg.post_success_audit:
        return
    argv = cfg.audit_argv()
    scripts = [a for a in argv if a.endswith(".py")]
    if scripts and not (live.root / scripts[0]).is_file():
        log.info("audit skipped: %s does not exist", scripts[0])
        return
    say(f"[audit] {' '.join(argv)}")
    result = run_process(argv, cwd=live.root, env=None, timeout_s=cfg.gate_timeout_s or None)
    if not result.ok:
        print(result.tail(10), flush=True)
        raise RunnerError(
            Stage.AUDIT,
            Category.FAILED,
            "the audit failed after a successful push; the commit stays",
        )
