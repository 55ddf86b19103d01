"""A live clone of a bare origin holding a tiny src-layout project whose gates pass."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from am_patch.crash import ENV as CRASH_ENV
from am_patch.demo import GIT_IDENTITY, PROJECT_FILES, make_project

NO_GATES = ("--override", "gates_order=[]")
CALC = "src/democalc/calc.py"  # the demo project's module
ILL_TYPED = "\n\ndef bad(a: int) -> str:\n    return a\n"  # appended to CALC: mypy fails it
# A gate that passes in an issue workspace and fails anywhere else (the live-gates checkout).
PROBE_GATE = (
    "--override",
    "gates_order=['probe']",
    "--override",
    "gates.probe.runs_on=always",
    "--override",
    "gates.probe.command=['{python}', '-c', "
    "'import os, sys; sys.exit(0 if \"/workspaces/issue_\" in os.getcwd() else 3)']",
)
# The demo project's src/democalc/calc.py with sub() added: a whole-file rewrite, so idempotent.
CALC_WITH_SUB = '''"""Arithmetic."""


def add(a: int, b: int) -> int:
    return a + b


def sub(a: int, b: int) -> int:
    return a - b
'''


README_DIFF = (
    "diff --git a/README.md b/README.md\n"
    "--- a/README.md\n"
    "+++ b/README.md\n"
    "@@ -1,3 +1,3 @@\n"
    " # democalc\n"
    " \n"
    "-A tiny calculator.\n"
    "+A small calculator.\n"
)


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

    @property
    def files(self) -> list[tuple[str, str]]:
        """The (status, path) pairs listed under FILES: in the summary."""
        lines = self.stdout.splitlines()
        start = lines.index("FILES:") + 1
        pairs = []
        for line in lines[start:]:
            if not line.startswith("  "):
                break
            status, _, path = line.strip().partition(" ")
            pairs.append((status, path))
        return pairs

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
        """The demo project (or one of `files`) pushed to a bare origin. The demo project is
        built once per test process and copied: a copy is a fraction of eight git commands."""
        if files is None:
            template = _template()
            shutil.copytree(template, base, symlinks=True)
            config = base / "live" / ".git" / "config"
            config.write_text(config.read_text().replace(str(template), str(base.resolve())))
            origin, live = base.resolve() / "origin.git", base.resolve() / "live"
        else:
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

    def worktrees(self, *, pooled: bool = False) -> list[str]:
        """The worktree paths git knows of, the live repo first; idle ones kept in the pool for
        the next issue (patches/workspaces/.pool) only when `pooled`."""
        listing = self.git("worktree", "list", "--porcelain")
        return [
            line.removeprefix("worktree ")
            for line in listing.splitlines()
            if line.startswith("worktree ") and (pooled or "/workspaces/.pool/" not in line)
        ]

    def pool(self) -> list[Path]:
        """The idle worktrees kept for the next issue."""
        pool = self.patches / "workspaces" / ".pool"
        return sorted(p / "repo" for p in pool.glob("slot_*")) if pool.is_dir() else []

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

    def readme_patch(self, issue: str, text: str) -> Path:
        """patches/issue_<issue>.py rewriting README.md to text (idempotent, so reruns agree)."""
        return self.file_patch(issue, "README.md", text)

    def file_patch(self, issue: str, rel: str, text: str) -> Path:
        """patches/issue_<issue>.py writing text to rel (its directory made if new)."""
        return self.patch(
            f"issue_{issue}.py",
            [rel],
            f"Path({rel!r}).parent.mkdir(parents=True, exist_ok=True)\n"
            f"Path({rel!r}).write_text({text!r})\n",
        )

    def ill_typed_patch(self, issue: str) -> Path:
        """patches/issue_<issue>.py appending to calc.py a function pytest passes, mypy fails."""
        body = f"p = Path({CALC!r})\np.write_text(p.read_text() + {ILL_TYPED!r})\n"
        return self.patch(f"issue_{issue}.py", [CALC], body)

    def calc_patch(self, issue: str) -> Path:
        """patches/issue_<issue>.py adding sub() to calc.py (the whole file: idempotent)."""
        return self.patch(
            f"issue_{issue}.py", [CALC], f"Path({CALC!r}).write_text({CALC_WITH_SUB!r})\n"
        )

    def half_done_patch(self, issue: str, then: str = "") -> str:
        """patches/issue_<issue>.py: it half-writes calc.py and adds stray.txt, then runs the
        code in then. calc.py's text before."""
        self.patch(
            f"issue_{issue}.py",
            [CALC, "stray.txt"],
            f'Path({CALC!r}).write_text("half done\\n")\nPath("stray.txt").write_text("stray\\n")\n'
            + then,
        )
        return (self.live / CALC).read_text()

    def push_from_clone(self, rel: str, text: str, message: str | None = None) -> str:
        """Someone else (a clone in base/other) pushes a commit writing rel to origin/main;
        its id."""
        other = self.base / "other"
        if not other.exists():
            self.git("clone", "-q", str(self.origin), str(other), cwd=self.base)
        self.git("pull", "-q", "--ff-only", cwd=other)
        (other / rel).parent.mkdir(parents=True, exist_ok=True)
        (other / rel).write_text(text)
        self.git("add", "-A", cwd=other)
        self.git("commit", "-q", "-m", message or f"Their change to {rel}", cwd=other)
        self.git("push", "-q", "origin", "main", cwd=other)
        return self.git("rev-parse", "HEAD", cwd=other)

    def reject_pushes(self) -> None:
        """origin's pre-receive hook refuses every push from now on."""
        hook = self.origin / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'rejected by policy' >&2\nexit 1\n")
        hook.chmod(0o755)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """python -m am_patch in the background, its output piped, for tests that interrupt it."""
        return subprocess.Popen(
            [sys.executable, "-m", "am_patch", *args],
            cwd=self.live,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def signal_while_patching(self, signum: int, *args: str) -> tuple[int, str, str]:
        """Run am_patch in the background and send it signum once its patch script runs:
        (exit code, the whole stdout, stderr)."""
        proc = self.start(*args)
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[patch] running"):
                break
        proc.send_signal(signum)
        rest, err = proc.communicate(timeout=60)
        return proc.returncode, "".join(seen) + rest, err

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        timeout: float = 300,
        env: dict[str, str] | None = None,
    ) -> Outcome:
        """`python -m am_patch args`; env adds to (never replaces) the inherited environment."""
        done = subprocess.run(
            [sys.executable, "-m", "am_patch", *args],
            cwd=cwd or self.live,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **env} if env else None,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    def kill_while_landing(self, issue: str) -> str:
        """Run a patch of issue adding sub() to calc.py, killed (SIGKILL) after the promoted
        file is written and before main moves: the landing journal is left. Main's commit."""
        old = self.head()
        calc = "src/democalc/calc.py"
        self.patch(f"issue_{issue}.py", [calc], f"Path({calc!r}).write_text({CALC_WITH_SUB!r})\n")
        killed = self.run(issue, "Add sub", *NO_GATES, env={CRASH_ENV: "landing"})
        assert killed.code == -signal.SIGKILL, killed.output
        assert self.head() == old and (self.live / ".git" / "am_patch_landing.json").is_file()
        return old


