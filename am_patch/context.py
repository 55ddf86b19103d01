"""What the stages of one run read and hand on: the live repo, the config (policy), the options
(intent), the summary, and what each stage produced for the next."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from am_patch import patchfile, sandbox
from am_patch import workspace as wsp
from am_patch.config import Config
from am_patch.landing import Landing
from am_patch.layout import Layout
from am_patch.lock import Lock, landing_lock
from am_patch.options import RunOptions
from am_patch.progress import Progress
from am_patch.repo import CommitOid, Repo, Snapshot
from am_patch.runlog import Summary
from am_patch.verdicts import VerdictCache

log = logging.getLogger("am_patch")


@dataclass(slots=True)
class RunContext:
    live: Repo
    config: Config
    options: RunOptions
    summary: Summary
    log_path: Path
    layout: Layout = field(init=False)
    cache: VerdictCache = field(init=False)
    branch: str = ""  # the branch the run lands on
    head: CommitOid | None = None  # live's branch tip when preflight ended
    patch: patchfile.PatchInput | None = None
    failed_member: patchfile.Diff | None = None  # the zip member being applied
    workspace: wsp.Workspace | None = None
    checkpoint: Snapshot | None = None  # the workspace before this attempt
    attempt_base: CommitOid | None = None  # the workspace base the checkpoint is relative to
    snapshot: Snapshot | None = None  # the change as last seen (for the failure zip)
    touched: tuple[str, ...] = ()  # what the change touches
    gated: Snapshot | None = None  # the workspace as the gates passed it
    gated_tree: str = ""  # -f: the live change as the gates passed it
    landing: Landing | None = None  # what moved live main
    policy_changed: bool = False  # what lands changes the policy (a human allowed it)
    probing: sandbox.Probing | None = None  # the sandbox probe, running in the background
    progress: Progress | None = None  # shows gates that run long
    finished: bool = False  # a stage ended the run early, successfully (-n with nothing to do)
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # run whatever the outcome
    landing_lock: Lock | None = None  # held from the fast-forward through the push

    def __post_init__(self) -> None:
        self.layout = Layout(self.live.root, self.live.common_dir)
        self.cache = VerdictCache(self.layout, enabled=self.config.gate_cache)

    def hold_landing(self) -> None:
        """Take the landing lock (waiting for a landing of another run to end), once."""
        if self.landing_lock is None:
            self.landing_lock = landing_lock(self.layout)
            self.landing_lock.__enter__()
            if self.landing_lock.took_over:
                log.info(
                    "took over a stale lock left by a dead run's landing (%s)",
                    self.landing_lock.took_over,
                )

    def let_go_of_landing(self) -> None:
        if self.landing_lock is not None:
            self.landing_lock.release()
            self.landing_lock = None
