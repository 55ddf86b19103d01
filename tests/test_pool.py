"""O(changed) workspaces: a finished workspace's worktree is kept, cleaned to exactly the landed
tree, and the next issue's workspace is that worktree moved into place with only the files that
differ written; a snapshot reads only the files whose stat changed, and cannot be fooled by a
rewrite that restores the old size and mtime."""

from __future__ import annotations

import os
import time
from pathlib import Path

from am_patch.repo import Repo
from am_patch.repo.walk import Memory
from testing.files import file_states
from testing.project import CALC, CALC_WITH_SUB, NO_GATES, Project, assert_success

DOCS = "Path('docs').mkdir(exist_ok=True)\nPath('docs/{name}.md').write_text('{text}\\n')\n"


def land_docs(project: Project, issue: str, name: str, *extra: str) -> None:
    project.patch(f"issue_{issue}.py", [f"docs/{name}.md"], DOCS.format(name=name, text=name))
    assert_success(project.run(issue, f"Docs {name}", *NO_GATES, *extra))


def git_view(project: Project, repo: Path) -> tuple[str, str, str]:
    """What git says of a workspace: its HEAD, its index, its status (every untracked file)."""
    return (
        project.git("symbolic-ref", "HEAD", cwd=repo),
        project.git("ls-files", "--stage", cwd=repo),
        project.git("status", "--porcelain", "--untracked-files=all", "--ignored", cwd=repo),
    )


def test_a_finished_workspace_goes_to_the_pool_cleaned_to_the_landed_tree(
    project: Project,
) -> None:
    cache = "src/democalc/__pycache__"
    ignored_write = f"Path({cache!r}).mkdir()\nPath({cache!r} + '/x.pyc').write_text('x')\n"
    project.patch("issue_1.py", ["docs/a.md"], DOCS.format(name="a", text="a") + ignored_write)
    assert_success(project.run("1", "Docs a", *NO_GATES))

    assert not project.workspace_dir("1").exists()
    assert project.git("branch", "--list", "am_patch/*") == ""
    [pooled] = project.pool()
    assert project.worktrees(pooled=True) == [str(project.live), str(pooled)]
    live_files = {
        path: state
        for path, state in file_states(project.live, skip_git_pointer=True).items()
        if not path.startswith(("patches/", ".git/"))
    }
    assert file_states(pooled, skip_git_pointer=True) == live_files
    assert project.git("status", "--porcelain", "--ignored", cwd=pooled) == ""
    assert not (pooled / "src/democalc/__pycache__").exists()
    assert project.git("rev-parse", "HEAD", cwd=pooled) == project.head()


def test_a_recycled_workspace_is_indistinguishable_from_a_fresh_one(project: Project) -> None:
    land_docs(project, "1", "a")
    assert len(project.pool()) == 1
    project.write(CALC, CALC_WITH_SUB)
    project.write("docs/b.md", "b\n")
    project.commit_all("Main moves on")
    fail = "raise SystemExit(1)\n"  # keeps the workspace, untouched by the patch
    project.patch("issue_2.py", ["README.md"], fail)
    project.run("2", "Recycled", *NO_GATES)
    assert project.pool() == [], "the pooled worktree became issue 2's workspace"
    recycled = project.workspace_repo("2")
    project.patch("issue_3.py", ["README.md"], fail)
    project.run("3", "Fresh", *NO_GATES, "--override", "workspace_pool=0")
    fresh = project.workspace_repo("3")

    assert file_states(recycled, skip_git_pointer=True) == file_states(fresh, skip_git_pointer=True)
    assert git_view(project, recycled) == (
        "refs/heads/am_patch/issue_2",
        *git_view(project, fresh)[1:],
    )
    assert project.git("rev-parse", "HEAD", cwd=recycled) == project.head()
    project.patch("issue_2.py", ["README.md"], "Path('README.md').write_text('two\\n')\n")
    assert_success(project.run("2", "Lands from the recycled workspace", *NO_GATES))
    assert project.git("show", "HEAD:README.md") == "two"


def test_the_pool_is_bounded(project: Project) -> None:
    for issue in ("1", "2", "3"):  # three workspaces open at once
        project.patch(f"issue_{issue}.py", ["README.md"], "raise SystemExit(1)\n")
        project.run(issue, "Open", *NO_GATES, "--override", "workspace_pool=0")
    for issue, name in (("1", "a"), ("2", "b"), ("3", "c")):
        land_docs(project, issue, name, "--override", "workspace_pool=2")
    assert len(project.pool()) == 2
    assert len(project.worktrees(pooled=True)) == 3


def test_recycling_writes_only_the_files_that_differ(project: Project) -> None:
    land_docs(project, "1", "a")
    [pooled] = project.pool()
    untouched = pooled / "src/democalc/__init__.py"
    inode = untouched.stat().st_ino
    project.write(CALC, CALC_WITH_SUB)
    project.commit_all("Main moves on")
    project.patch("issue_2.py", ["README.md"], "raise SystemExit(1)\n")
    project.run("2", "Recycled", *NO_GATES)
    repo = project.workspace_repo("2")

    assert (repo / "src/democalc/__init__.py").stat().st_ino == inode
    assert (repo / CALC).read_text() == CALC_WITH_SUB


def test_a_rewrite_that_restores_size_and_mtime_is_still_seen(tmp_path: Path) -> None:
    import pygit2

    raw = pygit2.init_repository(str(tmp_path / "repo"))
    root = Path(raw.workdir)
    victim = root / "a.txt"
    victim.write_text("aaaa\n")
    (root / "b.txt").write_text("bbbb\n")
    time.sleep(0.2)  # older than a clock tick when first seen: their stats are trusted
    memory = Memory()
    repo = Repo(raw, memory)
    first = repo.snapshot()
    before = os.stat(victim)
    with open(victim, "r+b") as handle:  # same size, then the old mtime put back, as a patch can
        handle.write(b"zzzz\n")
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(victim)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    second = repo.snapshot()

    assert second.entries["a.txt"] != first.entries["a.txt"], "ctime changed: it was read again"
    assert second.entries["b.txt"] == first.entries["b.txt"]
    assert repo.blob_bytes(second.entries["a.txt"][0]) == b"zzzz\n"
