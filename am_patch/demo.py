"""A throw-away live repo with a bare origin and a small src-layout project; runs a sample patch."""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

from am_patch import git as gitcli

PROJECT_FILES = {
    "pyproject.toml": """\
        [project]
        name = "democalc"
        version = "0.1.0"
        requires-python = ">=3.11"

        [tool.ruff]
        line-length = 100

        [tool.ruff.lint]
        select = ["E", "F", "I"]

        [tool.mypy]
        strict = true
        files = ["src"]

        [tool.pytest.ini_options]
        testpaths = ["tests"]
        pythonpath = ["src"]
        """,
    ".gitignore": """\
        __pycache__/
        .venv/
        .mypy_cache/
        .ruff_cache/
        """,
    "README.md": "# democalc\n\nA tiny calculator.\n",
    "src/democalc/__init__.py": '"""A tiny calculator."""\n',
    "src/democalc/calc.py": """\
        \"\"\"Arithmetic.\"\"\"


        def add(a: int, b: int) -> int:
            return a + b
        """,
    "tests/test_calc.py": """\
        from democalc.calc import add


        def test_add() -> None:
            assert add(2, 3) == 5
        """,
}

# A .pre-commit-config.yaml of local hooks that need no prepared environment: a pygrep check,
# a `system` shell syntax check and a `system` fixer (the tests and bench/pre_commit_gate.py).
LOCAL_HOOKS = """\
repos:
- repo: local
  hooks:
  - id: no-todo
    name: no TODO markers
    language: pygrep
    entry: TODO
    types: [text]
  - id: sh-syntax
    name: shell syntax
    language: system
    entry: bash -n
    files: \\.sh$
  - id: strip-trailing
    name: strip trailing whitespace
    language: system
    entry: sed -i -e 's/[[:space:]]*$//'
    types: [text]
"""

SAMPLE_PATCH = '''\
"""Issue 1: add multiply() to the calculator, with a test."""

from pathlib import Path

FILES = ["src/democalc/calc.py", "tests/test_calc.py"]

calc = Path("src/democalc/calc.py")
calc.write_text(
    calc.read_text()
    + "\\n\\ndef multiply(a: int, b: int) -> int:\\n    return a * b\\n"
)
tests = Path("tests/test_calc.py")
tests.write_text(
    tests.read_text().replace("import add", "import add, multiply")
    + "\\n\\ndef test_multiply() -> None:\\n    assert multiply(4, 5) == 20\\n"
)
'''

GIT_IDENTITY = (
    "-c",
    "user.name=am-patch demo",
    "-c",
    "user.email=demo@example.invalid",
    "-c",
    "init.defaultBranch=main",
    "-c",
    "commit.gpgsign=false",
)


def git(cwd: Path, *args: str) -> str:
    result = gitcli.run([*GIT_IDENTITY, *args], cwd=cwd, quiet=True)
    if not result.ok:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {result.output}")
    return result.output


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def make_project(base: Path, files: dict[str, str] | None = None) -> tuple[Path, Path]:
    """base/origin.git (bare) and base/live (a clone on main with one pushed commit)."""
    base = base.resolve()
    base.mkdir(parents=True, exist_ok=True)
    origin = base / "origin.git"
    live = base / "live"
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(base, "init", "-q", "-b", "main", str(live))
    git(live, "config", "user.name", "am-patch demo")
    git(live, "config", "user.email", "demo@example.invalid")
    write_files(live, PROJECT_FILES if files is None else files)
    git(live, "add", "-A")
    git(live, "commit", "-q", "-m", "Initial project")
    git(live, "remote", "add", "origin", str(origin))
    git(live, "push", "-q", "-u", "origin", "main")
    return origin, live


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m am_patch.demo", description=__doc__)
    parser.add_argument("--dir", type=Path, help="where to build (default: a new temp dir)")
    args = parser.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="am-patch-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    _, live = make_project(base)
    (live / "patches").mkdir()
    (live / "patches" / "issue_1.py").write_text(SAMPLE_PATCH)
    print(f"demo repository: {live} (origin: {base / 'origin.git'})")
    print(f'$ am-patch 1 "Add multiply"   # in {live}\n', flush=True)
    from am_patch.cli import main as am_patch_main

    code = am_patch_main(["--repo", str(live), "1", "Add multiply"])
    print(f"\norigin/main is now: {git(base / 'origin.git', 'log', '--oneline', '-1').strip()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
