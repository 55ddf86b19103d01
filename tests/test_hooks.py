"""The hooks installed for real: git commit and git push against a bare origin; pre-commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from am_patch.config import load
from am_patch.hooks import pre_commit
from am_patch.hooks.pre_receive import MAX_COMMITS
from am_patch.layout import Layout
from am_patch.lock import RunLock
from am_patch.repo import Repo
from testing.project import CALC, CALC_WITH_SUB, Project

REPO_ROOT = Path(__file__).resolve().parents[1]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"

BROKEN_ADD = '"""Arithmetic."""\n\n\ndef add(a: int, b: int) -> int:\n    return a - b\n'
GOOD_CALC = (
    '"""Arithmetic."""\n\n\ndef add(a: int, b: int) -> int:\n    return a + b\n\n\n'
    "def multiply(a: int, b: int) -> int:\n    return a * b\n"
)
UNFORMATTED = '"""Arithmetic."""\n\n\ndef add(a:int,b:int)->int:\n    return a+b\n'
EXTRA_TEST = "\n\ndef test_add_zero() -> None:\n    assert add(0, 0) == 0\n"
TEST = "tests/test_calc.py"


def run(
    argv: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """git as a user runs it: hooks fire; the exit code is the caller's to judge."""
    return run(["git", *args], cwd)


def hook(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "am_patch.hooks", *args], cwd)


def install(cwd: Path, *args: str) -> str:
    done = hook(cwd, "install", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def state(project: Project) -> dict[str, object]:
    """Everything a refused commit must leave alone: HEAD, index, working tree, byte for byte."""
    files = {}
    for path in sorted(project.live.rglob("*")):
        rel = path.relative_to(project.live).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if path.is_symlink():
            files[rel] = os.readlink(path).encode()
        elif path.is_file():
            files[rel] = path.read_bytes()
    return {
        "head": project.head(),
        "status": project.status(),
        "diff": project.git("diff"),
        "cached": project.git("diff", "--cached"),
        "index": project.git("ls-files", "--stage"),
        "files": files,
    }


def refused_commit(project: Project, *args: str) -> str:
    """`git commit args` in live, expected to be refused with state() left alone; its stderr."""
    before = state(project)
    done = git(project.live, "commit", *args)
    assert done.returncode != 0
    assert state(project) == before
    return done.stderr


def open_workspace(project: Project, issue: str, files: list[str]) -> None:
    """What `am-patch` leaves for an open issue: patches/workspaces/issue_<ID>/meta.json."""
    meta = {
        "issue_id": issue,
        "base": project.head(),
        "attempt": 1,
        "message": "m",
        "files": files,
        "created": 0,
    }
    project.write(f"patches/workspaces/issue_{issue}/meta.json", json.dumps(meta))


def clone(project: Project, name: str) -> Path:
    """A second clone of origin, hooks not installed (another developer's machine)."""
    path = project.base / name
    done = git(project.base, "clone", "-q", str(project.origin), str(path))
    assert done.returncode == 0, done.stderr
    return path


def commit_file(cwd: Path, rel: str, text: str, message: str) -> str:
    path = cwd / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    assert git(cwd, "add", rel).returncode == 0
    done = git(cwd, "commit", "-q", "-m", message)
    assert done.returncode == 0, done.stderr
    return git(cwd, "rev-parse", "HEAD").stdout.strip()


def remote_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("remote:")]


def remote_says(stderr: str, text: str) -> bool:
    """Whether a remote: line of stderr holds text."""
    return any(text in line for line in remote_lines(stderr))


@pytest.fixture
def hooked(project: Project) -> Project:
    """The demo project with pre-commit and pre-push installed in .git/hooks."""
    install(project.live)
    return project


# --- pre-commit: exactly what is committed, the work tree left alone ---------------------------


