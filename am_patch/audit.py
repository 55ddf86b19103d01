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
from am_patch.runlog import say

log = logging.getLogger("am_patch")


def run(live: Repo, cfg: Config) -> None:
    """Run audit_command in the live repo; skipped when its script does not exist.

    The script (or code it imports) may have just been written by a machine-made patch, so it
    runs jailed like the patch: the live tree read-only, a scratch /tmp, no network, a clean
    environment. It reports; it cannot touch the user's files (`sandbox_audit = false` lifts it).
    """
    if not cfg.post_success_audit:
        return
    argv = cfg.audit_argv()
    scripts = [a for a in argv if a.endswith(".py")]
    if scripts and not (live.root / scripts[0]).is_file():
        log.info("audit skipped: %s does not exist", scripts[0])
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
        )
        jail = dataclasses.replace(jail.with_exposed(live.root), chdir=live.root)
        result = jail.run(argv, timeout_s=cfg.gate_timeout_s or None)
    if not result.ok:
        print(result.tail(10), flush=True)
        raise RunnerError(
            Stage.AUDIT,
            Category.FAILED,
            "the audit failed after a successful push; the commit stays",
        )
