"""Promotion edge cases end to end: finalize modes without promotion, -k then a rerun, the
summary after --overwrite-workspace, reruns over an un-promoted result, undo next to a user's
edit, and when the post-success audit runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testing.files import file_states
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

README = "README.md"
ORIGINAL_README = "# democalc\n\nA tiny calculator.\n"
# Not idempotent: applied twice, the line is there twice.
APPEND = "p = Path('README.md')\np.write_text(p.read_text() + 'appended\\n')\n"
SKIPPED = "[promotion] skipped ("
# Each way of stopping a run after the gates: the CLI flag and the config key test_mode.
NO_PROMOTION = {
    "disable-promotion": ("--disable-promotion",),
    "test_mode-config": ("--override", "test_mode=true"),
}
FORMAT_ONLY = ("--override", 'gates_order=["ruff_format"]')


def summary_json(project: Project, out: Outcome) -> dict[str, object]:
    data = json.loads(project.log_path(out).with_suffix(".json").read_text())
    assert isinstance(data, dict)
    return data


def move_main(project: Project, rel: str, text: str) -> str:
    theirs = project.push_from_clone(rel, text)
    project.git("pull", "-q", "--ff-only", "origin", "main")
    assert project.head() == theirs
    return theirs


def readme_count(project: Project) -> int:
    return (project.live / README).read_text().count("appended")


# --- 1. the finalize modes honour --disable-promotion and test_mode ---------------------------


@pytest.mark.parametrize("stop", NO_PROMOTION.values(), ids=list(NO_PROMOTION))
def test_finalize_live_without_promotion_gates_and_changes_nothing(
    project: Project, stop: tuple[str, ...]
) -> None:
    before = project.head()
    calc = project.live / CALC
    unformatted = calc.read_text() + "\n\ndef sub(a:int,b:int)->int:\n    return a-b\n"
    calc.write_text(unformatted)
    status = project.status()

    out = project.run("-f", "Finalize sub", *stop, *FORMAT_ONLY)

    assert_success(out)
    assert "[gates] ruff_format" in out.stdout, out.stdout
    assert SKIPPED in out.stdout
    assert "live and origin are unchanged" in out.stdout
    assert project.head() == before
    assert project.origin_head() == before
    assert calc.read_text() == unformatted, "not even the formatter's edit may be written back"
    assert project.status() == status
    assert project.git("diff", "--cached") == ""
    assert out.line("COMMIT:") == "COMMIT: -"
    assert out.line("PUSH:") == "PUSH: SKIPPED"
    assert not (project.patches / "patched_success.zip").exists()


@pytest.mark.parametrize("stop", NO_PROMOTION.values(), ids=list(NO_PROMOTION))
def test_finalize_workspace_without_promotion_gates_and_keeps_the_workspace(
    project: Project, stop: tuple[str, ...]
) -> None:
    before = project.head()
    project.patch("issue_40.py", [CALC], f"Path({CALC!r}).write_text({CALC_WITH_SUB!r})\n")
    assert_success(project.run("40", "Add sub", "--disable-promotion", *NO_GATES))
    repo = project.workspace_repo("40")
    meta = (project.workspace_dir("40") / "meta.json").read_bytes()

    out = project.run("--finalize-workspace", "40", *stop, *FORMAT_ONLY)

    assert_success(out)
    assert "[gates] ruff_format" in out.stdout, out.stdout
    assert SKIPPED in out.stdout
    assert project.head() == before
    assert project.origin_head() == before
    assert "def sub" not in (project.live / CALC).read_text()
    assert project.status() == ""
    assert (repo / CALC).read_text() == CALC_WITH_SUB
    assert (project.workspace_dir("40") / "meta.json").read_bytes() == meta
    assert out.line("COMMIT:") == "COMMIT: -"

    landed = project.run("--finalize-workspace", "40", *NO_GATES)
    assert_success(landed)
    assert project.origin_head() == project.head() != before


# --- 2. -k: the kept workspace's base is the landed commit --------------------------------


def test_keep_workspace_then_a_rerun_of_the_issue_lands(project: Project) -> None:
    project.patch("issue_41.py", [README], APPEND)
    first = project.run("41", "Append", "-k", *NO_GATES)
    assert_success(first)
    landed = project.head()
    assert project.meta("41")["base"] == landed

    project.patch("issue_41.py", [CALC], f"Path({CALC!r}).write_text({CALC_WITH_SUB!r})\n")
    second = project.run("41", "Add sub", *NO_GATES)

    assert_success(second)
    assert project.git("rev-parse", "HEAD^") == landed
    assert project.origin_head() == project.head()
    assert readme_count(project) == 1
    assert (project.live / CALC).read_text() == CALC_WITH_SUB
    assert project.status() == ""


def test_finalize_workspace_with_keep_moves_the_base_to_the_landed_commit(
    project: Project,
) -> None:
    project.patch("issue_42.py", [README], APPEND)
    assert_success(project.run("42", "Append", "--disable-promotion", *NO_GATES))

    out = project.run("--finalize-workspace", "42", "-k", *NO_GATES)

    assert_success(out)
    landed = project.head()
    assert project.meta("42")["base"] == landed
    assert project.meta("42").get("pending") is None
    project.patch("issue_42.py", [CALC], f"Path({CALC!r}).write_text({CALC_WITH_SUB!r})\n")
    again = project.run("42", "Add sub", *NO_GATES)
    assert_success(again)
    assert project.git("rev-parse", "HEAD^") == landed
    assert readme_count(project) == 1


# --- 3. the summary lists what was promoted ------------------------------------------------


def test_overwrite_workspace_leaves_the_dropped_file_out_of_the_summary(
    project: Project,
) -> None:
    project.patch(
        "issue_43.py",
        [README, CALC],
        f"Path('README.md').write_text('ours\\n')\nPath({CALC!r}).write_text({CALC_WITH_SUB!r})\n",
    )
    assert_success(project.run("43", "Both", "--disable-promotion", *NO_GATES))
    move_main(project, README, "theirs\n")

    out = project.run("43", "Both", "--overwrite-workspace", *NO_GATES)

    assert_success(out)
    assert out.files == [("M", CALC)]
    assert summary_json(project, out)["files"] == [["M", CALC]]
    assert (project.live / README).read_text() == "theirs\n"


# --- 4. a rerun over an un-promoted result applies the patch once ----------------------------


def test_rerun_after_disable_promotion_applies_the_patch_once(project: Project) -> None:
    before = project.head()
    project.patch("issue_44.py", [README], APPEND)
    assert_success(project.run("44", "Append", "--disable-promotion", *NO_GATES))
    assert project.meta("44").get("pending")

    out = project.run("44", "Append", "-k", *NO_GATES)

    assert_success(out)
    assert "set aside the previous attempt's un-promoted result" in out.stdout
    assert readme_count(project) == 1
    assert project.git("rev-parse", "HEAD^") == before
    assert project.origin_head() == project.head()
    assert project.meta("44").get("pending") is None


def test_rerun_after_live_dirty_applies_the_patch_once(project: Project) -> None:
    project.patch("issue_45.py", [README], APPEND)
    (project.live / README).write_text("my draft\n")
    failed = project.run("45", "Append", *NO_GATES)
    assert_fails(failed, "PROMOTION:LIVE_DIRTY")
    assert (project.live / README).read_text() == "my draft\n"
    project.git("checkout", "--", README)

    out = project.run("-l", "45", "Append", *NO_GATES)  # the failed input, archived

    assert_success(out)
    assert readme_count(project) == 1
    assert project.status() == ""


def test_rerun_after_live_gates_failure_applies_the_patch_once(project: Project) -> None:
    before = project.head()
    project.patch("issue_46.py", [README], APPEND)
    assert_fails(
        project.run("46", "Append", *PROBE_GATE, "--override", "gate_cache=false"),
        "LIVE_GATES:PROBE",
    )
    assert project.head() == before

    out = project.run("-l", "46", "Append", *NO_GATES)  # the failed input, archived

    assert_success(out)
    assert readme_count(project) == 1


def test_rerun_after_a_rebase_and_live_dirty_applies_the_patch_once(project: Project) -> None:
    project.patch("issue_47.py", [README], APPEND)
    assert_success(project.run("47", "Append", "--disable-promotion", *NO_GATES))
    theirs = move_main(project, "CHANGELOG.md", "news\n")
    (project.live / README).write_text("my draft\n")
    assert_fails(project.run("47", "Append", *NO_GATES), "PROMOTION:LIVE_DIRTY")
    assert project.meta("47")["base"] == theirs, "the failed run rebased the workspace"
    project.git("checkout", "--", README)

    out = project.run("-l", "47", "Append", *NO_GATES)  # the failed input, archived

    assert_success(out)
    assert readme_count(project) == 1
    assert project.git("rev-parse", "HEAD^") == theirs
    assert (project.live / "CHANGELOG.md").read_text() == "news\n"
    assert project.status() == ""


def test_rerun_over_a_hand_edited_result_fails_and_changes_nothing(project: Project) -> None:
    before = project.head()
    project.patch("issue_48.py", [README], APPEND)
    assert_success(project.run("48", "Append", "--disable-promotion", *NO_GATES))
    repo = project.workspace_repo("48")
    (repo / README).write_text((repo / README).read_text() + "by hand\n")
    wdir = project.workspace_dir("48")
    files = file_states(wdir)

    out = project.run("48", "Append again", *NO_GATES)

    assert_fails(out, "PREFLIGHT:WORKSPACE")
    reason = out.line("REASON:")
    assert "--finalize-workspace 48" in reason
    assert "--soft-reset-workspace" in reason
    assert file_states(wdir) == files, "nothing in the workspace (meta.json included) may change"
    assert project.head() == before
    assert (project.patches / "issue_48.py").is_file()

    landed = project.run("--finalize-workspace", "48", *NO_GATES)
    assert_success(landed)
    assert (project.live / README).read_text() == ORIGINAL_README + "appended\nby hand\n"


def test_soft_reset_clears_the_un_promoted_result(project: Project) -> None:
    project.patch("issue_49.py", [README], APPEND)
    assert_success(project.run("49", "Append", "--disable-promotion", *NO_GATES))
    repo = project.workspace_repo("49")
    (repo / "scratch.txt").write_text("by hand\n")

    out = project.run("49", "Append", "--soft-reset-workspace", *NO_GATES)

    assert_success(out)
    assert "set aside" not in out.stdout
    assert readme_count(project) == 1


def test_a_meta_json_without_pending_still_reads(project: Project) -> None:
    project.patch("issue_50.py", [README], APPEND)
    assert_success(project.run("50", "Append", "--disable-promotion", *NO_GATES))
    meta_path = project.workspace_dir("50") / "meta.json"
    data = json.loads(meta_path.read_text())
    del data["pending"]
    meta_path.write_text(json.dumps(data))

    out = project.run("--finalize-workspace", "50", *NO_GATES)

    assert_success(out)
    assert readme_count(project) == 1


# --- 5. undoing a landing never overwrites an edit made meanwhile ------------------------------


def test_live_gate_failure_keeps_an_edit_made_during_the_live_gates(project: Project) -> None:
    before = project.head()
    live_readme = project.live / README
    edit = (
        "import os, sys, pathlib\n"
        "if '/workspaces/issue_' in os.getcwd(): sys.exit(0)\n"
        f"pathlib.Path({str(live_readme)!r}).write_text('edited during the live gates\\n')\n"
        "sys.exit(3)\n"
    )
    project.patch("issue_51.py", [README], "Path('README.md').write_text('patched\\n')\n")

    out = project.run(
        "51",
        "Docs",
        "--override",
        "gates_order=['probe']",
        "--override",
        "gates.probe.runs_on=always",
        "--override",
        f"gates.probe.command=['{{python}}', '-c', {edit!r}]",
        "--override",
        "gate_cache=false",
        "--override",
        "sandbox_gates=false",
    )

    assert_fails(out, "LIVE_GATES:PROBE")
    assert "kept your edit of README.md" in out.stdout
    assert "kept your edit of README.md" in project.log_of(out)
    assert live_readme.read_text() == "edited during the live gates\n"
    assert project.head() == before
    assert project.origin_head() == before
    assert project.git("diff", "--cached") == "", "the index must be back at the old commit"
    assert project.git("diff", "--name-only") == README


def test_recovery_keeps_an_edit_made_after_a_killed_landing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = project.kill_while_landing("52")
    assert (project.live / CALC).read_text() == CALC_WITH_SUB
    (project.live / CALC).write_text(CALC_WITH_SUB + "# mine\n")

    out = project.run("9", "Nothing", "missing.py", *NO_GATES)

    assert_fails(out, "PREFLIGHT:PATCH_PATH")
    assert "recovered an interrupted landing" in out.stdout
    assert "kept your edit of src/democalc/calc.py" in out.stdout
    assert (project.live / CALC).read_text() == CALC_WITH_SUB + "# mine\n"
    assert project.head() == before
    assert project.git("diff", "--cached") == "", "the index must be back at main"
    assert project.git("diff", "--name-only") == CALC


def second_run_fails_gate(flag: Path) -> tuple[str, ...]:
    """A gate (unjailed, to see flag) that passes once, leaving flag, and fails while flag is
    there: the re-gate of a rebased tree fails after the workspace's gate passed."""
    code = (
        f"import pathlib, sys; f = pathlib.Path({str(flag)!r}); "
        "s = f.exists(); f.touch(); sys.exit(s)"
    )
    return (
        "--override",
        "sandbox_gates=false",
        "--override",
        "gate_cache=false",
        "--override",
        "gates_order=['once']",
        "--override",
        "gates.once.runs_on=always",
        "--override",
        f"gates.once.command=['{{python}}', '-c', {code!r}]",
    )


