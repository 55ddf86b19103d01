"""Workspaces end to end: a worktree per issue, reused with its base, rolled back on failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from testing.files import file_states
from testing.project import CALC, NO_GATES, Outcome, Project

APPEND_SUB = """
p = Path("src/democalc/calc.py")
p.write_text(p.read_text() + "\\n\\ndef sub(a: int, b: int) -> int:\\n    return a - b\\n")
"""


def rollback_note(project: Project, out: Outcome) -> str:
    """The log's [rollback] line: what happened to the workspace."""
    notes = [line for line in project.log_of(out).splitlines() if "[rollback]" in line]
    assert len(notes) == 1, notes
    return notes[0]


def test_workspace_is_a_worktree_on_its_issue_branch_with_meta(project: Project) -> None:
    base = project.head()
    project.patch("issue_21.py", [CALC], APPEND_SUB)

    out = project.run("21", "Add sub", "-k", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr

    repo = project.workspace_repo("21")
    assert repo.is_dir(), "-k must keep the workspace"
    assert str(repo) in project.worktrees()
    assert project.git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo) == "am_patch/issue_21"
    assert project.git("rev-parse", "am_patch/issue_21") == project.head()
    assert project.git("status", "--porcelain", cwd=repo) == ""
    meta = project.meta("21")
    assert project.git("rev-parse", "HEAD^") == base
    assert meta["base"] == project.head(), "a kept workspace's base is the landed commit"
    assert meta["attempt"] == 1
    assert meta["message"] == "Add sub"
    assert meta["files"] == [CALC]


