"""Gates side by side: rewriters first, then the checking gates at once, each in its own jail and
copy of the tree; warm tool caches no other gate can reach; pytest on every core; progress while
a gate runs long."""

from __future__ import annotations

import re
from pathlib import Path

from testing.project import CALC, Project, assert_fails, assert_success

SLEEPY = "import time; time.sleep({s}); print('{name}', 'done')"  # 'NAME done' only in output


def custom_gates(*gates: tuple[str, str]) -> tuple[str, ...]:
    """--override arguments for custom gates (name, python -c code) that always run, in order."""
    args = ["--override", "gates_order=[" + ", ".join(repr(n) for n, _ in gates) + "]"]
    for name, code in gates:
        args += ["--override", f"gates.{name}.runs_on=always"]
        args += ["--override", f"gates.{name}.command=['{{python}}', '-c', {code!r}]"]
    return tuple(args)


def starts_and_ends(log: str, names: tuple[str, ...]) -> list[str]:
    """The order in which the named gates' commands started and ended, from the run log."""
    events = []
    running: str | None = None
    for line in log.splitlines():
        started = re.search(r"gate (\w+):$", line)
        if started and started.group(1) in names:
            events.append(f"start {started.group(1)}")
        for name in names:
            if f"{name} done" in line:
                running = name
        if running and "-> exit" in line:
            events.append(f"end {running}")
            running = None
    return events


def readme_patch(project: Project) -> None:
    project.patch("issue_1.py", ["README.md"], "Path('README.md').write_text('x\\n')\n")


def test_checking_gates_run_side_by_side(project: Project) -> None:
    readme_patch(project)
    gates = custom_gates(
        ("one", SLEEPY.format(s=2, name="one")), ("two", SLEEPY.format(s=2, name="two"))
    )

    out = project.run("1", "Side by side", *gates, "--override", "gate_jobs=2")

    assert_success(out)
    log = project.log_of(out)
    assert log.index("gate one:") < log.index("one done") and log.index("gate two:") < log.index(
        "one done"
    )
    assert "gate two:" in log[: log.index("two done")]
    assert out.stdout.index("[gates] one: PASS") < out.stdout.index("[gates] two: PASS")


def test_gate_jobs_one_runs_them_one_after_another(project: Project) -> None:
    readme_patch(project)
    gates = custom_gates(
        ("one", SLEEPY.format(s=0, name="one")), ("two", SLEEPY.format(s=0, name="two"))
    )

    out = project.run("1", "One at a time", *gates, "--override", "gate_jobs=1")

    assert_success(out)
    log = project.log_of(out)
    assert log.index("one done") < log.index("gate two:")


def test_a_failure_cancels_the_gates_after_it_and_is_the_one_reported(project: Project) -> None:
    readme_patch(project)
    failing = "import sys; print('quick failure'); sys.exit(3)"
    gates = custom_gates(("quick", failing), ("slow", SLEEPY.format(s=120, name="slow")))

    out = project.run("1", "Cancel", *gates, "--override", "gate_jobs=2", timeout=100)

    assert_fails(out, "GATES:QUICK")
    assert "slow: CANCELLED (another gate failed first)" in out.stdout


def test_a_later_failure_never_hides_an_earlier_one(project: Project) -> None:
    readme_patch(project)
    late_failure = "import time, sys; time.sleep(2); sys.exit(4)"
    gates = custom_gates(("first", late_failure), ("second", "import sys; sys.exit(5)"))

    out = project.run("1", "Order", *gates, "--override", "gate_jobs=2")

    assert_fails(out, "GATES:FIRST")  # second failed sooner, first still decides


TAMPERING_CONFTEST = """\
import pathlib

calc = pathlib.Path("src/democalc/calc.py")
text = calc.read_text()
calc.write_text(text.replace("-> int:\\n    return a / 2", "-> float:\\n    return a / 2"))
"""


def test_a_conftest_cannot_change_what_mypy_judges(project: Project) -> None:
    """pytest runs the patch's conftest.py; with the gates side by side it must not be able to
    fix, in mypy's tree, the type error it carries (mypy would pass a tree that never lands)."""
    before = project.head()
    half = "\\n\\ndef half(a: int) -> int:\\n    return a / 2\\n"
    bad = f"p = Path('src/democalc/calc.py')\np.write_text(p.read_text() + '{half}')\n"
    body = bad + f"Path('tests/conftest.py').write_text({TAMPERING_CONFTEST!r})\n"
    project.patch("issue_2.py", [CALC, "tests/conftest.py"], body)

    out = project.run("2", "Tamper", "--override", "gates_order=['pytest', 'mypy']", "-g")

    assert out.result_line.startswith("RESULT: FAIL GATES:"), out.output
    assert "mypy: FAIL" in out.stdout
    assert project.head() == before


