"""The pre_commit gate: the project's own .pre-commit-config.yaml hooks, through the real
pre-commit in the jail; environments prepared from the base tree's config only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from am_patch.demo import LOCAL_HOOKS, PROJECT_FILES
from testing.hooks import hook, run
from testing.project import Project, assert_fails, assert_success

HOOKS = LOCAL_HOOKS
NEEDS_ENV = """\
  - id: needs-env
    name: a python hook with dependencies
    language: python
    entry: pyflakes
    additional_dependencies: [pyflakes==3.2.0]
"""
NO_FIXME = """\
  - id: no-fixme
    name: no FIXME markers
    language: pygrep
    entry: FIXME
"""


@pytest.fixture
def hooked_project(tmp_path: Path) -> Project:
    """The demo project whose base tree carries HOOKS."""
    return Project.create(tmp_path / "work", {**PROJECT_FILES, ".pre-commit-config.yaml": HOOKS})


def test_a_fixer_hook_rewrites_what_lands(hooked_project: Project) -> None:
    hooked_project.file_patch("1", "docs/a.md", "hello   \nworld\n")

    out = hooked_project.run("1", "Docs")

    assert_success(out)
    assert out.line("GATE pre_commit:").startswith("GATE pre_commit: PASS")
    assert (hooked_project.live / "docs/a.md").read_text() == "hello\nworld\n"
    assert hooked_project.git("show", "HEAD:docs/a.md") == "hello\nworld"
    log = hooked_project.log_of(out)
    assert "prepared from the base tree's .pre-commit-config.yaml" in log
    # the fixer ran twice (its edit, then a quiet round): the summary times both rounds
    runs = log.split("gate pre_commit:\n")[1:]
    times = [re.search(r"-> exit \d+ in ([0-9.]+)s", chunk) for chunk in runs]
    rounds = [float(m.group(1)) for m in times if m is not None]
    assert len(rounds) == 2, log
    found = re.search(r"PASS in ([0-9.]+)s", out.line("GATE pre_commit:"))
    assert found is not None
    shown = float(found.group(1))
    assert shown == pytest.approx(sum(rounds), abs=0.06)


def test_a_failing_hook_fails_the_gate_naming_it(hooked_project: Project) -> None:
    before = hooked_project.head()
    hooked_project.file_patch("2", "docs/b.md", "TODO later\n")

    out = hooked_project.run("2", "Docs")

    assert_fails(out, "GATES:PRE_COMMIT")
    assert out.line("GATE pre_commit:") == "GATE pre_commit: FAIL (failed hooks: no-todo)"
    assert "  | docs/b.md:1:TODO later" in out.stdout
    assert hooked_project.head() == before


def test_a_system_hook_judges_a_broken_shell_script(hooked_project: Project) -> None:
    hooked_project.file_patch("3", "run.sh", "if then fi\n")
    out = hooked_project.run("3", "Script")
    assert_fails(out, "GATES:PRE_COMMIT")
    assert "failed hooks: sh-syntax" in out.line("REASON:")
    # a second run reuses the prepared store: nothing is prepared again
    hooked_project.file_patch("4", "run.sh", "echo fine\n")
    out = hooked_project.run("4", "Script")
    assert_success(out)
    assert "hook environments prepared" not in hooked_project.log_of(out)


def test_a_patched_config_runs_its_new_hooks_only_when_prepared(hooked_project: Project) -> None:
    config = hooked_project.live / ".pre-commit-config.yaml"

    def edit_config(issue: str, extra: str, doc: str) -> None:
        hooked_project.patch(
            f"issue_{issue}.py",
            [".pre-commit-config.yaml", "docs/c.md"],
            f"Path('.pre-commit-config.yaml').write_text({HOOKS + extra!r})\n"
            f"Path('docs').mkdir(exist_ok=True)\nPath('docs/c.md').write_text({doc!r})\n",
        )

    edit_config("5", NO_FIXME, "FIXME\n")
    assert_fails(hooked_project.run("5", "Config"), "SCOPE:POLICY")

    edit_config("5", NO_FIXME, "FIXME\n")  # a new hook needing nothing runs at once
    out = hooked_project.run("5", "Config", "--allow-policy-change")
    assert_fails(out, "GATES:PRE_COMMIT")
    assert "no-fixme" in out.line("REASON:")  # (no-todo too: the config itself says TODO)

    edit_config("6", NEEDS_ENV, "fine\n")  # one needing an environment: never from the jail
    out = hooked_project.run("6", "Config", "--allow-policy-change")
    assert_fails(out, "GATES:PRE_COMMIT")
    reason = out.line("REASON:")
    assert "hook environments of this .pre-commit-config.yaml are not prepared" in reason
    assert "pre-commit install-hooks -c" in reason
    assert config.read_text() == HOOKS


def test_the_config_key_turns_the_gate_off(hooked_project: Project) -> None:
    hooked_project.file_patch("7", "docs/d.md", "TODO\n")
    out = hooked_project.run("7", "Docs", "--override", "pre_commit_gate=false")
    assert_success(out)
    assert out.line("GATE pre_commit:") == (
        "GATE pre_commit: SKIPPED (turned off (pre_commit_gate = false))"
    )


def test_a_project_without_a_config_skips_the_gate(project: Project) -> None:
    project.readme_patch("8", "readme\n")
    out = project.run("8", "Docs", "--override", "gates_order=['pre_commit']")
    assert_success(out)
    assert out.line("GATE pre_commit:") == (
        "GATE pre_commit: SKIPPED (no .pre-commit-config.yaml in the tree)"
    )


def test_the_hook_runs_the_same_hooks_on_a_hand_commit(hooked_project: Project) -> None:
    live = hooked_project.live
    hook(live, "install")
    (live / "docs").mkdir()
    (live / "docs/e.md").write_text("TODO by hand\n")
    hooked_project.git("add", "docs/e.md")

    refused = run(["git", "commit", "-q", "-m", "By hand"], live)

    assert refused.returncode != 0
    assert "gate pre_commit failed: failed hooks: no-todo" in refused.stderr
    (live / "docs/e.md").write_text("done by hand\n")
    hooked_project.git("add", "docs/e.md")
    assert run(["git", "commit", "-q", "-m", "By hand"], live).returncode == 0