def test_hook_reuses_the_runners_verdicts_for_the_same_tree(hooked: Project) -> None:
    """The runner gated base + this change in a workspace; the same change committed by hand
    is the same tree, so the hook's gates are served from the shared verdict cache."""
    hooked.patch("issue_7.py", [CALC], f"Path({CALC!r}).write_text({CALC_WITH_SUB!r})\n")
    gated = hooked.run("7", "Add sub", "--disable-promotion")
    assert gated.result_line == "RESULT: SUCCESS", gated.output
    assert "[gates] pytest: PASS in" in gated.stdout, "the runner must really run the gates"

    (hooked.live / CALC).write_text(CALC_WITH_SUB)
    assert git(hooked.live, "add", CALC).returncode == 0
    done = git(hooked.live, "commit", "-q", "-m", "Add sub by hand")

    assert done.returncode == 0, done.stderr
    for gate in ("compile", "ruff_format", "ruff", "pytest", "mypy"):
        assert f"gate {gate}: PASS (cached" in done.stderr, done.stderr


def test_breaking_commit_is_refused_and_leaves_index_and_edits_as_they_were(
    hooked: Project,
) -> None:
    hooked.write(CALC, BROKEN_ADD)
    hooked.git("add", CALC)
    # the same file edited again after staging, another unstaged edit, an untracked file:
    # what a stash-based runner can lose
    hooked.write(CALC, BROKEN_ADD + "\n# an unstaged note\n")
    hooked.write("README.md", "# democalc\n\nunstaged edit\n")
    hooked.write("notes.txt", "untracked\n")

    stderr = refused_commit(hooked, "-m", "Break add")

    assert "gate pytest: FAIL" in stderr
    assert "gate pytest failed" in stderr


def test_good_commit_is_accepted(hooked: Project) -> None:
    before = hooked.head()
    hooked.write(CALC, GOOD_CALC)
    hooked.git("add", CALC)

    done = git(hooked.live, "commit", "-m", "Add multiply")

    assert done.returncode == 0, done.stderr
    assert "gate pytest: PASS" in done.stderr
    assert hooked.git("rev-parse", "HEAD~1") == before
    assert hooked.git("show", f"HEAD:{CALC}") + "\n" == GOOD_CALC
    assert hooked.status() == ""


def test_hook_gates_a_docs_only_or_cached_tree_without_exporting_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo.open(project.live)
    cfg = load(project.live)
    project.write(CALC, GOOD_CALC)
    project.git("add", CALC)
    gated = pre_commit.check_gates(repo, cfg, repo.index_tree(), repo.head_tree())
    assert gated.problems == [] and not any(v.cached for v in gated.verdicts)

    def no_export(self: Repo, tree: str, directory: Path) -> None:
        raise AssertionError("the tree was exported although no gate had to run")

    monkeypatch.setattr(Repo, "export_tree", no_export)
    cached = pre_commit.check_gates(repo, cfg, repo.index_tree(), repo.head_tree())
    project.git("commit", "-q", "-m", "Add multiply")
    project.write("README.md", "# democalc\n\ndocs only\n")
    project.git("add", "README.md")
    docs = pre_commit.check_gates(repo, cfg, repo.index_tree(), repo.head_tree())

    assert [v.label for v in cached.verdicts] == [
        f"{name}: PASS (cached: this tree already passed)"
        for name in ("compile", "ruff_format", "ruff", "pytest", "mypy")
    ]
    assert cached.problems == [] and docs.problems == []
    assert all(v.skipped for v in docs.verdicts), [v.label for v in docs.verdicts]


def test_gate_report_in_blessed_outputs_does_not_fail_the_hook(project: Project) -> None:
    project.write(
        "am_patch.toml",
        """\
        blessed_outputs = ["audit/results/pytest_junit.xml"]

        [gates.pytest]
        command = ["{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir=.",
                   "--junitxml=audit/results/pytest_junit.xml"]
        """,
    )
    project.write(CALC, GOOD_CALC)
    project.git("add", CALC)

    done = hook(project.live, "gates")

    assert done.returncode == 0, done.stderr
    assert "gate pytest: PASS" in done.stderr
    assert not (project.live / "audit").exists(), "the report belongs to the temporary checkout"


def test_missing_gate_tool_names_gate_python(project: Project) -> None:
    bare = project.base / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    project.write("am_patch.toml", f'gate_python = "{bare / "bin" / "python"}"\n')
    project.write(CALC, GOOD_CALC)
    project.git("add", CALC)

    done = hook(project.live, "gates")

    assert done.returncode == 1
    assert "gate ruff_format failed" in done.stderr
    assert "has no module ruff: set gate_python in am_patch.toml to the interpreter" in done.stderr


