"""Landing on a live repo another tool is using: a locked index, a merge in progress, an untracked
file in a promoted path's way, an ignored file a promotion would overwrite."""

from __future__ import annotations

import json

import pytest

from am_patch import landing as promote
from am_patch.errors import Category, Refusal
from am_patch.repo import CommitOid, Repo
from testing.project import CALC, CALC_WITH_SUB, NO_GATES, Project, assert_fails, assert_success

LOCK_BUSY = "another git process holds the live index (.git/index.lock)"


def lock_during_gate(project: Project) -> tuple[str, ...]:
    """A gate that runs outside the jail and takes the live index lock (as an IDE or another git
    command would) while the run is busy: after preflight, before landing."""
    lock = str(project.live / ".git" / "index.lock")
    command = f"['{{python}}', '-c', \"open('{lock}', 'x').close()\"]"
    return (
        "--override",
        "sandbox_gates=false",
        "--override",
        "gates_order=['lock']",
        "--override",
        "gates.lock.runs_on=always",
        "--override",
        f"gates.lock.command={command}",
    )


def assert_consistent(project: Project) -> None:
    project.git("fsck", "--no-progress")
    assert not (project.live / ".git" / "am_patch_landing.json").exists()


# --- a locked live index --------------------------------------------------------------------


def test_index_locked_before_the_run_fails_preflight(project: Project) -> None:
    project.calc_patch("1")
    (project.live / ".git" / "index.lock").touch()
    before = project.repo_state(include_patches=False)
    out = project.run("1", "Add sub", *NO_GATES)
    assert_fails(out, "PREFLIGHT:GIT")
    assert LOCK_BUSY in out.output
    assert project.repo_state(include_patches=False)[:3] == before[:3]
    assert not project.workspace_dir("1").exists()


def test_index_locked_while_gating_fails_cleanly_at_landing(project: Project) -> None:
    project.calc_patch("1")
    old = project.head()
    calc_before = (project.live / CALC).read_text()
    before = project.repo_state(include_patches=False)
    out = project.run("1", "Add sub", *lock_during_gate(project))
    assert_fails(out, "PROMOTION:LIVE_DIRTY")
    assert LOCK_BUSY in out.line("REASON:")
    assert (project.live / ".git" / "index.lock").is_file()
    (project.live / ".git" / "index.lock").unlink()
    assert project.head() == old
    assert (project.live / CALC).read_text() == calc_before
    assert project.repo_state(include_patches=False)[:3] == before[:3]
    assert_consistent(project)
    # the lock gone, a rerun lands the change
    project.calc_patch("1")
    again = project.run("1", "Add sub", *NO_GATES)
    assert_success(again)
    assert (project.live / CALC).read_text() == CALC_WITH_SUB
    assert project.status().splitlines() == [] or all(
        line[3:].startswith("patches/") for line in project.status().splitlines()
    )


def test_finalize_live_with_index_locked_while_gating_commits_nothing(project: Project) -> None:
    (project.live / CALC).write_text(CALC_WITH_SUB)
    old = project.head()
    before = project.repo_state(include_patches=False)
    out = project.run("-f", "Add sub by hand", *lock_during_gate(project))
    assert_fails(out, "PROMOTION:LIVE_DIRTY")
    assert LOCK_BUSY in out.output
    (project.live / ".git" / "index.lock").unlink()
    assert project.head() == old
    assert out.line("COMMIT:") == "COMMIT: -"
    assert project.repo_state(include_patches=False)[:3] == before[:3]
    assert (project.live / CALC).read_text() == CALC_WITH_SUB
    assert_consistent(project)


