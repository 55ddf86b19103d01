"""Landing a tested commit on live main: a compare-and-swap fast-forward of exactly its paths,
journaled against crashes, undone when the live gates fail, recovered after a kill; and what
to carry onto main when it moved meanwhile."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from am_patch import crash
from am_patch.config import Config
from am_patch.errors import Category, Refusal
from am_patch.layout import Layout
from am_patch.repo import CommitOid, Repo
from am_patch.runlog import say

log = logging.getLogger("am_patch")


@dataclass(frozen=True, slots=True, kw_only=True)
class Landing:
    branch: str
    old: CommitOid
    new: CommitOid
    paths: tuple[str, ...]


def _journal(live: Repo) -> Path:
    return Layout(live.root, live.common_dir).journal


INDEX_BUSY = "another git process holds the live index (.git/index.lock)"


def check_index_free(live: Repo) -> None:
    """PROMOTION:LIVE_DIRTY while an IDE or another git command holds the live index."""
    if live.index_locked():
        raise Refusal(
            Category.LIVE_DIRTY,
            f"{INDEX_BUSY}; nothing was changed; rerun when it is done",
        )


def check_live_clean(live: Repo, paths: Sequence[str], incoming: CommitOid | None = None) -> None:
    """PROMOTION:LIVE_DIRTY if the user has uncommitted edits to any path we would write, or a
    file in its way (an untracked parent file, an ignored file incoming would overwrite)."""
    dirty = live.dirty_paths(paths, incoming)
    if dirty:
        shown = ", ".join(dirty[:5])
        raise Refusal(
            Category.LIVE_DIRTY,
            f"uncommitted live edits to files this change promotes: {shown} "
            "(commit or stash them, then rerun; nothing was changed)",
        )


def land(live: Repo, landing: Landing) -> None:
    """Fast-forward: write the paths (refusing to clobber edits), then CAS the branch ref."""
    check_live_clean(live, landing.paths, landing.new)
    check_index_free(live)
    journal = write_journal(live, landing)
    try:
        live.checkout_paths(landing.new, list(landing.paths))
        crash.point("landing")
        moved = live.cas_ref(
            f"refs/heads/{landing.branch}", landing.old, landing.new, "am-patch: fast-forward"
        )
    except BaseException as exc:
        _roll_back(live, landing, exc)
        raise
    if not moved:
        _roll_back(live, landing, None)
        raise Refusal(
            Category.LIVE_CHANGED,
            f"{landing.branch} moved while landing; nothing was changed, rerun",
        )
    journal.unlink(missing_ok=True)
    log.info("live %s fast-forwarded %s -> %s", landing.branch, landing.old, landing.new)


def write_journal(live: Repo, landing: Landing) -> Path:
    """Record the landing about to start, so recover() can finish or undo it after a crash."""
    layout = Layout(live.root, live.common_dir)
    record = {
        "branch": landing.branch,
        "old": landing.old,
        "new": landing.new,
        "paths": list(landing.paths),
    }
    layout.write(layout.journal, (json.dumps(record) + "\n").encode())
    return layout.journal


def _roll_back(live: Repo, landing: Landing, exc: BaseException | None) -> None:
    """The ref did not move: put the written paths back to the old commit, then drop the
    journal. If that fails too (say the index is locked), the journal stays for recover();
    a git error becomes PROMOTION:LIVE_DIRTY saying so."""
    if exc is not None and live.ref_commit(f"refs/heads/{landing.branch}") == landing.new:
        return  # main did move: the journal stays and recover() syncs the paths to it
    try:
        _sync_paths(live, landing.new, landing.old, landing.paths)
    except Refusal as failed:
        if not _put_back_files(live, landing):
            log.warning("rolling back the landing failed (%s): journal kept for recovery", failed)
            if exc is None or isinstance(exc, Refusal):
                raise Refusal(
                    Category.LIVE_DIRTY,
                    f"landing on {landing.branch} failed ({exc or failed}) and so did rolling "
                    f"it back; am-patch did not move {landing.branch}; the next am-patch run "
                    "(or am-patch-hook recover) restores the files",
                ) from exc
            return  # an unexpected error: it propagates, the journal stays
        log.warning("rolled back the files only (%s): the index never got them", failed)
    _journal(live).unlink(missing_ok=True)
    if isinstance(exc, Refusal):
        raise Refusal(
            exc.category, f"{exc.message}; rolled back: nothing was changed, rerun"
        ) from exc


def _put_back_files(live: Repo, landing: Landing) -> bool:
    """The index cannot be written (another process locked it): put back the files am-patch
    wrote, leaving the index alone. True when that restores a consistent state: the index on
    disk still holds the old commit's entries for the paths."""
    written = [p for p in landing.paths if not live.differs_from(landing.new, [p])]
    live.write_paths(landing.old, written)
    return live.index_matches(landing.old, landing.paths)


def undo(live: Repo, landing: Landing) -> list[str]:
    """Put the branch, index and paths back to the old commit (a live gate failed, origin moved);
    the paths whose files you edited meanwhile keep your edit (only their index entries move).
    Journaled as a landing the other way, so a kill halfway is recovered like one."""
    back = Landing(branch=landing.branch, old=landing.new, new=landing.old, paths=landing.paths)
    journal = write_journal(live, back)
    if not live.cas_ref(f"refs/heads/{landing.branch}", landing.new, landing.old, "am-patch: undo"):
        journal.unlink(missing_ok=True)
        return []
    crash.point("undone")
    kept = _sync_paths(live, landing.new, landing.old, landing.paths)
    journal.unlink(missing_ok=True)
    log.info("promotion undone: %s back at %s", landing.branch, landing.old)
    return kept


