"""The post-success audit: jailed, on an export of the landed commit; only plain files of
audit/results come back to the live tree."""

from __future__ import annotations

import os

from testing.project import NO_GATES, Project, assert_success

README = "README.md"
APPEND = "p = Path('README.md')\np.write_text(p.read_text() + 'appended\\n')\n"
TOKEN = "am-token-77e1b0"
REPORTING_AUDIT = 'print("AUDIT-RAN and found nothing new")\n'
WRITING_AUDIT = """\
from pathlib import Path

Path("audit/results/report.txt").write_text("audit report\\n")
print("AUDIT-RAN and wrote its report")
"""


def add_audit(project: Project, script: str) -> str:
    project.write("audit/audit_report.py", script)
    project.write("audit/results/.gitkeep", "")
    return project.commit_all("Add audit")


def test_a_passing_audit_shows_its_output_on_screen(project: Project) -> None:
    add_audit(project, REPORTING_AUDIT)
    project.patch("issue_53.py", [README], APPEND)

    out = project.run("53", "Append", *NO_GATES)

    assert_success(out)
    assert out.line("PUSH:") == "PUSH: OK"
    assert "AUDIT-RAN and found nothing new" in out.stdout


def test_the_jailed_audit_may_write_audit_results(project: Project) -> None:
    add_audit(project, WRITING_AUDIT)
    project.patch("issue_55.py", [README], APPEND)

    out = project.run("55", "Append", *NO_GATES)

    assert_success(out)
    assert (project.live / "audit/results/report.txt").read_text() == "audit report\n"


def test_audit_is_skipped_when_the_push_failed(project: Project) -> None:
    add_audit(project, REPORTING_AUDIT)
    project.reject_pushes()
    project.patch("issue_54.py", [README], APPEND)

    out = project.run("54", "Append", *NO_GATES)

    assert_success(out)
    assert out.line("PUSH:") == "PUSH: FAIL"
    assert "[audit] skipped: the push failed" in out.stdout
    assert "[audit] skipped: the push failed" in project.log_of(out)
    assert "AUDIT-RAN" not in project.log_of(out)


def test_audit_runs_without_a_remote(project: Project) -> None:
    add_audit(project, REPORTING_AUDIT)
    project.git("remote", "remove", "origin")
    (project.live / "src/democalc/extra.py").write_text('"""Extra."""\n')

    out = project.run("-f", "Extra", *NO_GATES)

    assert_success(out)
    assert out.line("PUSH:") == "PUSH: SKIPPED"
    assert "AUDIT-RAN" in project.log_of(out)


PRYING_AUDIT = """\
from pathlib import Path

found = []
for name in (".git/config", ".env.local", "../.git/config", "patches/issue_56.py"):
    try:
        found.append(name + ": " + Path(name).read_text())
    except OSError as exc:
        found.append(name + ": unreadable (" + type(exc).__name__ + ")")
Path("audit/results/loot.txt").write_text("\\n".join(found))
print("AUDIT-RAN")
"""


def test_the_audit_sees_only_the_landed_commit_not_git_config_or_ignored_files(
    project: Project,
) -> None:
    project.git("remote", "set-url", "--push", "origin", f"{project.origin}")
    project.git("config", "am.token", TOKEN)  # a secret in .git/config, as a token in a URL is
    project.write(".gitignore", (project.live / ".gitignore").read_text() + ".env.local\n")
    project.commit_all("Ignore .env.local")
    project.write(".env.local", f"API_TOKEN={TOKEN}\n")
    add_audit(project, PRYING_AUDIT)
    project.patch("issue_56.py", [README], APPEND)

    out = project.run("56", "Append", *NO_GATES)

    assert_success(out)
    loot = (project.live / "audit/results/loot.txt").read_text()
    assert TOKEN not in loot, loot
    assert ".git/config: unreadable" in loot and ".env.local: unreadable" in loot
    assert "patches/issue_56.py: unreadable" in loot


LINKING_AUDIT = """\
import os
os.symlink("../../.git/config", "audit/results/pytest_junit.xml")
os.mkfifo("audit/results/fifo")
open("audit/results/plain.txt", "w").write("plain\\n")
"""


def test_links_and_special_files_the_audit_leaves_are_not_copied_back(project: Project) -> None:
    add_audit(project, LINKING_AUDIT)
    project.patch("issue_57.py", [README], APPEND)

    out = project.run("57", "Append", *NO_GATES)

    assert_success(out)
    results = project.live / "audit/results"
    assert (results / "plain.txt").read_text() == "plain\n"
    assert not os.path.lexists(results / "pytest_junit.xml")
    assert not os.path.lexists(results / "fifo")


def test_a_link_already_in_audit_results_is_not_written_through(project: Project) -> None:
    add_audit(project, WRITING_AUDIT)
    config = (project.live / ".git/config").read_bytes()
    (project.live / "audit/results/report.txt").symlink_to("../../.git/config")
    project.patch("issue_58.py", [README], APPEND)

    out = project.run("58", "Append", *NO_GATES)

    assert_success(out)
    assert (project.live / ".git/config").read_bytes() == config
    report = project.live / "audit/results/report.txt"
    assert not report.is_symlink() and report.read_text() == "audit report\n"
