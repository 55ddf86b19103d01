"""--batch: every input waiting in patches/, each with the message it carries, a line each and
one RESULT; an input without a message waits, saying why."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from am_patch import inbox
from testing.project import NO_GATES, README_DIFF, Project


def format_patch(project: Project, rel: str, text: str, subject: str) -> bytes:
    """What `git format-patch` makes of a commit writing rel, made in a throw-away clone."""
    other = project.base / "author"
    if not other.exists():
        project.git("clone", "-q", str(project.origin), str(other))
    (other / rel).write_text(text)
    project.git("add", rel, cwd=other)
    project.git("commit", "-q", "-m", subject, cwd=other)
    patch = project.git("format-patch", "-1", "--stdout", cwd=other) + "\n"
    project.git("reset", "-q", "--hard", "HEAD~1", cwd=other)
    return patch.encode()


def test_each_kind_of_input_lands_with_its_own_message(project: Project) -> None:
    project.patch(
        "issue_71.py",
        ["LICENSE"],
        'MESSAGE = "Add a licence"\nPath("LICENSE").write_text("MIT\\n")\n',
    )
    (project.patches / "issue_72.patch").write_bytes(
        format_patch(project, "CHANGES.md", "# Changes\n", "Start a changelog, första")
    )
    with zipfile.ZipFile(project.patches / "issue_73.zip", "w") as zf:
        zf.writestr("readme.patch", README_DIFF)
        zf.writestr("COMMIT_MESSAGE.txt", "Reword the readme\n")
    (project.patches / "issue_74.diff").write_text(README_DIFF)  # no Subject: waits

    out = project.run("--batch", *NO_GATES)

    assert out.code == 0, out.output
    assert out.result_line == "RESULT: SUCCESS"
    lines = [line for line in out.stdout.splitlines() if line.startswith("ISSUE ")]
    assert [line.split(":")[0] for line in lines] == [
        "ISSUE 71",
        "ISSUE 72",
        "ISSUE 73",
        "ISSUE 74",
    ]
    assert lines[3] == (
        "ISSUE 74: SKIPPED (no message: the diff has no Subject: header (git format-patch))"
    )
    subjects = project.git("log", "--format=%s", "-3").splitlines()
    assert sorted(subjects) == [
        "Issue 71: Add a licence",
        "Issue 72: Start a changelog, första",
        "Issue 73: Reword the readme",
    ]
    assert (project.patches / "issue_74.diff").is_file(), "a skipped input stays in the inbox"
    assert not (project.patches / "issue_71.py").exists()
    assert project.origin_head() == project.head()


def test_one_failing_issue_fails_the_batch_and_the_others_land(project: Project) -> None:
    project.patch(
        "issue_81.py", ["README.md"], 'MESSAGE = "Docs"\nPath("README.md").write_text("new\\n")\n'
    )
    project.patch(
        "issue_82.py",
        ["LICENSE"],
        'MESSAGE = "Sneaky"\nPath("LICENSE").write_text("MIT\\n")\nPath("x.txt").write_text("x")\n',
    )

    out = project.run("--batch", *NO_GATES)

    assert out.code == 1
    assert out.line("ISSUE 81:").startswith("ISSUE 81: SUCCESS, commit ")
    assert out.line("ISSUE 82:") == "ISSUE 82: FAIL SCOPE:UNDECLARED"
    assert out.result_line == "RESULT: FAIL SCOPE:UNDECLARED"
    assert project.git("log", "--format=%s", "-1") == "Issue 81: Docs"


def test_nothing_waiting_is_a_success_that_says_so(project: Project) -> None:
    out = project.run("--batch", *NO_GATES)
    assert out.code == 0
    assert "[batch] no patches/issue_<ID>.* waiting" in out.stdout
    assert out.result_line == "RESULT: SUCCESS"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--batch", "5", "msg"), "--batch takes no ISSUE_ID"),
        (("--batch", "-f", "msg"), "--batch excludes -f"),
    ],
)
def test_batch_with_a_mode_or_arguments_is_a_usage_error(
    project: Project, args: tuple[str, ...], said: str
) -> None:
    before = project.repo_state()
    out = project.run(*args)
    assert out.code == 2
    assert said in out.stderr
    assert project.repo_state() == before


def message(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return inbox.message_of(path, data)


def test_messages_are_read_never_run(tmp_path: Path) -> None:
    script = b'FILES = ["a"]\nMESSAGE = "Fix " "it"\nraise SystemExit(1)\n'
    assert message(tmp_path, "issue_1.py", script) == "Fix it"
    with pytest.raises(ValueError, match="string literal"):
        message(tmp_path, "issue_2.py", b'FILES = ["a"]\nMESSAGE = open("/etc/passwd").read()\n')
    with pytest.raises(ValueError, match="one module-level MESSAGE"):
        message(tmp_path, "issue_3.py", b'FILES = ["a"]\nif True:\n    MESSAGE = "x"\n')
    mail = b"From 0 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 2/3] Fix\n the parser\n\ndiff\n"
    assert message(tmp_path, "issue_4.patch", mail) == "Fix the parser"


def test_inbox_orders_by_number_and_judges_each_input(tmp_path: Path) -> None:
    for name in ("issue_10.py", "issue_9.py", "issue_9.patch", "issue_2.py", "notes.py"):
        (tmp_path / name).write_text('FILES = ["a"]\nMESSAGE = "m"\n')
    (tmp_path / "issue_3.py").write_text('FILES = ["a"]\nMESSAGE = "a\\x00b"\n')
    found = inbox.waiting(tmp_path)
    assert [(w.issue_id, w.message, w.skip[:20]) for w in found] == [
        ("2", "m", ""),
        ("3", "", "no message: it holds"),
        ("9", "", "several inputs (issu"),
        ("10", "m", ""),
    ]