def mypy_caches(project: Project) -> list[Path]:
    root = project.live / ".git" / "am_patch" / "cache" / "mypy"
    return sorted(p for p in root.iterdir()) if root.is_dir() else []


def test_mypy_keeps_a_warm_cache_that_a_test_cannot_reach(project: Project) -> None:
    project.patch(
        "issue_3.py",
        [CALC],
        "p = Path('src/democalc/calc.py')\np.write_text(p.read_text() + '\\n\\nX = 1\\n')\n",
    )
    assert_success(project.run("3", "Warm mypy"))
    [cache] = mypy_caches(project)
    assert any(p.is_file() for p in (cache / "mypy").rglob("*")), "mypy wrote its cache there"
    poison = cache / "mypy" / "PLANTED-BY-A-TEST"
    plant = f"pathlib.Path({str(poison)!r}).write_text('x')"
    conftest = f"import pathlib\ntry:\n    {plant}\nexcept OSError:\n    pass\n"
    project.patch(
        "issue_4.py", ["tests/conftest.py"], f"Path('tests/conftest.py').write_text({conftest!r})\n"
    )

    assert_success(project.run("4", "Hostile conftest"))

    assert not poison.exists(), "a test reached mypy's cache"


def test_a_changed_tool_config_drops_the_warm_cache(project: Project) -> None:
    project.patch(
        "issue_5.py",
        [CALC],
        "p = Path('src/democalc/calc.py')\np.write_text(p.read_text() + '\\n\\nX = 1\\n')\n",
    )
    assert_success(project.run("5", "Warm mypy"))
    [first] = mypy_caches(project)
    stricter = "'strict = true', 'strict = true\\nwarn_unreachable = true'"
    body = f"p = Path('pyproject.toml')\np.write_text(p.read_text().replace({stricter}))\n"
    project.patch("issue_6.py", ["pyproject.toml"], body)

    assert_success(project.run("6", "mypy config"))

    [second] = mypy_caches(project)
    assert second != first and not first.exists()


NO_XDIST = 'addopts = "-p no:xdist"'  # how the test project keeps its two tests quick


def test_pytest_workers_auto_runs_on_every_core_when_xdist_is_installed(project: Project) -> None:
    pyproject = project.live / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(NO_XDIST, ""))
    project.commit_all("Let xdist be")
    readme_patch(project)

    out = project.run(
        "1",
        "xdist",
        "-r",
        "--override",
        "gates_order=['pytest']",
        "--override",
        "gates.pytest.workers=auto",
    )

    assert_success(out)
    assert re.search(r"-m pytest .* -n \d", project.log_of(out)), "pytest-xdist was not used"


def test_pytest_workers_off_and_a_project_setting_n_keep_one_process(project: Project) -> None:
    pyproject = project.live / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(NO_XDIST, ""))
    project.commit_all("Let xdist be")
    readme_patch(project)
    out = project.run(
        "1",
        "one process",
        "-r",
        "--override",
        "gates_order=['pytest']",
        "--override",
        "gates.pytest.workers=off",
    )
    assert_success(out)
    assert not re.search(r"-m pytest .* -n \d", project.log_of(out))
    text = pyproject.read_text()
    pyproject.write_text(
        text.replace('pythonpath = ["src"]', 'pythonpath = ["src"]\naddopts = "-n 1"')
    )
    project.commit_all("The project decides xdist's workers")
    project.patch("issue_7.py", ["README.md"], "Path('README.md').write_text('y\\n')\n")

    out = project.run("7", "project -n", "-r", "--override", "gates_order=['pytest']")

    assert_success(out)
    assert not re.search(r"-m pytest .* -n 2", project.log_of(out))


def test_a_long_gate_shows_a_heartbeat(project: Project) -> None:
    readme_patch(project)
    gates = custom_gates(("slow", SLEEPY.format(s=3, name="slow")))

    out = project.run("1", "Heartbeat", *gates)

    assert_success(out)
    assert re.search(r"\[gates\] running slow \(\d+s\)", out.stdout), out.stdout
    assert out.result_line == "RESULT: SUCCESS"


def test_a_quick_gate_shows_none(project: Project) -> None:
    readme_patch(project)

    out = project.run("1", "Quiet", *custom_gates(("quick", "pass")))

    assert_success(out)
    assert "[gates] running" not in out.stdout
