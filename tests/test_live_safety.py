"""Live-repo safety end to end: preflight, dirty trees, main moving, gates, lock, audit, zips."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from am_patch.layout import Layout
from am_patch.runlog import RunLog
from testing.project import (
    CALC,
    CALC_WITH_SUB,
    NO_GATES,
    PROBE_GATE,
    Outcome,
    Project,
    assert_fails,
    assert_success,
)

PASSING_PROBE = (
    "--override",
    "gates_order=['probe']",
    "--override",
    "gates.probe.runs_on=always",
    "--override",
    "gates.probe.command=['{python}', '-c', 'pass']",
)


def changed_in(project: Project, commit: str) -> list[str]:
    return project.git("diff-tree", "--no-commit-id", "--name-only", "-r", commit).split()


# --- 1. preflight on the live repo -------------------------------------------------------


def test_not_on_main_fails_preflight_git(project: Project) -> None:
    before = project.head()
    project.git("checkout", "-q", "-b", "feature")
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_fails(out, "PREFLIGHT:GIT")
    assert "feature" in out.line("REASON:")
    assert project.head() == before
    assert project.git("rev-parse", "feature") == before
    assert project.origin_head() == before


def test_allow_non_main_lands_on_and_pushes_the_current_branch(project: Project) -> None:
    before = project.head()
    project.git("checkout", "-q", "-b", "feature")
    project.git("push", "-q", "origin", "feature")
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", "--allow-non-main", *NO_GATES)
    assert_success(out)
    landed = project.git("rev-parse", "feature")
    assert landed != before
    assert project.git("rev-parse", f"{landed}^") == before
    assert project.head() == before, "main must not move when landing on another branch"
    assert project.origin_head() == before, "origin/main must not be pushed"
    on_origin = project.git("--git-dir", str(project.origin), "rev-parse", "feature")
    assert on_origin == landed
    assert out.line("PUSH:") == "PUSH: OK"
    assert project.git("rev-parse", "--abbrev-ref", "HEAD") == "feature"
    assert project.status() == ""


def test_allow_non_main_on_a_branch_origin_does_not_have_yet(project: Project) -> None:
    before = project.head()
    project.git("checkout", "-q", "-b", "feature")
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", "--allow-non-main", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", (
        "a local branch that origin does not have yet must not fail the fetch "
        "(publish.fetch): origin cannot be ahead of a branch it lacks\n" + out.stdout
    )
    landed = project.git("rev-parse", "feature")
    assert project.git("rev-parse", f"{landed}^") == before
    assert project.head() == before
    assert project.origin_head() == before
    assert project.git("--git-dir", str(project.origin), "rev-parse", "feature") == landed


def test_detached_head_fails_preflight_git(project: Project) -> None:
    before = project.head()
    project.git("checkout", "-q", "--detach")
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_fails(out, "PREFLIGHT:GIT")
    assert "detached" in out.line("REASON:")
    assert project.head() == before
    assert project.origin_head() == before


def test_origin_ahead_fails_preflight(project: Project) -> None:
    before = project.head()
    theirs = project.push_from_clone("NOTES.md", "theirs\n", "Their notes")
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_fails(out, "PREFLIGHT:ORIGIN_AHEAD")
    assert "git pull --rebase origin main" in out.line("REASON:")
    assert project.head() == before
    assert project.origin_head() == theirs


def test_skip_up_to_date_catches_up_with_origin_and_lands_on_top(project: Project) -> None:
    """-u skips the preflight check; the push then finds origin ahead and does what it does
    when another runner pushed first: live main catches up, the result is rebased onto it,
    gated again and pushed."""
    before = project.head()
    theirs = project.push_from_clone("NOTES.md", "theirs\n", "Their notes")
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", "-u", *NO_GATES)
    assert_success(out)
    assert out.line("PUSH:") == "PUSH: OK"
    assert "another runner pushed first" in out.stdout
    landed = project.head()
    assert project.git("rev-parse", f"{landed}^") == theirs
    assert project.git("rev-parse", f"{theirs}^") == before
    assert out.line("COMMIT:") == f"COMMIT: {landed}"
    assert project.origin_head() == landed
    assert (project.live / "README.md").read_text() == "changed\n"
    assert (project.live / "NOTES.md").read_text() == "theirs\n"
    assert project.status() == ""


# --- 2. dirty live trees -----------------------------------------------------------------


def test_unrelated_dirty_files_are_untouched_and_not_committed(project: Project) -> None:
    before = project.head()
    project.write(
        "tests/test_calc.py", (project.live / "tests/test_calc.py").read_text() + "# mine\n"
    )
    project.write("src/democalc/__init__.py", '"""Staged by the user."""\n')
    project.git("add", "src/democalc/__init__.py")
    project.write("src/democalc/__init__.py", '"""Staged, then edited again."""\n')
    project.write("notes.txt", "my notes\n")
    project.write("scratch/deep/idea.py", "x = 1\n")
    mine = ["tests/test_calc.py", "src/democalc/__init__.py", "notes.txt", "scratch/deep/idea.py"]
    saved = {rel: (project.live / rel).read_bytes() for rel in mine}
    status = project.status()
    staged = project.git("diff", "--cached")
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_success(out)
    landed = project.head()
    assert landed != before
    assert changed_in(project, landed) == ["README.md"]
    assert {rel: (project.live / rel).read_bytes() for rel in mine} == saved
    assert project.status() == status
    assert project.git("diff", "--cached") == staged
    assert project.origin_head() == landed


@pytest.mark.parametrize("staged", [False, True], ids=["modified", "staged"])
def test_uncommitted_edit_to_a_promoted_file_is_live_dirty(project: Project, staged: bool) -> None:
    before = project.head()
    project.write("README.md", "my uncommitted edit\n")
    if staged:
        project.git("add", "README.md")
    status = project.status()
    project.readme_patch("3", "from the patch\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_fails(out, "PROMOTION:LIVE_DIRTY")
    assert "README.md" in out.line("REASON:")
    assert (project.live / "README.md").read_text() == "my uncommitted edit\n"
    assert project.status() == status
    assert project.head() == before
    assert project.origin_head() == before


def test_untracked_live_file_where_the_patch_adds_one_is_live_dirty(project: Project) -> None:
    before = project.head()
    project.write("docs/guide.md", "my draft\n")
    project.patch(
        "issue_3.py",
        ["docs/guide.md"],
        "Path('docs').mkdir()\nPath('docs/guide.md').write_text('x\\n')\n",
    )
    out = project.run("3", "Guide", *NO_GATES)
    assert_fails(out, "PROMOTION:LIVE_DIRTY")
    assert "docs/guide.md" in out.line("REASON:")
    assert (project.live / "docs/guide.md").read_text() == "my draft\n"
    assert project.head() == before
    assert project.origin_head() == before
    assert project.status() == "?? docs/guide.md"


# --- 3. main moved since the workspace base ------------------------------------------------


def prepare_workspace(project: Project, *args: str) -> str:
    """A first run that keeps its change in the workspace; the workspace base."""
    base = project.head()
    out = project.run("3", "Change", "--disable-promotion", *args)
    assert_success(out)
    assert project.head() == base
    assert (project.workspace_dir("3") / "meta.json").is_file()
    return base


def move_main(project: Project, rel: str, text: str) -> str:
    """Someone else moves main on origin; live pulls it."""
    theirs = project.push_from_clone(rel, text, f"Their change to {rel}")
    project.git("pull", "-q", "--ff-only", "origin", "main")
    assert project.head() == theirs
    return theirs


def test_main_moved_elsewhere_rebases_gates_again_and_lands(project: Project) -> None:
    project.calc_patch("3")
    base = prepare_workspace(project)
    theirs = move_main(project, "README.md", "their readme\n")
    out = project.run("3", "Add sub")
    assert_success(out)
    screen = out.stdout
    assert "main moved (1 new commit(s)); rebasing onto" in screen
    rebased_at = screen.index("rebasing onto")
    assert "[gates] pytest: PASS in" in screen[rebased_at:], (
        "the rebased tree must be gated again (for real, not from cache)\n" + screen
    )
    landed = project.head()
    assert landed not in (base, theirs)
    assert project.git("rev-parse", f"{landed}^") == theirs
    assert changed_in(project, landed) == [CALC]
    assert project.git("show", f"{landed}:README.md") == "their readme"
    assert "def sub" in project.git("show", f"{landed}:{CALC}")
    assert project.origin_head() == landed
    assert project.status() == ""


def test_rebase_retries_are_bounded(project: Project) -> None:
    project.calc_patch("3")
    prepare_workspace(project, *NO_GATES)
    theirs = move_main(project, "README.md", "their readme\n")
    out = project.run("3", "Add sub", "--override", "max_rebase_attempts=0", *NO_GATES)
    assert_fails(out, "PROMOTION:LIVE_CHANGED")
    assert "kept moving" in out.line("REASON:")
    assert project.head() == theirs
    assert project.origin_head() == theirs
    assert "def sub" not in (project.live / CALC).read_text()
    assert project.status() == ""


def test_main_moved_on_a_promoted_file_fails_live_changed(project: Project) -> None:
    project.readme_patch("3", "ours\n")
    prepare_workspace(project, *NO_GATES)
    theirs = move_main(project, "README.md", "theirs\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_fails(out, "PROMOTION:LIVE_CHANGED")
    reason = out.line("REASON:")
    assert "README.md" in reason
    assert theirs[:10] in reason, "the reason must name the commit that moved main"
    assert project.head() == theirs
    assert project.origin_head() == theirs
    assert (project.live / "README.md").read_text() == "theirs\n"


@pytest.mark.parametrize("flag", ["--overwrite-live", "--allow-live-changed"])
def test_overwrite_live_lets_the_workspace_version_win(project: Project, flag: str) -> None:
    project.readme_patch("3", "ours\n")
    prepare_workspace(project, *NO_GATES)
    theirs = move_main(project, "README.md", "theirs\n")
    out = project.run("3", "Docs", flag, *NO_GATES)
    assert_success(out)
    landed = project.head()
    assert project.git("rev-parse", f"{landed}^") == theirs
    assert (project.live / "README.md").read_text() == "ours\n"
    assert project.origin_head() == landed
    assert project.status() == ""


def test_overwrite_workspace_keeps_the_live_version_and_drops_that_file(project: Project) -> None:
    project.patch(
        "issue_3.py",
        ["README.md", CALC],
        f"Path('README.md').write_text('ours\\n')\nPath({CALC!r}).write_text({CALC_WITH_SUB!r})\n",
    )
    prepare_workspace(project, *NO_GATES)
    theirs = move_main(project, "README.md", "theirs\n")
    out = project.run("3", "Both", "--overwrite-workspace", *NO_GATES)
    assert_success(out)
    landed = project.head()
    assert project.git("rev-parse", f"{landed}^") == theirs
    assert changed_in(project, landed) == [CALC]
    assert (project.live / "README.md").read_text() == "theirs\n"
    assert (project.live / CALC).read_text() == CALC_WITH_SUB
    assert project.status() == ""


def test_overwrite_workspace_with_nothing_left_is_noop(project: Project) -> None:
    project.readme_patch("3", "ours\n")
    prepare_workspace(project, *NO_GATES)
    theirs = move_main(project, "README.md", "theirs\n")
    out = project.run("3", "Docs", "--overwrite-workspace", *NO_GATES)
    assert_fails(out, "PROMOTION:NOOP")
    assert project.head() == theirs
    assert (project.live / "README.md").read_text() == "theirs\n"


def test_overwrite_workspace_with_nothing_left_and_allow_no_op_succeeds(project: Project) -> None:
    project.readme_patch("3", "ours\n")
    prepare_workspace(project, *NO_GATES)
    theirs = move_main(project, "README.md", "theirs\n")
    out = project.run("3", "Docs", "--overwrite-workspace", "-n", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", (
        "when --overwrite-workspace drops every path, -n allows it: SUCCESS without a commit "
        "(promote.carry_over)\n" + out.stdout
    )
    assert project.head() == theirs
    assert project.origin_head() == theirs
    assert (project.live / "README.md").read_text() == "theirs\n"


def test_update_workspace_moves_the_base_before_patching(project: Project) -> None:
    project.readme_patch("3", "ours\n")
    prepare_workspace(project, *NO_GATES)
    theirs = move_main(project, "README.md", "theirs\n")
    out = project.run("3", "Docs", "-W", *NO_GATES)
    assert_success(out)
    assert "main moved" not in out.stdout, "with -W the base is already live main"
    assert f"(base {theirs[:12]}" in out.stdout
    landed = project.head()
    assert project.git("rev-parse", f"{landed}^") == theirs
    assert (project.live / "README.md").read_text() == "ours\n"
    assert project.origin_head() == landed


# --- 4. live gates and the verdict cache -----------------------------------------------------


def test_live_gates_reuse_the_workspace_verdicts(project: Project) -> None:
    project.calc_patch("3")
    out = project.run("3", "Add sub")
    assert_success(out)
    assert "[gates] pytest: PASS in" in out.stdout
    assert "[live gates] cached" in out.stdout
    assert "[live_gates]" not in out.stdout, "no live gate should have run again"
    assert "[live gates] cached" in project.newest_log()


def test_live_gates_run_when_the_cache_is_off(project: Project) -> None:
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *PASSING_PROBE, "--override", "gate_cache=false")
    assert_success(out)
    assert "[gates] probe: PASS in" in out.stdout
    assert "[live_gates] probe: PASS in" in out.stdout
    assert "cached" not in out.stdout


def test_live_gate_failure_undoes_the_promotion(project: Project) -> None:
    before = project.head()
    project.write(
        "tests/test_calc.py", (project.live / "tests/test_calc.py").read_text() + "# mine\n"
    )
    project.write("src/democalc/__init__.py", '"""Staged by the user."""\n')
    project.git("add", "src/democalc/__init__.py")
    project.write("notes.txt", "my notes\n")
    status = project.status()
    staged = project.git("diff", "--cached")
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *PROBE_GATE, "--override", "gate_cache=false")
    assert_fails(out, "LIVE_GATES:PROBE")
    assert "[gates] probe: PASS in" in out.stdout, "the probe must pass in the workspace"
    assert f"main is back at {before[:12]}, nothing pushed" in out.stdout
    assert project.head() == before
    assert project.origin_head() == before
    assert (project.live / "README.md").read_text() == "# democalc\n\nA tiny calculator.\n"
    assert project.status() == status
    assert project.git("diff", "--cached") == staged
    assert out.line("COMMIT:") == "COMMIT: -"


# --- 5. one run of an issue at a time -----------------------------------------------------


@pytest.fixture
def held_lock(project: Project) -> Iterator[int]:
    """Issue 3's lock held by this test process, as another run of issue 3 would hold it."""
    path = project.patches / "locks" / "issue_3.lock"
    path.parent.mkdir()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, f"pid={os.getpid()} started=2026-01-01 00:00:00\n".encode())
    yield os.getpid()
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def test_second_run_of_an_issue_fails_preflight_lock_naming_the_holder(
    project: Project, held_lock: int
) -> None:
    before = project.head()
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_fails(out, "PREFLIGHT:LOCK")
    reason = out.line("REASON:")
    assert f"pid={held_lock}" in reason
    assert "started=2026-01-01 00:00:00" in reason and "--wait" in reason
    assert project.head() == before
    assert not (project.patches / "logs").exists(), "the lock comes before any log"
    assert not (project.patches / "am_patch.log").exists()
    assert not (project.patches / "workspaces").exists()
    assert (project.patches / "issue_3.py").is_file()


