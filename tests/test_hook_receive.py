"""pre-receive on a bare origin: fast-forward only on main, the path policy on every new commit,
read through git's quarantine."""

from __future__ import annotations

import os
import time
from pathlib import Path

from am_patch.hooks.pre_receive import MAX_COMMITS
from testing.hooks import (
    commit_file,
    git,
    mktree,
    remote_lines,
    remote_says,
    run,
)
from testing.project import Project

# --- pre-receive on the bare origin -----------------------------------------------------------


def test_server_refuses_a_symlink_leaving_the_repository(project: Project, server: Path) -> None:
    tip = project.origin_head()
    os.symlink("../outside", server / "link")
    assert git(server, "add", "link").returncode == 0
    bad = commit_file(server, "README.md", "# democalc\n\nlink\n", "Link out")

    done = git(server, "push", "origin", "main")

    assert done.returncode != 0
    assert remote_says(
        done.stderr, f"refs/heads/main {bad[:10]}: link: symlink leaves the repository"
    ), done.stderr
    assert project.origin_head() == tip
    fsck = git(project.origin, "fsck", "--strict")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert git(project.origin, "cat-file", "-e", bad).returncode != 0  # quarantine dropped


def test_server_refuses_a_second_push_that_makes_an_earlier_link_leave(
    project: Project, server: Path
) -> None:
    os.makedirs(server / "docs/sub1/sub2")
    os.symlink("sub1/sub2", server / "docs/d")
    os.symlink("d/../..", server / "docs/L")
    assert git(server, "add", "docs").returncode == 0
    assert git(server, "commit", "-q", "-m", "Links inside").returncode == 0
    first = git(server, "push", "origin", "main")
    assert first.returncode == 0, first.stderr
    tip = project.origin_head()
    os.unlink(server / "docs/d")
    os.symlink(".", server / "docs/d")
    assert git(server, "add", "docs/d").returncode == 0
    assert git(server, "commit", "-q", "-m", "Retarget d").returncode == 0

    done = git(server, "push", "origin", "main")

    assert done.returncode != 0
    assert remote_says(done.stderr, "docs/L: symlink leaves the repository"), done.stderr
    assert project.origin_head() == tip


def test_server_refuses_a_path_under_dot_git(project: Project, server: Path) -> None:
    tip = project.origin_head()
    blob = git(server, "hash-object", "-w", "README.md").stdout.strip()
    config_tree = mktree(server, f"100644 blob {blob}\tconfig\n")
    dot_git = mktree(server, f"040000 tree {config_tree}\t.git\n")
    root = mktree(server, git(server, "ls-tree", "HEAD").stdout + f"040000 tree {dot_git}\tsub\n")
    commit = git(server, "commit-tree", root, "-p", "HEAD", "-m", "Into .git").stdout.strip()

    done = git(server, "push", "origin", f"{commit}:refs/heads/main")

    assert done.returncode != 0
    assert remote_says(done.stderr, "sub/.git/config: path inside .git")
    assert project.origin_head() == tip


def test_server_accepts_a_good_push_and_refuses_a_rewrite_of_main(
    project: Project, server: Path
) -> None:
    good = commit_file(server, "README.md", "# democalc\n\ngood\n", "Good")

    accepted = git(server, "push", "origin", "main")

    assert accepted.returncode == 0, accepted.stderr
    assert project.origin_head() == good

    git(server, "commit", "-q", "--amend", "-m", "Rewritten")
    forced = git(server, "push", "--force", "origin", "main")

    assert forced.returncode != 0
    assert remote_says(
        forced.stderr, "refs/heads/main: not a fast-forward; fetch, rebase onto main and push again"
    ), forced.stderr
    assert project.origin_head() == good


