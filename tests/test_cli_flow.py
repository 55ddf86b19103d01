"""The command line around a run: argument order, -l lookups, the JSON record, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal

from testing.project import NO_GATES, Project


def append_readme(text: str) -> str:
    return f"p = Path('README.md')\np.write_text(p.read_text() + {text + chr(10)!r})\n"


def run_json(project: Project, log_line: str) -> dict[str, object]:
    rel = log_line.removeprefix("LOG: ")
    data = json.loads((project.live / rel).with_suffix(".json").read_text())
    assert isinstance(data, dict)
    return data


def test_options_may_stand_between_the_positional_arguments(project: Project) -> None:
    project.patch("fix.py", ["README.md"], append_readme("fixed"))

    out = project.run("5", "Fix readme", "-n", "fix.py", *NO_GATES)

    assert out.code == 0, out.output
    assert out.result_line == "RESULT: SUCCESS"
    assert project.git("log", "-1", "--format=%s") == "Issue 5: Fix readme"


def test_rerun_latest_finds_an_input_with_its_own_name(project: Project) -> None:
    project.patch("fix_login.py", ["README.md"], "raise SystemExit(3)\n")
    failed = project.run("60", "Fix login", "fix_login.py", *NO_GATES)
    assert failed.result_line == "RESULT: FAIL PATCH:EXEC", failed.output
    assert (project.patches / "unsuccessful" / "fix_login.py").is_file()
    project.patch("issue_600.py", ["README.md"], append_readme("six hundred"))
    assert project.run("600", "Other issue", *NO_GATES).code == 0

    out = project.run("-l", "60", "Retry", *NO_GATES)

    assert "unsuccessful/fix_login.py" in out.stdout, out.output
    assert out.result_line == "RESULT: FAIL PATCH:EXEC"


def test_rerun_latest_takes_the_input_filed_last_not_the_newest_file(project: Project) -> None:
    project.patch("issue_8.py", ["README.md"], "raise SystemExit(3)\n")
    assert project.run("8", "First", *NO_GATES).code == 1
    assert (project.patches / "unsuccessful" / "issue_8.py").is_file()
    second = project.patch("issue_8.py", ["README.md"], append_readme("second"))
    os.utime(second, (1_000_000_000, 1_000_000_000))  # written long ago, filed now
    assert project.run("8", "Second", *NO_GATES).code == 0

    out = project.run("-l", "8", "Again", *NO_GATES)

    assert "successful/issue_8.py" in out.stdout, out.output
    assert out.result_line == "RESULT: SUCCESS"
    assert (project.live / "README.md").read_text().endswith("second\nsecond\n")


def test_json_record_is_the_summary_shown_including_the_archive(project: Project) -> None:
    project.patch("issue_4.py", ["README.md"], append_readme("four"))

    out = project.run("4", "Four", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.output
    data = run_json(project, out.line("LOG:"))
    assert data["result"] == "RESULT: SUCCESS"
    assert "ARCHIVE: patches/patched_success.zip" in out.stdout
    assert "ARCHIVE: patches/patched_success.zip" in data["notes"]  # type: ignore[operator]
    assert data["archived_input"] == "patches/successful/issue_4.py"


def test_ctrl_c_prints_the_summary_and_exits_130(project: Project) -> None:
    project.patch(
        "issue_9.py",
        ["README.md"],
        "import time\nPath('README.md').write_text('half done\\n')\ntime.sleep(60)\n",
    )
    head, status = project.head(), project.git("status", "--porcelain", "--", ":!patches")
    code, stdout, _ = project.signal_while_patching(signal.SIGINT, "9", "Slow", *NO_GATES)

    assert code == 130, stdout
    assert stdout.strip().splitlines()[-1] == "RESULT: FAIL INTERNAL:INTERRUPTED"
    after = project.git("status", "--porcelain", "--", ":!patches")
    assert (project.head(), project.origin_head(), after) == (head, head, status)
    assert (project.patches / "issue_9.py").is_file(), "an interrupted run files nothing away"
    data = run_json(project, next(x for x in stdout.splitlines() if x.startswith("LOG:")))
    assert data["result"] == "RESULT: FAIL INTERNAL:INTERRUPTED"


def test_unknown_config_key_suggests_the_close_one(project: Project) -> None:
    out = project.run("-c", "--override", "gate_timout_s=3")

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL PREFLIGHT:CONFIG"
    assert "did you mean 'gate_timeout_s'?" in out.stdout