def test_fixer_then_formatter_commit_is_refused_with_the_formatter_message(
    hooked: Project,
) -> None:
    extra = "src/democalc/extra.py"
    hooked.write(extra, '"""Extra."""\nimport os\n\n\ndef inc(a:int)->int:\n    return a+1\n')
    hooked.git("add", extra)

    stderr = refused_commit(hooked, "-m", "Extra")

    assert f"the formatter/fixer would change {extra}" in stderr
    assert "gate ruff_format: PASS" in stderr and "gate pytest: PASS" in stderr


def test_unformatted_file_is_refused_with_the_formatter_message(hooked: Project) -> None:
    hooked.write(CALC, UNFORMATTED)
    hooked.git("add", CALC)

    stderr = refused_commit(hooked, "-m", "Ugly")

    assert f"the formatter/fixer would change {CALC}" in stderr
    assert "run ruff format" in stderr
    # the formatter ran on a temporary checkout, never on the user's file
    assert (hooked.live / CALC).read_text() == UNFORMATTED


def test_plain_commit_judges_the_index_and_commit_a_the_work_tree(hooked: Project) -> None:
    hooked.write(CALC, GOOD_CALC)
    hooked.git("add", CALC)
    broken_test = (hooked.live / TEST).read_text().replace("== 5", "== 6")
    hooked.write(TEST, broken_test)  # unstaged and failing

    good = git(hooked.live, "commit", "-m", "Add multiply")

    assert good.returncode == 0, good.stderr
    assert hooked.git("show", f"HEAD:{TEST}") + "\n" != broken_test
    assert (hooked.live / TEST).read_text() == broken_test
    head = hooked.head()

    bad = git(hooked.live, "commit", "-a", "-m", "Break the test")

    assert bad.returncode != 0
    assert "gate pytest failed" in bad.stderr
    assert hooked.head() == head
    assert (hooked.live / TEST).read_text() == broken_test
    assert hooked.git("diff", "--name-only") == TEST
    assert hooked.git("diff", "--cached", "--name-only") == ""


def test_partial_commit_judges_head_plus_the_named_paths(hooked: Project) -> None:
    hooked.write(CALC, BROKEN_ADD)
    hooked.git("add", CALC)  # staged and failing, but not part of the partial commit
    test_text = (hooked.live / TEST).read_text() + EXTRA_TEST
    hooked.write(TEST, test_text)

    good = git(hooked.live, "commit", "-m", "More tests", TEST)

    assert good.returncode == 0, good.stderr
    assert hooked.git("show", "HEAD", "--name-only", "--format=") == TEST
    assert hooked.git("diff", "--cached", "--name-only") == CALC
    head = hooked.head()

    bad = git(hooked.live, "commit", "-m", "Break add", CALC)

    assert bad.returncode != 0
    assert "gate pytest failed" in bad.stderr
    assert hooked.head() == head
    assert (hooked.live / CALC).read_text() == BROKEN_ADD


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

    with RunLock(Layout(hooked.live, hooked.live / ".git")):
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


# --- pre-push: main only moves forward, every ref judged ---------------------------------------


def test_forced_push_over_a_newer_origin_is_refused_until_rebased(hooked: Project) -> None:
    other = clone(hooked, "other")
    theirs = commit_file(other, "NOTES.md", "theirs\n", "Their notes")
    assert git(other, "push", "-q", "origin", "main").returncode == 0
    commit_file(hooked.live, "README.md", "# democalc\n\nours\n", "Our readme")

    unseen = git(hooked.live, "push", "--force", "origin", "main")

    assert unseen.returncode != 0
    assert "the remote has commits you do not have" in unseen.stderr
    assert "run 'git fetch origin' and 'git rebase origin/main'" in unseen.stderr
    assert hooked.origin_head() == theirs

    hooked.git("fetch", "-q", "origin")
    rewrite = git(hooked.live, "push", "--force", "origin", "main")

    assert rewrite.returncode != 0
    assert "would rewrite the remote's history" in rewrite.stderr
    assert hooked.origin_head() == theirs

    hooked.git("rebase", "-q", "origin/main")
    rebased = git(hooked.live, "push", "origin", "main")

    assert rebased.returncode == 0, rebased.stderr
    assert hooked.origin_head() == hooked.head()
    assert hooked.git("rev-parse", "HEAD~1") == theirs


