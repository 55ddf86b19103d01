"""The bubblewrap jail as the user sees it: recorded, required, optional, timed, clean."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from am_patch import sandbox
from am_patch.demo import PROJECT_FILES
from testing.project import CALC, NO_GATES, Project, outside_tmp_dir


def live_files(project: Project) -> dict[str, bytes]:
    """The live checkout outside patches/ and .git/."""
    files = {}
    for path in sorted(project.live.rglob("*")):
        rel = path.relative_to(project.live)
        if rel.parts[0] in (".git", "patches") or not path.is_file():
            continue
        files[str(rel)] = path.read_bytes()
    return files


LiveSnapshot = tuple[str, str, str, dict[str, bytes], bytes]


def live_snapshot(project: Project) -> LiveSnapshot:
    config = (project.live / ".git" / "config").read_bytes()
    return project.head(), project.origin_head(), project.status(), live_files(project), config


def checked_newest_log(project: Project) -> str:
    """The newest log, once am_patch.log is seen to be a link to it."""
    link = project.patches / "am_patch.log"
    assert link.is_symlink()
    newest = max((project.patches / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime_ns)
    assert link.resolve() == newest.resolve()
    return project.newest_log()


def sandbox_failure_reason(project: Project, issue: str, message: str, bwrap: str) -> str:
    """Run a patch rewriting calc.py with bwrap as the jail's program; expect PREFLIGHT:SANDBOX
    and live as it was. The REASON line."""
    before = live_snapshot(project)
    project.patch(f"issue_{issue}.py", [CALC], f'Path("{CALC}").write_text("x = 1\\n")\n')
    out = project.run(issue, message, "--override", f"bwrap={bwrap}", *NO_GATES)
    assert out.code == 1, out.output
    assert out.result_line == "RESULT: FAIL PREFLIGHT:SANDBOX"
    assert live_snapshot(project) == before
    return out.line("REASON:")


def assert_rolled_back(project: Project, issue: str, before: LiveSnapshot, calc: str) -> None:
    """Live is as it was, the workspace's calc.py reads calc again and its stray.txt is gone."""
    assert live_snapshot(project) == before
    assert (project.workspace_repo(issue) / CALC).read_text() == calc
    assert not (project.workspace_repo(issue) / "stray.txt").exists()


