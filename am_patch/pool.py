"""Idle worktrees kept for the next issue: a new workspace is a pooled worktree moved into place
(a rename) with only the files that differ from its tree written, instead of a checkout of the
whole repository, and a finished one goes back instead of being deleted file by file.

A worktree enters the pool only cleaned to exactly the landed commit's tree (untracked and
ignored files removed, index and detached HEAD at that commit), with a record of what each file
was seen as; one whose record is missing or does not match is removed, never reused.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from am_patch import git
from am_patch.layout import Layout
from am_patch.repo import CommitOid, Repo, Snapshot, remove_tree
from am_patch.repo.walk import Memory

log = logging.getLogger("am_patch")

SLOT_RECORD = "slot.json"
SEEN = "seen.json"


@dataclass(frozen=True, slots=True)
class Taken:
    """A pooled worktree now at its new place: its git name, and what its files are."""

    worktree: str
    memory: Memory


def _slots(layout: Layout) -> list[Path]:
    pool = layout.pool
    if not pool.is_dir() or pool.is_symlink():
        return []
    found = [p for p in pool.iterdir() if p.name.startswith("slot_") and not p.is_symlink()]
    return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)  # newest first


def take(live: Repo, layout: Layout, dest: Path, branch: str, base: CommitOid) -> Taken | None:
    """Move a pooled worktree to dest, on branch at base, its files exactly base's tree (only
    the differences written); None when the pool has none to give."""
    if not _slots(layout):
        return None
    with layout.exclusive(layout.pool / ".lock"):  # runs side by side: one at a time
        for slot in _slots(layout):
            record = _record(slot)
            memory = Memory(path=slot / SEEN)
            known = memory.get()
            if (
                record is None
                or known is None
                or not live.contains(record[1])
                or known.tree != live.tree_of(record[1])
            ):
                _discard(live, slot, record[0] if record else None)
                continue
            moved = git.run(["worktree", "move", str(slot / "repo"), str(dest)], cwd=live.root)
            if not moved.ok:
                _discard(live, slot, record[0])
                continue
            remove_tree(slot)
            memory.path = None  # the record stays behind; the workspace keeps its own
            repo = Repo.open(dest, memory)
            live.set_branch(branch, base)
            repo.point_head(f"refs/heads/{branch}")
            repo.switch(live.tree_of(base))
            repo.reset_index(live.tree_of(base))
            log.info("workspace recycled from the pool (%s, was at %s)", record[0], record[1])
            return Taken(worktree=record[0], memory=memory)
    return None


def give(
    live: Repo,
    layout: Layout,
    repo: Repo,
    worktree: str,
    commit: CommitOid,
    limit: int,
    seen: Snapshot | None = None,
) -> bool:
    """Park the worktree `repo`, cleaned to exactly commit's tree; False (nothing done) when
    the pool is full. `seen` is the worktree as this run last walked it, when nothing has
    changed it since but what its memory records: then only the differences are written and
    its ignored files removed, without another walk."""
    if limit <= 0:
        return False
    repo_dir = repo.root
    with layout.exclusive(layout.pool / ".lock"):  # runs side by side: one at a time
        if len(_slots(layout)) >= limit:
            return False
        tree = live.tree_of(commit)
        known = repo.memory.get()
        if seen is not None and known is not None and known.tree == seen.tree:
            repo.switch(tree)
            repo.remove_paths([*seen.ignored, *seen.unsupported])
        else:
            repo.restore(tree, tracked_in=tree, ignored=())
        repo.point_head(commit)
        repo.reset_index(tree)
        slot = layout.mkdir(layout.pool / f"slot_{uuid.uuid4().hex[:12]}")
        moved = git.run(["worktree", "move", str(repo_dir), str(slot / "repo")], cwd=live.root)
        if not moved.ok:
            remove_tree(slot)
            return False
        record = {"worktree": worktree, "commit": commit}
        layout.write(slot / SLOT_RECORD, json.dumps(record).encode())
        known = repo.memory.known
        if known is not None:
            layout.write(slot / SEEN, known.to_json())
        log.info("workspace parked in the pool: %s at %s", worktree, commit)
        return True


def _record(slot: Path) -> tuple[str, CommitOid] | None:
    try:
        data = json.loads((slot / SLOT_RECORD).read_text(encoding="utf-8"))
        return str(data["worktree"]), CommitOid(str(data["commit"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _discard(live: Repo, slot: Path, worktree: str | None) -> None:
    if worktree is not None:
        live.remove_worktree(worktree, slot / "repo")
    if os.path.lexists(slot):
        remove_tree(slot)
    log.info("pooled worktree %s discarded", slot.name)


def drain(live: Repo, layout: Layout) -> None:
    """Remove every pooled worktree."""
    with layout.exclusive(layout.pool / ".lock"):  # runs side by side: one at a time
        for slot in _slots(layout):
            record = _record(slot)
            _discard(live, slot, record[0] if record else None)
