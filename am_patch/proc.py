"""The only place that starts subprocesses: argv tuples, explicit cwd, logged like a shell line."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("am_patch")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcResult:
    argv: tuple[str, ...]
    returncode: int
    output: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def shell_line(argv: Sequence[str], cwd: Path) -> str:
    return f"(cd {shlex.quote(str(cwd))} && {shlex.join(argv)})"


def clean_git_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without inherited GIT_* variables, for git in another repository."""
    base = os.environ if env is None else env
    return {k: v for k, v in base.items() if not k.startswith("GIT_")}


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    stdin: str | None = None,
    quiet: bool = False,
) -> ProcResult:
    """Run argv with stdout and stderr merged; never raises for a non-zero exit, a timeout or a
    missing program (exit 127, or 126 when it is not executable, as a shell reports them)."""
    argv = tuple(argv)
    start = time.monotonic()
    log.info("$ %s", shell_line(argv, cwd))
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        if exc.filename is not None and os.fspath(exc.filename) == os.fspath(cwd):
            raise  # the working directory is ours to get right: a bug, not a missing tool
        return _not_started(argv, exc, time.monotonic() - start)
    timed_out = False
    try:
        out, _ = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, _ = proc.communicate()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    result = ProcResult(
        argv=argv,
        returncode=proc.returncode,
        output=out.decode("utf-8", errors="replace"),
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
    )
    status = "timed out" if timed_out else f"exit {result.returncode}"
    log.info("  -> %s in %.2fs", status, result.duration_s)
    if result.output and not quiet:
        log.debug("%s", result.output.rstrip())
    return result


def _not_started(argv: tuple[str, ...], exc: OSError, duration_s: float) -> ProcResult:
    found = isinstance(exc, PermissionError)
    why = "not executable" if found else "command not found"
    result = ProcResult(
        argv=argv,
        returncode=126 if found else 127,
        output=f"am-patch: {why}: {argv[0]} ({exc.strerror})\n",
        duration_s=duration_s,
    )
    log.info("  -> exit %d: %s: %s", result.returncode, why, argv[0])
    return result


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
