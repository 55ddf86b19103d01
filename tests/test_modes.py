"""The other modes end to end: finalize live and workspace, test mode, no promotion, -l, -k/-W."""

from __future__ import annotations

from pathlib import Path

from testing.files import file_states
from testing.project import CALC, NO_GATES, Project

TESTS = "tests/test_calc.py"
ADD_SUB = """
p = Path("src/democalc/calc.py")
p.write_text(p.read_text() + "\\n\\ndef sub(a: int, b: int) -> int:\\n    return a - b\\n")
"""
ADD_MUL = """
p = Path("src/democalc/calc.py")
p.write_text(p.read_text() + "\\n\\ndef mul(a: int, b: int) -> int:\\n    return a * b\\n")
"""
BREAK_TEST = """
p = Path("tests/test_calc.py")
p.write_text(p.read_text().replace("== 5", "== 6"))
"""
SUB_TEST = (
    "\n\ndef test_sub() -> None:\n    from democalc.calc import sub\n\n    assert sub(5, 3) == 2\n"
)


def throwaway_dirs(project: Project) -> list[str]:
    """Workspaces other than issue_<ID>: --test-mode and gate scratch directories."""
    root = project.patches / "workspaces"
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if not p.name.startswith("issue_") and p.name != ".pool"
    )


def changed_in_head(project: Project) -> list[str]:
    return project.git("show", "--name-status", "--format=", "-M", "HEAD").splitlines()


# --- -f MESSAGE: finalize live --------------------------------------------------------------


def test_finalize_live_commits_every_change_with_the_message_and_pushes(project: Project) -> None:
    before = project.head()
    calc = project.live / CALC
    calc.write_text(calc.read_text() + "\n\ndef sub(a: int, b: int) -> int:\n    return a - b\n")
    project.write("src/democalc/extra.py", '"""Extra."""\n\nANSWER = 42\n')
    (project.live / "README.md").unlink()
    ignored = project.write("src/democalc/__pycache__/calc.cpython-311.pyc", "not code")
    notes = project.write("patches/notes.txt", "my own notes\n")

    out = project.run("-f", "Finalize by hand: sub, extra, no README")

    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert any(line.startswith("[gates] ") for line in out.stdout.splitlines()), out.stdout
    head = project.head()
    assert head != before
    assert project.git("rev-parse", "HEAD^") == before
    assert project.origin_head() == head
    assert project.git("log", "-1", "--format=%B") == "Finalize by hand: sub, extra, no README"
    assert sorted(changed_in_head(project)) == [
        "A\tsrc/democalc/extra.py",
        "D\tREADME.md",
        f"M\t{CALC}",
    ]
    assert project.status() == "", "index and working tree must match the new commit"
    assert ignored.read_text() == "not code"
    assert notes.read_text() == "my own notes\n"
    assert out.line("PUSH:") == "PUSH: OK"
    assert "def sub" in project.git("show", f"origin/main:{CALC}")
    assert (project.patches / "patched_success.zip").is_file()
    assert "Finalize by hand" in project.log_of(out)


