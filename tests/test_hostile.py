"""Hostile patches: each one tries to harm the live repo, its git metadata, the host or a secret."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from am_patch import scope
from testing.project import NO_GATES, LiveState, Outcome, Project, live_state, outside_tmp_dir

SECRET = "am-secret-4f1d9c7e2b"


@pytest.fixture(params=["under_tmp", "outside_tmp"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """A project (and $HOME) under /tmp, or on the real disk where the jail must hide it itself."""
    if request.param == "under_tmp":
        yield Project.create(tmp_path / "work")
        return
    base = Path(tempfile.mkdtemp(prefix="am-patch-hostile-", dir=outside_tmp_dir()))
    try:
        home = base / "home"
        home.mkdir()
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
        yield Project.create(base / "work")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def assert_nothing_landed(project: Project, before: LiveState) -> None:
    assert live_state(project) == before


def assert_only_landed(project: Project, before: LiveState, paths: set[str]) -> None:
    """One new commit on main and origin, touching exactly paths; nothing else changed."""
    after = live_state(project)
    assert after.head != before.head
    assert project.git("rev-parse", "main^") == before.head
    assert after.origin_head == after.head
    changed = project.git("diff", "--name-only", before.head, after.head).splitlines()
    assert set(changed) == paths
    assert after.status == before.status
    assert after.git_config == before.git_config
    assert after.hooks == before.hooks
    assert after.origin_hooks == before.origin_hooks
    outside = {k: v for k, v in after.files.items() if k not in paths}
    assert outside == {k: v for k, v in before.files.items() if k not in paths}


def failed(out: Outcome, code: str) -> bool:
    return out.code == 1 and out.result_line == f"RESULT: FAIL {code}"


# --- writing outside the workspace ------------------------------------------------------


def test_writing_the_live_repo_by_absolute_path_changes_nothing(target: Project) -> None:
    live = target.live
    before = live_state(target)
    target.patch(
        "issue_41.py",
        ["README.md"],
        f"""
        import os

        LIVE = {str(live)!r}
        climb = os.path.relpath(LIVE, os.getcwd())
        tried = []
        for path in [
            os.path.join(LIVE, "src/democalc/calc.py"),
            os.path.join(LIVE, "HARM.txt"),
            os.path.join(LIVE, ".git/config"),
            os.path.join(LIVE, ".git/hooks/pre-commit"),
            os.path.join(LIVE, "patches/HARM.txt"),
            os.path.join(climb, "README.md"),
            os.path.join(climb, "HARM_RELATIVE.txt"),
        ]:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "a") as fh:
                    fh.write("harm\\n")
                tried.append(path + ": written")
            except OSError as exc:
                tried.append(path + ": " + type(exc).__name__)
        Path("README.md").write_text("# democalc\\n\\n" + "\\n".join(tried) + "\\n")
        """,
    )
    out = target.run("41", "Write live by absolute path", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert_only_landed(target, before, {"README.md"})
    assert not (live / "patches" / "HARM.txt").exists()


def test_a_symlink_to_etc_hostname_is_unsafe(target: Project) -> None:
    before = live_state(target)
    target.patch(
        "issue_42.py",
        ["hostname"],
        """
        import os

        os.symlink("/etc/hostname", "hostname")
        """,
    )
    out = target.run("42", "Link to /etc/hostname", *NO_GATES)
    assert failed(out, "SCOPE:UNSAFE"), out.output
    assert "hostname" in out.line("REASON:")
    assert_nothing_landed(target, before)
    assert not os.path.lexists(target.live / "hostname")


@pytest.mark.parametrize(
    "links",
    [
        pytest.param({"up": "../../../../../../../../../../../../../etc/hostname"}, id="climbing"),
        pytest.param(
            {"docs/up": "../../../../../../../../../../../etc"}, id="climbing-from-subdir"
        ),
        # "here" points at the repo root, so here/here/.. is the repo's parent although a
        # lexical normalisation of the text sees it inside the repo
        pytest.param(
            {
                "here": ".",
                "out": "here/here/here/here/here/here/here/here/../../../../../../../"
                "../etc/hostname",
            },
            id="through-another-link",
        ),
    ],
)
def test_a_symlink_leaving_the_repo_is_unsafe(project: Project, links: dict[str, str]) -> None:
    before = live_state(project)
    project.patch(
        "issue_43.py",
        sorted(links),
        f"""
        import os

        for name, dest in sorted({links!r}.items()):
            os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
            os.symlink(dest, name)
        """,
    )
    out = project.run("43", "Link out of the repo", *NO_GATES)
    assert failed(out, "SCOPE:UNSAFE"), out.output
    assert_nothing_landed(project, before)


def _links(**targets: str) -> Callable[[str], bytes | None]:
    table = {k.replace("__", "/"): v.encode() for k, v in targets.items()}
    return table.get


@pytest.mark.parametrize(
    ("path", "target", "others", "unsafe"),
    [
        ("out", "here/..", {"here": "."}, True),
        ("a/out", "../here/here/../..", {"here": "."}, True),
        ("out", "loop/x", {"loop": "loop"}, True),
        ("out", "abs/x", {"abs": "/etc"}, True),
        ("out", "g/hooks", {"g": ".git"}, True),
        ("out", "docs/calc.py", {"docs": "src/democalc"}, False),
        ("src/x", "../here/src", {"here": "."}, False),
        ("out", "here/here/README.md", {"here": "."}, False),
    ],
)
def test_symlink_chains_are_followed_through_the_tree(
    path: str, target: str, others: dict[str, str], unsafe: bool
) -> None:
    reason = scope.link_escapes(path, target.encode(), _links(**others))
    assert (reason is not None) == unsafe, reason


# --- network ----------------------------------------------------------------------------


@dataclass
class Listener:
    """A TCP and a UDP socket on 127.0.0.1 that record whoever reaches them."""

    tcp: socket.socket
    udp: socket.socket
    reached: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def tcp_port(self) -> int:
        return int(self.tcp.getsockname()[1])

    @property
    def udp_port(self) -> int:
        return int(self.udp.getsockname()[1])

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, peer = self.tcp.accept()
            except TimeoutError:
                pass
            else:
                self.reached.append(f"tcp from {peer}")
                conn.close()
            try:
                _, peer = self.udp.recvfrom(64)
            except TimeoutError:
                pass
            else:
                self.reached.append(f"udp from {peer}")


@pytest.fixture
def listener() -> Iterator[Listener]:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.settimeout(0.05)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.05)
    found = Listener(tcp, udp)
    thread = threading.Thread(target=found.serve, daemon=True)
    thread.start()
    yield found
    found.stop.set()
    thread.join(timeout=5)
    tcp.close()
    udp.close()


def test_the_listener_sees_a_connection_from_the_host(listener: Listener) -> None:
    """The listener does notice a connection: the checks below could fail."""
    with socket.create_connection(("127.0.0.1", listener.tcp_port), timeout=5):
        pass
    for _ in range(100):
        if listener.reached:
            break
        threading.Event().wait(0.05)
    assert listener.reached


def test_a_patch_cannot_open_a_network_connection(project: Project, listener: Listener) -> None:
    before = live_state(project)
    project.patch(
        "issue_44.py",
        ["NET.txt"],
        f"""
        import socket

        lines = []
        try:
            socket.create_connection(("127.0.0.1", {listener.tcp_port}), timeout=3).close()
            lines.append("tcp: connected")
        except OSError as exc:
            lines.append("tcp: " + type(exc).__name__)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.sendto(b"hello", ("127.0.0.1", {listener.udp_port}))
            lines.append("udp: sent")
        except OSError as exc:
            lines.append("udp: " + type(exc).__name__)
        Path("NET.txt").write_text("\\n".join(lines) + "\\n")
        """,
    )
    out = project.run("44", "Phone home", *NO_GATES)
    threading.Event().wait(0.5)  # let a stray datagram arrive before looking
    assert listener.reached == []
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert_only_landed(project, before, {"NET.txt"})
    seen = (project.live / "NET.txt").read_text()
    assert seen.startswith("tcp: ") and "tcp: connected" not in seen, seen


def test_a_patch_cannot_reach_a_unix_socket_on_the_host(project: Project) -> None:
    """Host daemons listen on unix sockets (docker, dbus, ssh-agent, databases): no way in."""
    base = Path(tempfile.mkdtemp(prefix="am-patch-sock-", dir=outside_tmp_dir()))
    path = base / "daemon.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        server.listen(8)
        server.setblocking(False)
        before = live_state(project)
        project.patch(
            "issue_45.py",
            ["SOCK.txt"],
            f"""
            import socket

            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                    client.connect({str(path)!r})
                    client.sendall(b"hello daemon")
                seen = "connected"
            except OSError as exc:
                seen = type(exc).__name__
            Path("SOCK.txt").write_text(seen + "\\n")
            """,
        )
        out = project.run("45", "Talk to a host daemon", *NO_GATES)
        try:
            conn, _ = server.accept()
            conn.close()
            reached = True
        except BlockingIOError:
            reached = False
        assert not reached, "the patch script connected to a unix socket on the host"
        assert out.result_line == "RESULT: SUCCESS", out.output
        assert_only_landed(project, before, {"SOCK.txt"})
    finally:
        server.close()
        shutil.rmtree(base, ignore_errors=True)


# --- secrets ----------------------------------------------------------------------------


def _leaks(root: Path) -> list[str]:
    """Every place under root (files, zip members, git history) where SECRET shows."""
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if SECRET.encode() in data:
                found.append(str(path))
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    found += [
                        f"{path}!{member}"
                        for member in archive.namelist()
                        if SECRET.encode() in archive.read(member)
                    ]
    return found


def _git_history(git_dir: Path) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(git_dir), "log", "-p", "--all", "--format=%H %s%n%b"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_secrets_in_the_environment_and_home_stay_out(
    target: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Path(os.environ["HOME"])
    (home / ".secret").write_text(SECRET + "\n")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text(SECRET + "\n")
    monkeypatch.setenv("AM_SECRET", SECRET)
    before = live_state(target)
    target.patch(
        "issue_46.py",
        ["LEAK.txt"],
        f"""
        import os

        stolen = ["env: " + repr(os.environ.get("AM_SECRET"))]
        for key, value in os.environ.items():
            stolen.append(key + "=" + value)
        for path in [
            {str(home / ".secret")!r},
            {str(home / ".ssh" / "id_ed25519")!r},
            os.path.expanduser("~/.secret"),
            "/proc/self/environ",
            "/proc/1/environ",
        ]:
            try:
                stolen.append(path + ": " + Path(path).read_bytes().decode(errors="replace"))
            except OSError as exc:
                stolen.append(path + ": " + type(exc).__name__)
        Path("LEAK.txt").write_text("\\n".join(stolen) + "\\n")
        """,
    )
    out = target.run("46", "Steal secrets", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert_only_landed(target, before, {"LEAK.txt"})
    assert "env: None" in (target.live / "LEAK.txt").read_text()
    assert SECRET not in out.output
    assert _leaks(target.base) == []
    assert SECRET not in _git_history(target.origin)
    assert SECRET not in _git_history(target.live / ".git")


ROOT_ONLY = ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/etc/ssl/private"]


def _host_secrets() -> dict[str, bytes]:
    """What this test can read of ROOT_ONLY on the host (all of it when run as root, as CI is)."""
    found: dict[str, bytes] = {}
    for top in ROOT_ONLY:
        paths = [Path(top)] if Path(top).is_file() else sorted(Path(top).rglob("*"))
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if len(data.strip()) >= 16:  # long enough not to turn up by chance
                found[str(path)] = data.strip()
    return found


def test_root_only_files_of_etc_are_not_in_the_jail(project: Project) -> None:
    """Run as root, the jail keeps uid 0: only a whitelist of /etc may be visible in it."""
    before = live_state(project)
    project.patch(
        "issue_56.py",
        ["README.md"],
        f"""
        import os

        report = []
        for top in {ROOT_ONLY!r}:
            paths = [top]
            if os.path.isdir(top):
                paths += [os.path.join(d, f) for d, _, files in os.walk(top) for f in files]
            for path in paths:
                try:
                    if os.path.isdir(path):
                        report.append(path + ": listed " + ",".join(os.listdir(path)))
                    else:
                        report.append(path + ": " + Path(path).read_text(errors="replace"))
                except OSError:
                    report.append(path + ": blocked")
        Path("README.md").write_text("\\n".join(report) + "\\n")
        """,
    )
    out = project.run("56", "Read root-only files", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert_only_landed(project, before, {"README.md"})
    landed = (project.live / "README.md").read_bytes()
    for path, secret in _host_secrets().items():
        assert secret not in landed, f"{path} leaked into the commit"
    for top in ROOT_ONLY:
        assert f"{top}: blocked".encode() in landed
    assert b"listed" not in landed


# --- git metadata -----------------------------------------------------------------------


def test_git_config_and_hooks_cannot_be_planted(target: Project) -> None:
    live = target.live
    before = live_state(target)
    target.patch(
        "issue_47.py",
        ["README.md"],
        f"""
        import os
        import subprocess

        LIVE = {str(live)!r}
        tried = []

        def attempt(label, action):
            try:
                action()
                tried.append(label + ": done")
            except (OSError, subprocess.CalledProcessError) as exc:
                tried.append(label + ": " + type(exc).__name__)

        def git(*args):
            subprocess.run(["git", *args], check=True, capture_output=True)

        def write(path, text):
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w") as fh:
                fh.write(text)
            os.chmod(path, 0o755)

        hook = "#!/bin/sh\\ntouch " + os.path.join(LIVE, "PWNED") + "\\n"
        attempt("fsmonitor", lambda: git("config", "core.fsmonitor", "touch PWNED"))
        attempt("hooksPath", lambda: git("config", "core.hooksPath", os.getcwd()))
        attempt("global", lambda: git("config", "--global", "core.hooksPath", os.getcwd()))
        attempt("pointer", lambda: write(".git", "gitdir: " + os.getcwd() + "/fake\\n"))
        gitdir = Path(".git").read_text().split(":", 1)[1].strip()
        for name in ["hooks/post-checkout", "../../hooks/post-checkout", "../../config"]:
            attempt(name, lambda name=name: write(os.path.join(gitdir, name), hook))
        for name in ["hooks/pre-commit", "hooks/post-merge", "hooks/pre-push"]:
            attempt(name, lambda name=name: write(os.path.join(LIVE, ".git", name), hook))
        attempt(
            "config",
            lambda: write(os.path.join(LIVE, ".git/config"), "[core]\\nfsmonitor = touch PWNED\\n"),
        )
        Path("README.md").write_text("# democalc\\n\\n" + "\\n".join(tried) + "\\n")
        """,
    )
    out = target.run("47", "Plant hooks", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert_only_landed(target, before, {"README.md"})
    # what the script saw: git cannot configure the workspace, its .git pointer is read-only;
    # writes into a git dir "succeed" only into the jail's throw-away tmpfs (checked below)
    seen = dict(line.split(": ", 1) for line in (live / "README.md").read_text().splitlines()[2:])
    for label in ("fsmonitor", "hooksPath", "global", "pointer"):
        assert seen[label] != "done", seen
    assert "fsmonitor" not in target.git("config", "--list")
    assert "hookspath" not in target.git("config", "--list").lower()
    target.status()  # would run an fsmonitor command, had one been planted
    assert not (live / "PWNED").exists()
    home_config = Path(os.environ["HOME"]) / ".gitconfig"
    assert not home_config.exists() or "hooksPath" not in home_config.read_text()


def test_committing_inside_the_workspace_does_not_hide_a_change(project: Project) -> None:
    before = live_state(project)
    project.patch(
        "issue_48.py",
        ["README.md"],
        """
        import subprocess

        Path("README.md").write_text("# democalc\\n\\nDeclared.\\n")
        Path("src/democalc/hidden.py").write_text("BACKDOOR = True\\n")
        for args in (["add", "-A"], ["commit", "-q", "-m", "hide"], ["reset", "--soft", "HEAD"]):
            done = subprocess.run(["git", *args], capture_output=True, text=True)
            print("git", *args, "->", done.returncode, done.stderr.strip())
        """,
    )
    out = project.run("48", "Hide a change", *NO_GATES)
    assert failed(out, "SCOPE:UNDECLARED"), out.output
    assert "src/democalc/hidden.py" in out.line("REASON:")
    assert_nothing_landed(project, before)
    assert project.git("rev-parse", "refs/heads/am_patch/issue_48") == before.head
    assert "BACKDOOR" not in _git_history(project.origin)


# --- nested repositories and .git paths -------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            'import subprocess\nsubprocess.run(["git", "init", "-q", "sub"], check=True)\n'
            'Path("sub/x.txt").write_text("x\\n")\n',
            id="git-init",
        ),
        pytest.param(
            'Path("sub/.git/refs").mkdir(parents=True)\n'
            'Path("sub/.git/HEAD").write_text("ref: refs/heads/main\\n")\n'
            'Path("sub/x.txt").write_text("x\\n")\n',
            id="hand-made-git-dir",
        ),
        pytest.param(
            'Path("sub").mkdir()\nPath("sub/.git").write_text("gitdir: /etc\\n")\n'
            'Path("sub/x.txt").write_text("x\\n")\n',
            id="gitdir-pointer-file",
        ),
    ],
)
def test_a_nested_repository_is_unsafe(project: Project, body: str) -> None:
    before = live_state(project)
    project.patch("issue_49.py", ["sub/x.txt"], body)
    out = project.run("49", "Nest a repository", *NO_GATES)
    assert failed(out, "SCOPE:UNSAFE"), out.output
    assert "sub" in out.line("REASON:")
    assert_nothing_landed(project, before)
    assert not (project.live / "sub").exists()


def write_git_config(project: Project, issue: str, message: str, path: str) -> Outcome:
    """Run a patch declaring path and writing a git config with an fsmonitor command to it."""
    project.patch(
        f"issue_{issue}.py",
        [path],
        f"""
        import os

        os.makedirs(os.path.dirname({path!r}), exist_ok=True)
        Path({path!r}).write_text("[core]\\nfsmonitor = touch PWNED\\n")
        """,
    )
    return project.run(issue, message, *NO_GATES)


@pytest.mark.parametrize("declared", [".git/hooks/pre-commit", ".git/config", "src/.git/config"])
def test_declaring_a_path_inside_git_is_refused(project: Project, declared: str) -> None:
    before = live_state(project)
    out = write_git_config(project, "50", "Write into .git", declared)
    assert failed(out, "PREFLIGHT:PATCH_FILES"), out.output
    assert_nothing_landed(project, before)


@pytest.mark.parametrize("path", [".GIT/config", "src/.Git/hooks/pre-commit", ".git./config"])
def test_a_git_directory_in_another_spelling_is_unsafe(project: Project, path: str) -> None:
    before = live_state(project)
    out = write_git_config(project, "51", "Spell .git differently", path)
    assert out.code == 1, out.output
    assert out.result_line in {"RESULT: FAIL PREFLIGHT:PATCH_FILES", "RESULT: FAIL SCOPE:UNSAFE"}
    assert_nothing_landed(project, before)


# --- code that runs later: gates and audit ----------------------------------------------


def test_a_hostile_test_file_run_by_the_pytest_gate_cannot_write_outside(
    target: Project, tmp_path: Path
) -> None:
    live = target.live
    escaped = tmp_path / "escaped.txt"
    before = live_state(target)
    evil_test = f"""
