"""The scope hook: the staged paths against the active issue's FILES and the path policy; an
interrupted landing blocks hand commits until recovered."""

from __future__ import annotations

import os

import pytest

from am_patch.layout import Layout
from am_patch.lock import Lock
from testing.hooks import (
    GOOD_CALC,
    git,
    hook,
    open_workspace,
    refused_commit,
    run,
)
from testing.project import CALC, Project

# --- scope: the active issue's FILES, path policy ---------------------------------------------


def test_open_workspace_bounds_what_may_be_committed(hooked: Project) -> None:
    open_workspace(hooked, "5", ["README.md"])
    hooked.write(CALC, GOOD_CALC)
    hooked.git("add", CALC)

    outside = refused_commit(hooked, "-m", "Outside the issue")

    assert f"{CALC}: not in the FILES of issue 5" in outside

    hooked.git("reset", "-q", CALC)
    hooked.write("README.md", "# democalc\n\nIssue 5.\n")
    hooked.git("add", "README.md")
    inside = git(hooked.live, "commit", "-m", "Issue 5")

    assert inside.returncode == 0, inside.stderr
    assert hooked.git("show", "HEAD", "--name-only", "--format=") == "README.md"


def test_scope_issue_flag_picks_the_issue(project: Project) -> None:
    open_workspace(project, "5", ["README.md"])
    open_workspace(project, "6", [CALC])
    project.write(CALC, GOOD_CALC)
    project.git("add", CALC)

    fits_one = hook(project.live, "scope")
    outside = hook(project.live, "scope", "--issue", "5")
    declared = hook(project.live, "scope", "--issue", "6")
    unknown = hook(project.live, "scope", "--issue", "9")

    assert fits_one.returncode == 0, fits_one.stderr
    assert outside.returncode == 1
    assert f"{CALC}: not in the FILES of issue 5" in outside.stderr
    assert declared.returncode == 0, declared.stderr
    assert unknown.returncode == 1
    assert "issue 9 (--issue or AM_PATCH_ISSUE): no workspace and no patch input" in unknown.stderr

    project.git("reset", "-q", CALC)
    project.write("README.md", "# democalc\n\nIssue 5.\n")
    project.git("add", "README.md")
    assert hook(project.live, "scope", "--issue", "5").returncode == 0


def test_two_open_workspaces_bound_hand_commits_through_the_installed_hook(
    hooked: Project,
) -> None:
    open_workspace(hooked, "5", ["README.md"])
    open_workspace(hooked, "6", [CALC])
    hooked.write(CALC, GOOD_CALC)
    hooked.write("README.md", "# democalc\n\nIssue 5.\n")
    hooked.git("add", CALC, "README.md")

    both = refused_commit(hooked, "-m", "Both issues at once")

    assert "the staged paths fit no single open issue (5, 6)" in both
    assert "AM_PATCH_ISSUE=ID git commit" in both
    assert "not in the FILES of any open issue" not in both  # each path fits some issue

    hooked.write("NOTES.md", "stray\n")
    hooked.git("add", "NOTES.md")
    stray = refused_commit(hooked, "-m", "Stray")

    assert "NOTES.md: not in the FILES of any open issue (5, 6)" in stray

    hooked.git("reset", "-q", "README.md", "NOTES.md")
    fits_six = git(hooked.live, "commit", "-m", "Issue 6 by hand")

    assert fits_six.returncode == 0, fits_six.stderr
    assert hooked.git("show", "HEAD", "--name-only", "--format=") == CALC

    hooked.git("add", "README.md")
    picked = {**os.environ, "AM_PATCH_ISSUE": "6"}
    wrong = run(["git", "commit", "-m", "Readme as issue 6"], hooked.live, env=picked)

    assert wrong.returncode != 0
    assert "README.md: not in the FILES of issue 6" in wrong.stderr
    right = run(
        ["git", "commit", "-m", "Issue 5", "--quiet"],
        hooked.live,
        env={**os.environ, "AM_PATCH_ISSUE": "5"},
    )

    assert right.returncode == 0, right.stderr
    assert hooked.git("show", "HEAD", "--name-only", "--format=") == "README.md"


