"""The post-success audit: the project's own report script, run jailed on an export of the landed
commit; only the plain files it leaves in audit/results come back to the live tree."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import tempfile
from pathlib import Path

from am_patch import gates, limits, sandbox
from am_patch.config import Config
from am_patch.errors import Category, Refusal
from am_patch.layout import Layout, UnsafePath
from am_patch.repo import CommitOid, Repo
from am_patch.runlog import say, show_tail

log = logging.getLogger("am_patch")

RESULTS_DIR = "audit/results"  # what the audit may hand back to the live tree


def run(live: Repo, cfg: Config, push: str, commit: CommitOid) -> None:
    """Run audit_command after a successful push (`push` is the summary's OK or SKIPPED; after
    FAIL it is skipped); skipped too when the landed commit has no such script.

    The script (or code it imports) may have just been written by a machine-made patch, so it
    sees only an export of the landed commit: tracked files, no .git, none of your ignored or
    untracked files (a .env, a token in .git/config). It runs jailed like the patch (a scratch
    /tmp, no network, a clean environment; `sandbox_audit = false` lifts the jail, not the
    export). Afterwards the regular files it left under audit/results/ are copied into the live
    tree; links and special files are not, and nothing is written through a link.
    """
    if not cfg.post_success_audit:
        return
    argv = cfg.audit_argv()
    tree = live.tree_of(commit)
    scripts = [a for a in argv if a.endswith(".py")]
    if scripts and live.entry(tree, scripts[0]) is None:
        log.info("audit skipped: %s is not in the landed commit", scripts[0])
        return
    if push == "FAIL":
        say("[audit] skipped: the push failed, and the audit runs after a successful push")
        return
    say(f"[audit] {' '.join(argv)}")
    layout = Layout(live.root, live.common_dir)
    with tempfile.TemporaryDirectory(prefix="am-patch-audit-") as scratch:
        export = Path(scratch) / "repo"
        live.export_tree(tree, export)
        jail = sandbox.make_jail(
            bwrap=cfg.bwrap,
            enabled=cfg.sandbox == "bwrap" and cfg.sandbox_audit,
            writable=export,
            live_root=live.root,
            git_common_dir=live.common_dir,
            python=gates.python_for(cfg, live.root),
            bounds=cfg.bounds,
        )
        result = dataclasses.replace(jail, chdir=export).run(
            argv, timeout_s=cfg.gate_timeout_s or None
        )
        kept = _copy_results(export, layout, live, max_bytes=cfg.max_file_bytes)
    if result.output.strip():  # how the audit status changed, pass or fail
        show_tail(result.tail(10))
    for path in kept:
        say(f"[audit] kept your edit of {path}: the audit's version is not written")
    if result.bound:
        raise Refusal(
            Category.LIMIT,
            f"the audit was stopped by {limits.describe(result.bound, cfg.bounds)} after a "
            "successful push; the commit stays",
        )
    if not result.ok:
        raise Refusal(
            Category.FAILED,
            "the audit failed after a successful push; the commit stays",
        )


def _copy_results(export: Path, layout: Layout, live: Repo, *, max_bytes: int) -> list[str]:
    """The regular files under the export's audit/results into the live tree; what is there is
    replaced unless it is a tracked file with uncommitted edits (those are kept and returned)."""
    source = export / RESULTS_DIR
    if not source.is_dir() or source.is_symlink():
        return []
    kept: list[str] = []
    for dirpath, dirnames, files in os.walk(source):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in files:
            full = Path(dirpath, name)
            st = full.lstat()
            rel = full.relative_to(export).as_posix()
            if not stat.S_ISREG(st.st_mode) or (max_bytes and st.st_size > max_bytes):
                log.info("audit result %s not copied: not a plain file under max_file_bytes", rel)
                continue
            data = full.read_bytes()
            target = live.root / rel
            if target.is_file() and not target.is_symlink() and target.read_bytes() == data:
                continue
            if live.dirty_paths([rel]) and live.entry(live.head_tree(), rel) is not None:
                kept.append(rel)
                continue
            try:
                layout.write(target, data)
            except UnsafePath as exc:
                say(f"[audit] result not copied: {exc}")
                continue
            log.info("audit result copied: %s", rel)
    return kept