def test_deleting_main_on_origin_is_refused(hooked: Project) -> None:
    tip = hooked.origin_head()

    done = git(hooked.live, "push", "origin", "--delete", "main")

    assert done.returncode != 0
    assert "refs/heads/main: deleting main is refused" in done.stderr
    assert hooked.origin_head() == tip


def test_multi_ref_push_is_refused_for_the_bad_ref_with_a_verdict_for_each(
    hooked: Project,
) -> None:
    hooked.git("checkout", "-q", "-b", "feature")
    os.symlink("../../outside", hooked.live / "escape")
    hooked.git("add", "escape")
    hooked.git("commit", "-q", "--no-verify", "-m", "Escape")
    bad = hooked.git("rev-parse", "HEAD")[:10]
    hooked.git("checkout", "-q", "main")
    commit_file(hooked.live, "README.md", "# democalc\n\nfine\n", "Fine readme")
    tip = hooked.origin_head()

    done = git(hooked.live, "push", "origin", "main", "feature")

    assert done.returncode != 0
    assert "am-patch-hook: refs/heads/main: ok" in done.stderr
    assert "am-patch-hook: refs/heads/feature: refused" in done.stderr
    assert f"refs/heads/feature {bad}: escape: symlink leaves the repository" in done.stderr
    assert hooked.origin_head() == tip
    assert hooked.git("ls-remote", "origin", "refs/heads/feature") == ""


def test_every_ref_is_judged_not_only_the_first(hooked: Project) -> None:
    hooked.git("checkout", "-q", "-b", "feature")
    os.symlink("/etc/hostname", hooked.live / "host")
    hooked.git("add", "host")
    hooked.git("commit", "-q", "--no-verify", "-m", "Host")
    hooked.git("checkout", "-q", "main")

    done = git(hooked.live, "push", "origin", "feature", ":main")

    assert done.returncode != 0
    assert "refs/heads/main: deleting main is refused" in done.stderr
    assert "host: symlink to an absolute path (/etc/hostname)" in done.stderr


# --- install / uninstall ----------------------------------------------------------------------


def hook_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_install_twice_is_idempotent(project: Project) -> None:
    hooks = project.live / ".git" / "hooks"
    first = install(project.live)
    after_first = hook_files(hooks)

    second = install(project.live)

    assert hook_files(hooks) == after_first
    assert second == first
    assert "managed by am-patch-hook install" in (hooks / "pre-commit").read_text()
    assert "managed by am-patch-hook install" in (hooks / "pre-push").read_text()
    assert not list(hooks.glob("*.am-patch-foreign"))


def test_foreign_hook_is_kept_run_first_and_restored_by_uninstall(project: Project) -> None:
    hooks = project.live / ".git" / "hooks"
    marker = project.base / "foreign-ran"
    foreign_text = f'#!/bin/sh\necho "foreign pre-commit" >> "{marker}"\n'
    (hooks / "pre-commit").write_text(foreign_text)
    (hooks / "pre-commit").chmod(0o755)

    out = install(project.live)
    install(project.live)  # a second install must not move our own shim over the foreign one

    assert "kept pre-commit.am-patch-foreign" in out
    assert (hooks / "pre-commit.am-patch-foreign").read_text() == foreign_text
    good = commit_file(project.live, "README.md", "# democalc\n\nok\n", "Readme")
    assert marker.read_text() == "foreign pre-commit\n"
    assert project.head() == good

    project.write(CALC, BROKEN_ADD)
    project.git("add", CALC)
    refused = git(project.live, "commit", "-m", "Break")
    assert refused.returncode != 0
    assert marker.read_text() == "foreign pre-commit\n" * 2  # foreign ran, then ours refused

    removed = hook(project.live, "uninstall")

    assert removed.returncode == 0, removed.stderr
    assert (hooks / "pre-commit").read_text() == foreign_text
    assert not (hooks / "pre-commit.am-patch-foreign").exists()
    assert not (hooks / "pre-push").exists()


