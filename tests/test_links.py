"""Symlinks: no link of a landed tree resolves outside the repository, however links chain."""

from __future__ import annotations

from testing.project import NO_GATES, Project, assert_fails, assert_success

LINKS = """\
import os
os.makedirs("docs/sub1/sub2", exist_ok=True)
Path("docs/sub1/sub2/page.md").write_text("page\\n")
os.symlink("sub1/sub2", "docs/d")
os.symlink("d/../..", "docs/L")
"""
RETARGET = """\
import os
os.unlink("docs/d")
os.symlink(".", "docs/d")
"""


def test_retargeting_a_link_that_an_unchanged_link_chains_through_is_unsafe(
    project: Project,
) -> None:
    files = ["docs/d", "docs/L", "docs/sub1/sub2/page.md"]
    project.patch("issue_1.py", files, LINKS)
    assert_success(project.run("1", "Links inside", *NO_GATES))
    landed = project.head()
    project.patch("issue_2.py", ["docs/d"], RETARGET)

    out = project.run("2", "Retarget d", *NO_GATES)

    assert_fails(out, "SCOPE:UNSAFE")
    assert "docs/L: symlink leaves the repository" in out.line("REASON:")
    assert project.head() == landed and project.origin_head() == landed


def test_a_rebase_onto_a_main_that_retargeted_a_link_is_judged_again(project: Project) -> None:
    project.patch(
        "issue_1.py",
        ["docs/d", "docs/sub1/sub2/page.md"],
        LINKS.replace('os.symlink("d/../..", "docs/L")\n', ""),
    )
    assert_success(project.run("1", "Link d", *NO_GATES))
    project.patch("issue_3.py", ["docs/L"], 'import os\nos.symlink("d/../..", "docs/L")\n')
    held = project.run("3", "Link L", "--disable-promotion", *NO_GATES)
    assert_success(held)  # inside while docs/d -> sub1/sub2
    (project.live / "docs/d").unlink()
    (project.live / "docs/d").symlink_to(".")
    moved = project.commit_all("Retarget d on main")

    out = project.run("3", "Link L", *NO_GATES)

    assert_fails(out, "SCOPE:UNSAFE")
    assert "docs/L: symlink leaves the repository" in out.line("REASON:")
    assert project.head() == moved and project.origin_head() == moved