def test_rerun_after_a_failed_regate_of_the_rebased_tree_applies_the_patch_once(
    project: Project,
) -> None:
    flag = project.base / "gate-ran"
    gate = second_run_fails_gate(flag)
    project.patch("issue_49.py", [README], APPEND)
    assert_success(project.run("49", "Append", "--disable-promotion", *gate))
    flag.unlink()
    theirs = move_main(project, "CHANGELOG.md", "news\n")
    failed = project.run("49", "Append", *gate)
    assert_fails(failed, "GATES:ONCE")
    assert "rebasing onto" in failed.stdout, "the failure must come from the re-gate"
    assert project.head() == theirs and project.origin_head() == theirs

    out = project.run("-l", "49", "Append", *NO_GATES)

    assert_success(out)
    assert readme_count(project) == 1
    assert project.git("rev-parse", "HEAD^") == theirs
    assert project.status() == ""


DIR_TO_FILE = """\
import shutil
shutil.rmtree("docs")
Path("docs").write_text("docs are now one file\\n")
"""
FILE_TO_DIR = """\
import os
os.unlink("docs")
os.makedirs("docs/guide")
Path("docs/guide/index.md").write_text("a directory again\\n")
"""


def test_a_patch_turning_a_directory_into_a_file_and_back_lands(project: Project) -> None:
    project.write("docs/a.md", "a\n")
    project.write("docs/sub/b.md", "b\n")
    project.commit_all("Docs directory")
    project.patch("issue_70.py", ["docs", "docs/a.md", "docs/sub/b.md"], DIR_TO_FILE)

    out = project.run("70", "Docs become a file", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.output
    assert (project.live / "docs").read_text() == "docs are now one file\n"
    assert project.status() == ""
    assert project.origin_head() == project.head()
    project.patch("issue_71.py", ["docs", "docs/guide/index.md"], FILE_TO_DIR)

    back = project.run("71", "Docs become a directory", *NO_GATES)

    assert back.result_line == "RESULT: SUCCESS", back.output
    assert (project.live / "docs/guide/index.md").read_text() == "a directory again\n"
    assert project.status() == ""


def test_a_directory_holding_an_untracked_file_of_yours_is_not_replaced(
    project: Project,
) -> None:
    project.write("docs/a.md", "a\n")
    project.commit_all("Docs directory")
    project.write("docs/mine.txt", "my notes\n")  # untracked: yours
    before = project.repo_state()
    project.patch("issue_72.py", ["docs", "docs/a.md"], DIR_TO_FILE)

    out = project.run("72", "Docs become a file", *NO_GATES)

    assert out.result_line == "RESULT: FAIL PROMOTION:LIVE_DIRTY", out.output
    assert (project.live / "docs/mine.txt").read_text() == "my notes\n"
    assert project.repo_state()[:3] == before[:3]


def test_an_undone_directory_to_file_landing_restores_the_directory(project: Project) -> None:
    project.write("docs/a.md", "a\n")
    project.write("docs/sub/b.md", "b\n")
    landed = project.commit_all("Docs directory")
    project.patch("issue_73.py", ["docs", "docs/a.md", "docs/sub/b.md"], DIR_TO_FILE)

    out = project.run("73", "Docs become a file", *PROBE_GATE, "--override", "gate_cache=false")

    assert out.result_line == "RESULT: FAIL LIVE_GATES:PROBE", out.output
    assert project.head() == landed
    assert (project.live / "docs/sub/b.md").read_text() == "b\n"
    assert project.status() == ""