def test_wait_waits_a_bounded_time_for_the_issue_lock(project: Project, held_lock: int) -> None:
    project.readme_patch("3", "changed\n")
    start = time.monotonic()
    out = project.run("3", "Docs", "--wait", "1", *NO_GATES)
    assert_fails(out, "PREFLIGHT:LOCK")
    assert "after waiting 1s" in out.line("REASON:")
    assert time.monotonic() - start >= 1


def test_run_of_an_issue_in_progress_locks_out_a_second_run_of_it(project: Project) -> None:
    project.patch(  # the first run's patch waits (at most a minute) until the test says go
        "issue_3.py",
        ["README.md"],
        "import time\nPath('ready').write_text('')\nfor _ in range(1200):\n"
        "    if Path('go').exists():\n        break\n    time.sleep(0.05)\n"
        "Path('go').unlink()\nPath('ready').unlink()\nPath('README.md').write_text('a\\n')\n",
    )
    # named, so the .diff written below cannot make its patch ambiguous
    first = project.start("3", "Slow", "issue_3.py", *NO_GATES)
    lock = project.patches / "locks" / "issue_3.lock"
    deadline = time.monotonic() + 30
    while not (lock.exists() and f"pid={first.pid} " in lock.read_text()):
        assert time.monotonic() < deadline, "the first run never took the lock"
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    project.write("patches/issue_3.diff", "not used: the run is refused first\n")
    second = project.run("3", "Again", "issue_3.diff", *NO_GATES)
    while not (project.workspace_repo("3") / "ready").exists():  # the patch is running
        assert time.monotonic() < deadline, "the first run's patch never started"
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    (project.workspace_repo("3") / "go").write_text("")
    stdout, stderr = first.communicate(timeout=120)
    assert_fails(second, "PREFLIGHT:LOCK")
    assert f"pid={first.pid}" in second.line("REASON:")
    assert first.returncode == 0, stdout + stderr
    assert stdout.strip().splitlines()[-1] == "RESULT: SUCCESS"
    assert (project.live / "README.md").read_text() == "a\n"