@dataclass(frozen=True)
class LiveState:
    """Everything of the live repo a failed or hostile run must not change (patches/, am-patch's
    own area, aside)."""

    head: str
    origin_head: str
    status: str
    files: dict[str, bytes]
    git_config: bytes
    hooks: dict[str, bytes]
    origin_hooks: dict[str, bytes] = field(default_factory=dict)


def _tree_files(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = [d for d in dirnames if str(rel_dir / d) not in skip]
        for name in [*filenames, *(d for d in dirnames if (Path(dirpath) / d).is_symlink())]:
            path = Path(dirpath) / name
            rel = str(rel_dir / name)
            if path.is_symlink():
                files[rel] = b"symlink -> " + os.fsencode(os.readlink(path))
            else:
                files[rel] = path.read_bytes()
    return files


def live_state(project: Project) -> LiveState:
    return LiveState(
        head=project.head(),
        origin_head=project.origin_head(),
        status=project.repo_state(include_patches=False)[2],
        files=_tree_files(project.live, skip=(".git", "patches")),
        git_config=(project.live / ".git" / "config").read_bytes(),
        hooks=_tree_files(project.live / ".git" / "hooks"),
        origin_hooks=_tree_files(project.origin / "hooks"),
    )


@functools.cache
def _template() -> Path:
    """The test project as tests start it: the demo project, except that its pytest never uses
    pytest-xdist (installed for am-patch's own tests, it would add a second of worker start-up
    to every gate run of a two-test project)."""
    base = Path(tempfile.mkdtemp(prefix="am-patch-template-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    files = dict(PROJECT_FILES)
    files["pyproject.toml"] = files["pyproject.toml"].replace(
        'pythonpath = ["src"]\n', 'pythonpath = ["src"]\n        addopts = "-p no:xdist"\n'
    )
    _, live = make_project(base, files)
    (live / "patches").mkdir()
    return base


def outside_tmp_dir() -> Path:
    """A scratch root on the real disk: the jail hides /tmp whole, users' repos live elsewhere."""
    root = Path("/var/tmp")
    if not root.is_dir() or not os.access(root, os.W_OK) or root.resolve().is_relative_to("/tmp"):
        pytest.skip("needs a writable /var/tmp outside /tmp")
    return root


def assert_fails(out: Outcome, code: str) -> None:
    """The run failed (exit 1) with exactly this STAGE:CATEGORY."""
    assert out.code == 1, out.output
    assert out.result_line == f"RESULT: FAIL {code}", out.output


def assert_success(out: Outcome) -> None:
    assert out.code == 0, out.output
    assert out.result_line == "RESULT: SUCCESS", out.output
