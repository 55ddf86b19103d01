"""--events: the NDJSON stream a dashboard or an agent follows, from the first event to the
`result` that repeats the RESULT line, whatever way the run ends."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

from am_patch import events
from testing.project import CALC, NO_GATES, Project

COMPILE_ONLY = ("--override", 'gates_order=["compile"]')
STAGES = ("preflight", "workspace", "patch", "scope", "gates", "promotion", "live gates", "push")


def read(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    found = [json.loads(line) for line in lines]
    for event in found:
        assert event["v"] == events.SCHEMA
        assert datetime.datetime.fromisoformat(event["ts"]).tzinfo is not None
    return found


def of(stream: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in stream if e["event"] == kind]


def test_a_landed_run_streams_run_stages_gates_log_and_result(project: Project) -> None:
    project.calc_patch("3")
    path = project.base / "events.ndjson"

    out = project.run("3", "Add sub", "--events", str(path), *COMPILE_ONLY)

    stream = read(path)
    assert out.code == 0, out.output
    first, last = stream[0], stream[-1]
    assert first["event"] == "run" and first["issue"] == "3" and first["mode"] == "workspace"
    assert isinstance(first["pid"], int)
    assert last["event"] == "result"
    assert last["result"] == out.result_line.removeprefix("RESULT: ") == "SUCCESS"
    assert last["commit"] == project.head() and last["push"] == "OK"
    started = [e["stage"] for e in of(stream, "stage") if e["status"] == "start"]
    assert started[: len(STAGES)] == list(STAGES)
    assert started[-1] == "archives"
    ends = [e for e in of(stream, "stage") if e["status"] == "end"]
    assert len(ends) == len(started) and all(e["ok"] and e["elapsed_s"] >= 0 for e in ends)
    gates = [(e["gate"], e["status"]) for e in of(stream, "gate")]
    assert gates[:2] == [("compile", "start"), ("compile", "pass")]
    shown = [e["text"] for e in of(stream, "log")]
    assert "[patch] running issue_3.py in the workspace" in shown
    assert shown[-1] == "RESULT: SUCCESS"


def test_a_failing_gate_streams_its_tail_and_the_failure(project: Project) -> None:
    project.patch("issue_4.py", [CALC], f"Path({CALC!r}).write_text('def broken(:\\n')\n")
    path = project.base / "events.ndjson"

    out = project.run("4", "Break", "--events", str(path), *COMPILE_ONLY)

    stream = read(path)
    assert out.code == 1
    failed = [e for e in of(stream, "gate") if e["status"] == "fail"]
    assert [e["gate"] for e in failed] == ["compile"]
    assert "SyntaxError" in failed[0]["tail"]
    assert stream[-1]["result"] == "FAIL GATES:COMPILE" == out.result_line.removeprefix("RESULT: ")
    assert stream[-1]["commit"] is None
    gates_end = [e for e in of(stream, "stage") if e["stage"] == "gates" and e["status"] == "end"]
    assert gates_end[0]["ok"] is False


def test_dash_streams_to_stdout_and_moves_the_human_output_to_stderr(project: Project) -> None:
    project.readme_patch("5", "changed\n")

    out = project.run("5", "Docs", "--events", "-", *NO_GATES)

    assert out.code == 0, out.output
    stream = [json.loads(line) for line in out.stdout.splitlines()]
    assert stream[0]["event"] == "run" and stream[-1]["event"] == "result"
    assert stream[-1]["result"] == "SUCCESS"
    assert out.stderr.splitlines()[-1] == "RESULT: SUCCESS"


def test_a_run_failing_in_preflight_still_ends_with_its_result(project: Project) -> None:
    path = project.base / "events.ndjson"

    out = project.run("6", "Nothing to apply", "--events", str(path), *NO_GATES)

    stream = read(path)
    assert out.result_line == "RESULT: FAIL PREFLIGHT:PATCH_PATH"
    assert stream[-1]["event"] == "result"
    assert stream[-1]["result"] == "FAIL PREFLIGHT:PATCH_PATH"
    stages = [(e["stage"], e["status"], e.get("ok")) for e in of(stream, "stage")]
    assert stages[:2] == [("preflight", "start", None), ("preflight", "end", False)]
    assert [s for s, status, _ in stages if status == "start"] == ["preflight", "archives"]


def test_a_refusal_before_the_run_log_and_a_usage_error_end_the_stream_too(
    project: Project,
) -> None:
    path = project.base / "events.ndjson"
    out = project.run("7", "x", "--events", str(path), cwd=project.base)  # not a repository
    assert out.code == 1
    assert read(path)[-1]["result"] == out.result_line.removeprefix("RESULT: ")

    path.unlink()
    out = project.run("not-a-number", "x", "--events", str(path))
    assert out.code == 2
    last = read(path)[-1]
    assert last["event"] == "result" and last["result"] is None
    assert "ISSUE_ID" in last["error"]


def test_heartbeats_follow_a_long_stage(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    with events.streaming(str(path), heartbeat_s=0.05), events.stage("gates"):
        time.sleep(0.4)
    stream = read(path)
    beats = of(stream, "heartbeat")
    assert len(beats) >= 3
    assert all(b["stage"] == "gates" for b in beats)
    assert [e["status"] for e in of(stream, "stage")] == ["start", "end"]
    assert stream[-1]["event"] == "stage", "no heartbeat once the stage ended"