def _sync_paths(
    live: Repo, written: str, target: str, paths: Sequence[str], *, or_: str | None = None
) -> list[str]:
    """Index and files of paths back to target, except a file that no longer is what am-patch
    wrote (commit `written`, or `or_` when a crash leaves either possible): the user edited it
    meanwhile, so only its index entry moves. The edited paths that differ from target too:
    the edits to report."""
    edited = live.differs_from(written, paths)
    if or_ is not None:
        edited = [p for p in live.differs_from(or_, edited) if p in edited]
    live.checkout_paths(target, [p for p in paths if p not in edited], force=True)
    live.reset_index_paths(target, edited)
    return live.differs_from(target, edited)


def recover(live: Repo) -> str | None:
    """Finish or roll back a landing a killed run left half done; a message if there was one."""
    journal = _journal(live)
    if not journal.is_file():
        return None
    if live.index_locked():
        raise Refusal(
            Category.GIT,
            f"{INDEX_BUSY} and an interrupted am-patch landing waits to be recovered; "
            "nothing was changed; rerun when it is done",
        )
    data = json.loads(journal.read_text(encoding="utf-8"))
    branch, old, new = data["branch"], data["old"], data["new"]
    paths = [str(p) for p in data["paths"]]
    at = live.ref_commit(f"refs/heads/{branch}")
    target = new if at == new else old
    kept: list[str] = []
    if at in (old, new):  # a forward landing writes files first, an undo moves the ref first:
        kept = _sync_paths(live, new, target, paths, or_=old)  # either commit's file is ours
    journal.unlink()
    message = f"recovered an interrupted landing: {branch} at {at}, paths synced to {target}"
    return message + "".join(f"; kept your edit of {path}" for path in kept)


def carry_over(
    live: Repo, config: Config, *, base: CommitOid, live_head: CommitOid, paths: tuple[str, ...]
) -> tuple[str, ...]:
    """main moved from base to live_head: the paths to carry onto it, per live_changed_resolution.

    Paths main did not touch are always carried. Paths it did touch fail the run (`fail`), keep the
    workspace version (`overwrite_live`) or keep main's (`overwrite_workspace`, which may leave
    nothing: PROMOTION:NOOP unless -n, then an empty tuple).
    """
    moved = {c.path for c in live.diff_trees(live.tree_of(base), live.tree_of(live_head))}
    overlap = sorted(moved & set(paths))
    commits = live.commits_between(base, live_head)
    if overlap:
        shown = ", ".join(overlap[:5])
        if config.live_changed_resolution == "fail":
            subjects = "; ".join(f"{c[:10]} {s}" for c, s in commits[:3])
            raise Refusal(
                Category.LIVE_CHANGED,
                f"main moved since the workspace base and changed {shown} ({subjects}); "
                "rerun with -W, --overwrite-live or --overwrite-workspace",
            )
        if config.live_changed_resolution == "overwrite_workspace":
            paths = tuple(p for p in paths if p not in overlap)
            say(f"[promotion] live version kept for {shown} (--overwrite-workspace)")
            if not paths:
                if config.allow_no_op:
                    say("[promotion] nothing left to promote, allowed by -n")
                    return ()
                raise Refusal(
                    Category.NOOP,
                    "every promoted file was changed on main and dropped "
                    "by --overwrite-workspace; nothing left to promote",
                )
        else:
            say(f"[promotion] workspace version wins for {shown} (--overwrite-live)")
    say(
        f"[promotion] main moved ({len(commits)} new commit(s)); rebasing onto "
        f"{live_head[:12]} and gating the rebased tree again"
    )
    return paths


def move_in_place(
    live: Repo, branch: str, head: CommitOid, commit: CommitOid, paths: list[str]
) -> Path:
    """-f: the change already is in the working tree; move branch from head to commit (a
    compare-and-swap). The journal it returns stays until sync_in_place() is done.

    Journaled as a landing from commit to commit: if the run dies after the ref moved,
    recover() syncs index and files to it; before, main is not at either end, so recover()
    leaves your edits (the change itself) alone.
    """
    check_index_free(live)
    journal = write_journal(
        live, Landing(branch=branch, old=commit, new=commit, paths=tuple(paths))
    )
    if not live.cas_ref(f"refs/heads/{branch}", head, commit, "am-patch: finalize"):
        journal.unlink()
        raise Refusal(
            Category.LIVE_CHANGED, f"{branch} moved during the run; nothing was committed"
        )
    return journal


def sync_in_place(
    live: Repo, branch: str, commit: CommitOid, paths: list[str], journal: Path
) -> None:
    """After move_in_place: the index (and files a formatter rewrote) follow the branch."""
    crash.point("landed")
    try:
        live.checkout_paths(commit, paths, force=True)
    except Refusal as exc:
        raise Refusal(
            Category.LIVE_DIRTY,
            f"{branch} is at {commit[:12]} but its index could not follow ({exc}); "
            "the next am-patch run (or am-patch-hook recover) syncs it; commit nothing before",
        ) from exc
    journal.unlink()
