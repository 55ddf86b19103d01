"""The run log, the on-screen summary ending in RESULT:, and its JSON twin."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import IO

from am_patch import events
from am_patch.layout import Layout

log = logging.getLogger("am_patch")

# Control characters are quoted on screen: a file name or a tool's output holding "\n", "\r" or
# an escape sequence must not forge a line (RESULT: ...) or redraw the terminal.
_QUOTED = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c != 0x09}
_QUOTED |= {0x0A: "\\n", 0x0D: "\\r"}
TAIL_PREFIX = "  | "  # a tool's output on screen: never mistaken for am-patch's own lines


def printable(text: str) -> str:
    """text as one safe line: control characters quoted, undecodable bytes as \\udcXX."""
    quoted = text.translate(_QUOTED)
    return quoted.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(slots=True, kw_only=True)
class Summary:
    issue_id: str | None
    mode: str
    message: str = ""
    code: str | None = None  # STAGE:CATEGORY on failure
    reason: str = ""
    files: list[tuple[str, str]] = field(default_factory=list)
    commit: str | None = None
    push: str = "SKIPPED"
    gates: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sandbox: str = ""
    log_path: str | None = None
    archived_input: str | None = None  # where the patch input was filed (for -l)

    @property
    def success(self) -> bool:
        return self.code is None

    @property
    def result_line(self) -> str:
        return "RESULT: SUCCESS" if self.success else f"RESULT: FAIL {self.code}"

    def lines(self) -> list[str]:
        """The summary as printed: one field a line, every value quoted by printable()."""
        return ["", *map(printable, self._fields())]

    def _fields(self) -> list[str]:
        out = ["== am-patch summary =="]
        if self.issue_id is not None:
            out.append(f"ISSUE: {self.issue_id}")
        out.append(f"MODE: {self.mode}")
        if self.reason:
            out.append(f"REASON: {self.reason}")
        for gate in self.gates:
            out.append(f"GATE {gate}")
        if self.files:
            out.append("FILES:")
            out += [f"  {status} {path}" for status, path in self.files]
        if self.sandbox:
            out.append(f"SANDBOX: {self.sandbox}")
        out += self.notes
        out.append(f"COMMIT: {self.commit or '-'}")
        out.append(f"PUSH: {self.push}")
        if self.log_path:
            out.append(f"LOG: {self.log_path}")
        out.append(self.result_line)
        return out


class RunLog:
    """patches/logs/<run>.log with every command and its output; am_patch.log links to it."""

    def __init__(self, layout: Layout, label: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        micros = f"{time.time_ns() // 1000 % 1_000_000:06d}"
        self.layout = layout
        self.name = f"{label}_{stamp}.{micros}_{os.getpid()}"
        self.path = layout.logs / f"{self.name}.log"
        self.json_path = layout.logs / f"{self.name}.json"
        self._handler: logging.StreamHandler[IO[str]] | None = None

    def __enter__(self) -> RunLog:
        stream = self.layout.open(self.path, "a", exclusive=True)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler.setLevel(logging.DEBUG)
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
        self._handler = handler
        link = self.layout.newest_log
        self.layout.symlink(link, self.path.relative_to(link.parent).as_posix())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handler is not None:
            log.removeHandler(self._handler)
            self._handler.close()
            self._handler.stream.close()
            self._handler = None

    def log_summary(self, summary: Summary) -> None:
        for line in summary.lines():
            log.info("%s", line)

    def write_json(self, summary: Summary) -> None:
        """<run>.json: the summary as shown on screen, archive notes included."""
        data = asdict(summary) | {"result": summary.result_line, "success": summary.success}
        self.layout.write(self.json_path, (json.dumps(data, indent=2) + "\n").encode())


def say(message: str) -> None:
    """A progress line on screen, in the log, and in the event stream."""
    log.info("%s", message)
    print(printable(message), flush=True)
    events.emit("log", text=printable(message))


def show_tail(output: str) -> None:
    """A tool's last lines on screen, each behind TAIL_PREFIX and quoted: whatever a test or a
    patch prints, no screen line of its own starts like am-patch's (RESULT: ...)."""
    for line in output.splitlines():
        print(TAIL_PREFIX + printable(line), flush=True)
        events.emit("log", text=TAIL_PREFIX + printable(line))


def warn(message: str) -> None:
    """A one-line message on stderr."""
    print(printable(message), file=sys.stderr, flush=True)
    events.emit("log", text=printable(message), stream="stderr")


def print_summary(summary: Summary) -> None:
    lines = summary.lines()
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    for line in lines:
        events.emit("log", text=line)