import os
from pathlib import Path


def test_harmless_looking() -> None:
    for path in [
        {str(live / "src/democalc/calc.py")!r},
        {str(live / "PWNED")!r},
        {str(live / ".git/hooks/pre-commit")!r},
        {str(escaped)!r},
        os.path.expanduser("~/PWNED"),
    ]:
        try:
            with open(path, "a") as fh:
                fh.write("harm\\n")
        except OSError:
            pass
"""
    target.patch(
        "issue_52.py",
        ["tests/test_evil.py"],
        f"""
        Path("tests/test_evil.py").write_text({evil_test!r})
        """,
    )
    out = target.run("52", "A test that writes outside")
    assert "PASS" in out.line("GATE pytest"), out.output  # the gate did run the hostile test
    assert out.result_line == "RESULT: SUCCESS", out.output
    assert_only_landed(target, before, {"tests/test_evil.py"})
    assert not escaped.exists()
    assert not (live / "PWNED").exists()
    assert not (Path(os.environ["HOME"]) / "PWNED").exists()


def test_an_audit_script_planted_by_the_patch_does_not_run_unjailed(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The post-success audit runs `audit/audit_report.py` of live; a patch may bring its own."""
    escaped = tmp_path / "escaped.txt"
    monkeypatch.setenv("AM_SECRET", SECRET)
    audit = f"""
import os
from pathlib import Path

Path({str(escaped)!r}).write_text(os.environ.get("AM_SECRET", "none"))
Path({str(project.live / "PWNED")!r}).write_text("harm")
"""
    project.patch(
        "issue_53.py",
        ["audit/audit_report.py"],
        f"""
        Path("audit").mkdir()
        Path("audit/audit_report.py").write_text({audit!r})
        """,
    )
    out = project.run("53", "Bring an audit", *NO_GATES)
    assert out.code in (0, 1), out.output
    assert not escaped.exists(), "code written by the patch ran outside the jail"
    assert not (project.live / "PWNED").exists()


