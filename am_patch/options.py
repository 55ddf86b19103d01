"""What one run is asked to do (its mode, issue, message, input and intent), apart from the
policy in Config: the stage list of a run follows from these, not from flags inside stages."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from am_patch.config import Config


class Mode(StrEnum):
    WORKSPACE = "workspace"
    FINALIZE_LIVE = "finalize-live"
    FINALIZE_WORKSPACE = "finalize-workspace"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """The command line of one run. The four intents (test_mode, disable_promotion,
    update_workspace, soft_reset_workspace) may come from config keys too: `resolved` takes
    them from the loaded config, where flags already won over the file."""

    mode: Mode
    issue_id: str | None
    message: str
    patch_arg: str | None = None
    rerun_latest: bool = False
    allow_policy_change: bool = False  # a human said so on the command line; never a config key
    config: Path | None = None  # --config
    config_rel: str | None = None  # --config, when it is a file of the work tree
    overrides: tuple[str, ...] = ()
    wait_s: float = 0  # --wait: how long to wait for another run of the same issue
    flag_keys: Mapping[str, Any] = field(default_factory=dict)  # config keys the switches set
    test_mode: bool = False
    disable_promotion: bool = False
    update_workspace: bool = False
    soft_reset_workspace: bool = False

    def resolved(self, cfg: Config) -> RunOptions:
        return dataclasses.replace(
            self,
            test_mode=cfg.test_mode,
            disable_promotion=cfg.disable_promotion,
            update_workspace=cfg.update_workspace,
            soft_reset_workspace=cfg.soft_reset_workspace,
        )

    @property
    def lands(self) -> bool:
        """Whether the run goes past the gates to promotion, push and audit."""
        return not (self.test_mode or self.disable_promotion)

    @property
    def issue(self) -> str:
        return self.issue_id or "live"

    @property
    def label(self) -> str:
        """The workspace's: issue_<ID>, or a throw-away test_<ID>_<pid> in test mode."""
        return f"test_{self.issue}_{os.getpid()}" if self.test_mode else f"issue_{self.issue}"

    @property
    def log_label(self) -> str:
        return f"issue_{self.issue_id}" if self.issue_id else "finalize_live"

    @property
    def zip_label(self) -> str:
        """patched_<label>_v<NN>.zip: issue<ID>, or finalize_live."""
        return f"issue{self.issue_id}" if self.issue_id else "finalize_live"