def test_stale_lock_of_a_dead_process_is_taken_over(project: Project) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = project.patches / "locks" / "issue_3.lock"
    lock.parent.mkdir()
    lock.write_text(f"pid={dead.pid} started=2026-01-01 00:00:00\n")
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_success(out)
    log = project.newest_log()
    assert f"took over a stale lock left by a dead run (pid={dead.pid}" in log
    assert f"pid={dead.pid}" not in lock.read_text()


def test_run_log_names_are_unique_within_one_second(project: Project) -> None:
    for _ in range(20):
        names = [
            RunLog(Layout(project.live, project.live / ".git"), "issue_3").name for _ in range(5)
        ]
        stamps = {name.split(".")[0] for name in names}
        if len(stamps) == 1:
            break
    assert len(stamps) == 1, "could not create the names within one second"
    assert len(set(names)) == len(names), names


def test_back_to_back_runs_keep_every_log(project: Project) -> None:
    for _ in range(3):
        assert_fails(project.run("3", "Docs", "missing.py", *NO_GATES), "PREFLIGHT:PATCH_PATH")
    logs = sorted((project.patches / "logs").glob("*.log"))
    assert len(logs) == 3, logs
    assert len(list((project.patches / "logs").glob("*.json"))) == 3


# --- 7. post-success audit --------------------------------------------------------------------