def test_finalize_live_journal_repairs_an_index_left_behind(project: Project) -> None:
    """-f moved main, then was killed before the index followed: the next run syncs it."""
    (project.live / CALC).write_text(CALC_WITH_SUB)
    out = project.run("-f", "Add sub by hand", *NO_GATES, env={"AM_PATCH_TEST_CRASH_AT": "landed"})
    assert out.code != 0, out.output
    journal = project.live / ".git" / "am_patch_landing.json"
    assert journal.is_file()
    assert json.loads(journal.read_text())["paths"] == [CALC]
    assert project.git("diff", "--cached", "--name-only") == CALC  # index still the old commit
    again = project.run("-f", "Nothing", "-n", *NO_GATES)
    assert_success(again)
    assert "recovered an interrupted landing" in again.output
    assert project.git("diff", "--cached", "--name-only") == ""
    assert project.git("status", "--porcelain", "--untracked-files=no") == ""
    assert_consistent(project)


# --- a merge, rebase or cherry-pick in progress ---------------------------------------------


def start_conflicted_merge(project: Project) -> None:
    project.git("checkout", "-q", "-b", "other")
    project.write("README.md", "theirs\n")
    project.commit_all("Their README", push=False)
    project.git("checkout", "-q", "main")
    project.write("README.md", "ours\n")
    project.commit_all("Our README")
    project.git("merge", "other", check=False)
    assert (project.live / ".git" / "MERGE_HEAD").is_file()


def test_conflicted_merge_fails_preflight(project: Project) -> None:
    start_conflicted_merge(project)
    project.calc_patch("1")
    before = project.repo_state(include_patches=False)
    out = project.run("1", "Add sub", *NO_GATES)
    assert_fails(out, "PREFLIGHT:GIT")
    assert "merge in progress" in out.line("REASON:")
    assert "README.md" in out.output
    assert project.repo_state(include_patches=False)[:3] == before[:3]
    assert not project.workspace_dir("1").exists()


def test_merge_in_progress_without_conflicts_fails_preflight(project: Project) -> None:
    project.git("checkout", "-q", "-b", "other")
    project.write("docs.md", "docs\n")
    project.commit_all("Docs", push=False)
    project.git("checkout", "-q", "main")
    project.git("merge", "--no-ff", "--no-commit", "other")
    project.calc_patch("1")
    before = project.repo_state(include_patches=False)
    out = project.run("1", "Add sub", *NO_GATES)
    assert_fails(out, "PREFLIGHT:GIT")
    assert "merge in progress" in out.output
    assert project.repo_state(include_patches=False)[:3] == before[:3]


def test_cherry_pick_in_progress_fails_finalize_live(project: Project) -> None:
    project.git("checkout", "-q", "-b", "other")
    project.write("README.md", "theirs\n")
    theirs = project.commit_all("Their README", push=False)
    project.git("checkout", "-q", "main")
    project.write("README.md", "ours\n")
    project.commit_all("Our README")
    project.git("cherry-pick", theirs, check=False)
    before = project.repo_state(include_patches=False)
    out = project.run("-f", "Resolve", *NO_GATES)
    assert_fails(out, "PREFLIGHT:GIT")
    assert "cherry-pick in progress" in out.output
    assert project.repo_state(include_patches=False)[:3] == before[:3]


# --- untracked and ignored live files in a promoted path's way ------------------------------


def test_untracked_file_where_a_promoted_directory_goes_is_live_dirty(project: Project) -> None:
    project.write("notes", "mine\n")
    project.patch(
        "issue_1.py",
        ["notes/x.txt"],
        "Path('notes').mkdir()\nPath('notes/x.txt').write_text('x\\n')\n",
    )
    before = project.repo_state(include_patches=False)
    out = project.run("1", "Add notes", *NO_GATES)
    assert_fails(out, "PROMOTION:LIVE_DIRTY")
    assert "notes/x.txt" in out.line("REASON:")
    assert (project.live / "notes").read_text() == "mine\n"
    assert project.repo_state(include_patches=False)[:3] == before[:3]
    assert_consistent(project)