def test_failing_foreign_hook_still_stops_the_commit(project: Project) -> None:
    hooks = project.live / ".git" / "hooks"
    (hooks / "pre-commit").write_text("#!/bin/sh\necho 'foreign says no' >&2\nexit 1\n")
    (hooks / "pre-commit").chmod(0o755)
    install(project.live)
    head = project.head()
    project.write("README.md", "# democalc\n\nfine\n")
    project.git("add", "README.md")

    done = git(project.live, "commit", "-m", "Readme")

    assert done.returncode != 0
    assert "foreign says no" in done.stderr
    assert project.head() == head


def test_install_honours_core_hooks_path(project: Project) -> None:
    (project.live / ".githooks").mkdir()
    project.git("config", "core.hooksPath", ".githooks")

    out = install(project.live)

    assert str(project.live / ".githooks" / "pre-commit") in out
    assert not (project.live / ".git" / "hooks" / "pre-commit").exists()
    project.write(CALC, BROKEN_ADD)
    project.git("add", CALC)
    head = project.head()
    done = git(project.live, "commit", "-m", "Break")
    assert done.returncode != 0
    assert "gate pytest failed" in done.stderr
    assert project.head() == head


def test_install_refuses_core_hooks_path_that_is_not_a_directory(project: Project) -> None:
    project.git("config", "core.hooksPath", "nowhere")

    done = hook(project.live, "install")

    assert done.returncode == 1
    assert "core.hooksPath is 'nowhere', which is not a directory" in done.stderr
    assert not (project.live / "nowhere").exists()
    assert not (project.live / ".git" / "hooks" / "pre-commit").exists()


# --- pre-receive on the bare origin -----------------------------------------------------------


@pytest.fixture
def server(project: Project) -> Path:
    """pre-receive installed on origin.git; returns a clone without local hooks to push from."""
    out = install(project.live, "--server", str(project.origin))
    assert str(project.origin / "hooks" / "pre-receive") in out
    return clone(project, "dev")


def test_server_refuses_a_symlink_leaving_the_repository(project: Project, server: Path) -> None:
    tip = project.origin_head()
    os.symlink("../outside", server / "link")
    assert git(server, "add", "link").returncode == 0
    bad = commit_file(server, "README.md", "# democalc\n\nlink\n", "Link out")

    done = git(server, "push", "origin", "main")

    assert done.returncode != 0
    assert remote_says(
        done.stderr, f"refs/heads/main {bad[:10]}: link: symlink leaves the repository"
    ), done.stderr
    assert project.origin_head() == tip
    fsck = git(project.origin, "fsck", "--strict")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert git(project.origin, "cat-file", "-e", bad).returncode != 0  # quarantine dropped


def test_server_refuses_a_second_push_that_makes_an_earlier_link_leave(
    project: Project, server: Path
) -> None:
    os.makedirs(server / "docs/sub1/sub2")
    os.symlink("sub1/sub2", server / "docs/d")
    os.symlink("d/../..", server / "docs/L")
    assert git(server, "add", "docs").returncode == 0
    assert git(server, "commit", "-q", "-m", "Links inside").returncode == 0
    first = git(server, "push", "origin", "main")
    assert first.returncode == 0, first.stderr
    tip = project.origin_head()
    os.unlink(server / "docs/d")
    os.symlink(".", server / "docs/d")
    assert git(server, "add", "docs/d").returncode == 0
    assert git(server, "commit", "-q", "-m", "Retarget d").returncode == 0

    done = git(server, "push", "origin", "main")

    assert done.returncode != 0
    assert remote_says(done.stderr, "docs/L: symlink leaves the repository"), done.stderr
    assert project.origin_head() == tip