def test_the_summary_and_the_log_say_which_sandbox_ran(project: Project) -> None:
    project.patch("issue_60.py", ["README.md"], 'Path("README.md").write_text("# hi\\n")\n')
    out = project.run("60", "Sandboxed", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert "bubblewrap" in out.line("SANDBOX:")
    log = checked_newest_log(project)
    assert "SANDBOX: bubblewrap" in log
    bwrap_line = next(line for line in log.splitlines() if "--unshare-all" in line)
    for flag in ("--clearenv", "--die-with-parent", "--new-session", "--ro-bind /usr /usr"):
        assert flag in bwrap_line
    assert "--tmpfs /tmp" in bwrap_line
    # the host's root is not bound: its unix sockets (/run, /var) must not exist in the jail
    assert "--ro-bind / /" not in bwrap_line


def test_a_missing_bwrap_fails_preflight_sandbox_and_changes_nothing(project: Project) -> None:
    reason = sandbox_failure_reason(project, "61", "No bwrap", "/nonexistent/bwrap")
    assert "bubblewrap" in reason and "/nonexistent/bwrap" in reason
    ws_calc = project.workspace_repo("61") / CALC
    assert not ws_calc.exists() or ws_calc.read_text() != "x = 1\n"


def test_a_bwrap_that_cannot_build_the_jail_fails_preflight_sandbox(project: Project) -> None:
    assert "sandbox" in sandbox_failure_reason(project, "62", "Broken bwrap", "/bin/false")
    ws_calc = project.workspace_repo("62") / CALC  # probed before the workspace is made
    assert not ws_calc.exists() or ws_calc.read_text() != "x = 1\n"


def test_unsafe_no_sandbox_runs_unjailed_and_says_so_loudly(
    project: Project, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    project.patch(
        "issue_63.py",
        ["README.md"],
        f"""
        Path({str(outside)!r}).write_text("no jail")
        Path("README.md").write_text("# hi\\n")
        """,
    )
    out = project.run("63", "Unjailed", "--unsafe-no-sandbox", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert outside.read_text() == "no jail"  # the script reached outside the workspace
    warning = next(line for line in out.stdout.splitlines() if "SANDBOX DISABLED" in line)
    assert "WARNING" in warning
    assert "bubblewrap" not in out.line("SANDBOX:")
    log = checked_newest_log(project)
    assert "WARNING" in log and "SANDBOX DISABLED" in log


def test_the_same_write_outside_is_contained_by_the_jail(project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    project.patch(
        "issue_64.py",
        ["README.md"],
        f"""
        try:
            Path({str(outside)!r}).write_text("no jail")
        except OSError:
            pass
        Path("README.md").write_text("# hi\\n")
        """,
    )
    out = project.run("64", "Jailed", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert not outside.exists()


def _processes_running(needle: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_a_patch_over_its_time_limit_fails_and_is_rolled_back(project: Project) -> None:
    before = live_snapshot(project)
    original = project.half_done_patch("65", "import time\n\ntime.sleep(120)\n")
    start = time.monotonic()
    out = project.run("65", "Too slow", "--override", "patch_timeout_s=2", *NO_GATES)
    assert time.monotonic() - start < 60
    assert out.code == 1, out.output
    assert out.result_line == "RESULT: FAIL PATCH:TIMEOUT"
    assert_rolled_back(project, "65", before, original)
    assert _processes_running("issue_65.py") == []


def test_a_patch_that_raises_fails_patch_exec_and_is_rolled_back(project: Project) -> None:
    before = live_snapshot(project)
    original = project.half_done_patch("66", 'raise RuntimeError("boom-7c1e")\n')
    out = project.run("66", "Raises", *NO_GATES)
    assert out.code == 1, out.output
    assert out.result_line == "RESULT: FAIL PATCH:EXEC"
    assert "boom-7c1e" in out.stdout
    assert_rolled_back(project, "66", before, original)


def test_a_background_process_of_the_patch_dies_with_it(project: Project) -> None:
    project.patch(
        "issue_67.py",
        ["README.md"],
        """
        import os
        import time

        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(1.5)
                Path("late.txt").write_text("still alive\\n")
            os._exit(0)
        Path("README.md").write_text("# hi\\n")
        """,
    )
    out = project.run("67", "Daemonize", "-k", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.output
    late = project.workspace_repo("67") / "late.txt"
    assert late.parent.is_dir()
    time.sleep(3)
    assert not late.exists()


def test_the_environment_inside_the_jail_is_minimal(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_home = os.environ["HOME"]
    monkeypatch.setenv("AM_SECRET", "s3cret-env-value")
    monkeypatch.setenv("GIT_DIR", str(project.live / ".git"))
    monkeypatch.setenv("SSH_AUTH_SOCK", str(project.base / "agent.sock"))
    project.patch(
        "issue_68.py",
        ["ENV.json"],
        """
        import json
        import os

        Path("ENV.json").write_text(json.dumps(dict(os.environ), sort_keys=True) + "\\n")
        """,
    )
    out = project.run("68", "Dump env", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.output
    env = json.loads((project.live / "ENV.json").read_text())
    assert [k for k in env if k.startswith("GIT_")] == []
    assert "AM_SECRET" not in env and "SSH_AUTH_SOCK" not in env
    assert "XDG_CONFIG_HOME" not in env
    assert env.get("HOME") != host_home
    allowed = {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PWD", "SHLVL", "_", "TERM"}
    assert {k for k in env if not k.startswith("PYTHON")} <= allowed
    assert "s3cret-env-value" not in json.dumps(env)


def test_tmp_inside_the_jail_is_private(project: Project) -> None:
    name = f"am-patch-leak-{uuid.uuid4().hex}"
    project.patch(
        "issue_69.py",
        ["README.md"],
        f"""
        import os
        import tempfile

        Path("/tmp/{name}").write_text("leak")
        Path(tempfile.gettempdir(), "{name}.2").write_text("leak")
        Path("/dev/shm/{name}").write_text("leak")
        Path("README.md").write_text("# hi\\n")
        """,
    )
    out = project.run("69", "Write /tmp", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert not Path(f"/tmp/{name}").exists()
    assert not Path(f"/tmp/{name}.2").exists()
    assert not Path(f"/dev/shm/{name}").exists()
    assert not Path(f"/var/tmp/{name}").exists()


def test_only_a_whitelist_of_etc_enters_the_jail(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    for rel in (
        "passwd",
        "shadow",
        "gshadow",
        "sudoers",
        "ssh/ssh_host_ed25519_key",
        "ssl/private/server.key",
        "ssl/certs/ca.pem",
        "python3.11/sitecustomize.py",
        "unlisted.conf",
    ):
        (etc / rel).parent.mkdir(parents=True, exist_ok=True)
        (etc / rel).write_text("x\n")
    (etc / "hosts").symlink_to("shadow")  # an allowed name pointing at a secret
    (etc / "localtime").symlink_to("/usr/share/zoneinfo/Etc/UTC")
    args = sandbox.etc_mounts(etc)
    bound = {args[i + 2] for i, arg in enumerate(args) if arg in ("--ro-bind", "--symlink")}
    assert bound == {
        str(etc / "passwd"),
        str(etc / "ssl/certs"),
        str(etc / "python3.11"),
        *([str(etc / "localtime")] if Path("/usr/share/zoneinfo/Etc/UTC").exists() else []),
    }
    assert not [a for a in args if "shadow" in a or "ssh" in a or "private" in a]


def test_the_jail_never_binds_all_of_etc_or_its_secrets(tmp_path: Path) -> None:
    jail = sandbox.Jail(bwrap="/usr/bin/bwrap", writable=tmp_path)
    argv = jail.argv(["true"])
    pairs = {(argv[i], argv[i + 1]) for i in range(len(argv) - 1)}
    assert ("--ro-bind", "/etc") not in pairs
    for secret in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/etc/ssl/private"):
        assert not [a for a in argv if a == secret or a.startswith(secret + "/")]
    assert ("--remount-ro", "/") in pairs


def test_a_gate_python_from_the_working_tree_never_runs_outside_the_jail(
    project: Project, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-outside"
    tool = project.write("tools/py", f'#!/bin/sh\necho pwned > {marker}\nexec python3 "$@"\n')
    tool.chmod(0o755)
    project.commit_all("A tool")
    before = live_snapshot(project)
    project.patch("issue_40.py", [CALC], f'Path("{CALC}").write_text("x = 1\\n")\n')

    out = project.run("40", "Hostile interpreter", "--override", "gate_python=tools/py")

    assert out.result_line == "RESULT: FAIL PREFLIGHT:CONFIG", out.output
    assert "gate_python" in out.line("REASON:") and "outside a venv" in out.line("REASON:")
    assert live_snapshot(project)[:2] == before[:2]
    (project.live / "am_patch.toml").write_text('gate_python = "tools/py"\n')
    project.write(CALC, "x = 2\n")
    project.git("add", CALC)
    hook = subprocess.run(
        [sys.executable, "-m", "am_patch.hooks", "gates"],
        cwd=project.live,
        capture_output=True,
        text=True,
    )
    assert hook.returncode != 0, hook.stderr
    assert not marker.exists(), "the working tree's interpreter ran outside the jail"


def test_a_directory_named_by_a_pth_file_is_not_mounted_in_the_jail(project: Project) -> None:
    other = Path(tempfile.mkdtemp(prefix="am-patch-otherproj-", dir=outside_tmp_dir()))
    try:
        (other / ".env").write_text("OTHER_SECRET=am-other-4a7c\n")
        venv = project.live / ".venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        (venv / "bin" / "python").unlink()
        (venv / "bin" / "python").symlink_to(sys.executable)  # a venv on top of ours
        purelib = next((venv / "lib").glob("python3*/site-packages"))
        (purelib / "_otherproj.pth").write_text(f"{other}\n")  # an editable install elsewhere
        env_file = str(other / ".env")
        probe = f"import os; print('PTH-' + ('SEEN' if os.path.exists({env_file!r}) else 'HIDDEN'))"
        project.patch("issue_41.py", ["README.md"], 'Path("README.md").write_text("x\\n")\n')

        out = project.run(
            "41",
            "Probe",
            *("--override", "gates_order=['probe']"),
            *("--override", "gates.probe.runs_on=always"),
            *("--override", f"gates.probe.command=['{{python}}', '-c', {probe!r}]"),
        )

        assert out.result_line == "RESULT: SUCCESS", out.output
        log = project.log_of(out)
        assert "PTH-HIDDEN" in log and "PTH-SEEN" not in log, log
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_unjailed_gates_read_bytecode_only_from_a_private_dir(tmp_path: Path) -> None:
    """Without the jail there is no private /tmp: a shared /tmp/pycache could hold bytecode
    another local user planted, so the gates get a fresh directory only this user can reach."""
    check = (
        "import os, stat, sys; p = os.environ['PYTHONPYCACHEPREFIX']; "
        "sys.exit(p.startswith('/tmp/pycache') or stat.S_IMODE(os.stat(p).st_mode) != 0o700)"
    )
    config = (
        'gates_order = ["private"]\n[gates.private]\nruns_on = "always"\n'
        f"command = ['{{python}}', '-c', {check!r}]\n"
    )
    project = Project.create(tmp_path / "work", {**PROJECT_FILES, "am_patch.toml": config})
    project.readme_patch("64", "readme\n")

    out = project.run("64", "Unjailed", "--unsafe-no-sandbox")

    assert out.result_line == "RESULT: SUCCESS", out.output
    assert out.line("GATE private:").startswith("GATE private: PASS")
