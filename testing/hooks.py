"""Git hooks as a user meets them: real git commands with the hooks installed, their state
before and after, and what a server said back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from testing.project import Project

REPO_ROOT = Path(__file__).resolve().parents[1]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"

# the demo project's calc.py and test, as hand commits change them
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


def hook_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def mktree(cwd: Path, listing: str) -> str:
    """A tree object written by git mktree, which, unlike git add, does not vet the names."""
    done = run(["git", "mktree"], cwd, stdin=listing)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
