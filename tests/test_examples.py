"""The example patches shipped in patches/ stay valid and run on this repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from am_patch import patchfile
from testing.project import NO_GATES, Project

ROOT = Path(__file__).resolve().parents[1]


def test_example_script_declares_its_file() -> None:
    loaded = patchfile.load(ROOT / "patches", "1", "example_issue_1.py", ascii_only=True)
    assert loaded.kind is patchfile.Kind.SCRIPT
    assert loaded.files == ("docs/example.md",)


def test_example_diff_applies_to_this_repository() -> None:
    loaded = patchfile.load(ROOT / "patches", "2", "example_issue_2.diff", ascii_only=True)
    assert loaded.files == ("docs/example-from-diff.md",)
    check = subprocess.run(
        ["git", "apply", "--check", "patches/example_issue_2.diff"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_both_examples_land_on_a_project(project: Project) -> None:
    for name in ("example_issue_1.py", "example_issue_2.diff"):
        shutil.copy(ROOT / "patches" / name, project.patches / name)
    first = project.run("1", "Example script", "example_issue_1.py", *NO_GATES)
    second = project.run("2", "Example diff", "example_issue_2.diff", *NO_GATES)
    assert first.result_line == "RESULT: SUCCESS", first.stdout
    assert second.result_line == "RESULT: SUCCESS", second.stdout
    assert (project.live / "docs/example.md").is_file()
    assert (project.live / "docs/example-from-diff.md").read_text().startswith("# Example")
    assert project.origin_head() == project.head()