# The audit runs jailed with the live tree read-only, so it reports on stdout (kept in the log).
AUDIT_SCRIPT = """\
import sys
from pathlib import Path

workspace = Path("patches/workspaces/issue_3")
print(f"AUDIT-RAN workspace_exists={{workspace.exists()}}")
sys.exit({code})
"""


def add_audit(project: Project, code: int = 0) -> str:
    project.write("audit/audit_report.py", AUDIT_SCRIPT.format(code=code))
    return project.commit_all("Add audit")


def audit_runs(project: Project) -> list[str]:
    lines = project.newest_log().splitlines()
    return [line[line.index("AUDIT-RAN") :] for line in lines if "AUDIT-RAN" in line]


def test_audit_runs_once_after_the_workspace_is_deleted(project: Project) -> None:
    add_audit(project)
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_success(out)
    assert "[audit] python3 -u audit/audit_report.py" in out.stdout
    assert audit_runs(project) == ["AUDIT-RAN workspace_exists=False"]


def test_failing_audit_fails_but_keeps_the_commit(project: Project) -> None:
    before = add_audit(project, code=1)
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_fails(out, "AUDIT:FAILED")
    landed = project.head()
    assert landed != before
    assert project.git("rev-parse", f"{landed}^") == before
    assert project.origin_head() == landed
    assert (project.live / "README.md").read_text() == "changed\n"
    assert len(audit_runs(project)) == 1


