"""Resource bounds: a patch script, a gate or the audit that forks, hogs memory, fills the disk or
floods its output is stopped and the stage fails naming the bound. Every probe here is bounded
itself (a few hundred processes, a few hundred MB at most), so a broken bound cannot hurt the
machine running the tests."""

from __future__ import annotations

import os

import pytest

from am_patch import limits
from testing.project import NO_GATES, Project, assert_fails

FORKS = """\
import os, time
Path("README.md").write_text("forked\\n")
children = 0
for _ in range(200):
    try:
        if os.fork() == 0:
            time.sleep(20)
            os._exit(0)
    except OSError:
        break
    children += 1
print("children:", children)
"""
HOG = """\
Path("README.md").write_text("hog\\n")
blocks = [bytearray(64 * 1024 * 1024) for _ in range(8)]  # 512 MiB
print("allocated", len(blocks))
"""
BIG_FILE = """\
Path("README.md").write_text("big\\n")
with open("big.bin", "wb") as out:
    for _ in range(20):
        out.write(b"x" * (5 * 1024 * 1024))  # 100 MiB in one file
"""
MANY_FILES = """\
import time
Path("README.md").write_text("many\\n")
for number in range(40):
    Path(f"filler_{number}.bin").write_bytes(b"x" * (4 * 1024 * 1024))  # 160 MiB in all
    time.sleep(0.1)
"""
TMP_FILLER = """\
Path("README.md").write_text("tmp\\n")
with open("/tmp/filler.bin", "wb") as out:
    for _ in range(20):
        out.write(b"x" * (5 * 1024 * 1024))
"""
FLOOD = """\
import sys
Path("README.md").write_text("flood\\n")
line = "y" * 1023 + "\\n"
for _ in range(64 * 1024):  # 64 MiB
    sys.stdout.write(line)
"""


def bounded_run(project: Project, body: str, *overrides: str) -> str:
    """Run a README patch whose body tests a bound; PATCH:LIMIT, nothing landed, the workspace
    rolled back. The REASON line."""
    before = project.repo_state(include_patches=False)
    project.patch("issue_1.py", ["README.md"], body)
    args = [arg for o in overrides for arg in ("--override", o)]

    out = project.run("1", "Bounded", *args, *NO_GATES)

    assert_fails(out, "PATCH:LIMIT")
    assert project.repo_state(include_patches=False)[:3] == before[:3]
    repo = project.workspace_repo("1")
    assert (repo / "README.md").read_text() == (project.live / "README.md").read_text()
    assert not any(p.name.endswith(".bin") for p in repo.iterdir())
    return out.line("REASON:")


def processes_can_be_bounded() -> bool:
    group = limits.make_cgroup(limits.Bounds(processes=10))
    if group is not None:
        found = group.has("pids")
        group.remove()
        return found
    return os.geteuid() != 0  # RLIMIT_NPROC binds every user but root


def test_a_fork_bomb_is_stopped_at_the_process_bound(project: Project) -> None:
    if not processes_can_be_bounded():
        pytest.skip("root without a writable pids cgroup: processes cannot be bounded here")
    reason = bounded_run(project, FORKS, "limit_processes=20")
    assert "its bound on processes (limit_processes=20)" in reason


def test_a_memory_hog_is_stopped_at_the_memory_bound(project: Project) -> None:
    reason = bounded_run(project, HOG, "limit_memory_mb=128")
    assert "its bound on memory (limit_memory_mb=128)" in reason


def test_one_huge_file_is_stopped_at_the_disk_bound(project: Project) -> None:
    reason = bounded_run(project, BIG_FILE, "limit_disk_mb=20")
    assert "its bound on disk (limit_disk_mb=20)" in reason


def test_many_files_are_stopped_at_the_disk_bound(project: Project) -> None:
    reason = bounded_run(project, MANY_FILES, "limit_disk_mb=40")
    assert "its bound on disk (limit_disk_mb=40)" in reason


def test_filling_tmp_in_the_jail_is_stopped_at_the_disk_bound(project: Project) -> None:
    reason = bounded_run(project, TMP_FILLER, "limit_disk_mb=20")
    assert "its bound on disk (limit_disk_mb=20)" in reason


def test_an_output_flood_is_cut_off_at_the_output_bound(project: Project) -> None:
    reason = bounded_run(project, FLOOD, "limit_output_mb=1")
    assert "its bound on output (limit_output_mb=1)" in reason
    log = project.newest_log()
    assert len(log) < 3 * 1024 * 1024, "the log keeps at most the bound of a command's output"


def test_a_test_flooding_its_output_fails_its_gate_naming_the_bound(project: Project) -> None:
    test = "tests/test_flood.py"
    # pytest captures a test's output and prints it when the test fails: 40 MB of it
    body = "def test_flood() -> None:\n    print(('z' * 199 + '\\n') * 200_000)\n    assert False\n"
    project.patch("issue_2.py", [test], f"Path({test!r}).write_text({body!r})\n")

    out = project.run(
        "2", "Flood", "--override", "gates_order=['pytest']", "--override", "limit_output_mb=1"
    )

    assert_fails(out, "GATES:PYTEST")
    assert "stopped by its bound on output (limit_output_mb=1)" in out.output


def test_an_audit_over_its_bound_fails_audit_limit_and_the_commit_stays(
    project: Project,
) -> None:
    project.write("audit/audit_report.py", "print('w' * 4_000_000)\n")
    project.commit_all("An audit that talks a lot")
    project.patch("issue_3.py", ["README.md"], "Path('README.md').write_text('x\\n')\n")

    out = project.run("3", "Docs", "--override", "limit_output_mb=1", *NO_GATES)

    assert_fails(out, "AUDIT:LIMIT")
    assert out.line("PUSH:") == "PUSH: OK"
    assert project.git("show", "HEAD:README.md") == "x"
