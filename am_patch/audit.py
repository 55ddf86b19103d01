"""The post-success audit: the project's own report script, run in the live repo, jailed."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

from am_patch import gates, sandbox
from am_patch.config import Config
from am_patch.errors import Category, RunnerError, Stage
from am_patch.repo import Repo
from am_patch.runlog import say, show_tail

log = logging.getLogger("am_patch")

RESULTS_DIR = "audit/results"  # the one place in the live tree the jailed audit may write


def run(live: Repo, cfg: Config, push: str) -> None:
    """Run audit_command in the live repo after a successful push (`push` is the summary's OK or
    SKIPPED; after FAIL it is skipped); skipped too when its script does not exist.

    The script (or code it imports) may have just been written by a machine-made patch, so it
    runs jailed like the patch: the live tree read-only but for `audit/results/` (where audit
    scripts write their reports, when it exists), a scratch /tmp, no network, a clean
    environment. It cannot touch the user's other files (`sandbox_audit = false` lifts it).
    """
    if not cfg.post_success_audit:
        return
    argv = cfg.audit_argv()
    scripts = [a for a in argv if a.endswith(".py")]
    if scripts and not (live.root / scripts[0]).is_file():
        log.info("audit skipped: %s does not exist", scripts[0])
        return
    if push == "FAIL":
        say("[audit] skipped: the push failed, and the audit runs after a successful push")
        return
    say(f"[audit] {' '.join(argv)}")
    with tempfile.TemporaryDirectory(prefix="am-patch-audit-") as scratch:
        jail = sandbox.make_jail(
            bwrap=cfg.bwrap,
            enabled=cfg.sandbox == "bwrap" and cfg.sandbox_audit,
            writable=Path(scratch),
            live_root=live.root,
            git_common_dir=live.common_dir,
            python=gates.python_for(cfg, live.root),
            extra_writable=_results_dir(live.root),
        )
        jail = dataclasses.replace(jail.with_exposed(live.root), chdir=live.root)
        result = jail.run(argv, timeout_s=cfg.gate_timeout_s or None)
    if result.output.strip():  # how the audit status changed, pass or fail
        show_tail(result.tail(10))
    if not result.ok:
        raise RunnerError(
            Stage.AUDIT,
            Category.FAILED,
            "the audit failed after a successful push; the commit stays",
        )


def _results_dir(root: Path) -> tuple[Path, ...]:
    """audit/results when it is a real directory of the live tree (no link leading elsewhere)."""
    results = root / RESULTS_DIR
    return (results,) if results.is_dir() and results.resolve() == results else ()