def test_ignored_live_file_a_promotion_would_overwrite_is_live_dirty(project: Project) -> None:
    project.write(".gitignore", "*.log\n")
    project.commit_all("Ignore logs")
    project.write("debug.log", "my debugging notes\n")
    project.patch(
        "issue_1.py",
        [".gitignore", "debug.log"],
        "Path('.gitignore').write_text('')\nPath('debug.log').write_text('tracked now\\n')\n",
    )
    before = project.repo_state(include_patches=False)
    out = project.run("1", "Track the log", *NO_GATES)
    assert_fails(out, "PROMOTION:LIVE_DIRTY")
    assert "debug.log" in out.line("REASON:")
    assert (project.live / "debug.log").read_text() == "my debugging notes\n"
    assert (project.live / ".gitignore").read_text() == "*.log\n"
    assert project.repo_state(include_patches=False)[:3] == before[:3]
    assert_consistent(project)


def test_ignored_live_file_equal_to_the_promoted_one_lands(project: Project) -> None:
    project.write(".gitignore", "*.log\n")
    project.commit_all("Ignore logs")
    project.write("debug.log", "tracked now\n")
    project.patch(
        "issue_1.py",
        [".gitignore", "debug.log"],
        "Path('.gitignore').write_text('')\nPath('debug.log').write_text('tracked now\\n')\n",
    )
    out = project.run("1", "Track the log", *NO_GATES)
    assert_success(out)
    assert project.git("ls-files", "debug.log") == "debug.log"
    assert project.git("status", "--porcelain", "--untracked-files=no") == ""
    assert_consistent(project)


def side_landing(project: Project) -> tuple[Repo, promote.Landing, str]:
    """A commit adding sub() on a side branch, as a landing on main; live and calc.py's text."""
    old, calc_before = project.head(), (project.live / CALC).read_text()
    project.git("checkout", "-q", "-b", "side")
    (project.live / CALC).write_text(CALC_WITH_SUB)
    project.commit_all("Add sub", push=False)
    new = project.git("rev-parse", "HEAD")
    project.git("checkout", "-q", "main")
    landing = promote.Landing(branch="main", old=CommitOid(old), new=CommitOid(new), paths=(CALC,))
    return Repo.open(project.live), landing, calc_before


def test_index_locked_mid_landing_is_rolled_back(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock appears after the landing's own check: the written file is put back."""
    live, landing, calc_before = side_landing(project)
    lock = project.live / ".git" / "index.lock"
    lock.touch()
    monkeypatch.setattr(Repo, "index_locked", lambda self: False)  # taken just after the check
    with pytest.raises(Refusal) as failed:
        promote.land(live, landing)  # in the promotion stage
    assert failed.value.category == "LIVE_DIRTY"
    assert "rolled back: nothing was changed" in failed.value.message
    assert (project.live / CALC).read_text() == calc_before  # put back with the lock still held
    assert not (project.live / ".git" / "am_patch_landing.json").exists()
    lock.unlink()
    assert project.head() == landing.old
    assert project.git("status", "--porcelain") == ""
    assert_consistent(project)


def test_failed_rollback_keeps_the_journal_for_recovery(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither the landing nor its rollback could finish: the journal stays, recover() ends it."""
    live, landing, calc_before = side_landing(project)

    def broken(*args: object) -> list[str]:
        raise Refusal(Category.LIVE_DIRTY, "index is locked")

    monkeypatch.setattr(Repo, "cas_ref", broken)
    monkeypatch.setattr(promote, "_sync_paths", broken)
    monkeypatch.setattr(promote, "_put_back_files", lambda live, landing: False)
    with pytest.raises(Refusal) as failed:
        promote.land(live, landing)  # in the promotion stage
    assert failed.value.category == "LIVE_DIRTY"
    assert "am-patch-hook recover" in failed.value.message
    assert project.head() == landing.old
    assert (project.live / ".git" / "am_patch_landing.json").is_file()
    monkeypatch.undo()
    assert promote.recover(Repo.open(project.live))
    assert project.head() == landing.old
    assert (project.live / CALC).read_text() == calc_before
    assert project.git("status", "--porcelain") == ""
    assert_consistent(project)
