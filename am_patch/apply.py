"""Running a patch input in the workspace: a script in the jail, diffs with git apply."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from am_patch import git, limits, proc
from am_patch.errors import Category, Refusal
from am_patch.patchfile import Diff
from am_patch.runlog import say, show_tail
from am_patch.sandbox import Jail

log = logging.getLogger("am_patch")

_FAILED_AT = re.compile(r"error: patch failed: (.+):(\d+)")
_ERROR = re.compile(r"error: (.+)")


def run_script(jail: Jail, script: Path, *, timeout_s: int) -> None:
    """The script runs with the workspace as its working directory, confined by the jail."""
    say(f"[patch] running {script.name} in the workspace")
    result = jail.run([sys.executable, str(script)], timeout_s=timeout_s or None)
    if result.bound:
        show_tail(result.tail(5))
        raise Refusal(
            Category.LIMIT,
            f"{script.name} was stopped by {limits.describe(result.bound, jail.bounds)}; "
            "raise it with --override if the patch really needs more",
        )
    if result.timed_out:
        raise Refusal(Category.TIMEOUT, f"{script.name} ran longer than {timeout_s}s")
    if not result.ok:
        show_tail(result.tail(15))
        raise Refusal(
            Category.EXEC,
            f"{script.name} exited with {result.returncode}"
            + (f": {result.tail(1)}" if result.output.strip() else " (no output)"),
        )


def _why(output: str) -> str:
    match = _FAILED_AT.search(output)
    if match:
        return f"hunk at {match.group(1)} line {match.group(2)} does not apply"
    match = _ERROR.search(output)
    return match.group(1) if match else output.strip().splitlines()[-1:][0] if output else "?"


def apply_diffs(root: Path, diffs: Sequence[Diff], scratch: Path) -> None:
    """Apply each diff in order: exact first, then --3way. The caller rolls back on failure."""
    scratch.mkdir(parents=True, exist_ok=True)
    for number, diff in enumerate(diffs, start=1):
        file = scratch / f"{number:03d}.patch"
        file.write_bytes(diff.data)
        exact = git.run(["apply", "--whitespace=nowarn", str(file)], cwd=root)
        if exact.ok:
            say(f"[patch] {diff.name}: applied exactly")
            continue
        merged = _apply_3way(root, diff, file, scratch)
        if merged.ok:
            say(f"[patch] {diff.name}: applied with --3way (the exact apply failed)")
            continue
        raise Refusal(Category.APPLY, f"{diff.name}: {_why(exact.output)} (exact and --3way)")


def _apply_3way(root: Path, diff: Diff, file: Path, scratch: Path) -> proc.ProcResult:
    """`git apply --3way` needs the index to match the files it patches, and a reused workspace
    often holds uncommitted changes (an earlier attempt, a hand edit): it runs on a scratch index
    of HEAD plus the working-tree versions of the diff's files, leaving the real index alone."""
    index = scratch.resolve() / "3way.index"
    index.unlink(missing_ok=True)
    env = {"GIT_INDEX_FILE": str(index)}
    log.info("--3way on a scratch index (GIT_INDEX_FILE=%s): HEAD plus the working tree", index)
    steps = (
        ["read-tree", "HEAD"],
        ["update-index", "--add", "--remove", "--", *diff.files],
        ["apply", "--3way", "--whitespace=nowarn", str(file)],
    )
    for args in steps:
        result = git.run(args, cwd=root, env=env)
        if not result.ok:
            break
    return result
