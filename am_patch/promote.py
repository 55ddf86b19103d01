"""Landing the tested commit on live main: a compare-and-swap fast-forward of exactly its paths."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from am_patch import crash
from am_patch.errors import Category, RunnerError, Stage
from am_patch.repo import CommitOid, Repo

log = logging.getLogger("am_patch")

JOURNAL = "am_patch_landing.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Landing:
    branch: str
    old: CommitOid
    new: CommitOid
    paths: tuple[str, ...]


def _journal(live: Repo) -> Path:
    return live.common_dir / JOURNAL


def check_live_clean(live: Repo, paths: Sequence[str]) -> None:
    """PROMOTION:LIVE_DIRTY if the user has uncommitted edits to any path we would write."""
    dirty = live.dirty_paths(paths)
    if dirty:
        shown = ", ".join(dirty[:5])
        raise RunnerError(
            Stage.PROMOTION,
            Category.LIVE_DIRTY,
            f"uncommitted live edits to files this change promotes: {shown} "
            "(commit or stash them, then rerun; nothing was changed)",
        )


def land(live: Repo, landing: Landing) -> None:
    """Fast-forward: write the paths (refusing to clobber edits), then CAS the branch ref."""
    check_live_clean(live, landing.paths)
    journal = _journal(live)
    record = {
        "branch": landing.branch,
        "old": landing.old,
        "new": landing.new,
        "paths": list(landing.paths),
    }
    journal.write_text(json.dumps(record) + "\n", encoding="utf-8")
    try:
        live.checkout_paths(landing.new, list(landing.paths))
        crash.point("landing")
        moved = live.cas_ref(
            f"refs/heads/{landing.branch}", landing.old, landing.new, "am-patch: fast-forward"
        )
        if not moved:
            live.checkout_paths(landing.old, list(landing.paths), force=True)
            raise RunnerError(
                Stage.PROMOTION,
                Category.LIVE_CHANGED,
                f"{landing.branch} moved while landing; nothing was changed, rerun",
            )
    finally:
        if live.ref_commit(f"refs/heads/{landing.branch}") in (landing.old, landing.new):
            journal.unlink(missing_ok=True)
    log.info("live %s fast-forwarded %s -> %s", landing.branch, landing.old, landing.new)


def undo(live: Repo, landing: Landing) -> None:
    """Put the branch, index and paths back to the old commit (a live gate failed)."""
    if live.cas_ref(f"refs/heads/{landing.branch}", landing.new, landing.old, "am-patch: undo"):
        live.checkout_paths(landing.old, list(landing.paths), force=True)
        log.info("promotion undone: %s back at %s", landing.branch, landing.old)


def recover(live: Repo) -> str | None:
    """Finish or roll back a landing a killed run left half done; a message if there was one."""
    journal = _journal(live)
    if not journal.is_file():
        return None
    data = json.loads(journal.read_text(encoding="utf-8"))
    branch, old, new = data["branch"], data["old"], data["new"]
    paths = [str(p) for p in data["paths"]]
    at = live.ref_commit(f"refs/heads/{branch}")
    target = new if at == new else old
    if at in (old, new):
        live.checkout_paths(target, paths, force=True)
    journal.unlink()
    return f"recovered an interrupted landing: {branch} at {at}, paths synced to {target}"
