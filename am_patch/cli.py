"""Command line: parse, load config, run the pipeline; the single place errors become exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import signal
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from am_patch import __version__, config, pipeline, policy
from am_patch.errors import Category, RunnerError, Stage, UsageError
from am_patch.flags import FLAGS
from am_patch.layout import Layout, UnsafePath
from am_patch.lock import RunLock
from am_patch.repo import Repo
from am_patch.runlog import RunLog, Summary, print_summary, warn

log = logging.getLogger("am_patch")

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
ISSUE_ID = re.compile(r"[0-9]{1,18}")  # a number that fits file names and an int64
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """SIGTERM or SIGHUP during a run: unwinds like Ctrl-C, so the workspace is rolled back and
    the summary printed; the exit code is 128 + the signal number, as a shell reports it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@dataclass(slots=True)
class _Stop:
    """Only the first stop signal raises, and only while armed: a second one, or one after the
    run's outcome is known, must not cut the rollback, the archive or the summary short."""

    signum: int | None = None
    armed: bool = True

    def handle(self, signum: int, _frame: object) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if first and self.armed:
            raise Terminated(signum)
        log.info("%s received while the run ends: finishing", signal.Signals(signum).name)


@contextmanager
def _stop_signals_raise() -> Iterator[_Stop]:
    """SIGTERM and SIGHUP raise Terminated for the duration of the block (main thread only:
    Python delivers signals nowhere else)."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {signum: signal.signal(signum, stop.handle) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="am-patch",
        usage="am-patch [options] ISSUE_ID MESSAGE [PATCH]",
        description="Apply a patch in a sandboxed workspace, check scope, run the gates, and "
        "fast-forward main to exactly the tested commit.",
        add_help=False,
        epilog="config keys (am_patch.toml, [tool.am_patch], --override KEY=VALUE): "
        + ", ".join(config.key_names()),
    )
    parser.add_argument("positional", nargs="*", metavar="ISSUE_ID MESSAGE [PATCH]")
    info = parser.add_argument_group("Help")
    info.add_argument("-h", "--help", action="store_true", help="short help")
    info.add_argument("-H", "--help-all", action="store_true", help="this full help")
    info.add_argument(
        "-c",
        "--show-config",
        action="store_true",
        help="print every effective config key, its value and source, and exit",
    )
    info.add_argument("--version", action="version", version=f"am-patch {__version__}")
    modes = parser.add_argument_group("Modes")
    modes.add_argument(
        "-l",
        "--rerun-latest",
        action="store_true",
        help="rerun the newest archived input of ISSUE_ID (args: ISSUE_ID MESSAGE)",
    )
    modes.add_argument(
        "-f",
        "--finalize-live",
        metavar="MESSAGE",
        help="gate and commit the live tree's changes with MESSAGE, then push",
    )
    modes.add_argument(
        "--finalize-workspace",
        metavar="ISSUE_ID",
        help="gate and promote an existing workspace, message from its meta.json",
    )
    groups: dict[str, argparse._ArgumentGroup] = {"Modes": modes}
    for flag in FLAGS:
        group = groups.get(flag.group) or parser.add_argument_group(flag.group)
        groups[flag.group] = group
        group.add_argument(
            *flag.names,
            dest=flag.names[-1].lstrip("-").replace("-", "_"),
            action="store_true",
            help=flag.help,
        )
    safety = groups.get("Safety") or parser.add_argument_group("Safety")
    safety.add_argument(
        policy.FLAG,
        action="store_true",
        help="let this run land a change to the policy (sandbox, interpreter, gates, path "
        "rules, hook config); never a config key",
    )
    cfg = parser.add_argument_group("Config")
    cfg.add_argument("--config", metavar="PATH", type=Path, help="config file to use")
    cfg.add_argument(
        "--override",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="set a config key for this run (repeatable)",
    )
    cfg.add_argument(
        "--repo",
        metavar="DIR",
        type=Path,
        default=Path("."),
        help="the live repository (default: the one around the current directory)",
    )
    return parser


def short_help() -> str:
    lines = [
        "usage: am-patch [options] ISSUE_ID MESSAGE [PATCH]",
        "",
        "Run PATCH (patches/issue_<ID>.py|.patch|.diff|.zip by default) for an issue in a",
        "sandboxed workspace, check its scope, run the gates, land it on main and push.",
        "",
        "  -h, --help                  this short help",
        "  -H, --help-all              every option, grouped by workflow",
        "  -c, --show-config           print the effective config with sources, and exit",
        "  -l, --rerun-latest          rerun the newest archived input of ISSUE_ID",
        "  -f, --finalize-live MESSAGE gate and commit the live tree's changes, then push",
    ]
    for flag in FLAGS:
        if flag.short:
            names = ", ".join(flag.names)
            lines.append(f"  {names:<27} {flag.help}")
    lines += ["", "RESULT: SUCCESS means the tested commit landed on main; see -H for more."]
    return "\n".join(lines)


def cli_values(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for flag in FLAGS:
        if getattr(args, flag.names[-1].lstrip("-").replace("-", "_")) and flag.key:
            values[flag.key] = flag.value
    return values


def _issue_id(text: str) -> str:
    if not ISSUE_ID.fullmatch(text):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise UsageError(f"ISSUE_ID must be a number of at most 18 digits, got {shown!r}")
    return text


def _message(text: str) -> str:
    if not text.strip():
        raise UsageError("MESSAGE must not be empty")
    return text.strip()


def parse_request(args: argparse.Namespace) -> pipeline.Request:
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
    if finalize_live:
        if pos:
            raise UsageError("-f MESSAGE takes no ISSUE_ID or PATCH")
        return pipeline.Request(
            mode=pipeline.Mode.FINALIZE_LIVE, issue_id=None, message=_message(args.finalize_live)
        )
    if finalize_ws:
        if pos:
            raise UsageError("--finalize-workspace ISSUE_ID takes no other arguments")
        return pipeline.Request(
            mode=pipeline.Mode.FINALIZE_WORKSPACE,
            issue_id=_issue_id(args.finalize_workspace),
            message="",
        )
    if args.rerun_latest:
        if len(pos) != 2:
            raise UsageError("-l takes ISSUE_ID MESSAGE")
        return pipeline.Request(
            mode=pipeline.Mode.WORKSPACE,
            issue_id=_issue_id(pos[0]),
            message=_message(pos[1]),
            rerun_latest=True,
        )
    if len(pos) not in (2, 3):
        raise UsageError("expected ISSUE_ID MESSAGE [PATCH] (am-patch -h for help)")
    return pipeline.Request(
        mode=pipeline.Mode.WORKSPACE,
        issue_id=_issue_id(pos[0]),
        message=_message(pos[1]),
        patch_arg=pos[2] if len(pos) == 3 else None,
    )


def _with_options(
    request: pipeline.Request, args: argparse.Namespace, root: Path
) -> pipeline.Request:
    """The request with what the command line says beyond the mode: --allow-policy-change, and
    --config when it names a file of the work tree (a change to it is a policy change)."""
    config_rel = None
    if args.config is not None and args.config.absolute().is_relative_to(root):
        config_rel = args.config.absolute().relative_to(root).as_posix()
    return dataclasses.replace(
        request, allow_policy_change=args.allow_policy_change, config_rel=config_rel
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_intermixed_args(argv)
        if args.help:
            print(short_help())
            return EXIT_OK
        if args.help_all:
            print(parser.format_help())
            return EXIT_OK
        request = None if args.show_config else parse_request(args)
    except UsageError as exc:
        warn(f"am-patch: {exc}")
        return EXIT_USAGE
    try:
        live = Repo.discover(args.repo.resolve())
        if request is None:
            cfg = _load_config(live, args)
            print(f"# am-patch {__version__} config for {live.root}")
            print("\n".join(config.describe(cfg)))
            return EXIT_OK
        return _run(live, args, _with_options(request, args, live.root))
    except RunnerError as exc:
        print_summary(
            Summary(
                issue_id=request.issue_id if request else None,
                mode=request.mode if request else "show-config",
                code=exc.code,
                reason=exc.message,
            )
        )
        return EXIT_FAIL
    except KeyboardInterrupt:
        warn("am-patch: interrupted")
        return EXIT_INTERRUPTED
    except Terminated as exc:  # before the run's log exists, e.g. waiting for the lock
        warn(f"am-patch: {exc}")
        return 128 + exc.signum
    except Exception as exc:  # outside a run there is no log yet: one line, still a bug
        warn(f"am-patch: internal error (a bug): {type(exc).__name__}: {exc}")
        print("RESULT: FAIL INTERNAL:BUG")
        return EXIT_FAIL


def _load_config(live: Repo, args: argparse.Namespace) -> config.Config:
    return config.load(
        live.root, explicit=args.config, overrides=tuple(args.override), cli=cli_values(args)
    )


def _unsafe(exc: UnsafePath) -> RunnerError:
    return RunnerError(Stage.PREFLIGHT, Category.UNSAFE, str(exc))


def _run(live: Repo, args: argparse.Namespace, request: pipeline.Request) -> int:
    layout = Layout(live.root, live.common_dir)
    try:
        layout.check_all()
    except UnsafePath as exc:
        raise _unsafe(exc) from exc
    summary = Summary(issue_id=request.issue_id, mode=request.mode, message=request.message)
    label = f"issue_{request.issue_id}" if request.issue_id else "finalize_live"
    interrupted_exit = EXIT_INTERRUPTED
    with (
        _stop_signals_raise() as stop,
        RunLock(layout) as lock,
        RunLog(layout, label) as runlog,
    ):
        live.add_exclude("/patches/")
        summary.log_path = str(runlog.path.relative_to(live.root))
        log.info(
            "am-patch %s: issue %s %r in %s",
            __version__,
            request.issue_id,
            request.message,
            live.root,
        )
        if lock.took_over:
            log.info("took over a stale lock left by a dead run (%s)", lock.took_over)
        run: pipeline.Run | None = None
        try:
            cfg = _load_config(live, args)
            if cfg.test_mode:
                summary.mode = "test-mode"
            run = pipeline.Run(
                live=live, config=cfg, request=request, summary=summary, log_path=runlog.path
            )
            run.execute()
        except (RunnerError, UnsafePath) as exc:
            failed = exc if isinstance(exc, RunnerError) else _unsafe(exc)
            summary.code, summary.reason = failed.code, failed.message
            log.info("failure fingerprint: %s %s", failed.code, failed.message)
        except (KeyboardInterrupt, Terminated) as exc:
            why = str(exc) if isinstance(exc, Terminated) else "interrupted by Ctrl-C"
            if isinstance(exc, Terminated):
                interrupted_exit = 128 + exc.signum
            stopped = RunnerError(Stage.INTERNAL, Category.INTERRUPTED, why)
            summary.code, summary.reason = stopped.code, stopped.message
            run = None  # an interrupted run files nothing away: its input stays in patches/
        except Exception as exc:
            log.info("unexpected error:\n%s", traceback.format_exc())
            bug = RunnerError(Stage.INTERNAL, Category.BUG, f"{type(exc).__name__}: {exc}")
            summary.code, summary.reason = bug.code, bug.message + " (a bug; see the log)"
        stop.armed = False
        runlog.log_summary(summary)  # before archiving: the failure zip carries the whole log
        if run is not None:
            try:
                run.archive()
            except UnsafePath as exc:  # the result stands; nothing was written through the link
                summary.notes.append(f"ARCHIVE: refused: {exc}")
        runlog.write_json(summary)
    print_summary(summary)
    if summary.code == f"{Stage.INTERNAL}:{Category.INTERRUPTED}":
        return interrupted_exit
    return EXIT_OK if summary.success else EXIT_FAIL
