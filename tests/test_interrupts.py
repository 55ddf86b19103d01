"""A run stopped by a signal, caught or not, never leaves the next run a half-patched workspace."""

from __future__ import annotations

import signal

import pytest

from am_patch import crash
from testing.project import NO_GATES, Project

LINE = "appended by issue 5\n"
# Not idempotent: applied twice, the line is there twice.
APPEND = f"with open('README.md', 'a') as f:\n    f.write({LINE!r})\n"


def append_patch(project: Project, *, then_sleep: bool = False) -> None:
    body = APPEND + ("import time\ntime.sleep(60)\n" if then_sleep else "")
    project.patch("issue_5.py", ["README.md"], body)


def land_once(project: Project, readme: str) -> str:
    """A normal rerun of the patch: lands README.md with the line exactly once. Its stdout."""
    append_patch(project)
    out = project.run("5", "Append", *NO_GATES)
    assert out.code == 0, out.output
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert (project.live / "README.md").read_text() == readme + LINE
    assert project.git("show", "HEAD:README.md") + "\n" == readme + LINE
    assert project.origin_head() == project.head()
    return out.stdout


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_or_sighup_rolls_back_prints_the_summary_and_the_rerun_patches_once(
    project: Project, signum: signal.Signals, code: int
) -> None:
    readme = (project.live / "README.md").read_text()
    head = project.head()
    append_patch(project, then_sleep=True)
    returncode, stdout, err = project.signal_while_patching(signum, "5", "Append", *NO_GATES)

    assert returncode == code, stdout + err
    assert stdout.strip().splitlines()[-1] == "RESULT: FAIL INTERNAL:INTERRUPTED"
    assert f"interrupted by {signum.name}" in stdout
    assert "[rollback] workspace restored" in stdout
    assert (project.workspace_repo("5") / "README.md").read_text() == readme
    assert project.meta("5").get("pending") is None
    assert (project.head(), project.origin_head()) == (head, head)
    assert (project.patches / "issue_5.py").is_file(), "an interrupted run files nothing away"

    assert "half-patched" not in land_once(project, readme)


@pytest.mark.parametrize("point", ["patch", "gates", "commit"])
def test_sigkill_mid_attempt_is_undone_by_the_next_run(
    project: Project, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    readme = (project.live / "README.md").read_text()
    head = project.head()
    append_patch(project)
    monkeypatch.setenv(crash.ENV, point)
    killed = project.run("5", "Append", *NO_GATES)
    monkeypatch.delenv(crash.ENV)
    assert killed.code == -signal.SIGKILL, killed.output
    assert (project.workspace_repo("5") / "README.md").read_text() == readme + LINE
    assert project.head() == head

    stdout = land_once(project, readme)

    assert (
        "[workspace] a killed attempt left the workspace half-patched; "
        "restored it to the state before that attempt"
    ) in stdout


def test_kill_before_the_patch_ran_restores_nothing_and_says_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (project.live / "README.md").read_text()
    append_patch(project)
    monkeypatch.setenv(crash.ENV, "workspace")
    assert project.run("5", "Append", *NO_GATES).code == -signal.SIGKILL
    monkeypatch.delenv(crash.ENV)

    assert "half-patched" not in land_once(project, readme)


def test_held_result_still_set_aside_and_kept_workspace_has_no_attempt_left(
    project: Project,
) -> None:
    """The attempt record shares meta.json's `pending` with a held result; neither is lost."""
    readme = (project.live / "README.md").read_text()
    append_patch(project)
    held = project.run("5", "Append", "--disable-promotion", *NO_GATES)
    assert held.result_line == "RESULT: SUCCESS", held.output
    pending = project.meta("5")["pending"]
    assert isinstance(pending, dict) and pending["after"], pending

    out = project.run("5", "Append", "-k", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.output
    assert "set aside the previous attempt's un-promoted result" in out.stdout
    assert (project.live / "README.md").read_text() == readme + LINE
    assert project.meta("5")["pending"] is None


def test_finalize_workspace_after_a_killed_attempt_never_lands_the_half_patch(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (project.live / "README.md").read_text()
    head = project.head()
    append_patch(project)
    monkeypatch.setenv(crash.ENV, "gates")
    assert project.run("5", "Append", *NO_GATES).code == -signal.SIGKILL
    monkeypatch.delenv(crash.ENV)
    assert (project.workspace_repo("5") / "README.md").read_text() == readme + LINE

    out = project.run("--finalize-workspace", "5", *NO_GATES)

    assert "restored it to the state before that attempt" in out.stdout
    assert out.result_line == "RESULT: FAIL PREFLIGHT:WORKSPACE", out.output  # nothing left
    assert (project.head(), project.origin_head()) == (head, head)
    assert (project.workspace_repo("5") / "README.md").read_text() == readme