def mktree(cwd: Path, listing: str) -> str:
    """A tree object written by git mktree, which, unlike git add, does not vet the names."""
    done = run(["git", "mktree"], cwd, stdin=listing)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_server_refuses_a_path_under_dot_git(project: Project, server: Path) -> None:
    tip = project.origin_head()
    blob = git(server, "hash-object", "-w", "README.md").stdout.strip()
    config_tree = mktree(server, f"100644 blob {blob}\tconfig\n")
    dot_git = mktree(server, f"040000 tree {config_tree}\t.git\n")
    root = mktree(server, git(server, "ls-tree", "HEAD").stdout + f"040000 tree {dot_git}\tsub\n")
    commit = git(server, "commit-tree", root, "-p", "HEAD", "-m", "Into .git").stdout.strip()

    done = git(server, "push", "origin", f"{commit}:refs/heads/main")

    assert done.returncode != 0
    assert remote_says(done.stderr, "sub/.git/config: path inside .git")
    assert project.origin_head() == tip


def test_server_accepts_a_good_push_and_refuses_a_rewrite_of_main(
    project: Project, server: Path
) -> None:
    good = commit_file(server, "README.md", "# democalc\n\ngood\n", "Good")

    accepted = git(server, "push", "origin", "main")

    assert accepted.returncode == 0, accepted.stderr
    assert project.origin_head() == good

    git(server, "commit", "-q", "--amend", "-m", "Rewritten")
    forced = git(server, "push", "--force", "origin", "main")

    assert forced.returncode != 0
    assert remote_says(
        forced.stderr, "refs/heads/main: not a fast-forward; fetch, rebase onto main and push again"
    ), forced.stderr
    assert project.origin_head() == good


def test_server_refuses_a_blob_over_max_file_bytes(project: Project, server: Path) -> None:
    (project.origin / "am_patch.toml").write_text("max_file_bytes = 1000\n")
    tip = project.origin_head()
    commit_file(server, "small.txt", "s" * 999, "Small")
    commit_file(server, "big.txt", "b" * 2000, "Big")

    done = git(server, "push", "origin", "main")

    assert done.returncode != 0
    lines = remote_lines(done.stderr)
    assert any("big.txt: larger than max_file_bytes=1000" in line for line in lines), lines
    assert not any("small.txt" in line for line in lines)
    assert project.origin_head() == tip


def import_commits(cwd: Path, count: int, *, link_at: int | None = None) -> str:
    """count commits on main made by git fast-import (no hooks); commit link_at adds a symlink
    leaving the repository and the next one removes it again, so the tip's tree is clean."""
    head = git(cwd, "rev-parse", "HEAD").stdout.strip()
    stream = []
    for n in range(count):
        message = f"Commit {n}\n"
        content = f"note {n}\n"
        stream += [
            "commit refs/heads/main",
            "committer Test Committer <committer@example.invalid> 1767225600 +0000",
            f"data {len(message)}",
            message,
        ]
        if n == 0:
            stream.append(f"from {head}")
        stream += [f"M 100644 inline notes/{n % 30}/{n}.txt", f"data {len(content)}", content]
        if n == link_at:
            stream += ["M 120000 inline out", "data 6", "../../"]
        if link_at is not None and n == link_at + 1:
            stream.append("D out")
    done = run(["git", "fast-import", "--quiet"], cwd, stdin="\n".join(stream) + "\n")
    assert done.returncode == 0, done.stderr
    return head


def test_server_checks_a_push_of_300_commits_within_seconds(project: Project, server: Path) -> None:
    head = import_commits(server, 300)
    tip = git(server, "rev-parse", "refs/heads/main").stdout.strip()

    start = time.monotonic()
    pushed = git(server, "push", "-q", "origin", "main")
    elapsed = time.monotonic() - start

    assert pushed.returncode == 0, pushed.stderr
    assert project.origin_head() == tip
    assert git(project.origin, "rev-list", "--count", f"{head}..main").stdout.strip() == "300"
    assert elapsed < 10, f"push of 300 commits took {elapsed:.1f}s"


def test_server_checks_every_pushed_commit_not_only_the_tip(project: Project, server: Path) -> None:
    import_commits(server, 300, link_at=150)
    bad = git(server, "rev-parse", "main~149").stdout.strip()  # commit 150 of 0..299
    assert git(server, "ls-tree", "main", "out").stdout == ""  # the tip alone looks clean
    tip = project.origin_head()

    start = time.monotonic()
    done = git(server, "push", "origin", "main")
    elapsed = time.monotonic() - start

    assert done.returncode != 0
    lines = remote_lines(done.stderr)
    assert any(f"{bad[:10]}: out: symlink leaves the repository" in line for line in lines), lines
    assert project.origin_head() == tip
    assert elapsed < 10, f"push of 300 commits took {elapsed:.1f}s"


