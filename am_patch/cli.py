"""Command line: parse it, run, and turn the outcome into the summary and an exit code; the
single place errors become exit codes."""

from __future__ import annotations

import argparse
import os
import re
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from am_patch import __version__, batch, config, events, pipeline, workspace
from am_patch.errors import Category, Refusal, RunnerError, Stage, UsageError
from am_patch.flags import FLAGS, USAGE, short_help
from am_patch.interrupts import Terminated
from am_patch.layout import Layout
from am_patch.options import Mode, RunOptions
from am_patch.repo import Repo
from am_patch.runlog import Summary, print_summary, warn

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
ISSUE_ID = re.compile(r"[0-9]{1,18}")  # a number that fits file names and an int64

__all__ = ["build_parser", "cli_values", "main", "short_help"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """argparse from the flag table (flags.FLAGS), grouped as -H shows them."""
    parser = _Parser(
        prog="am-patch",
        usage=USAGE,
        description="Apply a patch in a sandboxed workspace, check scope, run the gates, and "
        "fast-forward main to exactly the tested commit.",
        add_help=False,
        epilog="config keys (am_patch.toml, [tool.am_patch], --override KEY=VALUE): "
        + ", ".join(config.key_names()),
    )
    parser.add_argument("positional", nargs="*", metavar="ISSUE_ID MESSAGE [PATCH]")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for flag in FLAGS:
        group = groups.get(flag.group) or parser.add_argument_group(flag.group)
        groups[flag.group] = group
        kwargs: dict[str, Any] = {"dest": flag.dest, "help": flag.help}
        if flag.names == ("--version",):
            kwargs |= {"action": "version", "version": f"am-patch {__version__}"}
            del kwargs["dest"]
        elif flag.repeat:
            kwargs |= {"action": "append", "default": [], "metavar": flag.metavar}
        elif flag.metavar:
            kwargs |= {"metavar": flag.metavar}
        else:
            kwargs |= {"action": "store_true"}
        group.add_argument(*flag.names, **kwargs)
    return parser


def cli_values(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the given switches set (the CLI source of -c)."""
    return {flag.key: flag.value for flag in FLAGS if flag.key and getattr(args, flag.dest, None)}


def _issue_id(text: str) -> str:
    if not ISSUE_ID.fullmatch(text):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise UsageError(f"ISSUE_ID must be a number of at most 18 digits, got {shown!r}")
    return text


def _seconds(text: str | None) -> float:
    if text is None:
        return 0
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 86400:
        raise UsageError(f"--wait takes a number of seconds (0 to 86400), got {text!r}")
    return value


def _message(text: str) -> str:
    if not text.strip():
        raise UsageError("MESSAGE must not be empty")
    return text.strip()


def parse_options(args: argparse.Namespace) -> RunOptions:
    """Which mode, with which arguments; every inconsistent combination is a usage error."""
    pos = list(args.positional)
    finalize_live = args.finalize_live is not None
    finalize_ws = args.finalize_workspace is not None
    if finalize_live + finalize_ws + bool(args.rerun_latest) > 1:
        raise UsageError("-f, --finalize-workspace and -l exclude each other")
    if args.overwrite_workspace and args.allow_live_changed:
        raise UsageError("--overwrite-live and --overwrite-workspace exclude each other")
    if (finalize_live or finalize_ws) and args.test_mode:
        raise UsageError("--test-mode applies to workspace mode only")
    common: dict[str, Any] = {
        "wait_s": _seconds(args.wait),
        "allow_policy_change": args.allow_policy_change,
        "config": args.config and Path(args.config),
        "overrides": tuple(args.override),
        "flag_keys": cli_values(args),
    }
    if finalize_live:
        if pos:
            raise UsageError("-f MESSAGE takes no ISSUE_ID or PATCH")
        return RunOptions(
            mode=Mode.FINALIZE_LIVE, issue_id=None, message=_message(args.finalize_live), **common
        )
    if finalize_ws:
        if pos:
            raise UsageError("--finalize-workspace ISSUE_ID takes no other arguments")
        return RunOptions(
            mode=Mode.FINALIZE_WORKSPACE,
            issue_id=_issue_id(args.finalize_workspace),
            message="",
            **common,
        )
    if args.rerun_latest:
        if len(pos) != 2:
            raise UsageError("-l takes ISSUE_ID MESSAGE")
        return RunOptions(
            mode=Mode.WORKSPACE,
            issue_id=_issue_id(pos[0]),
            message=_message(pos[1]),
            rerun_latest=True,
            **common,
        )
    if len(pos) not in (2, 3):
        raise UsageError("expected ISSUE_ID MESSAGE [PATCH] (am-patch -h for help)")
    return RunOptions(
        mode=Mode.WORKSPACE,
        issue_id=_issue_id(pos[0]),
        message=_message(pos[1]),
        patch_arg=pos[2] if len(pos) == 3 else None,
        **common,
    )


def _in_work_tree(options: RunOptions, root: Path) -> RunOptions:
    """--config names a file of the work tree: a change to it is a policy change."""
    if options.config is None or not options.config.absolute().is_relative_to(root):
        return options
    rel = options.config.absolute().relative_to(root).as_posix()
    return RunOptions(**{**_fields(options), "config_rel": rel})


def _fields(options: RunOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_intermixed_args(argv)
    except UsageError as exc:
        warn(f"am-patch: {exc}")
        return EXIT_USAGE
    with events.streaming(args.events):
        return _main(parser, args)


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The run the arguments ask for; the event stream, when there is one, ends with the
    `result` event whatever happens."""
    options: RunOptions | None = None
    try:
        if args.help:
            print(short_help())
            return EXIT_OK
        if args.help_all:
            print(parser.format_help())
            return EXIT_OK
        if args.batch:
            return batch.run(_batch_options(args), _live(args))
        if args.drop_workspace is not None:
            return _drop_workspace(args)
        if not args.show_config:
            options = parse_options(args)
            events.emit("run", issue=options.issue_id, mode=options.mode, pid=os.getpid())
        live = _live(args)
        if options is None:
            cfg = config.load(
                live.root,
                explicit=args.config and Path(args.config),
                overrides=tuple(args.override),
                cli=cli_values(args),
            )
            print(f"# am-patch {__version__} config for {live.root}")
            print("".join(f"# {note}\n" for note in cfg.notes), end="")
            print("\n".join(config.describe(cfg)))
            return EXIT_OK
        outcome = pipeline.run(live, _in_work_tree(options, live.root))
    except UsageError as exc:
        warn(f"am-patch: {exc}")
        events.emit("result", result=None, error=f"usage: {exc}", exit=EXIT_USAGE)
        return EXIT_USAGE
    except Refusal as exc:  # before a run has its log: not a repo, a bad config for -c, the lock
        failed = RunnerError.at(Stage.PREFLIGHT, exc)
        summary = Summary(
            issue_id=options.issue_id if options else None,
            mode=options.mode if options else _command(args),
            code=failed.code,
            reason=failed.message,
        )
        return _ended(summary, EXIT_FAIL)
    except KeyboardInterrupt:
        warn("am-patch: interrupted")
        events.emit("result", result=None, error="interrupted", exit=EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except Terminated as exc:  # before the run's log exists, e.g. waiting for the lock
        warn(f"am-patch: {exc}")
        events.emit("result", result=None, error=str(exc), exit=128 + exc.signum)
        return 128 + exc.signum
    except Exception as exc:  # outside a run there is no log yet: one line, still a bug
        warn(f"am-patch: internal error (a bug): {type(exc).__name__}: {exc}")
        traceback.print_exc(limit=-3)
        code = f"{Stage.INTERNAL}:{Category.BUG}"
        print(f"RESULT: FAIL {code}")
        events.emit("result", result=f"FAIL {code}", commit=None, push=None, exit=EXIT_FAIL)
        return EXIT_FAIL
    if outcome.signal is not None:
        return _ended(outcome.summary, 128 + outcome.signal)
    return _ended(outcome.summary, EXIT_OK if outcome.summary.success else EXIT_FAIL)


def _command(args: argparse.Namespace) -> str:
    """What was asked for without a run (for the summary of its refusal)."""
    return "drop-workspace" if args.drop_workspace is not None else "show-config"


def _drop_workspace(args: argparse.Namespace) -> int:
    """--drop-workspace ISSUE_ID: a stale workspace goes, what it held is kept as a patch."""
    if args.positional or args.finalize_live is not None or args.finalize_workspace is not None:
        raise UsageError("--drop-workspace ISSUE_ID takes no other arguments or mode")
    live = _live(args)
    layout = Layout(live.root, live.common_dir)
    gone, saved = workspace.drop(live, layout, _issue_id(args.drop_workspace))
    print(f"dropped {gone.relative_to(live.root)}")
    if saved is not None:
        print(f"what it held beyond its base is saved in {saved.relative_to(live.root)}")
    events.emit("result", result="SUCCESS", commit=None, push=None, exit=EXIT_OK)
    return EXIT_OK


def _ended(summary: Summary, code: int) -> int:
    """The summary on screen and, last, the `result` event: the RESULT line's words."""
    print_summary(summary)
    result = summary.result_line.removeprefix("RESULT: ")
    events.emit("result", result=result, commit=summary.commit, push=summary.push, exit=code)
    return code


# switches about this invocation itself, not about how each run of a batch goes
_NOT_PASSED_ON = frozenset({"--batch", "--events", "--repo", "--config", "--override"})


def _batch_options(args: argparse.Namespace) -> batch.BatchOptions:
    """--batch takes no ISSUE_ID, MESSAGE or PATCH and no other mode; every other switch is
    passed on to each run as given."""
    if args.positional:
        raise UsageError("--batch takes no ISSUE_ID, MESSAGE or PATCH: it runs patches/issue_*")
    if args.finalize_live is not None or args.finalize_workspace is not None or args.rerun_latest:
        raise UsageError("--batch excludes -f, --finalize-workspace and -l")
    if args.show_config:
        raise UsageError("--batch excludes -c")
    switches: list[str] = []
    for flag in FLAGS:
        value = getattr(args, flag.dest, None)
        if flag.group == "Help" or flag.names[0] in _NOT_PASSED_ON or not value:
            continue
        if flag.metavar:
            switches += [flag.names[-1], str(value)]
        else:
            switches.append(flag.names[-1])
    if args.config:
        switches += ["--config", str(Path(args.config).resolve())]
    for override in args.override:
        switches += ["--override", override]
    return batch.BatchOptions(
        switches=tuple(switches),
        config=args.config and Path(args.config),
        overrides=tuple(args.override),
        flag_keys=cli_values(args),
    )


def _live(args: argparse.Namespace) -> Repo:
    return Repo.discover(Path(args.repo or ".").resolve())
