"""The only place that starts subprocesses: argv tuples, explicit cwd, logged like a shell line."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger("am_patch")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcResult:
    argv: tuple[str, ...]
    returncode: int
    output: str
    duration_s: float
    timed_out: bool = False
    bound: str = ""  # the bound that stopped it: "output", or what the caller's watch named

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.bound

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def shell_line(argv: Sequence[str], cwd: Path) -> str:
    return f"(cd {shlex.quote(str(cwd))} && {shlex.join(argv)})"


Watch = Callable[[], "str | None"]  # polled while a command runs: a bound's name stops it


class _Output(threading.Thread):
    """Reads a command's merged output as it comes: keeps at most `limit` bytes (0: all), and
    hands each chunk to `on_output` (progress lines)."""

    def __init__(self, stream: IO[bytes], limit: int, on_output: Callable[[bytes], None] | None):
        super().__init__(daemon=True)
        self.stream = stream
        self.limit = limit
        self.on_output = on_output
        self.data = bytearray()
        self.overflow = False
        self.eof = threading.Event()  # the output ended (the command exited, as a rule)

    def run(self) -> None:
        try:
            while chunk := os.read(self.stream.fileno(), 65536):
                if self.limit and len(self.data) + len(chunk) > self.limit:
                    self.data += chunk[: max(0, self.limit - len(self.data))]
                    self.overflow = True
                    self.eof.set()  # wake the waiter: the bound is hit
                elif not self.overflow:
                    self.data += chunk
                if self.on_output is not None:
                    self.on_output(chunk)
        finally:
            self.eof.set()


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    stdin: str | None = None,
    quiet: bool = False,
    output_limit: int = 0,
    watch: Watch | None = None,
    on_output: Callable[[bytes], None] | None = None,
    prefix: Sequence[str] = (),
    stop_signal: int = signal.SIGKILL,
) -> ProcResult:
    """Run argv with stdout and stderr merged; never raises for a non-zero exit, a timeout or a
    missing program (exit 127, or 126 when it is not executable, as a shell reports them).

    Past `output_limit` bytes of output, or when `watch` names a bound, the whole process group
    is killed (with `stop_signal`: SIGTERM lets a child am-patch unwind its run) and the result
    says which bound stopped it. `prefix` (an exec wrapper that puts bounds on argv) runs first
    and is left out of the log line.
    """
    argv = tuple(argv)
    start = time.monotonic()
    log.info("$ %s", shell_line(argv, cwd))
    try:
        proc = subprocess.Popen(
            (*prefix, *argv),
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
    assert proc.stdout is not None
    reader = _Output(proc.stdout, output_limit, on_output)
    reader.start()
    timed_out, bound = False, ""
    try:
        if stdin is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(stdin.encode())
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        deadline = None if timeout_s is None else start + timeout_s
        while proc.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                timed_out = True
            elif reader.overflow:
                bound = "output"
            elif watch is not None:
                bound = watch() or ""
            if timed_out or bound:
                _kill_group(proc, stop_signal)
                break
            if not reader.eof.is_set():
                reader.eof.wait(timeout=0.2)  # returns as soon as the output ends
            else:  # output closed, process still running: poll it, bounds still apply
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.05)
        proc.wait()
        reader.join(timeout=5)
        if reader.is_alive():  # a background child still holds the pipe: it goes too
            _kill_group(proc)
            reader.join()
        if reader.overflow and not bound:  # it flooded, then exited before a look
            bound = "output"
    except BaseException:
        _kill_group(proc, stop_signal)
        proc.wait()
        raise
    result = ProcResult(
        argv=argv,
        returncode=proc.returncode,
        output=bytes(reader.data).decode("utf-8", errors="replace"),
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
        bound=bound,
    )
    status = "timed out" if timed_out else f"exit {result.returncode}"
    log.info("  -> %s in %.2fs%s", status, result.duration_s, f" ({bound} bound)" if bound else "")
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


def _kill_group(proc: subprocess.Popen[bytes], signum: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)
