"""Installing the hooks without clobbering foreign ones; the shims; the pre-commit framework."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from testing.hooks import (
    BROKEN_ADD,
    GOOD_CALC,
    PRE_COMMIT,
    REPO_ROOT,
    commit_file,
    git,
    hook,
    hook_files,
    install,
    run,
)
from testing.project import CALC, Project

# --- install / uninstall ----------------------------------------------------------------------


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
    """As a new user tries it: the scope hook passes, refuses a link, and does not trap a hand
    commit behind a failed attempt's workspace. try-repo installs am-patch into a fresh
    virtualenv on each call (its own temporary store): slow, so kept to three calls."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    env.pop("AM_PATCH_ISSUE", None)
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

    # a failed attempt leaves its workspace, and so its FILES, open
    project.git("reset", "-q")
    (project.live / "host").unlink()
    project.ill_typed_patch("9500")
    assert project.run("9500", "Broken").result_line == "RESULT: FAIL GATES:MYPY"
    project.write("docs/x.md", "# notes\n")
    project.git("add", "docs/x.md")

    trapped = run(argv, project.live, env=env, timeout=600)

    assert trapped.returncode != 0
    assert "docs/x.md: not in the FILES of issue 9500" in trapped.stdout
    assert "AM_PATCH_ISSUE=none git commit" in trapped.stdout
    assert "am-patch --drop-workspace 9500" in trapped.stdout


def test_a_stale_workspace_does_not_trap_a_hand_commit(project: Project) -> None:
    """The ways out the scope hook names (tried through try-repo above): no issue, judged by
    the path policy alone, and dropping the workspace."""
    project.ill_typed_patch("9500")
    assert project.run("9500", "Broken").result_line == "RESULT: FAIL GATES:MYPY"
    project.write("docs/x.md", "# notes\n")
    project.git("add", "docs/x.md")
    assert hook(project.live, "scope").returncode != 0

    none = hook(project.live, "scope", "--issue", "none")
    assert none.returncode == 0, none.stderr
    os.symlink("/etc/hostname", project.live / "host")  # no issue is still the path policy
    project.git("add", "host")
    policed = hook(project.live, "scope", "--issue", "none")
    assert policed.returncode != 0 and "host: symlink to an absolute path" in policed.stderr
    project.git("rm", "-q", "--cached", "host")

    dropped = project.run("--drop-workspace", "9500")

    assert dropped.code == 0, dropped.output
    assert not (project.live / "patches/workspaces/issue_9500").exists()
    assert hook(project.live, "scope").returncode == 0


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
