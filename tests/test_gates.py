"""Gates end to end: chosen by scope, run on the workspace's code, their edits land."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from am_patch.config import load
from am_patch.gates import python_for
from testing.project import CALC, CALC_WITH_SUB, Outcome, Project

TEST = "tests/test_calc.py"
ONLY_PYTEST = ("--override", 'gates_order=["pytest"]')
NOISY_FAILING_TEST = """
p = Path("tests/test_calc.py")
p.write_text(
    p.read_text()
    + "\\n\\ndef test_noisy() -> None:\\n"
    + "    for i in range(200):\\n"
    + "        print(f'NOISE-{i:03d}')\\n"
    + "    assert add(1, 1) == 3\\n"
)
"""
HALF_RETURNS_FLOAT = """
p = Path("src/democalc/calc.py")
p.write_text(p.read_text() + "\\n\\ndef half(a: int) -> int:\\n    return a / 2\\n")
"""


def gate_lines(out: Outcome) -> list[str]:
    return [line for line in out.stdout.splitlines() if line.startswith("GATE ")]


def assert_nothing_landed(project: Project, before: str, out: Outcome) -> None:
    assert out.code == 1, out.stdout + out.stderr
    assert project.head() == before
    assert project.origin_head() == before


def test_breaking_a_test_fails_pytest_with_a_tail_on_screen(project: Project) -> None:
    before = project.head()
    project.patch("issue_41.py", [TEST], NOISY_FAILING_TEST)

    out = project.run("41", "Noisy test")
    assert out.result_line == "RESULT: FAIL GATES:PYTEST"
    assert_nothing_landed(project, before, out)
    assert "1 failed" in out.stdout, "the failing gate's tail belongs on screen"
    assert "NOISE-000" not in out.stdout, "only a short tail belongs on screen"
    log = project.log_of(out)
    assert "NOISE-000" in log and "NOISE-199" in log, "the full gate output belongs in the log"
    assert "-m pytest" in log


def test_type_error_fails_mypy(project: Project) -> None:
    before = project.head()
    project.patch("issue_42.py", [CALC], HALF_RETURNS_FLOAT)

    out = project.run("42", "Half")
    assert out.result_line == "RESULT: FAIL GATES:MYPY"
    assert_nothing_landed(project, before, out)
    assert [line.split(" in ")[0] for line in gate_lines(out)[-2:]] == [
        "GATE pytest: PASS",
        "GATE mypy: FAIL",
    ]
    assert "Incompatible return value type" in project.log_of(out)


def test_formatter_and_fixer_edits_are_committed(project: Project) -> None:
    ugly = (
        '"""Arithmetic."""\n'
        "import sys\n"
        "import os\n\n\n"
        "def add(a:int,b:int)->int:\n"
        "    return a+b\n\n\n"
        "def where()->str:\n"
        "    return os.sep+sys.platform\n"
    )
    project.patch("issue_43.py", [CALC], f"Path({CALC!r}).write_text({ugly!r})\n")

    out = project.run("43", "Ugly but valid")
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    committed = project.git("show", f"HEAD:{CALC}")
    assert "def add(a: int, b: int) -> int:" in committed
    assert "return os.sep + sys.platform" in committed
    assert committed.index("import os") < committed.index("import sys"), "ruff --fix sorts"
    assert (project.live / CALC).read_text() == committed + "\n"
    assert project.git("--git-dir", str(project.origin), "show", f"main:{CALC}") == committed
    assert project.status() == ""


def test_docs_only_patch_runs_no_gate_and_lands(project: Project) -> None:
    project.patch("issue_44.py", ["README.md"], 'Path("README.md").write_text("# new docs\\n")\n')

    out = project.run("44", "Docs")
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    lines = gate_lines(out)
    assert len(lines) == 6  # pre_commit too: this tree has no .pre-commit-config.yaml
    assert all("SKIPPED" in line for line in lines), lines
    assert project.git("show", "HEAD:README.md") == "# new docs"


def test_r_runs_every_gate_on_a_docs_only_patch(project: Project) -> None:
    project.patch("issue_45.py", ["README.md"], 'Path("README.md").write_text("# new docs\\n")\n')

    out = project.run("45", "Docs", "-r")
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    names = [line.split()[1].rstrip(":") for line in gate_lines(out)]
    assert names == ["pre_commit", "compile", "ruff_format", "ruff", "pytest", "mypy"]
    assert "pre_commit: SKIPPED (no .pre-commit-config.yaml in the tree)" in gate_lines(out)[0]
    assert all(": PASS" in line for line in gate_lines(out)[1:]), gate_lines(out)


def test_g_lets_a_failing_gate_through(project: Project) -> None:
    before = project.head()
    project.patch("issue_46.py", [TEST], NOISY_FAILING_TEST)

    out = project.run("46", "Known failure", "-g", *ONLY_PYTEST)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    lines = gate_lines(out)
    assert len(lines) == 1 and lines[0].startswith("GATE pytest: FAIL"), lines
    assert project.git("rev-parse", "HEAD~1") == before
    assert project.origin_head() == project.head()


def test_gates_order_decides_which_failure_is_reported(project: Project) -> None:
    before = project.head()
    body = HALF_RETURNS_FLOAT + NOISY_FAILING_TEST
    project.patch("issue_47.py", [CALC, TEST], body)

    out = project.run("47", "Both broken", "--override", 'gates_order=["mypy", "pytest"]')
    assert out.result_line == "RESULT: FAIL GATES:MYPY"
    assert_nothing_landed(project, before, out)
    # side by side, pytest may have run or been cancelled; it never decides the result
    assert next(line.split()[1] for line in gate_lines(out)) == "mypy:"


def test_per_gate_timeout_fails_the_gate(project: Project) -> None:
    body = """
    p = Path("tests/test_calc.py")
    p.write_text(p.read_text() + "\\n\\ndef test_slow() -> None:\\n"
                 "    import time\\n    time.sleep(60)\\n")
    """
    project.patch("issue_48.py", [TEST], body)

    start = time.monotonic()
    out = project.run("48", "Slow", *ONLY_PYTEST, "--override", "gates.pytest.timeout_s=1")
    assert out.result_line == "RESULT: FAIL GATES:PYTEST"
    assert "timed out" in out.line("REASON:")
    assert time.monotonic() - start < 40, "the gate was not stopped at its timeout"


# --- issue item 9: gates import the workspace's code, not live's editable install ---------

DOUBLE_ADD = """
p = Path("src/democalc/calc.py")
p.write_text(p.read_text().replace("return a + b", "return 2 * (a + b)"))
t = Path("tests/test_calc.py")
t.write_text(t.read_text().replace("add(2, 3) == 5", "add(2, 3) == 10"))
"""
BREAK_ADD = """
p = Path("src/democalc/calc.py")
p.write_text(p.read_text().replace("return 2 * (a + b)", "return a - b"))
"""


def editable_live_venv(project: Project) -> Path:
    """<live>/.venv with democalc 'installed' in editable mode and our test tools importable.

    The project then drops pytest's `pythonpath = ["src"]`, as projects relying on an editable
    install do, so nothing but the runner decides where `import democalc` goes.
    """
    pyproject = project.live / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('pythonpath = ["src"]\n', ""))
    assert "pythonpath" not in pyproject.read_text()
    project.commit_all("Rely on the editable install")
    venv = project.live / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # a venv on top of our own (whose pytest and mypy _test_tools.pth makes importable): the jail
    # exposes each venv on the interpreter's link chain, never what a .pth file names
    python.unlink()
    python.symlink_to(sys.executable)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "_democalc_editable.pth").write_text(f"{project.live / 'src'}\n")
    (Path(purelib) / "_test_tools.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run(
        [str(python), "-c", "import democalc, pytest; print(democalc.__file__)"],
        cwd=project.base,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where == str(project.live / "src/democalc/__init__.py"), "editable install not set up"
    assert project.status() == "", ".venv must be ignored"
    return python


@pytest.mark.parametrize("sandboxed", [True, False], ids=["jailed_gates", "unjailed_gates"])
def test_gates_test_the_workspace_code_not_the_editable_install(
    project: Project, sandboxed: bool
) -> None:
    editable_live_venv(project)
    options = (
        *("--override", 'gates_order=["pytest", "mypy"]'),
        *("--override", f"sandbox_gates={str(sandboxed).lower()}"),
    )
    project.patch("issue_49.py", [CALC, TEST], DOUBLE_ADD)

    out = project.run("49", "Double add", *options)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert ".venv/bin/python -m pytest" in project.log_of(out), "live's venv ran the gates"
    assert "2 * (a + b)" in (project.live / CALC).read_text()

    before = project.head()
    project.patch("issue_50.py", [CALC], BREAK_ADD)
    out = project.run("50", "Break add", *options)
    assert out.result_line == "RESULT: FAIL GATES:PYTEST", "gates tested live's code, not the patch"
    assert project.head() == before


# --- gate outputs and rewriters: what lands is what every gate ran on ------------------------

JUNIT = "audit/results/pytest_junit.xml"
PYTEST_WITH_JUNIT = (
    "--override",
    'gates.pytest.command=["{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider", '
    f'"--rootdir=.", "--junitxml={JUNIT}"]',
    "--override",
    f'blessed_outputs=["{JUNIT}"]',
)
EXTRA = "src/democalc/extra.py"
# the reviewer's case: ruff --fix drops the import after ruff format ran, which leaves three
# blank lines that ruff format would collapse
IMPORT_OS_UNFORMATTED = '"""Extra."""\nimport os\n\n\ndef inc(a:int)->int:\n    return a+1\n'


def test_blessed_junit_written_by_pytest_passes_and_is_promoted(project: Project) -> None:
    more = "\n\ndef test_more() -> None:\n    assert add(1, 1) == 2\n"
    project.patch(
        "issue_51.py", [TEST], f"p = Path({TEST!r})\np.write_text(p.read_text() + {more!r})"
    )

    out = project.run("51", "More tests", *PYTEST_WITH_JUNIT)

    assert out.result_line == "RESULT: SUCCESS", out.output
    assert any(line.startswith("GATE pytest: PASS") for line in gate_lines(out)), gate_lines(out)
    committed = project.git("show", f"HEAD:{JUNIT}")
    assert "<testsuite" in committed and 'tests="2"' in committed
    assert project.git("show", "HEAD", "--name-only", "--format=").splitlines() == [JUNIT, TEST]
    assert (project.live / JUNIT).read_text().strip() == committed
    assert project.origin_head() == project.head()
    assert project.status() == ""


def ruff_says(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=project.live,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_gate_ran_on_the_tree_the_rewriters_left(project: Project) -> None:
    project.patch("issue_52.py", [EXTRA], f"Path({EXTRA!r}).write_text({IMPORT_OS_UNFORMATTED!r})")

    out = project.run("52", "Extra")

    assert out.result_line == "RESULT: SUCCESS", out.output
    assert "import os" not in project.git("show", f"HEAD:{EXTRA}")
    fmt = ruff_says(project, "format", "--check", EXTRA)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = ruff_says(project, "check", EXTRA)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    log = project.log_of(out)
    assert log.count("-m ruff format") >= 2, "format must run again on what ruff --fix left"
    assert "again on the tree they left" in log


def test_no_gate_runs_twice_when_no_rewriter_changes_anything(project: Project) -> None:
    project.patch("issue_53.py", [CALC], f"Path({CALC!r}).write_text({CALC_WITH_SUB!r})")

    out = project.run("53", "Sub")

    assert out.result_line == "RESULT: SUCCESS", out.output
    log = project.log_of(out)
    for command in ("-m compileall", "-m ruff format", "-m ruff check", "-m pytest", "-m mypy"):
        assert log.count(command) == 1, command


def test_a_rewriter_that_never_settles_fails_naming_its_files(project: Project) -> None:
    before = project.head()
    project.patch("issue_54.py", [CALC], f"Path({CALC!r}).write_text({CALC_WITH_SUB!r})")
    grow = f"import pathlib; p = pathlib.Path({CALC!r}); p.write_text(p.read_text() + '#')"
    options = (
        *("--override", 'gates_order=["grow", "pytest"]'),
        *("--override", f"gates.grow.command={json.dumps(['{python}', '-c', grow])}"),
        *("--override", "gates.grow.rewrites=true"),
        "-g",  # even with -g: no tree passed both gates
    )

    out = project.run("54", "Sub", *options)

    assert out.result_line == "RESULT: FAIL GATES:GROW", out.output
    assert f"gate grow still changed {CALC} after 3 rounds" in out.line("REASON:")
    assert f"GATE grow: FAIL (still changing {CALC} after 3 rounds)" in gate_lines(out)
    assert_nothing_landed(project, before, out)


def test_relative_gate_python_is_taken_from_the_project_root(tmp_path: Path) -> None:
    def python(value: str) -> Path:
        return python_for(load(tmp_path, overrides=(f"gate_python={value}",)), tmp_path / "repo")

    assert python("venv/bin/python") == tmp_path / "repo" / "venv" / "bin" / "python"
    assert python(sys.executable) == Path(sys.executable)
    assert python("python3") == Path("python3")


# --- the gates see exactly the tree that lands: no ignored file of the workspace -------------

VERSION_FILE = "src/democalc/_version.py"
USES_IGNORED_VERSION = f"""
Path({VERSION_FILE!r}).write_text('VERSION = "1.0"\\n')
p = Path({CALC!r})
p.write_text(
    p.read_text().replace(
        '\"\"\"Arithmetic.\"\"\"\\n',
        '\"\"\"Arithmetic.\"\"\"\\n\\nfrom democalc._version import VERSION\\n',
    )
    + "\\n\\ndef version() -> str:\\n    return VERSION\\n"
)
"""


def test_an_ignored_file_the_patch_wrote_is_not_seen_by_the_gates(project: Project) -> None:
    gitignore = project.live / ".gitignore"
    gitignore.write_text(gitignore.read_text() + "_version.py\n")
    before = project.commit_all("Ignore the generated version file")
    project.patch("issue_10.py", [CALC], USES_IGNORED_VERSION)

    out = project.run("10", "Use the version")

    assert out.result_line == "RESULT: FAIL GATES:PYTEST", out.output
    assert "_version" in project.log_of(out), "pytest must fail on the missing import"
    assert_nothing_landed(project, before, out)
    assert not (project.live / VERSION_FILE).exists()
    repo = project.workspace_repo("10")
    assert not (repo / VERSION_FILE).exists(), "the rollback removes the ignored file too"
    assert "from democalc._version" not in (repo / CALC).read_text()


@pytest.mark.parametrize("name", ["pytest.toml", ".pytest.toml", ".pytest.ini", "py.typed"])
def test_a_patch_touching_only_a_tool_config_runs_the_project_gates(
    project: Project, name: str
) -> None:
    body = {
        "pytest.toml": '[pytest]\naddopts = ["--no-such-option"]\n',
        ".pytest.toml": '[pytest]\naddopts = ["--no-such-option"]\n',
        ".pytest.ini": "[pytest]\naddopts = --no-such-option\n",
        "py.typed": "",
    }[name]
    path = f"src/democalc/{name}" if name == "py.typed" else name
    project.patch("issue_47.py", [path], f"Path({path!r}).write_text({body!r})\n")

    out = project.run("47", "Tool config only", "-g")

    ran = [line for line in gate_lines(out) if "SKIPPED" not in line]
    assert [line.split()[1].rstrip(":") for line in ran] == ["pytest", "mypy"], gate_lines(out)
    if name != "py.typed":  # pytest reads it: exit 4, a usage error
        assert "pytest: FAIL" in out.stdout, out.output
