"""--batch: every patch waiting in patches/, `jobs` of them at once, each a run of its own.

Each issue runs as a child `am-patch` process with the switches the batch was given, so it
takes its issue's lock, keeps its own log and archives, and lands under the landing lock like
any run started by hand; a run whose base moved because another landed first rebases and
re-gates. Each child writes its events to patches/logs/batch_<stamp>/issue_<ID>.ndjson; its
`result` event is what the batch reports. A stop signal reaches the children as SIGTERM, so
each unwinds its run.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from am_patch import config, events, inbox, proc
from am_patch.errors import Category, Refusal, RunnerError, Stage
from am_patch.gates import cpus
from am_patch.interrupts import Terminated, signal_of, stop_signals_raise
from am_patch.layout import Layout, UnsafePath
from am_patch.repo import Repo
from am_patch.runlog import printable, say

SKIPPED = "SKIPPED"


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """The switches every run of the batch gets, and what reads the batch's own config."""

    switches: tuple[str, ...]
    config: Path | None
    overrides: tuple[str, ...]
    flag_keys: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ran:
    """One issue's outcome: the words after RESULT: (or SKIPPED), with what the run reported."""

    issue_id: str
    result: str
    detail: str = ""
    commit: str | None = None
    push: str | None = None

    @property
    def failed(self) -> bool:
        return self.result.startswith("FAIL")

    @property
    def line(self) -> str:
        commit = f", commit {self.commit[:12]}" if self.commit else ""
        push = f", push {self.push}" if self.push and self.commit else ""
        detail = f" ({self.detail})" if self.detail else ""
        return printable(f"ISSUE {self.issue_id}: {self.result}{commit}{push}{detail}")


def run(options: BatchOptions, live: Repo) -> int:
    """The batch; its exit code (0 when no issue failed)."""
    layout = Layout(live.root, live.common_dir)
    try:
        layout.check_all()
        cfg = config.load(
            live.root, explicit=options.config, overrides=options.overrides, cli=options.flag_keys
        )
    except (Refusal, UnsafePath) as exc:
        refused = RunnerError(Stage.PREFLIGHT, getattr(exc, "category", Category.UNSAFE), str(exc))
        return _report([], f"FAIL {refused.code}", refused.message)
    waiting = inbox.waiting(layout.patches)
    runnable = [w for w in waiting if not w.skip]
    # measured (bench/throughput.py): on 2 cores one run at a time is fastest, since every run
    # that lands after another gates its rebased tree again; 0 takes half the CPUs
    jobs = max(1, min(cfg.jobs or cpus() // 2, len(runnable) or 1))
    events.emit(
        "run", issue=None, mode="batch", pid=os.getpid(), issues=[w.issue_id for w in waiting]
    )
    say(
        f"[batch] {len(waiting)} input(s) waiting, {len(runnable)} to run, {jobs} at once"
        if waiting
        else "[batch] no patches/issue_<ID>.* waiting"
    )
    folder = layout.mkdir(layout.logs / f"batch_{time.strftime('%Y%m%d-%H%M%S')}_{os.getpid()}")
    stopping = threading.Event()
    outcomes = {w.issue_id: Ran(w.issue_id, SKIPPED, w.skip) for w in waiting if w.skip}
    for ran in outcomes.values():
        say(f"[batch] {ran.line}")
    interrupted: int | None = None
    with stop_signals_raise(), ThreadPoolExecutor(jobs, thread_name_prefix="issue") as pool:
        futures = [
            pool.submit(_one, w, options, live, folder / f"issue_{w.issue_id}.ndjson", stopping)
            for w in runnable
        ]
        for future in futures:
            try:
                ran = future.result()
            except (KeyboardInterrupt, Terminated) as exc:
                interrupted = interrupted or signal_of(exc)
                stopping.set()  # every child gets SIGTERM and unwinds its run
                ran = future.result()
            outcomes[ran.issue_id] = ran
    ordered = [outcomes[w.issue_id] for w in waiting]
    failed = next((r for r in ordered if r.failed), None)
    code = _report(ordered, f"{failed.result}" if failed else "SUCCESS")
    return 128 + interrupted if interrupted else code


def _one(
    waiting: inbox.Waiting,
    options: BatchOptions,
    live: Repo,
    stream: Path,
    stopping: threading.Event,
) -> Ran:
    if stopping.is_set():
        return Ran(waiting.issue_id, SKIPPED, "the batch was stopped before it started")
    events.emit("issue", issue=waiting.issue_id, status="start", events=str(stream))
    argv = (
        sys.executable,
        "-m",
        "am_patch",
        *options.switches,
        "--repo",
        str(live.root),
        "--events",
        str(stream),
        "--",
        waiting.issue_id,
        waiting.message,
        waiting.path.name,
    )
    result = proc.run(
        argv,
        cwd=live.root,
        quiet=True,
        watch=lambda: "stopped" if stopping.is_set() else None,
        stop_signal=signal.SIGTERM,
    )
    ended = _result_event(stream)
    if ended is None or ended.get("result") is None:
        why = (ended or {}).get("error") or f"exit {result.returncode}, no result"
        ran = Ran(waiting.issue_id, f"FAIL {Stage.INTERNAL}:{Category.BUG}", str(why))
    else:
        ran = Ran(
            waiting.issue_id,
            str(ended["result"]),
            commit=ended.get("commit"),
            push=ended.get("push"),
        )
    events.emit(
        "issue",
        issue=ran.issue_id,
        status="end",
        result=ran.result,
        commit=ran.commit,
        push=ran.push,
        events=str(stream),
    )
    say(f"[batch] {ran.line}")
    return ran


def _result_event(stream: Path) -> dict[str, Any] | None:
    """The child's last `result` event, if it wrote one."""
    try:
        lines = stream.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "result":
            return event
    return None


def _report(ordered: Sequence[Ran], result: str, reason: str = "") -> int:
    """A line per issue, then RESULT: the first failure in issue order, or SUCCESS."""
    lines = ["", "== am-patch batch ==", *(r.line for r in ordered)]
    if reason:
        lines.append(printable(f"REASON: {reason}"))
    lines.append(f"RESULT: {result}")
    print("\n".join(lines), flush=True)
    events.emit(
        "result", result=result, commit=None, push=None, exit=0 if result == "SUCCESS" else 1
    )
    return 0 if result == "SUCCESS" else 1
