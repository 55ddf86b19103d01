"""The policy that judges patches changes only when a human says so: a patch, -f, a hand commit
and a push that change it are refused without --allow-policy-change (or its hook and server
forms)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from am_patch import config, policy
from testing.project import NO_GATES, Project, assert_fails, assert_success

SANDBOX_OFF = 'sandbox = "off"\nsandbox_gates = false\n'


def hook_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def git(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)


def test_a_patch_switching_the_jail_off_is_refused_and_the_next_patch_stays_jailed(
    project: Project, tmp_path: Path
) -> None:
    before = project.head()
    project.patch(
        "issue_1.py", ["am_patch.toml"], f"Path('am_patch.toml').write_text({SANDBOX_OFF!r})\n"
    )

    out = project.run("1", "Relax the jail", *NO_GATES)

    assert_fails(out, "SCOPE:POLICY")
    reason = out.line("REASON:")
    assert "sandbox: 'bwrap' -> 'off'" in reason and policy.FLAG in reason
    assert project.head() == before and not (project.live / "am_patch.toml").exists()
    home = Path(os.environ["HOME"])
    project.patch(
        "issue_2.py",
        ["README.md"],
        "Path('README.md').write_text('x\\n')\n"
        f"try:\n    Path({str(home / 'PWNED')!r}).write_text('x')\nexcept OSError:\n    pass\n",
    )
    assert_success(project.run("2", "Docs", *NO_GATES))
    assert not (home / "PWNED").exists()


def test_tool_am_patch_added_to_pyproject_is_a_policy_change(project: Project) -> None:
    table = "\\n[tool.am_patch]\\nsandbox_gates = false\\n"
    body = f"p = Path('pyproject.toml')\np.write_text(p.read_text() + '{table}')\n"
    project.patch("issue_3.py", ["pyproject.toml"], body)

    out = project.run("3", "Gates unjailed", *NO_GATES)

    assert_fails(out, "SCOPE:POLICY")
    assert "sandbox_gates: True -> False" in out.line("REASON:")


def test_a_pyproject_edit_outside_tool_am_patch_is_no_policy_change(project: Project) -> None:
    body = "p = Path('pyproject.toml')\np.write_text(p.read_text().replace('0.1.0', '0.2.0'))\n"
    project.patch("issue_4.py", ["pyproject.toml"], body)

    assert_success(project.run("4", "Version", *NO_GATES))


def test_a_workflow_key_is_no_policy_change(project: Project) -> None:
    project.patch(
        "issue_5.py",
        ["am_patch.toml"],
        "Path('am_patch.toml').write_text('failure_zips_keep = 2\\n')\n",
    )

    assert_success(project.run("5", "Keep fewer zips", *NO_GATES))


def test_the_flag_lets_a_human_land_a_policy_change(project: Project) -> None:
    project.patch(
        "issue_6.py",
        ["am_patch.toml"],
        "Path('am_patch.toml').write_text('patch_timeout_s = 60\\n')\n",
    )

    out = project.run("6", "Shorter patches", policy.FLAG, *NO_GATES)

    assert_success(out)
    assert (
        "policy change allowed by --allow-policy-change: patch_timeout_s: 300 -> 60" in out.stdout
    )
    assert project.git("show", "HEAD:am_patch.toml") == "patch_timeout_s = 60"


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (".pre-commit-config.yaml", "repos: []\n"),
        ("am_patch.toml", "gates_order = [\n"),  # a config that no longer loads
        ("am_patch.toml", 'gate_python = "tools/py"\n'),
        ("am_patch.toml", "[gates.pytest]\ncommand = ['true']\n"),
    ],
)
def test_what_decides_later_runs_is_policy(project: Project, path: str, text: str) -> None:
    project.patch("issue_7.py", [path], f"Path({path!r}).write_text({text!r})\n")

    out = project.run("7", "Policy", *NO_GATES)

    assert_fails(out, "SCOPE:POLICY")
    assert path in out.line("REASON:") or ":" in out.line("REASON:")


def test_an_in_tree_hooks_path_is_policy(project: Project) -> None:
    project.git("config", "core.hooksPath", ".githooks")
    project.patch(
        "issue_8.py",
        [".githooks/pre-push"],
        "Path('.githooks').mkdir()\nPath('.githooks/pre-push').write_text('#!/bin/sh\\n')\n",
    )

    out = project.run("8", "A hook", *NO_GATES)

    assert_fails(out, "SCOPE:POLICY")
    assert ".githooks/pre-push" in out.line("REASON:")


def test_finalize_live_of_a_policy_change_needs_the_flag(project: Project) -> None:
    before = project.head()
    project.write("am_patch.toml", "max_file_bytes = 0\n")

    out = project.run("-f", "No size limit", *NO_GATES)

    assert_fails(out, "SCOPE:POLICY")
    assert project.head() == before
    assert_success(project.run("-f", "No size limit", policy.FLAG, *NO_GATES))
    assert project.git("show", "HEAD:am_patch.toml") == "max_file_bytes = 0"


def test_a_hand_commit_of_a_policy_change_needs_the_environment_flag(project: Project) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "am_patch.hooks", "install"],
        cwd=project.live,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    project.write("am_patch.toml", "forbidden_paths = []\nallow_undeclared_paths = true\n")
    project.git("add", "am_patch.toml")
    head = project.head()

    refused = git(project.live, "commit", "-q", "-m", "Loosen")

    assert refused.returncode != 0
    assert "policy: allow_undeclared_paths: False -> True" in refused.stderr
    assert policy.ALLOW_ENV in refused.stderr
    assert project.head() == head
    allowed = git(
        project.live, "commit", "-q", "-m", "Loosen", env=hook_env(**{policy.ALLOW_ENV: "1"})
    )
    assert allowed.returncode == 0, allowed.stderr


def server_clone(project: Project) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "am_patch.hooks", "install", "--server", str(project.origin)],
        cwd=project.live,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    other = project.base / "dev"
    assert git(project.base, "clone", "-q", str(project.origin), str(other)).returncode == 0
    return other


def test_a_push_changing_the_policy_needs_a_push_option(project: Project) -> None:
    dev = server_clone(project)
    (dev / "am_patch.toml").write_text('sandbox = "off"\n')
    assert git(dev, "add", "am_patch.toml").returncode == 0
    assert git(dev, "commit", "-q", "-m", "Jail off").returncode == 0
    tip = project.origin_head()

    refused = git(dev, "push", "origin", "main")

    assert refused.returncode != 0
    assert "policy: sandbox: 'bwrap' -> 'off'" in refused.stderr, refused.stderr
    assert policy.PUSH_OPTION in refused.stderr
    assert project.origin_head() == tip
    allowed = git(dev, "push", "-o", policy.PUSH_OPTION, "origin", "main")
    assert allowed.returncode == 0, allowed.stderr


def test_the_runner_tells_a_guarded_server_when_the_human_allowed_the_change(
    project: Project,
) -> None:
    server_clone(project)
    project.patch(
        "issue_9.py",
        ["am_patch.toml"],
        "Path('am_patch.toml').write_text('patch_timeout_s = 60\\n')\n",
    )

    out = project.run("9", "Shorter patches", policy.FLAG, *NO_GATES)

    assert_success(out)
    assert out.line("PUSH:") == "PUSH: OK", out.output
    assert project.origin_head() == project.head()


def test_policy_keys_are_every_key_but_the_workflow_ones() -> None:
    keys = set(config.policy_keys())
    assert {"sandbox", "sandbox_gates", "bwrap", "gate_python", "audit_command"} <= keys
    assert {"forbidden_paths", "max_file_bytes", "gates_order", "blessed_outputs"} <= keys
    assert not keys & {"failure_zips_keep", "max_rebase_attempts", "rollback_workspace_on_fail"}
