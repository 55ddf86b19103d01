"""A live clone of a bare origin holding a tiny src-layout project whose gates pass."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from am_patch.demo import GIT_IDENTITY, make_project

NO_GATES = ("--override", "gates_order=[]")


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

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

    def status(self) -> str:
        """`git status --porcelain` including ignored files, for before/after comparisons."""
        return self.git("status", "--porcelain", "--untracked-files=all")

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
