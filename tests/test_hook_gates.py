"""The gates hook: exactly what is committed is gated, in a scratch checkout; the work tree
is left alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from am_patch.config import load
from am_patch.hooks import pre_commit
from am_patch.repo import Repo
from testing.hooks import (
    BROKEN_ADD,
    EXTRA_TEST,
    GOOD_CALC,
    TEST,
    UNFORMATTED,
    git,
    hook,
    refused_commit,
)
from testing.project import CALC, CALC_WITH_SUB, Project

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
        "pre_commit: SKIPPED (no .pre-commit-config.yaml in the tree)"
    ] + [
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

    assert f"would change {extra}" in stderr
    assert "gate ruff_format: PASS" in stderr and "gate pytest: PASS" in stderr


def test_unformatted_file_is_refused_with_the_formatter_message(hooked: Project) -> None:
    hooked.write(CALC, UNFORMATTED)
    hooked.git("add", CALC)

    stderr = refused_commit(hooked, "-m", "Ugly")

    assert f"would change {CALC}" in stderr
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
