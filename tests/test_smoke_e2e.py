"""The thin end-to-end path: one patch lands on main and origin."""

from __future__ import annotations

from testing.project import Project


def test_one_file_patch_lands_and_is_pushed(project: Project) -> None:
    before = project.head()
    project.patch(
        "issue_7.py",
        ["src/democalc/calc.py"],
        """
        p = Path("src/democalc/calc.py")
        p.write_text(p.read_text() + "\\n\\ndef sub(a: int, b: int) -> int:\\n    return a - b\\n")
        """,
    )
    out = project.run("7", "Add sub")
    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    after = project.head()
    assert after != before
    assert project.origin_head() == after
    assert project.git("rev-parse", f"{after}^") == before
    assert "def sub" in (project.live / "src/democalc/calc.py").read_text()
    assert project.git("log", "-1", "--format=%s") == "Issue 7: Add sub"
    assert project.status() == ""
    assert (project.patches / "successful" / "issue_7.py").is_file()
    assert not (project.patches / "workspaces" / "issue_7").exists()