def test_finalize_live_commits_the_working_tree_not_the_staged_version(project: Project) -> None:
    project.write("docs/guide.md", "# Guide, staged\n")
    project.git("add", "docs/guide.md")
    project.write("docs/guide.md", "# Guide, edited after staging\n")
    project.git("rm", "-q", "README.md")

    out = project.run("-f", "Guide instead of README", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert sorted(changed_in_head(project)) == ["A\tdocs/guide.md", "D\tREADME.md"]
    assert project.git("show", "HEAD:docs/guide.md") == "# Guide, edited after staging"
    assert project.status() == ""
    assert project.origin_head() == project.head()


def test_finalize_live_commits_a_rename_and_a_mode_change(project: Project) -> None:
    (project.live / "docs").mkdir()
    (project.live / "README.md").rename(project.live / "docs/README.md")
    (project.live / CALC).chmod(0o755)

    out = project.run("-f", "Move README, executable calc", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert sorted(changed_in_head(project)) == [
        "M\tsrc/democalc/calc.py",
        "R100\tREADME.md\tdocs/README.md",
    ]
    assert project.git("ls-tree", "HEAD", CALC).startswith("100755 blob")
    assert project.status() == ""
    assert project.origin_head() == project.head()


def test_finalize_live_never_commits_patches_even_before_any_run(project: Project) -> None:
    # patches/ is not yet in .git/info/exclude: this is the repo's very first am-patch run.
    project.write("patches/issue_9.py", "FILES = ['x']\n")
    project.write("docs/guide.md", "# Guide\n")

    out = project.run("-f", "Add the guide", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert changed_in_head(project) == ["A\tdocs/guide.md"]
    assert (project.patches / "issue_9.py").is_file()
    assert project.status() == ""


def test_finalize_live_on_a_clean_tree_is_promotion_noop(project: Project) -> None:
    before = project.head()

    out = project.run("-f", "Nothing to do", *NO_GATES)

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL PROMOTION:NOOP", out.stdout + out.stderr
    assert project.head() == before
    assert project.origin_head() == before


def test_finalize_live_clean_tree_with_allow_no_op_succeeds_without_commit(
    project: Project,
) -> None:
    before = project.head()

    out = project.run("-f", "Nothing to do", "-n", *NO_GATES)

    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert out.line("COMMIT:") == "COMMIT: -"
    assert project.head() == before
    assert project.origin_head() == before


def test_finalize_live_gate_failure_commits_nothing_and_keeps_the_edits(project: Project) -> None:
    before = project.head()
    tests = project.live / TESTS
    broken = tests.read_text().replace("== 5", "== 6")
    tests.write_text(broken)
    project.write("src/democalc/extra.py", '"""Extra."""\n\nANSWER = 42\n')

    out = project.run("-f", "Broken", "--override", 'gates_order=["pytest"]')

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL GATES:PYTEST", out.stdout + out.stderr
    assert project.head() == before
    assert project.origin_head() == before
    assert tests.read_text() == broken
    assert (project.live / "src/democalc/extra.py").read_text() == '"""Extra."""\n\nANSWER = 42\n'
    assert project.git("diff", "--name-only") == TESTS
    assert project.git("diff", "--cached", "--name-only") == ""
    assert project.git("ls-files", "--others", "--exclude-standard") == "src/democalc/extra.py"


# --- --finalize-workspace ID ------------------------------------------------------------------


def kept_workspace(project: Project, issue: str, *extra: str) -> Path:
    """Run issue's ADD_SUB patch with --disable-promotion: the workspace repo that keeps it."""
    project.patch(f"issue_{issue}.py", [CALC, TESTS], ADD_SUB)
    out = project.run(issue, "Add sub", "--disable-promotion", "-t", *extra, *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    repo = project.workspace_repo(issue)
    assert "def sub" in (repo / CALC).read_text()
    return repo


def test_finalize_workspace_lands_the_patch_and_the_hand_edit(project: Project) -> None:
    before = project.head()
    repo = kept_workspace(project, "8")
    (repo / TESTS).write_text((repo / TESTS).read_text() + SUB_TEST)

    out = project.run("--finalize-workspace", "8")

    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert any(line.startswith("[gates] ") for line in out.stdout.splitlines()), out.stdout
    head = project.head()
    assert project.git("rev-parse", "HEAD^") == before
    assert project.origin_head() == head
    assert project.git("log", "-1", "--format=%B") == "Issue 8: Add sub"
    assert sorted(changed_in_head(project)) == [f"M\t{CALC}", f"M\t{TESTS}"]
    assert "def sub" in (project.live / CALC).read_text()
    assert "def test_sub" in (project.live / TESTS).read_text()
    assert "def test_sub" in project.git("show", f"origin/main:{TESTS}")
    assert project.status() == ""
    assert not project.workspace_dir("8").exists()
    assert project.worktrees() == [str(project.live)]


def test_finalize_workspace_of_a_missing_workspace_is_preflight_workspace(
    project: Project,
) -> None:
    before = project.head()

    out = project.run("--finalize-workspace", "12", *NO_GATES)

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL PREFLIGHT:WORKSPACE", out.stdout + out.stderr
    assert "12" in out.line("REASON:")
    assert project.head() == before


def test_finalize_workspace_with_nothing_changed_is_preflight_workspace(project: Project) -> None:
    before = project.head()
    repo = kept_workspace(project, "13")
    (repo / CALC).write_text(project.git("show", f"HEAD:{CALC}") + "\n")

    out = project.run("--finalize-workspace", "13", *NO_GATES)

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL PREFLIGHT:WORKSPACE", out.stdout + out.stderr
    assert project.head() == before
    assert project.origin_head() == before


def test_finalize_workspace_hand_edit_outside_files_is_undeclared(project: Project) -> None:
    before = project.head()
    repo = kept_workspace(project, "14")
    (repo / "README.md").write_text("# democalc\n\nEdited by hand.\n")

    out = project.run("--finalize-workspace", "14", *NO_GATES)

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL SCOPE:UNDECLARED", out.stdout + out.stderr
    assert "README.md" in out.stdout
    assert project.head() == before
    assert project.origin_head() == before
    assert (repo / "README.md").read_text() == "# democalc\n\nEdited by hand.\n"


def test_finalize_workspace_hand_edit_outside_files_lands_with_a(project: Project) -> None:
    repo = kept_workspace(project, "15")
    (repo / "README.md").write_text("# democalc\n\nEdited by hand.\n")

    out = project.run("--finalize-workspace", "15", "-a", "-t", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert sorted(changed_in_head(project)) == ["M\tREADME.md", f"M\t{CALC}"]
    assert project.origin_head() == project.head()
    assert (project.live / "README.md").read_text() == "# democalc\n\nEdited by hand.\n"
    assert project.status() == ""


# --- --test-mode --------------------------------------------------------------------------------


def test_test_mode_runs_patch_and_gates_then_changes_nothing(project: Project) -> None:
    before = project.head()
    patch = project.patch("issue_16.py", [CALC], ADD_SUB)

    out = project.run("16", "Add sub", "--test-mode")

    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert any(line.startswith("[gates] ") for line in out.stdout.splitlines()), out.stdout
    assert out.line("MODE:") == "MODE: test-mode"
    assert project.head() == before
    assert project.origin_head() == before
    assert "def sub" not in (project.live / CALC).read_text()
    assert project.status() == ""
    assert patch.is_file(), "test mode must not archive the input"
    assert not (project.patches / "successful").exists()
    assert list(project.patches.glob("*.zip")) == []
    assert throwaway_dirs(project) == []
    assert not project.workspace_dir("16").exists()
    assert project.worktrees() == [str(project.live)]
    assert project.git("branch", "--list", "am_patch/*") == ""


def test_test_mode_gate_failure_exits_1_and_still_cleans_up(project: Project) -> None:
    before = project.head()
    patch = project.patch("issue_17.py", [TESTS], BREAK_TEST)

    out = project.run("17", "Break", "--test-mode", "--override", 'gates_order=["pytest"]')

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL GATES:PYTEST", out.stdout + out.stderr
    assert project.head() == before
    assert project.origin_head() == before
    assert patch.is_file()
    assert not (project.patches / "unsuccessful").exists()
    assert list(project.patches.glob("*.zip")) == []
    assert throwaway_dirs(project) == []
    assert project.worktrees() == [str(project.live)]
    assert project.git("branch", "--list", "am_patch/*") == ""


def test_test_mode_patch_failure_still_cleans_up(project: Project) -> None:
    project.patch("issue_18.py", [CALC], "raise SystemExit(3)\n")

    out = project.run("18", "Crash", "--test-mode", *NO_GATES)

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL PATCH:EXEC", out.stdout + out.stderr
    assert throwaway_dirs(project) == []
    assert project.worktrees() == [str(project.live)]
    assert list(project.patches.glob("*.zip")) == []


def test_test_mode_never_touches_the_real_workspace_of_the_issue(project: Project) -> None:
    before = project.head()
    repo = kept_workspace(project, "19")
    (repo / "scratch.txt").write_text("hand-made, untracked\n")
    wdir = project.workspace_dir("19")
    files_before = file_states(wdir)
    meta_before = (wdir / "meta.json").read_bytes()
    branch_before = project.git("rev-parse", "am_patch/issue_19")
    status_before = project.git("status", "--porcelain", cwd=repo)

    project.patch("issue_19.py", [CALC], ADD_MUL)
    out = project.run("19", "Try mul instead", "--test-mode", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert (wdir / "meta.json").read_bytes() == meta_before
    assert file_states(wdir) == files_before
    assert project.git("rev-parse", "am_patch/issue_19") == branch_before
    assert project.git("status", "--porcelain", cwd=repo) == status_before
    assert "def mul" not in (repo / CALC).read_text()
    assert project.head() == before
    assert throwaway_dirs(project) == []
    assert project.worktrees() == [str(project.live), str(repo)]


# --- --disable-promotion ------------------------------------------------------------------------


def test_disable_promotion_runs_gates_changes_nothing_and_keeps_the_workspace(
    project: Project,
) -> None:
    before = project.head()
    project.patch("issue_20.py", [CALC], ADD_SUB)

    out = project.run("20", "Add sub", "--disable-promotion")

    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert any(line.startswith("[gates] ") for line in out.stdout.splitlines()), out.stdout
    assert project.head() == before
    assert project.origin_head() == before
    assert "def sub" not in (project.live / CALC).read_text()
    assert project.status() == ""
    assert "def sub" in (project.workspace_repo("20") / CALC).read_text()
    assert project.meta("20")["message"] == "Add sub"


def test_disable_promotion_gate_failure_is_reported(project: Project) -> None:
    before = project.head()
    project.patch("issue_21.py", [TESTS], BREAK_TEST)

    out = project.run("21", "Break", "--disable-promotion", "--override", 'gates_order=["pytest"]')

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL GATES:PYTEST", out.stdout + out.stderr
    assert project.head() == before
    assert project.origin_head() == before


# --- -l ISSUE_ID MESSAGE ------------------------------------------------------------------------


def append_line(text: str) -> str:
    return f'p = Path("README.md")\np.write_text(p.read_text() + {text + chr(10)!r})\n'


def land(project: Project, issue: str, body: str) -> None:
    project.patch(f"issue_{issue}.py", ["README.md"], body)
    out = project.run(issue, f"Land {issue}", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr


def test_rerun_latest_picks_exactly_the_issue_never_a_longer_id(project: Project) -> None:
    land(project, "3", append_line("three"))
    land(project, "37", append_line("thirty-seven"))  # archived later: newer than issue 3's
    assert (project.patches / "successful" / "issue_3.py").is_file()
    assert (project.patches / "successful" / "issue_37.py").is_file()

    out = project.run("-l", "3", "Again three", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert "successful/issue_3.py" in out.stdout
    readme = (project.live / "README.md").read_text()
    assert readme.endswith("three\nthirty-seven\nthree\n"), readme
    assert project.git("log", "-1", "--format=%s") == "Issue 3: Again three"
    assert project.origin_head() == project.head()


def test_rerun_latest_picks_the_newest_of_several_versions(project: Project) -> None:
    land(project, "3", append_line("first"))
    land(project, "3", append_line("second"))
    assert (project.patches / "successful" / "issue_3_v2.py").is_file()

    out = project.run("-l", "3", "Again", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert (project.live / "README.md").read_text().endswith("first\nsecond\nsecond\n")


def test_rerun_latest_also_finds_a_failed_input(project: Project) -> None:
    land(project, "3", append_line("landed"))
    project.patch("issue_3.py", ["README.md"], "raise SystemExit(4)\n")
    out = project.run("3", "Fails", *NO_GATES)
    assert out.result_line == "RESULT: FAIL PATCH:EXEC", out.stdout + out.stderr
    assert (project.patches / "unsuccessful" / "issue_3.py").is_file()

    out = project.run("-l", "3", "Rerun the failed one", *NO_GATES)

    assert out.result_line == "RESULT: FAIL PATCH:EXEC", out.stdout + out.stderr
    assert "unsuccessful/issue_3.py" in out.stdout


def test_rerun_latest_without_archive_of_that_issue_is_patch_path(project: Project) -> None:
    land(project, "37", append_line("thirty-seven"))
    before = project.head()

    out = project.run("-l", "3", "Nothing archived", *NO_GATES)

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL PREFLIGHT:PATCH_PATH", out.stdout + out.stderr
    assert "issue 3" in out.line("REASON:")
    assert project.head() == before
    assert not project.workspace_dir("3").exists()


# --- workspace controls: -k, --soft-reset-workspace, -W -----------------------------------------


def test_keep_workspace_keeps_it_after_success(project: Project) -> None:
    project.patch("issue_30.py", [CALC], ADD_SUB)

    out = project.run("30", "Add sub", "-k", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    repo = project.workspace_repo("30")
    assert "def sub" in (repo / CALC).read_text()
    assert str(repo) in project.worktrees()
    assert project.origin_head() == project.head()


def test_soft_reset_workspace_returns_to_the_base_first(project: Project) -> None:
    repo = kept_workspace(project, "31")  # its CALC already has sub()
    (repo / "scratch.txt").write_text("untracked\n")
    (repo / "README.md").write_text("edited in the workspace\n")

    project.patch("issue_31.py", [CALC], ADD_MUL)
    out = project.run("31", "Add mul", "--soft-reset-workspace", "-k", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert changed_in_head(project) == [f"M\t{CALC}"]
    calc = (project.live / CALC).read_text()
    assert "def mul" in calc
    assert "def sub" not in calc
    assert not (repo / "scratch.txt").exists()
    assert (repo / "README.md").read_text() == (project.live / "README.md").read_text()


def test_without_soft_reset_the_workspace_state_is_reused(project: Project) -> None:
    # A workspace kept after landing (an un-promoted result would be set aside instead:
    # tests/test_promotion_edges.py), with a hand-made file in it.
    project.patch("issue_32.py", [CALC], ADD_SUB)
    landed = project.run("32", "Add sub", "-k", *NO_GATES)
    assert landed.result_line == "RESULT: SUCCESS", landed.stdout + landed.stderr
    repo = project.workspace_repo("32")
    (repo / "scratch.txt").write_text("untracked\n")

    project.patch("issue_32.py", [CALC], ADD_MUL)
    out = project.run("32", "Add mul", "-k", *NO_GATES)

    assert out.result_line == "RESULT: FAIL SCOPE:UNDECLARED", out.stdout + out.stderr
    assert (repo / "scratch.txt").read_text() == "untracked\n"


def test_update_workspace_moves_the_base_to_live_main(project: Project) -> None:
    old_base = project.head()
    repo = kept_workspace(project, "33")
    assert project.meta("33")["base"] == old_base
    project.write("CHANGELOG.md", "news\n")
    new_main = project.commit_all("Live moves on")

    project.patch("issue_33.py", [CALC], ADD_SUB)
    out = project.run("33", "Add sub", "-W", "--disable-promotion", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert project.meta("33")["base"] == new_main
    assert project.git("rev-parse", "am_patch/issue_33") == new_main
    assert (repo / "CHANGELOG.md").read_text() == "news\n"
    assert (repo / CALC).read_text().count("def sub") == 1
    assert project.head() == new_main


def test_update_workspace_refuses_to_drop_hand_edits_made_in_the_workspace(
    project: Project,
) -> None:
    project.patch("issue_34.py", [CALC], "raise SystemExit(1)\n")  # fails; keeps the workspace
    assert project.run("34", "Open", *NO_GATES).result_line == "RESULT: FAIL PATCH:EXEC"
    repo = project.workspace_repo("34")
    (repo / "NOTES.md").write_text("my notes\n")
    state = file_states(project.workspace_dir("34"))
    project.write("CHANGELOG.md", "news\n")
    new_main = project.commit_all("Live moves on")
    project.patch("issue_34.py", [CALC], ADD_SUB)

    refused = project.run("34", "Add sub", "-W", *NO_GATES)

    assert refused.result_line == "RESULT: FAIL PREFLIGHT:WORKSPACE", refused.output
    assert "NOTES.md" in refused.line("REASON:")
    assert file_states(project.workspace_dir("34")) == state
    assert project.head() == new_main

    out = project.run("34", "Add sub", "-W", "--soft-reset-workspace", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.output
    assert project.git("rev-parse", "HEAD^") == new_main
    assert project.git("show", "--name-only", "--format=", "HEAD") == CALC, "notes dropped"


def test_finalize_live_applies_forbidden_paths_and_max_file_bytes(project: Project) -> None:
    before = project.repo_state()
    project.write("secrets/api.key", "token\n")
    out = project.run("-f", "Secrets", "--override", "forbidden_paths=['secrets/*']", *NO_GATES)
    assert out.result_line == "RESULT: FAIL SCOPE:UNSAFE", out.output
    assert "forbidden_paths" in out.line("REASON:")
    (project.live / "secrets/api.key").unlink()
    project.write("docs/big.bin", "x" * 5000)
    out = project.run("-f", "Big", "--override", "max_file_bytes=1000", *NO_GATES)
    assert out.result_line == "RESULT: FAIL SCOPE:UNSAFE", out.output
    assert "max_file_bytes" in out.line("REASON:")
    assert project.head() == before[0] and project.origin_head() == before[1]
