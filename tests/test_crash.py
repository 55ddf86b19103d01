"""A run killed with SIGKILL at any stage boundary leaves live main whole; the next run works."""

from __future__ import annotations

import signal

import pytest

from am_patch import crash
from testing.project import CALC, CALC_WITH_SUB, NO_GATES, Project

# Every crash point of a workspace run, in the order the run reaches them.
POINTS = ("preflight", "workspace", "patch", "gates", "commit", "landing", "landed", "pushed")
# Points after which main is already at the new commit.
LANDED = ("landed", "pushed")
USER_FILES = ("README.md", "tests/test_calc.py", "src/democalc/__init__.py", "notes.txt")


def dirty_the_live_tree(project: Project) -> dict[str, bytes]:
    """Unrelated user edits: modified, staged, staged-then-edited and untracked files."""
    project.write("README.md", "# democalc\n\nMy uncommitted notes.\n")
    project.write("tests/test_calc.py", (project.live / "tests/test_calc.py").read_text() + "# x\n")
    project.git("add", "tests/test_calc.py")
    project.write("src/democalc/__init__.py", '"""Staged."""\n')
    project.git("add", "src/democalc/__init__.py")
    project.write("src/democalc/__init__.py", '"""Staged, then edited."""\n')
    project.write("notes.txt", "mine\n")
    return {rel: (project.live / rel).read_bytes() for rel in USER_FILES}


def fsck(project: Project) -> None:
    project.git("fsck", "--no-dangling", "--no-progress")


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_each_stage_leaves_main_whole_and_the_next_run_works(
    project: Project, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    old = project.head()
    saved = dirty_the_live_tree(project)
    status = project.status()
    staged = project.git("diff", "--cached")
    project.patch("issue_3.py", [CALC], f"Path({CALC!r}).write_text({CALC_WITH_SUB!r})\n")

    monkeypatch.setenv(crash.ENV, point)
    killed = project.run("3", "Add sub", *NO_GATES)
    monkeypatch.delenv(crash.ENV)

    assert killed.code == -signal.SIGKILL, (
        f"the run was not killed at {point!r}: {killed.stdout}{killed.stderr}"
    )
    assert "RESULT:" not in killed.stdout
    at = project.head()
    if point in LANDED:
        assert at != old and project.git("rev-parse", f"{at}^") == old
        assert project.git("show", f"{at}:{CALC}") + "\n" == CALC_WITH_SUB
    else:
        assert at == old, f"main moved before the fast-forward point ({point})"
    assert project.origin_head() == (at if point == "pushed" else old)
    fsck(project)
    assert {rel: (project.live / rel).read_bytes() for rel in USER_FILES} == saved
    assert project.git("diff", "--cached", "--", *USER_FILES) == staged
    if point != "landing":
        # Inside the landing window the files are ahead of the ref; its journal lets the next
        # run finish or undo it (test_kill_while_landing_...). Everywhere else: consistent now.
        assert project.status() == status, f"index or working tree off main after {point}"
        assert project.git("diff", "--cached") == staged

    # The next run: the same patch while main is still old, another issue's patch otherwise.
    if point in LANDED:
        project.patch("issue_4.py", ["LICENSE"], "Path('LICENSE').write_text('MIT\\n')\n")
        nxt = project.run("4", "License", *NO_GATES)
    else:
        nxt = project.run("3", "Add sub", *NO_GATES)
    assert nxt.code == 0, nxt.stdout + nxt.stderr
    assert nxt.result_line == "RESULT: SUCCESS"
    if point == "landing":
        assert "recovered an interrupted landing" in nxt.stdout
    else:
        assert "recovered an interrupted landing" not in nxt.stdout
    assert "took over a stale lock" in project.newest_log()
    head = project.head()
    assert project.origin_head() == head
    assert (project.live / CALC).read_text() == CALC_WITH_SUB
    assert project.git("show", f"HEAD:{CALC}") + "\n" == CALC_WITH_SUB
    if point in LANDED:
        assert project.git("rev-parse", "HEAD^") == at
        assert (project.live / "LICENSE").read_text() == "MIT\n"
    else:
        assert project.git("rev-parse", "HEAD^") == old
    assert project.status() == status, "only the user's own edits may be left uncommitted"
    assert project.git("diff", "--cached") == staged
    assert {rel: (project.live / rel).read_bytes() for rel in USER_FILES} == saved
    fsck(project)
    assert not (project.live / ".git" / "am_patch_landing.json").exists()


def test_kill_while_landing_is_recovered_before_anything_else(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between writing the files and moving the ref: the next run puts the paths back first."""
    old = project.kill_while_landing("3")

    # A run that stops in preflight still recovers: main's files match main again.
    out = project.run("9", "Nothing", "missing.py", *NO_GATES)
    assert out.result_line == "RESULT: FAIL PREFLIGHT:PATCH_PATH", out.stdout
    assert f"recovered an interrupted landing: main at {old}" in out.stdout
    assert project.status() == "", "index and working tree must match main again"
    assert not (project.live / ".git" / "am_patch_landing.json").exists()
    fsck(project)