def test_workspace_is_deleted_after_success(project: Project) -> None:
    project.patch("issue_22.py", [CALC], APPEND_SUB)

    out = project.run("22", "Add sub", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr

    assert not project.workspace_dir("22").exists()
    assert project.worktrees() == [str(project.live)]
    assert project.git("branch", "--list", "am_patch/*") == ""


def test_rerun_reuses_the_workspace_and_keeps_its_base(project: Project) -> None:
    base = project.head()
    failing = APPEND_SUB + 'Path("stray.txt").write_text("x")\n'
    project.patch("issue_23.py", [CALC], failing)
    out = project.run("23", "First try", *NO_GATES)
    assert out.result_line == "RESULT: FAIL SCOPE:UNDECLARED"
    repo = project.workspace_repo("23")
    assert project.meta("23")["attempt"] == 1
    marker = repo / "__pycache__" / "marker"  # ignored: survives rollback, not a re-creation
    marker.parent.mkdir()
    marker.write_text("still here")

    project.write("CHANGELOG.md", "news\n")
    moved = project.commit_all("Live moves on")
    assert moved != base

    project.patch("issue_23.py", [CALC], failing)
    out = project.run("23", "Second try", *NO_GATES)
    assert out.result_line == "RESULT: FAIL SCOPE:UNDECLARED"
    meta = project.meta("23")
    assert meta["attempt"] == 2
    assert meta["base"] == base, "a rerun must keep the workspace base"
    assert meta["message"] == "Second try"
    assert marker.read_text() == "still here", "the workspace was recreated, not reused"
    assert not (repo / "CHANGELOG.md").exists()
    assert project.git("rev-parse", "am_patch/issue_23") == base


def test_stale_worktree_entry_is_cleaned(project: Project) -> None:
    project.patch("issue_24.py", [CALC], "raise SystemExit(1)\n")
    out = project.run("24", "Fails", *NO_GATES)
    assert out.result_line == "RESULT: FAIL PATCH:EXEC"
    repo = project.workspace_repo("24")
    shutil.rmtree(project.workspace_dir("24"))
    assert str(repo) in project.worktrees(), "git should still list the deleted worktree"

    project.patch("issue_24.py", [CALC], APPEND_SUB)
    out = project.run("24", "Add sub", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert "def sub" in (project.live / CALC).read_text()
    assert project.worktrees() == [str(project.live)]


def test_patches_dir_is_excluded_and_live_status_stays_clean(project: Project) -> None:
    project.patch("issue_25.py", [CALC], "raise SystemExit(1)\n")
    out = project.run("25", "Fails", *NO_GATES)
    assert out.result_line == "RESULT: FAIL PATCH:EXEC"
    project.patch("issue_26.py", [CALC], APPEND_SUB)
    out = project.run("26", "Add sub", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr

    exclude = (project.live / ".git" / "info" / "exclude").read_text().splitlines()
    assert "/patches/" in exclude
    assert (project.patches / "unsuccessful" / "issue_25.py").is_file()
    assert (project.workspace_dir("25") / "meta.json").is_file()
    assert project.status() == ""
    assert project.git("show", "--stat", "--format=", "HEAD").count("|") == 1


# --- rollback (SPEC guarantee 5) -------------------------------------------------------

DECLARED = [CALC, "src/democalc/extra.py", "README.md", "notes/user.txt", "notes/run.sh"]
VANDALISM = """
import os
p = Path("src/democalc/calc.py")
p.write_text(p.read_text().replace("return a + b", "return a - b"))
Path("src/democalc/extra.py").write_text("X = 1\\n")
os.remove("README.md")
Path("notes/user.txt").write_text("clobbered\\n")
os.chmod("notes/run.sh", 0o644)
"""
FAILURES = {
    "PATCH:EXEC": (VANDALISM + "raise SystemExit(3)\n", NO_GATES),
    "SCOPE:UNDECLARED": (VANDALISM + 'Path("stray.txt").write_text("x")\n', NO_GATES),
    "GATES:PYTEST": (VANDALISM, ("--override", 'gates_order=["pytest"]')),
}


def prepare_used_workspace(project: Project, issue: str) -> Path:
    """A workspace left by a failed run, where the user then edited and left untracked files."""
    project.patch(f"issue_{issue}.py", DECLARED, "raise SystemExit(1)\n")
    out = project.run(issue, "Setup", *NO_GATES)
    assert out.result_line == "RESULT: FAIL PATCH:EXEC"
    repo = project.workspace_repo(issue)
    (repo / "README.md").write_text("# edited by hand in the workspace\n")
    (repo / "notes").mkdir()
    (repo / "notes/user.txt").write_text("my notes\n")
    (repo / "notes/run.sh").write_text("#!/bin/sh\n")
    (repo / "notes/run.sh").chmod(0o755)
    return repo


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_failure_rolls_the_workspace_back_exactly(project: Project, failure: str) -> None:
    repo = prepare_used_workspace(project, "31")
    base = project.meta("31")["base"]
    before = file_states(repo, skip_git_pointer=True)
    assert before["notes/run.sh"][0] == "exec"
    body, options = FAILURES[failure]
    project.patch("issue_31.py", DECLARED, body)

    out = project.run("31", "Vandalise", *options)
    assert out.result_line == f"RESULT: FAIL {failure}", out.stdout + out.stderr
    assert file_states(repo, skip_git_pointer=True) == before, (
        "the workspace is not byte-for-byte its pre-patch state"
    )
    assert not (repo / "src/democalc/extra.py").exists()
    assert "restored" in rollback_note(project, out)
    assert project.meta("31")["base"] == base
    assert project.git("rev-parse", "am_patch/issue_31") == base
    assert project.head() == base


def test_rollback_never_keeps_the_failed_state(project: Project) -> None:
    repo = prepare_used_workspace(project, "32")
    project.patch("issue_32.py", DECLARED, FAILURES["PATCH:EXEC"][0])

    out = project.run(
        "32", "Vandalise", "--override", "rollback_workspace_on_fail=never", *NO_GATES
    )
    assert out.result_line == "RESULT: FAIL PATCH:EXEC"
    assert (repo / "src/democalc/extra.py").read_text() == "X = 1\n"
    assert (repo / "notes/user.txt").read_text() == "clobbered\n"
    assert not (repo / "README.md").exists()
    assert "return a - b" in (repo / CALC).read_text()
    note = rollback_note(project, out)
    assert "never" in note and "restored" not in note, note
    assert "return a + b" in (project.live / CALC).read_text()


def test_rollback_removes_the_ignored_files_the_patch_created(project: Project) -> None:
    repo = prepare_used_workspace(project, "33")
    (repo / ".venv").mkdir()
    (repo / ".venv/keep.txt").write_text("the user's\n")
    (repo / "src/democalc/__pycache__").mkdir()
    (repo / "src/democalc/__pycache__/old.pyc").write_bytes(b"old")
    before = file_states(repo, skip_git_pointer=True)
    litter = """
for rel in ("tests/__pycache__/t.pyc", "gen/__pycache__/g.pyc", ".mypy_cache/m.json"):
    Path(rel).parent.mkdir(parents=True, exist_ok=True)
    Path(rel).write_text("litter")
raise SystemExit(1)
"""
    project.patch("issue_33.py", DECLARED, litter)

    out = project.run("33", "Litter", *NO_GATES)

    assert out.result_line == "RESULT: FAIL PATCH:EXEC", out.output
    assert "restored" in rollback_note(project, out)
    for created in ("tests/__pycache__", "gen", ".mypy_cache"):
        assert not (repo / created).exists(), f"{created} is left over from the failed patch"
    assert (repo / "src/democalc/__pycache__/old.pyc").read_bytes() == b"old"
    assert (repo / ".venv/keep.txt").is_file(), "an ignored directory that was there stays"
    assert file_states(repo, skip_git_pointer=True) == before


SPECIAL_FILES = """\
import os
os.mkfifo("docs-fifo")
os.makedirs(b"bad-\\xff-dir")
open(b"bad-\\xff-dir/x", "w").close()
open(b"bad-\\xff.txt", "w").close()
Path("README.md").write_text("changed\\n")
"""


def entries(root: Path) -> set[bytes]:
    """Every name under root, as bytes (undecodable names too), but .git and tool caches."""
    found: set[bytes] = set()
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        dirnames[:] = [d for d in dirnames if d not in (b".git", b"__pycache__")]
        found.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return found


def test_rollback_removes_fifos_and_undecodable_names_and_a_rerun_works(
    project: Project,
) -> None:
    project.patch("issue_60.py", ["README.md"], "")  # opens the workspace
    project.run("60", "Open", *NO_GATES)
    repo = project.workspace_repo("60")
    before = entries(repo)
    project.patch("issue_60.py", ["README.md"], SPECIAL_FILES)

    out = project.run("60", "Special files", *NO_GATES)

    assert out.result_line == "RESULT: FAIL SCOPE:UNSAFE", out.output
    assert "not a regular file" in out.line("REASON:")
    assert entries(repo) == before
    project.patch("issue_60.py", ["README.md"], "Path('README.md').write_text('fine\\n')\n")
    assert project.run("60", "Fine", *NO_GATES).result_line == "RESULT: SUCCESS"


def test_a_soft_reset_recovers_a_workspace_left_with_special_files(project: Project) -> None:
    project.patch("issue_61.py", ["README.md"], SPECIAL_FILES)
    kept = project.run("61", "Special", "--override", "rollback_workspace_on_fail=never", *NO_GATES)
    assert kept.result_line == "RESULT: FAIL SCOPE:UNSAFE", kept.output
    assert (project.workspace_repo("61") / "docs-fifo").exists()
    project.patch("issue_61.py", ["README.md"], "Path('README.md').write_text('fine\\n')\n")

    out = project.run("61", "Fine", "--soft-reset-workspace", "-W", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.output
    assert project.git("show", "HEAD:README.md") == "fine"
