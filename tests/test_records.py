"""What a run leaves behind: the summary, exit code, logs, JSON, archives; push and preflight."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

from testing.project import CALC, NO_GATES, Outcome, Project

APPEND_SUB = """
p = Path("src/democalc/calc.py")
p.write_text(p.read_text() + "\\n\\ndef sub(a: int, b: int) -> int:\\n    return a - b\\n")
"""
UNDECLARED = APPEND_SUB + 'Path("stray.txt").write_text("stray\\n")\n'


def zip_contents(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist() if not name.endswith("/")}


def summary_block(out: Outcome) -> list[str]:
    lines = out.stdout.splitlines()
    return lines[lines.index("== am-patch summary ==") :]


def test_success_summary_exit_code_log_and_json(project: Project) -> None:
    project.write("am_patch.toml", "failure_zips_keep = 3\n")
    project.commit_all("Configure am-patch")
    project.patch("issue_61.py", [CALC], APPEND_SUB)

    out = project.run("61", "Add sub", "--override", "patch_timeout_s=77", *NO_GATES)
    assert out.code == 0, out.stdout + out.stderr
    block = summary_block(out)
    assert block[-1] == "RESULT: SUCCESS" == out.result_line
    commit = project.head()
    assert f"COMMIT: {commit}" in block
    assert "PUSH: OK" in block
    assert "  M src/democalc/calc.py" in block

    log = project.log_path(out)
    assert log.parent == project.patches / "logs" and log.suffix == ".log"
    text = log.read_text()
    assert "patch_timeout_s = 77  # override" in text
    assert "ascii_only_patch = true  # default" in text
    assert f"failure_zips_keep = 3  # {project.live / 'am_patch.toml'}" in text
    assert "gates_order = []  # override" in text
    assert "$ (cd " in text and " && git " in text, "commands are logged as shell lines"
    assert " && git push " in text, "the push command is logged"
    assert " && bwrap " in text or "/bwrap " in text, "the patch command is logged"
    assert f"promotion plan: {CALC}" in text
    assert commit in text
    assert "RESULT: SUCCESS" in text

    data = json.loads(log.with_suffix(".json").read_text())
    assert data["result"] == "RESULT: SUCCESS"
    assert data["success"] is True
    assert data["commit"] == commit
    assert data["push"] == "OK"
    assert ["M", CALC] in data["files"]

    link = project.patches / "am_patch.log"
    assert link.is_symlink()
    assert link.resolve() == log.resolve()


def test_failure_summary_exit_code_json_and_newest_log_link(project: Project) -> None:
    project.patch("issue_62.py", [CALC], APPEND_SUB)
    first = project.run("62", "Add sub", *NO_GATES)
    assert first.code == 0, first.stdout + first.stderr

    project.patch("issue_63.py", ["README.md"], "")
    out = project.run("63", "Nothing", *NO_GATES)
    assert out.code == 1
    block = summary_block(out)
    assert block[-1] == "RESULT: FAIL SCOPE:NOOP"
    assert "COMMIT: -" in block
    assert any(line.startswith("PUSH: ") for line in block)
    assert any(line.startswith("REASON: ") for line in block)
    log = project.log_path(out)
    assert log != project.log_path(first)
    assert "failure fingerprint: SCOPE:NOOP" in log.read_text()
    data = json.loads(log.with_suffix(".json").read_text())
    assert data["result"] == "RESULT: FAIL SCOPE:NOOP"
    assert data["success"] is False
    assert (project.patches / "am_patch.log").resolve() == log.resolve()


def test_inputs_are_filed_with_attempt_suffixes(project: Project) -> None:
    for attempt in range(2):
        project.patch("issue_64.py", [CALC], UNDECLARED + f"# attempt {attempt}\n")
        out = project.run("64", "Fails", *NO_GATES)
        assert out.result_line == "RESULT: FAIL SCOPE:UNDECLARED"
        assert not (project.patches / "issue_64.py").exists(), "the input must be moved"
    failed = project.patches / "unsuccessful"
    assert sorted(p.name for p in failed.iterdir()) == ["issue_64.py", "issue_64_v2.py"]
    assert (failed / "issue_64.py").read_text().endswith("# attempt 0\n")
    assert (failed / "issue_64_v2.py").read_text().endswith("# attempt 1\n")

    for attempt in range(2):
        project.patch("issue_65.py", ["README.md"], f'Path("README.md").write_text("v{attempt}")\n')
        out = project.run("65", "Docs", *NO_GATES)
        assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    done = project.patches / "successful"
    assert sorted(p.name for p in done.iterdir()) == ["issue_65.py", "issue_65_v2.py"]
    assert "v1" in (done / "issue_65_v2.py").read_text()


def test_failure_zips_hold_the_log_and_the_files_as_the_patch_left_them(
    project: Project,
) -> None:
    files = [CALC, "venv/lib.py", "src/democalc/stale.pyc", "README.md"]
    body = UNDECLARED + (
        'Path("venv").mkdir()\n'
        'Path("venv/lib.py").write_text("x = 1\\n")\n'
        'Path("src/democalc/stale.pyc").write_bytes(b"\\0pyc")\n'
        'Path("src/democalc/__pycache__").mkdir(exist_ok=True)\n'
        'Path("src/democalc/__pycache__/calc.cpython-311.pyc").write_bytes(b"\\0pyc")\n'
    )
    outs = []
    for _ in range(2):
        project.patch("issue_66.py", files, body)
        outs.append(project.run("66", "Fails", "-t", *NO_GATES))
        assert outs[-1].result_line == "RESULT: FAIL SCOPE:UNDECLARED", outs[-1].stdout

    assert sorted(p.name for p in project.patches.glob("patched_issue66_v*.zip")) == [
        "patched_issue66_v01.zip",
        "patched_issue66_v02.zip",
    ]
    assert "ARCHIVE: patches/patched_issue66_v02.zip" in outs[1].stdout
    contents = zip_contents((project.patches / "patched_issue66_v02.zip").read_bytes())
    log = project.log_path(outs[1])
    assert contents[f"logs/{log.name}"].decode().count("changed but not in FILES") >= 1
    assert "def sub" in contents[CALC].decode(), "the zip must hold the patched file"
    assert contents["stray.txt"] == b"stray\n"
    assert contents["README.md"] == (project.live / "README.md").read_bytes()
    for name in contents:
        parts = name.split("/")
        assert not {".git", "venv", ".venv", "__pycache__"} & set(parts), name
        assert not name.endswith(".pyc"), name
    assert "issue_66.py" not in {Path(n).name for n in contents}


def test_success_zip_is_git_archive_of_head(project: Project) -> None:
    project.patch("issue_67.py", [CALC], APPEND_SUB)
    out = project.run("67", "Add sub", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr

    expected = subprocess.run(
        ["git", "archive", "--format=zip", "HEAD"],
        cwd=project.live,
        capture_output=True,
        check=True,
    ).stdout
    actual = zip_contents((project.patches / "patched_success.zip").read_bytes())
    assert actual == zip_contents(expected)
    assert "def sub" in actual[CALC].decode()
    assert not any(name.startswith("patches/") for name in actual)


def test_push_failure_is_reported_but_succeeds(project: Project) -> None:
    before = project.head()
    project.reject_pushes()
    project.patch("issue_68.py", [CALC], APPEND_SUB)

    out = project.run("68", "Add sub", *NO_GATES)
    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert out.line("PUSH:") == "PUSH: FAIL"
    assert project.head() != before
    assert project.origin_head() == before


def test_push_failure_fails_with_require_push_success(project: Project) -> None:
    before = project.head()
    project.reject_pushes()
    project.patch("issue_69.py", [CALC], APPEND_SUB)

    out = project.run("69", "Add sub", "--require-push-success", *NO_GATES)
    assert out.code == 1
    assert out.result_line == "RESULT: FAIL PUSH:FAILED"
    assert out.line("PUSH:") == "PUSH: FAIL"
    assert project.origin_head() == before


def test_origin_ahead_fails_preflight_and_u_skips_the_check(project: Project) -> None:
    before = project.head()
    other = project.base / "other"
    project.git("clone", "-q", str(project.origin), str(other))
    (other / "ELSEWHERE.md").write_text("pushed from another clone\n")
    project.git("add", "-A", cwd=other)
    project.git("commit", "-q", "-m", "Elsewhere", cwd=other)
    project.git("push", "-q", "origin", "main", cwd=other)
    ahead = project.origin_head()
    project.patch("issue_70.py", [CALC], APPEND_SUB)

    out = project.run("70", "Add sub", *NO_GATES)
    assert out.result_line == "RESULT: FAIL PREFLIGHT:ORIGIN_AHEAD"
    assert out.code == 1
    assert project.head() == before
    assert not project.workspace_dir("70").exists()

    project.patch("issue_70.py", [CALC], APPEND_SUB)
    out = project.run("70", "Add sub", "-u", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert out.line("PUSH:") == "PUSH: OK", "the push caught up with origin and landed on it"
    assert project.git("rev-parse", "HEAD~1") == ahead
    assert project.origin_head() == project.head()


def test_preflight_git_refuses_another_branch_and_a_detached_head(project: Project) -> None:
    before = project.head()
    project.git("checkout", "-q", "-b", "feature")
    project.patch("issue_71.py", [CALC], APPEND_SUB)
    out = project.run("71", "Add sub", *NO_GATES)
    assert out.result_line == "RESULT: FAIL PREFLIGHT:GIT"
    assert "feature" in out.line("REASON:")

    project.git("checkout", "-q", "--detach", "main")
    project.patch("issue_71.py", [CALC], APPEND_SUB)
    out = project.run("71", "Add sub", *NO_GATES)
    assert out.result_line == "RESULT: FAIL PREFLIGHT:GIT"
    assert "detached" in out.line("REASON:")

    assert project.head() == project.origin_head() == before
    assert project.git("rev-parse", "HEAD") == before
    assert not project.workspace_dir("71").exists()


def test_failure_zip_after_a_patch_crash_holds_what_the_patch_left(project: Project) -> None:
    project.patch(
        "issue_72.py",
        [CALC],
        'Path("src/democalc/calc.py").write_text("half done\\n")\nraise SystemExit(2)\n',
    )

    out = project.run("72", "Crashes", *NO_GATES)
    assert out.result_line == "RESULT: FAIL PATCH:EXEC"
    zip_path = project.patches / "patched_issue72_v01.zip"
    contents = zip_contents(zip_path.read_bytes()) if zip_path.is_file() else {}
    assert contents.get(CALC) == b"half done\n", (
        "after PATCH:EXEC the failure zip must hold the files as the patch left them, "
        "snapshotted before the rollback (SPEC 'Files on disk')"
    )
    assert f"logs/{project.log_path(out).name}" in contents


def test_later_success_zips_are_updated_not_rebuilt_and_stay_git_archives(
    project: Project,
) -> None:
    offsets: list[dict[str, int]] = []
    for issue, text in (("70", "one\n"), ("71", "two\n"), ("72", "three\n")):
        project.readme_patch(issue, text)
        assert project.run(issue, "Docs", *NO_GATES).result_line == "RESULT: SUCCESS"
        expected = subprocess.run(
            ["git", "archive", "--format=zip", "HEAD"],
            cwd=project.live,
            capture_output=True,
            check=True,
        ).stdout
        zipped = project.patches / "patched_success.zip"
        assert zip_contents(zipped.read_bytes()) == zip_contents(expected)
        with zipfile.ZipFile(zipped) as zf:
            assert [i.filename for i in zf.infolist()].count("README.md") == 1
            assert zf.testzip() is None
            offsets.append({i.filename: i.header_offset for i in zf.infolist()})
    # an unchanged file's entry stays where it was; the changed one is appended after it
    assert offsets[0][CALC] == offsets[1][CALC] == offsets[2][CALC]
    assert offsets[0]["README.md"] < offsets[1]["README.md"] < offsets[2]["README.md"]