def test_server_refuses_more_commits_than_it_checks(project: Project, server: Path) -> None:
    """Past pre_receive.MAX_COMMITS nothing would be checked: refused, not let in unchecked."""
    head = git(server, "rev-parse", "HEAD").stdout.strip()
    stream = [f"reset refs/heads/main\nfrom {head}\n"]
    stream += ["commit refs/heads/main\ncommitter T <t@example.invalid> 0 +0000\ndata 2\nc\n"] * (
        MAX_COMMITS + 1
    )
    assert run(["git", "fast-import", "--quiet"], server, stdin="\n".join(stream)).returncode == 0
    tip = project.origin_head()

    done = git(server, "push", "origin", "main")

    assert done.returncode != 0
    assert remote_says(
        done.stderr, f"refs/heads/main: more than {MAX_COMMITS} new commits in one push"
    ), done.stderr
    assert project.origin_head() == tip


def test_static_shim_from_hooks_dir_runs_the_package(project: Project) -> None:
    """hooks/pre-commit copied by hand, AM_PATCH_PYTHON naming the interpreter."""
    target = project.live / ".git" / "hooks" / "pre-commit"
    target.write_bytes((REPO_ROOT / "hooks" / "pre-commit").read_bytes())
    target.chmod(0o755)
    project.write(CALC, BROKEN_ADD)
    project.git("add", CALC)
    head = project.head()

    done = run(
        ["git", "commit", "-m", "Break"],
        project.live,
        env={**os.environ, "AM_PATCH_PYTHON": sys.executable},
    )

    assert done.returncode != 0
    assert "gate pytest failed" in done.stderr
    assert project.head() == head


# --- the pre-commit framework -----------------------------------------------------------------


def test_manifest_is_valid_for_pre_commit() -> None:
    manifest = REPO_ROOT / ".pre-commit-hooks.yaml"

    done = run([str(PRE_COMMIT), "validate-manifest", str(manifest)], REPO_ROOT)

    assert done.returncode == 0, done.stdout + done.stderr
    hooks = {h["id"]: h for h in yaml.safe_load(manifest.read_text())}
    assert hooks["am-patch-scope"]["stages"] == ["pre-commit"]
    assert hooks["am-patch-gates"]["stages"] == ["pre-commit", "pre-push"]
    assert hooks["am-patch-gates"]["pass_filenames"] is False
    assert hooks["am-patch-gates"]["require_serial"] is True
    assert hooks["am-patch-origin-guard"]["stages"] == ["pre-push"]