def test_scope_issue_flag_reads_the_patch_input_without_a_workspace(project: Project) -> None:
    project.patch("issue_7.py", ["README.md"])
    project.write(CALC, GOOD_CALC)
    project.git("add", CALC)

    outside = hook(project.live, "scope", "--issue", "7")

    assert outside.returncode == 1
    assert f"{CALC}: not in the FILES of issue 7" in outside.stderr


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/etc/hostname", "host: symlink to an absolute path (/etc/hostname)"),
        ("../../outside", "host: symlink leaves the repository (../../outside)"),
        (".git/config", "host: symlink into .git (.git/config)"),
    ],
)
def test_staged_symlink_out_of_the_repository_is_refused(
    hooked: Project, target: str, reason: str
) -> None:
    os.symlink(target, hooked.live / "host")
    hooked.git("add", "host")

    assert reason in refused_commit(hooked, "-m", "Link")


def test_a_staged_retarget_that_makes_an_unchanged_link_leave_is_refused(
    hooked: Project,
) -> None:
    os.makedirs(hooked.live / "docs/sub1/sub2")
    os.symlink("sub1/sub2", hooked.live / "docs/d")
    os.symlink("d/../..", hooked.live / "docs/L")  # docs/sub1/sub2/../.. is docs: inside
    hooked.git("add", "docs/d", "docs/L")
    assert git(hooked.live, "commit", "-q", "-m", "Links").returncode == 0
    os.unlink(hooked.live / "docs/d")
    os.symlink(".", hooked.live / "docs/d")  # docs/L is now docs/../.. : outside
    hooked.git("add", "docs/d")

    stderr = refused_commit(hooked, "-m", "Retarget")

    assert "docs/L: symlink leaves the repository" in stderr, stderr


def test_staged_path_under_a_dot_git_directory_is_refused(hooked: Project) -> None:
    # git itself refuses `.git` in the index; `.git.` is `.git` on NTFS, let in only when a
    # user turns core.protectNTFS off
    hooked.git("config", "core.protectNTFS", "false")
    blob = hooked.git("hash-object", "-w", "README.md")
    hooked.git("update-index", "--add", "--cacheinfo", f"100644,{blob},sub/.git./config")
    head = hooked.head()

    done = git(hooked.live, "commit", "-m", "Sneak into .git")

    assert done.returncode != 0
    assert "am-patch-hook" in done.stderr
    assert "index" in done.stderr  # libgit2 will not read such an index: it says so
    assert hooked.head() == head


# --- an interrupted landing -------------------------------------------------------------------


def test_interrupted_landing_blocks_hand_commits_until_recovered(hooked: Project) -> None:
    old = hooked.kill_while_landing("3")
    journal = hooked.live / ".git" / "am_patch_landing.json"
    assert hooked.git("diff", "--cached", "--name-only") == CALC  # the promoted file, staged

    stderr = refused_commit(hooked, "-m", "Would sweep the promoted file in")

    assert "an am-patch landing was interrupted (or is in progress)" in stderr
    assert "run 'am-patch-hook recover'" in stderr

    layout = Layout(hooked.live, hooked.live / ".git")
    with Lock(layout, layout.lock):
        held = hook(hooked.live, "recover")
    assert held.returncode == 1
    assert "another am-patch run holds" in held.stderr
    assert journal.is_file()

    recovered = hook(hooked.live, "recover")

    assert recovered.returncode == 0, recovered.stderr
    assert f"recovered an interrupted landing: main at {old}" in recovered.stdout
    assert not journal.exists()
    assert hooked.git("diff", "--cached") == "" and hooked.git("diff") == ""
    again = hook(hooked.live, "recover")
    assert again.returncode == 0 and "nothing to recover" in again.stdout

    hooked.write(CALC, GOOD_CALC)
    hooked.git("add", CALC)
    done = git(hooked.live, "commit", "-m", "Multiply, by hand")

    assert done.returncode == 0, done.stderr
    assert hooked.git("rev-parse", "HEAD~1") == old
    assert hooked.git("show", f"HEAD:{CALC}") + "\n" == GOOD_CALC
