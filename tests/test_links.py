"""Symlinks: no link of a landed tree resolves outside the repository, however links chain."""

from __future__ import annotations

import pytest

from testing.project import CALC, NO_GATES, Project, assert_fails, assert_success

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


# --- everything am-patch writes refuses to follow a link ----------------------------------------


def track_link(project: Project, rel: str, target: str) -> None:
    """A commit (as one pulled from origin could) that tracks rel, under patches/, as a link."""
    path = project.live / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    project.git("add", "-f", rel)
    project.git("commit", "-q", "-m", f"Track {rel}")
    project.git("push", "-q", "origin", "main")


@pytest.mark.parametrize(
    "rel",
    [
        "patches/am_patch.lock",
        "patches/patched_success.zip",
        "patches/logs",
        "patches/successful",
        "patches/workspaces/issue_5",
    ],
)
def test_a_tracked_link_under_patches_is_never_written_through(project: Project, rel: str) -> None:
    victim = project.live / CALC
    original = victim.read_bytes()
    depth = "../" * rel.count("/")
    track_link(project, rel, f"{depth}{CALC}" if "." in rel.rsplit("/", 1)[-1] else f"{depth}src")
    project.patch("issue_5.py", ["README.md"], 'Path("README.md").write_text("x\\n")\n')
    before = project.repo_state(include_patches=False)

    out = project.run("5", "Docs", *NO_GATES)

    assert_fails(out, "PREFLIGHT:UNSAFE")
    assert rel in out.line("REASON:") and "link" in out.line("REASON:")
    assert victim.read_bytes() == original
    assert project.repo_state(include_patches=False) == before
    assert sorted(p.name for p in (project.live / "src").iterdir()) == ["democalc"]


def test_a_link_in_the_way_of_the_success_zip_is_replaced_not_followed(project: Project) -> None:
    notes = project.write("docs/notes.md", "my notes\n")
    project.commit_all("Notes")
    (project.patches / "patched_success.zip").symlink_to("../docs/notes.md")  # untracked
    project.patch("issue_6.py", ["README.md"], 'Path("README.md").write_text("x\\n")\n')

    out = project.run("6", "Docs", *NO_GATES)

    assert_fails(out, "PREFLIGHT:UNSAFE")
    assert notes.read_text() == "my notes\n"