def test_pre_commit_try_repo_runs_the_scope_hook(project: Project, tmp_path: Path) -> None:
    """Installs am-patch into a fresh virtualenv from PyPI wheels: slow, so kept to two runs."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    argv = [str(PRE_COMMIT), "try-repo", str(REPO_ROOT), "am-patch-scope", "--verbose"]
    project.write("README.md", "# democalc\n\ntry-repo\n")
    project.git("add", "README.md")

    good = run([*argv, "--all-files"], project.live, env=env, timeout=600)

    assert good.returncode == 0, good.stdout + good.stderr
    assert "am-patch scope" in good.stdout
    assert "Passed" in good.stdout

    os.symlink("/etc/hostname", project.live / "host")
    project.git("add", "host")
    bad = run([*argv, "--all-files"], project.live, env=env, timeout=600)

    assert bad.returncode != 0
    assert "Failed" in bad.stdout
    assert "host: symlink to an absolute path (/etc/hostname)" in bad.stdout


def test_pre_commit_try_repo_runs_the_gates_and_the_origin_guard(
    project: Project, tmp_path: Path
) -> None:
    """The gates with the project's interpreter named by gate_python (pre-commit's own hook
    environment has no ruff, pytest or mypy), and the origin guard in the pre-push stage."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    try_repo = [str(PRE_COMMIT), "try-repo", str(REPO_ROOT)]
    project.write("am_patch.toml", f'gate_python = "{sys.executable}"\n')
    project.write(CALC, GOOD_CALC)
    project.git("add", CALC)

    gates = run([*try_repo, "am-patch-gates", "--verbose"], project.live, env=env, timeout=600)

    assert gates.returncode == 0, gates.stdout + gates.stderr
    assert "gate pytest: PASS" in gates.stdout and "gate ruff: PASS" in gates.stdout

    project.git("commit", "-q", "--no-verify", "-m", "Add multiply")
    pushed = project.head()
    project.git("push", "-q", "origin", "main")
    project.git("commit", "-q", "--amend", "--no-verify", "-m", "Add multiply, reworded")
    guard = [*try_repo, "am-patch-origin-guard", "--hook-stage", "pre-push", "--verbose"]
    refs = ["--remote-branch", "refs/heads/main", "--local-branch", "refs/heads/main"]

    rewritten = project.head()
    rewrite = run(
        [*guard, *refs, "--from-ref", pushed, "--to-ref", rewritten], project.live, env=env
    )

    assert rewrite.returncode != 0
    assert "would rewrite the remote's history" in rewrite.stdout

    project.git("reset", "-q", "--hard", pushed)
    ahead = commit_file(project.live, "README.md", "# democalc\n\nforward\n", "Forward")
    assert project.head() == ahead
    # by hand, `pre-commit run` takes any revision: HEAD is resolved, not refused as a bug
    forward = run([*guard, *refs, "--from-ref", pushed, "--to-ref", "HEAD"], project.live, env=env)

    assert forward.returncode == 0, forward.stdout + forward.stderr

    bad = run(
        [sys.executable, "-m", "am_patch.hooks", "origin-guard"],
        project.live,
        env={**os.environ, "PRE_COMMIT_TO_REF": "no-such-rev", "PRE_COMMIT_FROM_REF": pushed},
    )

    assert bad.returncode == 1, bad.stderr
    assert "PRE_COMMIT_TO_REF='no-such-rev' names no commit" in bad.stderr


def test_symlinked_foreign_hook_is_kept_as_a_link_and_both_hooks_still_run(
    project: Project,
) -> None:
    """pre-push -> pre-commit in core.hooksPath: the link is moved aside as it is, never written
    through; commit and push run the user's script and the checks; uninstall restores the link."""
    hooks = project.live / "myhooks"
    hooks.mkdir()
    project.git("config", "core.hooksPath", "myhooks")
    marker = project.base / "user-hook-ran"
    user_text = f'#!/bin/sh\necho "user hook" >> "{marker}"\n'
    (hooks / "pre-commit").write_text(user_text)
    (hooks / "pre-commit").chmod(0o755)
    (hooks / "pre-push").symlink_to("pre-commit")

    install(project.live)
    install(project.live)  # idempotent over links too

    for name in ("pre-commit", "pre-push"):
        assert not (hooks / name).is_symlink()
        assert "managed by am-patch-hook install" in (hooks / name).read_text()
    assert (hooks / "pre-commit.am-patch-foreign").read_text() == user_text
    assert os.readlink(hooks / "pre-push.am-patch-foreign") == "pre-commit"
    project.write(CALC, BROKEN_ADD)
    project.git("add", CALC)
    head = project.head()
    refused = git(project.live, "commit", "-m", "Break")
    assert refused.returncode != 0
    assert "gate pytest failed" in refused.stderr
    assert project.head() == head
    assert marker.read_text() == "user hook\n"
    project.git("checkout", "HEAD", "--", CALC)
    good = commit_file(project.live, "README.md", "# democalc\n\nok\n", "Readme")
    assert marker.read_text() == "user hook\n" * 2
    pushed = git(project.live, "push", "-q", "origin", "main")
    assert pushed.returncode == 0, pushed.stderr
    assert project.origin_head() == good
    assert marker.read_text() == "user hook\n" * 3

    removed = hook(project.live, "uninstall")

    assert removed.returncode == 0, removed.stderr
    assert (hooks / "pre-commit").read_text() == user_text
    assert os.readlink(hooks / "pre-push") == "pre-commit"
    assert sorted(p.name for p in hooks.iterdir()) == ["pre-commit", "pre-push"]
