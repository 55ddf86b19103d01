"""The runner's options that set config keys: one table feeds argparse, -h and -c's sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Flag:
    """An option; `short` options are the only ones with one-letter aliases and in short help."""

    names: tuple[str, ...]
    help: str
    key: str | None = None  # the config key a switch sets
    value: Any = True
    metavar: str | None = None
    short: bool = False
    group: str = "Run"


FLAGS: tuple[Flag, ...] = (
    Flag(
        ("-n", "--allow-no-op"),
        "a patch that changes nothing ends in SUCCESS without a commit",
        "allow_no_op",
        short=True,
        group="Scope",
    ),
    Flag(
        ("-a", "--allow-undeclared-paths"),
        "allow and promote changes to files outside FILES",
        "allow_undeclared_paths",
        short=True,
        group="Scope",
    ),
    Flag(
        ("-t", "--allow-untouched-files"),
        "allow declared files that the patch did not change",
        "allow_untouched_files",
        short=True,
        group="Scope",
    ),
    Flag(
        ("-r", "--run-all-gates"),
        "run every gate on its full targets, not only those in scope",
        "run_all_gates",
        short=True,
        group="Gates",
    ),
    Flag(
        ("-g", "--allow-gates-fail"),
        "run every gate and continue even if some fail",
        "allow_gates_fail",
        short=True,
        group="Gates",
    ),
    Flag(
        ("-u", "--skip-up-to-date"),
        "skip the check that origin/main is not ahead of main",
        "skip_up_to_date",
        short=True,
        group="Live repo",
    ),
    Flag(
        ("-W", "--update-workspace"),
        "move the workspace base to live main before patching",
        "update_workspace",
        short=True,
        group="Workspace",
    ),
    Flag(
        ("-k", "--keep-workspace"),
        "keep the workspace after a success",
        "delete_workspace_on_success",
        False,
        short=True,
        group="Workspace",
    ),
    Flag(
        ("--soft-reset-workspace",),
        "reset the workspace to its base before patching",
        "soft_reset_workspace",
        group="Workspace",
    ),
    Flag(
        ("--test-mode",),
        "patch and gates in a throw-away workspace, then stop",
        "test_mode",
        group="Modes",
    ),
    Flag(
        ("--disable-promotion",),
        "run the gates but change nothing in live or origin",
        "disable_promotion",
        group="Modes",
    ),
    Flag(
        ("--require-push-success",),
        "fail the run (PUSH:FAILED) when the push fails",
        "require_push_success",
        group="Live repo",
    ),
    Flag(
        ("--allow-non-main",),
        "run on the current branch instead of main, and push that branch",
        "allow_non_main",
        group="Live repo",
    ),
    Flag(
        ("--overwrite-live", "--allow-live-changed"),
        "main moved and touched our files: the workspace version wins",
        "live_changed_resolution",
        "overwrite_live",
        group="Live repo",
    ),
    Flag(
        ("--overwrite-workspace",),
        "main moved and touched our files: the live version wins",
        "live_changed_resolution",
        "overwrite_workspace",
        group="Live repo",
    ),
    Flag(
        ("--unsafe-no-sandbox",),
        "run the patch script WITHOUT bubblewrap (logged loudly)",
        "sandbox",
        "off",
        group="Safety",
    ),
)