def test_a_test_that_rewrites_code_during_the_gates_cannot_land_ungated_code(
    project: Project,
) -> None:
    """pytest runs after ruff: a test editing the workspace must not land code ruff refuses."""
    before = live_state(project)
    sneaky_test = """
from pathlib import Path


def test_rewrites_the_code() -> None:
    calc = Path("src/democalc/calc.py")
    if "SNEAKY" not in calc.read_text():
        calc.write_text(calc.read_text() + "\\n# SNEAKY " + "x" * 150 + "\\n")
"""
    project.patch(
        "issue_54.py",
        ["src/democalc/calc.py", "tests/test_sneaky.py"],
        f"""
        calc = Path("src/democalc/calc.py")
        calc.write_text(calc.read_text() + "\\n\\ndef neg(a: int) -> int:\\n    return -a\\n")
        Path("tests/test_sneaky.py").write_text({sneaky_test!r})
        """,
    )
    out = project.run("54", "Rewrite code while gated")
    if out.result_line == "RESULT: SUCCESS":
        assert_only_landed(project, before, {"src/democalc/calc.py", "tests/test_sneaky.py"})
        assert "SNEAKY" not in (project.live / "src/democalc/calc.py").read_text(), out.output
    else:
        assert out.code == 1, out.output
        assert_nothing_landed(project, before)