def test_missing_audit_script_is_skipped_with_a_log_line(project: Project) -> None:
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", *NO_GATES)
    assert_success(out)
    assert "[audit]" not in out.stdout
    assert (
        "audit skipped: audit/audit_report.py is not in the landed commit" in project.newest_log()
    )


def test_audit_switched_off_does_not_run(project: Project) -> None:
    add_audit(project, code=1)
    project.readme_patch("3", "changed\n")
    out = project.run("3", "Docs", "--override", "post_success_audit=false", *NO_GATES)
    assert_success(out)
    assert audit_runs(project) == []


# --- 8. failure archives ----------------------------------------------------------------------


def fail_scope(project: Project, issue: str) -> Outcome:
    """A run of issue that fails SCOPE:UNDECLARED (it touches a file outside FILES)."""
    project.patch(
        f"issue_{issue}.py",
        ["README.md"],
        "Path('README.md').write_text('x\\n')\nPath('stray.txt').write_text('y\\n')\n",
    )
    out = project.run(issue, "Docs", *NO_GATES)
    assert_fails(out, "SCOPE:UNDECLARED")
    return out


def zips(project: Project) -> list[str]:
    return sorted(p.name for p in project.patches.glob("patched_issue*.zip"))


def test_failure_zips_are_numbered_per_attempt_and_hold_log_and_files(project: Project) -> None:
    first = fail_scope(project, "3")
    second = fail_scope(project, "3")
    assert zips(project) == ["patched_issue3_v01.zip", "patched_issue3_v02.zip"]
    assert "ARCHIVE: patches/patched_issue3_v02.zip" in second.stdout
    log_name = Path(first.line("LOG:").split()[-1]).name
    with zipfile.ZipFile(project.patches / "patched_issue3_v01.zip") as zf:
        names = set(zf.namelist())
        assert names == {f"logs/{log_name}", "README.md", "stray.txt"}
        assert zf.read("README.md") == b"x\n"
    assert not any(n.startswith(".git") or n.endswith(".pyc") for n in names)


def test_success_prunes_old_failure_zips_of_its_issue_only(project: Project) -> None:
    fail_scope(project, "37")
    for _ in range(3):
        fail_scope(project, "3")
    assert zips(project) == [
        "patched_issue37_v01.zip",
        "patched_issue3_v01.zip",
        "patched_issue3_v02.zip",
        "patched_issue3_v03.zip",
    ]
    project.readme_patch("3", "fixed\n")
    out = project.run("3", "Docs", "--override", "failure_zips_keep=2", *NO_GATES)
    assert_success(out)
    assert zips(project) == [
        "patched_issue37_v01.zip",
        "patched_issue3_v02.zip",
        "patched_issue3_v03.zip",
    ]
    project.readme_patch("3", "fixed again\n")
    assert_success(project.run("3", "Docs", "--override", "failure_zips_keep=0", *NO_GATES))
    assert zips(project) == ["patched_issue37_v01.zip"]
