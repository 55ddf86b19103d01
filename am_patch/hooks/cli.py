"""am-patch-hook: the runner's scope and gate policy as git hooks; one exit point."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from am_patch import config
from am_patch.errors import Category, Refusal, UsageError
from am_patch.hooks import install, pre_commit, pre_push, pre_receive
from am_patch.layout import Layout
from am_patch.repo import ZERO_OID, Repo
from am_patch.runlog import TAIL_PREFIX, warn

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
ISSUE_ENV = "AM_PATCH_ISSUE"  # the installed hook takes no arguments: the issue comes from here


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="am-patch-hook", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    issue_help = f"the issue whose FILES bound the commit, or none (default: ${ISSUE_ENV})"
    scope = sub.add_parser("scope", help="staged paths against the active issue's FILES")
    scope.add_argument("--issue", metavar="ID", help=issue_help)
    sub.add_parser("gates", help="the gates on exactly the staged tree (or the pushed commit)")
    pre_commit_cmd = sub.add_parser("pre-commit", help="scope then gates (the installed hook)")
    pre_commit_cmd.add_argument("--issue", metavar="ID", help=issue_help)
    push = sub.add_parser("pre-push", help="git's pre-push hook: reads ref lines on stdin")
    push.add_argument("remote", nargs="?", default="origin")
    push.add_argument("url", nargs="?", default="")
    sub.add_parser("origin-guard", help="pre-push guard for the pre-commit framework")
    sub.add_parser("pre-receive", help="server hook for a bare repository")
    sub.add_parser(
        "recover", help="finish or roll back an interrupted am-patch landing (takes the run lock)"
    )
    for name, text in (("install", "install the hooks"), ("uninstall", "remove them")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--server",
            metavar="BARE_REPO",
            type=Path,
            help="a bare repository: (un)install pre-receive there",
        )
    return parser


def _report(title: str, problems: list[str]) -> int:
    if not problems:
        return EXIT_OK
    warn(f"am-patch-hook: {title} refused:")
    for problem in problems:
        warn(f"  {problem}")
    return EXIT_REFUSED


def _config_for(repo: Repo) -> config.Config:
    if repo.is_bare:
        explicit = repo.git_dir / "am_patch.toml"
        return config.load(repo.git_dir, explicit=explicit if explicit.is_file() else None)
    return config.load(repo.root)


def _commit_from_env(repo: Repo, variable: str) -> str:
    """The commit the pre-commit framework passes in variable (an id, or any revision when run
    by hand: `pre-commit run --to-ref HEAD`); ZERO_OID when unset."""
    rev = os.environ.get(variable, ZERO_OID)
    if rev == ZERO_OID:
        return rev
    found = repo.resolve(rev)
    if found is None:
        raise Refusal(Category.GIT, f"{variable}={rev!r} names no commit")
    return found


def _gates(repo: Repo, cfg: config.Config) -> int:
    to_ref = os.environ.get("PRE_COMMIT_TO_REF") and _commit_from_env(repo, "PRE_COMMIT_TO_REF")
    if to_ref:  # the pre-commit framework's pre-push stage: gate the pushed commit
        from_ref = _commit_from_env(repo, "PRE_COMMIT_FROM_REF")
        known = from_ref != ZERO_OID and repo.contains(from_ref)
        tree = repo.tree_of(to_ref)
        base = repo.tree_of(from_ref) if known else repo.empty_tree()
    else:
        tree, base = repo.index_tree(), repo.head_tree()
    checked = pre_commit.check_gates(repo, cfg, tree, base)
    for verdict in checked.verdicts:
        warn(f"am-patch-hook: gate {verdict.label}")
        if not verdict.ok and verdict.result is not None:
            for line in verdict.result.tail(20).splitlines():
                warn(TAIL_PREFIX + line)
    return _report("gates", checked.problems)


def _origin_guard(repo: Repo, cfg: config.Config) -> int:
    ref = pre_push.PushedRef(
        local_ref=os.environ.get("PRE_COMMIT_LOCAL_BRANCH", ""),
        local_oid=_commit_from_env(repo, "PRE_COMMIT_TO_REF"),
        remote_ref=os.environ.get("PRE_COMMIT_REMOTE_BRANCH", f"refs/heads/{cfg.main_branch}"),
        remote_oid=_commit_from_env(repo, "PRE_COMMIT_FROM_REF"),
    )
    reason = pre_push.guard_main(repo, cfg, ref)
    return _report("push", [reason] if reason else [])


def _recover(repo: Repo) -> int:
    """What a killed run's landing left: finished or rolled back under the runner's lock."""
    layout = Layout(repo.root, repo.common_dir)
    if not layout.journal.exists():
        print("nothing to recover: no am-patch landing was interrupted")
        return EXIT_OK
    from am_patch import landing  # the runner's landing code; only this command needs it
    from am_patch.lock import Lock

    with Lock(layout, layout.lock):  # a run landing holds it: refused at once then
        print(landing.recover(repo) or "nothing to recover: the landing has just finished")
    return EXIT_OK


def dispatch(args: argparse.Namespace) -> int:
    if args.command in ("install", "uninstall"):
        target = args.server or Path(".")
        repo = Repo.open(target.resolve()) if args.server else Repo.discover(Path.cwd())
        if args.command == "install":
            for item in install.install(repo, server=args.server is not None):
                kept = f" (kept {item.foreign.name}, run first)" if item.foreign else ""
                print(f"installed {item.hook}{kept}")
        else:
            for path in install.uninstall(repo, server=args.server is not None):
                print(f"removed {path}")
        return EXIT_OK
    if args.command == "recover":
        return _recover(Repo.discover(Path.cwd()))
    repo = Repo.open_from_env(Path.cwd())
    cfg = _config_for(repo)
    if args.command in ("scope", "pre-commit"):
        issue = args.issue or os.environ.get(ISSUE_ENV) or None
        code = _report("commit", pre_commit.check_scope(repo, cfg, issue))
        return code or (_gates(repo, cfg) if args.command == "pre-commit" else EXIT_OK)
    if args.command == "gates":
        return _gates(repo, cfg)
    if args.command == "origin-guard":
        return _origin_guard(repo, cfg)
    lines = sys.stdin.read().splitlines()
    if args.command == "pre-push":
        refs = pre_push.parse(lines)
        verdicts = pre_push.check(
            repo, cfg, refs, remote=args.remote, run_gates=cfg.hook_gates_on_push
        )
        for name, found in verdicts.items():
            warn(f"am-patch-hook: {name}: {'refused' if found else 'ok'}")
        return _report("push", [p for found in verdicts.values() for p in found])
    return _report("push", pre_receive.check(repo, cfg, lines))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return dispatch(args)
    except UsageError as exc:
        warn(f"am-patch-hook: {exc}")
        return EXIT_USAGE
    except Refusal as exc:
        warn(f"am-patch-hook: {exc.message}")
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug; any non-zero exit still stops the commit or push
        traceback.print_exc(file=sys.stderr)
        warn(f"am-patch-hook: internal error (a bug), refusing: {exc!r}")
        return EXIT_BUG
