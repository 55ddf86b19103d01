"""--drop-workspace: a workspace left by a failed attempt goes, and what it held is kept."""

from __future__ import annotations

from am_patch.layout import Layout
from am_patch.lock import issue_lock
from testing.project import CALC, ILL_TYPED, Project, assert_fails


def failed_attempt(project: Project, issue: str, rollback: str = "never") -> None:
    project.ill_typed_patch(issue)
    out = project.run(issue, "Broken", "--override", f"rollback_workspace_on_fail={rollback}")
    assert_fails(out, "GATES:MYPY")


def test_drop_saves_what_the_workspace_held_and_removes_it(project: Project) -> None:
    failed_attempt(project, "40")
    repo = project.workspace_repo("40")
    (repo / "NOTES.txt").write_text("a repair made by hand\n")
    before = (project.head(), project.origin_head(), project.status())

    out = project.run("--drop-workspace", "40")

    assert out.code == 0, out.output
    assert out.stdout.splitlines()[0] == "dropped patches/workspaces/issue_40"
    saved = list((project.patches / "unsuccessful").glob("issue_40_dropped_*.patch"))
    assert len(saved) == 1 and saved[0].name in out.stdout
    assert not project.workspace_dir("40").exists()
    assert project.worktrees() == [str(project.live)]
    assert "am_patch/issue_40" not in project.git("branch", "--list")
    assert (project.head(), project.origin_head(), project.status()) == before
    # nothing is lost: the saved patch brings back both the patch's edit and the hand file
    project.git("apply", str(saved[0]))
    assert (project.live / "NOTES.txt").read_text() == "a repair made by hand\n"
    assert (project.live / CALC).read_text().endswith(ILL_TYPED)


def test_drop_of_a_workspace_at_its_base_saves_nothing(project: Project) -> None:
    failed_attempt(project, "41", "always")  # rolled back: exactly its base again

    out = project.run("--drop-workspace", "41")

    assert out.code == 0, out.output
    assert "saved" not in out.stdout
    assert not project.workspace_dir("41").exists()


def test_drop_refuses_a_missing_workspace_and_a_running_issue(project: Project) -> None:
    missing = project.run("--drop-workspace", "42")
    assert_fails(missing, "PREFLIGHT:WORKSPACE")
    assert missing.line("REASON:") == "REASON: issue 42 has no workspace to drop"

    failed_attempt(project, "43")
    layout = Layout(project.live, project.live / ".git")
    with issue_lock(layout, "issue_43"):
        busy = project.run("--drop-workspace", "43")
    assert busy.code == 1 and "issue_43" in busy.output
    assert project.workspace_dir("43").is_dir()


def test_drop_takes_no_other_arguments(project: Project) -> None:
    out = project.run("--drop-workspace", "44", "45", "msg")
    assert out.code == 2
    assert "--drop-workspace ISSUE_ID takes no other arguments" in out.stderr


def test_drop_waits_for_an_interrupted_landing_to_be_recovered(project: Project) -> None:
    failed_attempt(project, "46")
    journal = Layout(project.live, project.live / ".git").journal
    journal.write_text("{}\n")  # what a killed landing leaves

    refused = project.run("--drop-workspace", "46")

    assert_fails(refused, "PREFLIGHT:WORKSPACE")
    assert "am-patch-hook recover" in refused.line("REASON:")
    assert project.workspace_dir("46").is_dir()
