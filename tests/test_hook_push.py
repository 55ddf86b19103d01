"""pre-push: main only moves forward from what origin has, and every pushed ref is judged."""

from __future__ import annotations

import os

from testing.hooks import (
    clone,
    commit_file,
    git,
)
from testing.project import Project

# --- pre-push: main only moves forward, every ref judged ---------------------------------------


def test_forced_push_over_a_newer_origin_is_refused_until_rebased(hooked: Project) -> None:
    other = clone(hooked, "other")
    theirs = commit_file(other, "NOTES.md", "theirs\n", "Their notes")
    assert git(other, "push", "-q", "origin", "main").returncode == 0
    commit_file(hooked.live, "README.md", "# democalc\n\nours\n", "Our readme")

    unseen = git(hooked.live, "push", "--force", "origin", "main")

    assert unseen.returncode != 0
    assert "the remote has commits you do not have" in unseen.stderr
    assert "run 'git fetch origin' and 'git rebase origin/main'" in unseen.stderr
    assert hooked.origin_head() == theirs

    hooked.git("fetch", "-q", "origin")
    rewrite = git(hooked.live, "push", "--force", "origin", "main")

    assert rewrite.returncode != 0
    assert "would rewrite the remote's history" in rewrite.stderr
    assert hooked.origin_head() == theirs

    hooked.git("rebase", "-q", "origin/main")
    rebased = git(hooked.live, "push", "origin", "main")

    assert rebased.returncode == 0, rebased.stderr
    assert hooked.origin_head() == hooked.head()
    assert hooked.git("rev-parse", "HEAD~1") == theirs


def test_deleting_main_on_origin_is_refused(hooked: Project) -> None:
    tip = hooked.origin_head()

    done = git(hooked.live, "push", "origin", "--delete", "main")

    assert done.returncode != 0
    assert "refs/heads/main: deleting main is refused" in done.stderr
    assert hooked.origin_head() == tip


def test_multi_ref_push_is_refused_for_the_bad_ref_with_a_verdict_for_each(
    hooked: Project,
) -> None:
    hooked.git("checkout", "-q", "-b", "feature")
    os.symlink("../../outside", hooked.live / "escape")
    hooked.git("add", "escape")
    hooked.git("commit", "-q", "--no-verify", "-m", "Escape")
    bad = hooked.git("rev-parse", "HEAD")[:10]
    hooked.git("checkout", "-q", "main")
    commit_file(hooked.live, "README.md", "# democalc\n\nfine\n", "Fine readme")
    tip = hooked.origin_head()

    done = git(hooked.live, "push", "origin", "main", "feature")

    assert done.returncode != 0
    assert "am-patch-hook: refs/heads/main: ok" in done.stderr
    assert "am-patch-hook: refs/heads/feature: refused" in done.stderr
    assert f"refs/heads/feature {bad}: escape: symlink leaves the repository" in done.stderr
    assert hooked.origin_head() == tip
    assert hooked.git("ls-remote", "origin", "refs/heads/feature") == ""


def test_every_ref_is_judged_not_only_the_first(hooked: Project) -> None:
    hooked.git("checkout", "-q", "-b", "feature")
    os.symlink("/etc/hostname", hooked.live / "host")
    hooked.git("add", "host")
    hooked.git("commit", "-q", "--no-verify", "-m", "Host")
    hooked.git("checkout", "-q", "main")

    done = git(hooked.live, "push", "origin", "feature", ":main")

    assert done.returncode != 0
    assert "refs/heads/main: deleting main is refused" in done.stderr
    assert "host: symlink to an absolute path (/etc/hostname)" in done.stderr
