"""A live clone of a bare origin holding a tiny src-layout project whose gates pass."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from am_patch.demo import GIT_IDENTITY, make_project

NO_GATES = ("--override", "gates_order=[]")
# The demo project's src/democalc/calc.py with sub() added: a whole-file rewrite, so idempotent.
CALC_WITH_SUB = '''"""Arithmetic."""


def add(a: int, b: int) -> int:
    return a + b


def sub(a: int, b: int) -> int:
    return a - b
'''


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr: what an assertion message should show."""
        return self.stdout + self.stderr

    @property
    def result_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def line(self, prefix: str) -> str:
        """The first summary line starting with prefix (e.g. 'PUSH:')."""
        for line in self.stdout.splitlines():
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting {prefix!r} in:\n{self.stdout}\n{self.stderr}")


@dataclass(frozen=True)
class Project:
    base: Path
    origin: Path
    live: Path

    @classmethod
    def create(cls, base: Path, files: dict[str, str] | None = None) -> Project:
        origin, live = make_project(base, files)
        (live / "patches").mkdir()
        return cls(base=base, origin=origin, live=live)

    @property
    def patches(self) -> Path:
        return self.live / "patches"

    def git(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        done = subprocess.run(
            ["git", *GIT_IDENTITY, *args],
            cwd=cwd or self.live,
            capture_output=True,
            text=True,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"git {args} failed: {done.stdout}{done.stderr}")
        return done.stdout.strip()

    def head(self) -> str:
        return self.git("rev-parse", "main")

    def origin_head(self) -> str:
        return self.git("--git-dir", str(self.origin), "rev-parse", "main")

    def status(self, cwd: Path | None = None) -> str:
        """`git status --porcelain` listing every untracked file, for before/after comparisons."""
        return self.git("status", "--porcelain", "--untracked-files=all", cwd=cwd)

    def refs(self) -> str:
        """Every ref and the object it points at, one a line."""
        return self.git("for-each-ref", "--format=%(refname) %(objectname)")

    def repo_state(self, *, include_patches: bool = True) -> tuple[str, str, str, str]:
        """Main, origin's main, status and refs, for before/after comparisons. Without
        include_patches the status leaves out patches/, am-patch's own area."""
        head, origin_head, status = self.head(), self.origin_head(), self.status()
        if not include_patches:
            status = "\n".join(
                line for line in status.splitlines() if not line[3:].startswith("patches/")
            )
        return head, origin_head, status, self.refs()

    def worktrees(self) -> list[str]:
        """The worktree paths git knows of, the live repo first."""
        listing = self.git("worktree", "list", "--porcelain")
        return [
            line.removeprefix("worktree ")
            for line in listing.splitlines()
            if line.startswith("worktree ")
        ]

    def workspace_dir(self, issue: str) -> Path:
        """patches/workspaces/issue_<issue>: the issue's meta.json and repo/."""
        return self.patches / "workspaces" / f"issue_{issue}"

    def workspace_repo(self, issue: str) -> Path:
        """The issue's worktree."""
        return self.workspace_dir(issue) / "repo"

    def meta(self, issue: str) -> dict[str, object]:
        """The issue workspace's meta.json."""
        data = json.loads((self.workspace_dir(issue) / "meta.json").read_text())
        assert isinstance(data, dict)
        return data

    def log_path(self, out: Outcome) -> Path:
        """The run's log, as its summary's LOG: line names it."""
        return self.live / out.line("LOG:").removeprefix("LOG: ")

    def log_of(self, out: Outcome) -> str:
        return self.log_path(out).read_text()

    def newest_log(self) -> str:
        """The log patches/am_patch.log points at: the latest run's."""
        return (self.patches / "am_patch.log").read_text()

    def write(self, rel: str, text: str) -> Path:
        path = self.live / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def patch(self, name: str, files: list[str] | str, body: str = "") -> Path:
        """Write patches/<name>, a patch script declaring files and running body."""
        header = f"FILES = {files!r}\n" if isinstance(files, list) else files
        return self.write(
            f"patches/{name}", "from pathlib import Path\n" + header + textwrap.dedent(body)
        )

    def commit_all(self, message: str, push: bool = True) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        if push:
            self.git("push", "-q", "origin", "main")
        return self.head()

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 300) -> Outcome:
        done = subprocess.run(
            [sys.executable, "-m", "am_patch", *args],
            cwd=cwd or self.live,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)
