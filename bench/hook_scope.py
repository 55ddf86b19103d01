"""Time the hooks on a 20,000-file repository with a README-only staged change.

Run as `python bench/hook_scope.py`. Each hook runs as git runs it: a fresh interpreter with the
repository as its working directory. `am-patch-hook scope` is the scope check alone;
`am-patch-hook pre-commit` is what the installed shim runs (scope, then the gates, which skip a
docs-only change without checking the tree out). Baselines from the same run: bare interpreter
start-up with pygit2 imported, and `git diff --cached --quiet`. Target (issue 5): both under
200 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

TARGET_MS = 200.0


def git_env(home: Path) -> dict[str, str]:
    """This machine's git configuration sealed off; a fixed identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
    )
    return env


def git(repo: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def build(repo: Path, env: dict[str, str], files: int) -> None:
    """A repository of `files` small files in nested directories, one commit, one staged edit."""
    git(repo.parent, env, "init", "-q", "-b", "main", str(repo))
    for n in range(files):
        path = repo / f"pkg{n % 50:02d}" / f"sub{n % 7}" / f"file_{n:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"line {n}\n")
    (repo / "README.md").write_text("# bench\n")
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "-m", "20k files")
    (repo / "README.md").write_text("# bench\n\nchanged\n")
    git(repo, env, "add", "README.md")


Command = tuple[Sequence[str], int, dict[str, str]]  # argv, expected exit code, extra env


def timings(
    commands: dict[str, Command], *, cwd: Path, env: dict[str, str], reps: int
) -> dict[str, float]:
    """Median wall time (ms) of each command, interleaved so that machine noise hits all alike.

    Each command must exit with its expected code (the hook must accept the commit).
    """
    times: dict[str, list[float]] = {name: [] for name in commands}
    for rep in range(reps + 1):  # the first round warms caches (bytecode, page cache)
        for name, (argv, expect, extra) in commands.items():
            start = time.perf_counter()
            done = subprocess.run(
                argv, cwd=cwd, env={**env, **extra}, capture_output=True, text=True
            )
            elapsed = (time.perf_counter() - start) * 1000
            if done.returncode != expect:
                raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
            if rep:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=21)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="am-patch-bench-") as tmp:
        base = Path(tmp)
        (base / "home").mkdir()
        env = git_env(base / "home")
        repo = base / "repo"
        started = time.perf_counter()
        build(repo, env, args.files)
        print(f"built {args.files} files in {time.perf_counter() - started:.1f}s: {repo}")
        # An installed package has its bytecode compiled; keep ours out of the source tree.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        python = sys.executable
        figures = timings(
            {
                "hook": ([python, "-m", "am_patch.hooks", "scope"], 0, {}),
                "pre_commit": ([python, "-m", "am_patch.hooks", "pre-commit"], 0, {}),
                "startup": ([python, "-c", "import pygit2"], 0, {}),
                "diff": (["git", "diff", "--cached", "--quiet"], 1, {}),
                "no_pyc": (
                    [python, "-m", "am_patch.hooks", "scope"],
                    0,
                    {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(base / "empty")},
                ),
            },
            cwd=repo,
            env=env,
            reps=args.reps,
        )
    hook, startup, diff = figures["hook"], figures["startup"], figures["diff"]
    pre_commit = figures["pre_commit"]
    print(f"am-patch-hook scope:         {hook:7.1f} ms (median of {args.reps})")
    print(
        f"  the same, no bytecode cache: {figures['no_pyc']:7.1f} ms (am_patch compiled each run)"
    )
    print(f"am-patch-hook pre-commit:    {pre_commit:7.1f} ms (the installed hook; no gate runs)")
    print(f"python -c 'import pygit2':   {startup:7.1f} ms")
    print(f"git diff --cached --quiet:   {diff:7.1f} ms")
    for name, value in (("scope", hook), ("pre-commit", pre_commit)):
        print(f"{name + ' / python start-up:':32}{value / startup:7.2f}x")
        print(f"{name + ' / git diff --cached:':32}{value / diff:7.2f}x")
    worst = max(hook, pre_commit)
    verdict = "OK" if worst < TARGET_MS else "OVER"
    print(f"target < {TARGET_MS:.0f} ms for both: {verdict}")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
