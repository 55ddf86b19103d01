"""Every option of the runner in one table: argparse, the short help (-h), the full help (-H) and
the config sources of -c are all made from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALLOW_POLICY_CHANGE = "--allow-policy-change"


@dataclass(frozen=True, slots=True)
class Flag:
    """An option; `short` ones are the only ones with one-letter aliases and in short help."""

    names: tuple[str, ...]
    help: str
    key: str | None = None  # the config key a switch sets
    value: Any = True
    metavar: str | None = None  # the option takes a value
    short: bool = False
    group: str = "Run"
    repeat: bool = False  # may be given more than once

    @property
    def dest(self) -> str:
        return self.names[-1].lstrip("-").replace("-", "_")


FLAGS: tuple[Flag, ...] = (
    Flag(("-h", "--help"), "this short help", short=True, group="Help"),
    Flag(("-H", "--help-all"), "every option, grouped by workflow", short=True, group="Help"),
    Flag(
        ("-c", "--show-config"),
        "print the effective config with sources, and exit",
        short=True,
        group="Help",
    ),
    Flag(("--version",), "print the version and exit", group="Help"),
    Flag(
        ("-l", "--rerun-latest"),
        "rerun the newest archived input of ISSUE_ID (args: ISSUE_ID MESSAGE)",
        short=True,
        group="Modes",
    ),
    Flag(
        ("-f", "--finalize-live"),
        "gate and commit the live tree's changes, then push",
        metavar="MESSAGE",
        short=True,
        group="Modes",
    ),
    Flag(
        ("--batch",),
        "run every patch waiting in patches/ (issue_<ID>.*), `jobs` at once, each with the "
        "message its input carries",
        group="Modes",
    ),
    Flag(
        ("--drop-workspace",),
        "delete the workspace of an issue; what it holds beyond its base is saved first as "
        "patches/unsuccessful/issue_<ID>_dropped_<time>.patch",
        metavar="ISSUE_ID",
        group="Modes",
    ),
    Flag(
        ("--finalize-workspace",),
        "gate and promote an existing workspace, message from its meta.json",
        metavar="ISSUE_ID",
        group="Modes",
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
    Flag(
        (ALLOW_POLICY_CHANGE,),
        "let this run land a change to the policy (sandbox, interpreter, gates, path rules, "
        "hook config); never a config key",
        group="Safety",
    ),
    Flag(
        ("--wait",),
        "wait up to SECONDS for another run of the same issue to end (default: refuse at once)",
        metavar="SECONDS",
        group="Run",
    ),
    Flag(
        ("--events",),
        "write the run's events as NDJSON to PATH as they happen (- for stdout; the human "
        "output then goes to stderr)",
        metavar="PATH",
        group="Run",
    ),
    Flag(("--config",), "config file to use", metavar="PATH", group="Config"),
    Flag(
        ("--override",),
        "set a config key for this run (repeatable)",
        metavar="KEY=VALUE",
        group="Config",
        repeat=True,
    ),
    Flag(
        ("--repo",),
        "the live repository (default: the one around the current directory)",
        metavar="DIR",
        group="Config",
    ),
)
USAGE = "am-patch [options] ISSUE_ID MESSAGE [PATCH]"


def short_help() -> str:
    """The workflow options (those with one-letter aliases), made from the table."""
    lines = [
        f"usage: {USAGE}",
        "",
        "Run PATCH (patches/issue_<ID>.py|.patch|.diff|.zip by default) for an issue in a",
        "sandboxed workspace, check its scope, run the gates, land it on main and push.",
        "",
    ]
    for flag in FLAGS:
        if flag.short:
            names = ", ".join(flag.names) + (f" {flag.metavar}" if flag.metavar else "")
            lines.append(f"  {names:<27} {flag.help}")
    lines += ["", "RESULT: SUCCESS means the tested commit landed on main; see -H for more."]
    return "\n".join(lines)
