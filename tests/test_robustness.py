"""When things break around the run: a sandbox that cannot start, a crash or Ctrl-C mid-run, a
missing interpreter or tool. Each fails cleanly, and the workspace is restored."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from am_patch import cli, config, gates, proc, treecheck
from am_patch.errors import Refusal
from testing.project import CALC, NO_GATES, README_DIFF, Outcome, Project, live_state


def fake_bwrap(tmp_path: Path) -> Path:
    """A bwrap that cannot build any jail, like one denied user namespaces."""
    path = tmp_path / "fake-bwrap"
    path.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    path.chmod(0o755)
    return path


def assert_sandbox_refused(out: Outcome) -> str:
    """PREFLIGHT:SANDBOX with a reason naming the cause; the REASON line."""
    assert out.code == 1, out.output
    assert out.result_line == "RESULT: FAIL PREFLIGHT:SANDBOX", out.output
    return out.line("REASON:")


# --- the sandbox is probed in preflight, in every mode -------------------------------------


@pytest.mark.parametrize("gated", [True, False])
def test_a_diff_with_a_broken_bwrap_fails_preflight_before_it_is_applied(
    project: Project, tmp_path: Path, gated: bool
) -> None:
    before = live_state(project)
    project.write("patches/issue_80.patch", README_DIFF)
    args = () if gated else NO_GATES
    out = project.run("80", "Diff", "--override", f"bwrap={fake_bwrap(tmp_path)}", *args)
    reason = assert_sandbox_refused(out)
    assert "sandbox cannot run" in reason and "Permission denied" in reason
    assert live_state(project) == before
    readme = project.workspace_repo("80") / "README.md"
    assert not readme.exists() or "small" not in readme.read_text()
    assert (project.patches / "issue_80.patch").exists()  # still in the inbox for the rerun


def test_a_diff_without_bwrap_fails_preflight_and_applies_nothing(project: Project) -> None:
    before = live_state(project)
    project.write("patches/issue_81.patch", README_DIFF)
    out = project.run("81", "Diff", "--override", "bwrap=/nonexistent/bwrap")
    reason = assert_sandbox_refused(out)
    assert "bubblewrap not found" in reason and "/nonexistent/bwrap" in reason
    assert live_state(project) == before
    readme = project.workspace_repo("81") / "README.md"
    assert not readme.exists() or "small" not in readme.read_text()


def test_finalize_live_with_a_broken_bwrap_fails_preflight(
    project: Project, tmp_path: Path
) -> None:
    project.write("README.md", "# democalc\n\nEdited by hand.\n")
    before = live_state(project)
    out = project.run("-f", "Hand edit", "--override", f"bwrap={fake_bwrap(tmp_path)}")
    assert "sandbox cannot run" in assert_sandbox_refused(out)
    assert live_state(project) == before
    assert (project.live / "README.md").read_text() == "# democalc\n\nEdited by hand.\n"


def test_finalize_workspace_with_a_broken_bwrap_fails_preflight(
    project: Project, tmp_path: Path
) -> None:
    project.patch("issue_82.py", ["README.md"], 'Path("README.md").write_text("# kept\\n")\n')
    kept = project.run("82", "Keep", "--disable-promotion", *NO_GATES)
    assert kept.result_line == "RESULT: SUCCESS", kept.output
    before = live_state(project)
    ws_before = project.status(cwd=project.workspace_repo("82"))
    out = project.run("--finalize-workspace", "82", "--override", f"bwrap={fake_bwrap(tmp_path)}")
    assert "sandbox cannot run" in assert_sandbox_refused(out)
    assert live_state(project) == before
    assert project.status(cwd=project.workspace_repo("82")) == ws_before
    assert (project.workspace_repo("82") / "README.md").read_text() == "# kept\n"


def test_the_probe_runs_once_in_preflight_and_is_logged(project: Project) -> None:
    project.write("patches/issue_83.patch", README_DIFF)
    out = project.run("83", "Diff")
    assert out.result_line == "RESULT: SUCCESS", out.output
    log = project.log_of(out)
    probes = [line for line in log.splitlines() if "sandbox probe" in line]
    assert len(probes) == 1, probes
    assert "bubblewrap" in probes[0]
    assert log.index("sandbox probe") < log.index("[patch]")


def test_without_any_jail_in_use_no_probe_runs(project: Project) -> None:
    project.write("patches/issue_84.patch", README_DIFF)
    out = project.run(
        "84",
        "Diff",
        "--override",
        "bwrap=/nonexistent/bwrap",
        "--override",
        "sandbox_gates=false",
        "--override",
        "sandbox_audit=false",
    )
    assert out.result_line == "RESULT: SUCCESS", out.output


# --- a crash or Ctrl-C mid-run restores the workspace --------------------------------------


def assert_workspace_restored(project: Project, issue: str, calc: str) -> None:
    repo = project.workspace_repo(issue)
    assert (repo / CALC).read_text() == calc
    assert not (repo / "stray.txt").exists()
    assert project.status(cwd=repo) == ""


def test_an_unexpected_error_in_the_gates_rolls_the_workspace_back(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calc = project.half_done_patch("85")
    before = live_state(project)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom-3f9a")

    monkeypatch.setattr(treecheck, "check_tree", broken)
    code = cli.main(["--repo", str(project.live), "85", "Crash", *NO_GATES])
    out = capsys.readouterr().out
    assert code == 1
    assert out.strip().splitlines()[-1] == "RESULT: FAIL INTERNAL:BUG"
    assert "[rollback] workspace restored" in out
    assert_workspace_restored(project, "85", calc)
    assert live_state(project) == before
    # a bug is never archived as a success
    assert not (project.patches / "successful").exists()
    assert not (project.patches / "patched_success.zip").exists()
    assert (project.patches / "unsuccessful" / "issue_85.py").is_file()


def test_ctrl_c_during_a_gate_rolls_the_workspace_back_and_exits_130(project: Project) -> None:
    calc = project.half_done_patch("86")
    before = live_state(project)
    slow = "import pathlib, time; pathlib.Path('gate_started').touch(); time.sleep(120)"
    running = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "am_patch",
            "86",
            "Interrupted",
            "--override",
            f'gates.slow.command=["{{python}}", "-c", "{slow}"]',
            "--override",
            "gates.slow.runs_on=always",
            "--override",
            "gates_order=slow",
        ],
        cwd=project.live,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wdir = project.workspace_dir("86")  # the gates run in a scratch export under it

    def started() -> bool:
        return any(wdir.glob("**/gate_started"))

    deadline = time.monotonic() + 120
    while not started() and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started(), running.communicate()[0] if running.poll() is not None else ""
    running.send_signal(signal.SIGINT)
    output, _ = running.communicate(timeout=60)
    assert running.returncode == 130, output
    assert "[rollback] workspace restored" in output
    assert_workspace_restored(project, "86", calc)
    assert live_state(project) == before


# --- missing interpreters and tools --------------------------------------------------------


def test_a_missing_gate_python_is_a_config_error_naming_the_key(project: Project) -> None:
    project.patch("issue_87.py", ["README.md"], 'Path("README.md").write_text("# hi\\n")\n')
    before = live_state(project)
    out = project.run("87", "Missing python", "--override", "gate_python=/nonexistent/python")
    assert out.code == 1, out.output
    assert out.result_line == "RESULT: FAIL PREFLIGHT:CONFIG", out.output
    reason = out.line("REASON:")
    assert "'gate_python'" in reason and "/nonexistent/python" in reason
    assert live_state(project) == before


def test_check_python_accepts_a_command_on_path_and_refuses_a_missing_one(
    tmp_path: Path,
) -> None:
    gates.check_python(config.load(tmp_path, overrides=("gate_python=python3",)), tmp_path)
    gates.check_python(
        config.load(tmp_path, overrides=(f"gate_python={sys.executable}",)), tmp_path
    )
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)  # relative: taken from the project root
    (venv.parent / "pyvenv.cfg").write_text("home = /usr/bin\n")  # a venv, not a stray file
    gates.check_python(config.load(tmp_path, overrides=("gate_python=venv/bin/python",)), tmp_path)
    missing = config.load(tmp_path, overrides=("gate_python=no-such-python-4d2e",))
    with pytest.raises(Refusal) as err:
        gates.check_python(missing, tmp_path)  # in preflight
    assert err.value.category == "CONFIG" and "'gate_python'" in err.value.message


def test_a_missing_executable_is_a_failed_result_not_an_exception(tmp_path: Path) -> None:
    result = proc.run(["/nonexistent/tool-9b1c", "--flag"], cwd=tmp_path)
    assert not result.ok and result.returncode == 127
    assert "command not found" in result.output and "/nonexistent/tool-9b1c" in result.output
    not_executable = tmp_path / "tool.sh"
    not_executable.write_text("#!/bin/sh\n")
    result = proc.run([str(not_executable)], cwd=tmp_path)
    assert not result.ok and result.returncode == 126
    assert "not executable" in result.output


def test_a_missing_working_directory_still_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        proc.run([sys.executable, "-c", "pass"], cwd=tmp_path / "missing")


def test_a_custom_gate_with_a_missing_tool_fails_that_gate(project: Project) -> None:
    project.patch("issue_88.py", ["README.md"], 'Path("README.md").write_text("# hi\\n")\n')
    out = project.run(
        "88",
        "Missing tool",
        "--override",
        "gates.lint.command=no-such-linter-5e7a --strict",
        "--override",
        "gates.lint.runs_on=always",
        "--override",
        "gates_order=lint",
        "--override",
        "sandbox_gates=false",
    )
    assert out.code == 1, out.output
    assert out.result_line == "RESULT: FAIL GATES:LINT", out.output
    assert "command not found: no-such-linter-5e7a" in out.stdout
