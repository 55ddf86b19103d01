"""Runs side by side, as real processes: different issues on one live repo, two machines racing
to one origin, and a run killed while it undoes a landing origin refused."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from am_patch import crash, toolcache
from am_patch.layout import Layout
from am_patch.repo import Repo
from am_patch.verdicts import VerdictCache
from testing.hooks import clone, install
from testing.project import NO_GATES, Project, assert_success

MYPY_ONLY = ("--override", 'gates_order=["mypy"]')


def note_patch(project: Project, issue: str, name: str) -> None:
    """A patch of issue adding notes/<name>.md, with a MESSAGE for --batch."""
    project.patch(
        f"issue_{issue}.py",
        [f"notes/{name}.md"],
        f'MESSAGE = "Note {name}"\n'
        f"Path('notes').mkdir(exist_ok=True)\nPath('notes/{name}.md').write_text('{name}\\n')\n",
    )


def linear(project: Project, ref: str = "main") -> list[str]:
    """The commits of ref, newest first; fails if any has more than one parent."""
    merges = project.git("rev-list", "--merges", ref)
    assert merges == "", f"history is not linear: {merges}"
    return project.git("log", "--format=%s", ref).splitlines()


def finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    done = [p.communicate(timeout=240) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, done, strict=True)]


def test_different_issues_run_side_by_side_and_both_land(project: Project) -> None:
    note_patch(project, "21", "one")
    note_patch(project, "22", "two")
    procs = [project.start("21", "Note one", *NO_GATES), project.start("22", "Note two", *NO_GATES)]
    for code, out, err in finish(procs):
        assert code == 0, out + err
        assert "RESULT: SUCCESS" in out
    subjects = linear(project)
    assert {"Issue 21: Note one", "Issue 22: Note two"} <= set(subjects[:2])
    assert project.origin_head() == project.head()
    assert (project.live / "notes/one.md").read_text() == "one\n"
    assert (project.live / "notes/two.md").read_text() == "two\n"
    assert project.status() == ""
    assert sorted(p.name for p in (project.patches / "successful").iterdir()) == [
        "issue_21.py",
        "issue_22.py",
    ]


def test_the_same_issue_twice_at_once_refuses_the_second(project: Project) -> None:
    project.half_done_patch("23", then="import time\ntime.sleep(3)\n")
    first = project.start("23", "Slow", *NO_GATES)
    assert first.stdout is not None
    for line in first.stdout:
        if line.startswith("[patch] running"):
            break
    second = project.run("23", "Again", *NO_GATES)
    first.wait(timeout=120)
    assert second.code == 1
    assert second.result_line == "RESULT: FAIL PREFLIGHT:LOCK"
    assert "--wait" in second.line("REASON:")


def test_verdicts_written_side_by_side_keep_every_pass(project: Project) -> None:
    """Read-modify-write of verdicts.json by processes at once loses no pass."""
    script = (
        "import sys\nfrom pathlib import Path\nfrom am_patch.layout import Layout\n"
        "from am_patch.repo import Repo\nfrom am_patch.verdicts import VerdictCache\n"
        "live = Repo.discover(Path('.'))\n"
        "cache = VerdictCache(Layout(live.root, live.common_dir))\n"
        "for n in range(40):\n    cache.record_pass(f'{sys.argv[1]}{n:038d}', 'ruff', ['x'])\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, tag], cwd=project.live)
        for tag in ("aa", "bb")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    live = Repo.discover(project.live)
    cache = VerdictCache(Layout(live.root, live.common_dir))
    for tag in ("aa", "bb"):
        assert all(cache.passed(f"{tag}{n:038d}", "ruff", ["x"]) for n in range(40))


def test_batch_runs_every_waiting_issue_and_lands_them_all(project: Project) -> None:
    for issue, name in (("31", "a"), ("32", "b"), ("33", "c"), ("34", "d")):
        note_patch(project, issue, name)

    out = project.run("--batch", "--override", "jobs=4", *NO_GATES)

    assert out.code == 0, out.output
    assert out.result_line == "RESULT: SUCCESS"
    lines = [line for line in out.stdout.splitlines() if line.startswith("ISSUE ")]
    assert [line.split(":")[0] for line in lines] == [f"ISSUE {n}" for n in (31, 32, 33, 34)]
    assert all(": SUCCESS, commit" in line for line in lines)
    assert sorted(linear(project)[:4]) == [
        f"Issue {n}: Note {c}" for n, c in zip((31, 32, 33, 34), "abcd", strict=True)
    ]
    assert project.origin_head() == project.head()
    assert project.status() == ""


# each machine's main is behind origin whenever the other landed: -u (skip_up_to_date) lets the
# runs start anyway; their pushes catch up with origin
FLEET = ("-u", "--override", "jobs=1")


def second_machine(project: Project, name: str) -> Project:
    """Another live clone of the same origin, with its own patches/ inbox."""
    other = Project(base=project.base, origin=project.origin, live=clone(project, name))
    other.git("config", "user.name", "second machine")
    other.git("config", "user.email", "second@example.invalid")
    other.patches.mkdir()
    return other


def test_two_machines_racing_to_one_guarded_origin_all_land(project: Project) -> None:
    install(project.live, "--server", str(project.origin))
    other = second_machine(project, "machine2")
    for issue, name in (("41", "a"), ("42", "b"), ("43", "c")):
        note_patch(project, issue, name)
    for issue, name in (("51", "x"), ("52", "y"), ("53", "z")):
        note_patch(other, issue, name)

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "am_patch", "--batch", *FLEET, *NO_GATES],
            cwd=machine.live,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for machine in (project, other)
    ]
    for code, out, err in finish(procs):
        assert code == 0, out + err
        assert out.splitlines()[-1] == "RESULT: SUCCESS"

    origin_log = project.git("log", "--format=%s", "main", cwd=project.origin).splitlines()
    assert project.git("rev-list", "--merges", "main", cwd=project.origin) == ""
    assert {
        f"Issue {n}: Note {c}" for n, c in zip((41, 42, 43, 51, 52, 53), "abcxyz", strict=True)
    } <= set(origin_log)
    for machine in (project, other):  # each machine's main is what origin accepted, or before it
        landed = machine.git("rev-parse", "main")
        project.git("merge-base", "--is-ancestor", landed, "main", cwd=project.origin)
        assert machine.status() == ""


def test_killed_while_undoing_a_landing_origin_refused_the_next_run_recovers(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-u: the push finds origin ahead, the landing is undone to catch up; killed right after
    main moved back, the journal lets the next run finish the undo and land on top."""
    before = project.head()
    theirs = project.push_from_clone("NOTES.md", "theirs\n", "Their notes")
    project.readme_patch("61", "changed\n")

    monkeypatch.setenv(crash.ENV, "undone")
    killed = project.run("61", "Docs", "-u", *NO_GATES)
    monkeypatch.delenv(crash.ENV)

    assert killed.code == -signal.SIGKILL, killed.output
    assert project.head() == before, "main is back at the old commit"
    assert project.origin_head() == theirs
    journal = project.live / ".git" / "am_patch_landing.json"
    assert json.loads(journal.read_text())["new"] == before

    out = project.run("61", "Docs", "-u", *NO_GATES)
    assert_success(out)
    assert "recovered an interrupted landing" in out.stdout
    assert project.git("rev-parse", "HEAD^") == theirs
    assert project.origin_head() == project.head()
    assert (project.live / "README.md").read_text() == "changed\n"
    assert project.status() == ""


def test_a_kept_tool_cache_is_one_runs_at_a_time(project: Project) -> None:
    """Two mypy processes writing one cache crash (an INTERNAL ERROR, not a verdict): a gate
    with a kept cache waits for the run using it."""
    live = Repo.discover(project.live)
    layout = Layout(live.root, live.common_dir)
    project.calc_patch("62")
    stream = project.base / "events.ndjson"
    with layout.exclusive(toolcache.lock_of(layout, "mypy")):
        run = project.start("62", "Add sub", "--events", str(stream), *MYPY_ONLY)
        time.sleep(3)
        started = [e for e in _events(stream) if e["event"] == "gate"]
        assert started == [], "mypy ran while another run held its cache"
        assert run.poll() is None
    out, err = run.communicate(timeout=240)
    assert run.returncode == 0, out + err
    gates = [(e["gate"], e["status"]) for e in _events(stream) if e["event"] == "gate"]
    assert gates == [("mypy", "start"), ("mypy", "pass")]


def _events(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