def test_server_refuses_a_blob_over_max_file_bytes(project: Project, server: Path) -> None:
    (project.origin / "am_patch.toml").write_text("max_file_bytes = 1000\n")
    tip = project.origin_head()
    commit_file(server, "small.txt", "s" * 999, "Small")
    commit_file(server, "big.txt", "b" * 2000, "Big")

    done = git(server, "push", "origin", "main")

    assert done.returncode != 0
    lines = remote_lines(done.stderr)
    assert any("big.txt: larger than max_file_bytes=1000" in line for line in lines), lines
    assert not any("small.txt" in line for line in lines)
    assert project.origin_head() == tip


def import_commits(cwd: Path, count: int, *, link_at: int | None = None) -> str:
    """count commits on main made by git fast-import (no hooks); commit link_at adds a symlink
    leaving the repository and the next one removes it again, so the tip's tree is clean."""
    head = git(cwd, "rev-parse", "HEAD").stdout.strip()
    stream = []
    for n in range(count):
        message = f"Commit {n}\n"
        content = f"note {n}\n"
        stream += [
            "commit refs/heads/main",
            "committer Test Committer <committer@example.invalid> 1767225600 +0000",
            f"data {len(message)}",
            message,
        ]
        if n == 0:
            stream.append(f"from {head}")
        stream += [f"M 100644 inline notes/{n % 30}/{n}.txt", f"data {len(content)}", content]
        if n == link_at:
            stream += ["M 120000 inline out", "data 6", "../../"]
        if link_at is not None and n == link_at + 1:
            stream.append("D out")
    done = run(["git", "fast-import", "--quiet"], cwd, stdin="\n".join(stream) + "\n")
    assert done.returncode == 0, done.stderr
    return head


def test_server_checks_a_push_of_300_commits_within_seconds(project: Project, server: Path) -> None:
    head = import_commits(server, 300)
    tip = git(server, "rev-parse", "refs/heads/main").stdout.strip()

    start = time.monotonic()
    pushed = git(server, "push", "-q", "origin", "main")
    elapsed = time.monotonic() - start

    assert pushed.returncode == 0, pushed.stderr
    assert project.origin_head() == tip
    assert git(project.origin, "rev-list", "--count", f"{head}..main").stdout.strip() == "300"
    assert elapsed < 10, f"push of 300 commits took {elapsed:.1f}s"


def test_server_checks_every_pushed_commit_not_only_the_tip(project: Project, server: Path) -> None:
    import_commits(server, 300, link_at=150)
    bad = git(server, "rev-parse", "main~149").stdout.strip()  # commit 150 of 0..299
    assert git(server, "ls-tree", "main", "out").stdout == ""  # the tip alone looks clean
    tip = project.origin_head()

    start = time.monotonic()
    done = git(server, "push", "origin", "main")
    elapsed = time.monotonic() - start

    assert done.returncode != 0
    lines = remote_lines(done.stderr)
    assert any(f"{bad[:10]}: out: symlink leaves the repository" in line for line in lines), lines
    assert project.origin_head() == tip
    assert elapsed < 10, f"push of 300 commits took {elapsed:.1f}s"


def test_server_refuses_more_commits_than_it_checks(project: Project, server: Path) -> None:
    """Past pre_receive.MAX_COMMITS nothing would be checked: refused, not let in unchecked."""
    head = git(server, "rev-parse", "HEAD").stdout.strip()
    stream = [f"reset refs/heads/main\nfrom {head}\n"]
    stream += ["commit refs/heads/main\ncommitter T <t@example.invalid> 0 +0000\ndata 2\nc\n"] * (
        MAX_COMMITS + 1
    )
    assert run(["git", "fast-import", "--quiet"], server, stdin="\n".join(stream)).returncode == 0
    tip = project.origin_head()

    done = git(server, "push", "origin", "main")

    assert done.returncode != 0
    assert remote_says(
        done.stderr, f"refs/heads/main: more than {MAX_COMMITS} new commits in one push"
    ), done.stderr
    assert project.origin_head() == tip
