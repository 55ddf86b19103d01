"""Per-issue workspaces: a pygit2 worktree of the live repo plus meta.json."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from am_patch import pool
from am_patch.errors import Category, Refusal
from am_patch.layout import Layout
from am_patch.lock import issue_lock
from am_patch.repo import CommitOid, Repo, Snapshot, TreeOid, remove_tree
from am_patch.repo.walk import Memory
from am_patch.runlog import say

log = logging.getLogger("am_patch")


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    """A gated result that did not land: the workspace before the patch, and as the gates left it
    (snapshot trees relative to the workspace base). Without `after`, an attempt in progress: a
    run that finds it was killed (SIGKILL, power loss) mid-attempt, and restores `before`."""

    before: TreeOid
    after: TreeOid | None

    @property
    def interrupted(self) -> bool:
        return self.after is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta:
    issue_id: str
    base: CommitOid
    attempt: int
    message: str
    files: tuple[str, ...]
    created: float
    pending: Pending | None = None
    worktree: str = ""  # git's name for the worktree: a recycled one keeps its first name

    @classmethod
    def read(cls, path: Path) -> Meta:
        data = json.loads(path.read_text(encoding="utf-8"))
        pending = data.get("pending")  # absent in meta.json written before it existed
        return cls(
            issue_id=str(data["issue_id"]),
            base=CommitOid(str(data["base"])),
            attempt=int(data["attempt"]),
            message=str(data["message"]),
            files=tuple(str(f) for f in data["files"]),
            created=float(data.get("created", 0)),
            worktree=str(data.get("worktree", "")),
            pending=Pending(
                before=TreeOid(str(pending["before"])),
                after=TreeOid(str(pending["after"])) if pending.get("after") else None,
            )
            if pending
            else None,
        )

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    """`label` is issue_<ID>, or test_<ID>_<pid> for a --test-mode throw-away workspace."""

    layout: Layout
    label: str
    meta: Meta
    memory: Memory = field(default_factory=Memory, compare=False)  # what its files were seen as
    fresh: bool = field(default=False, compare=False)  # made by this run: exactly its base's tree

    def __post_init__(self) -> None:
        self.memory.path = self.dir / "seen.json"  # outside the worktree: no patch writes it
        self.memory.write = self.layout.write

    @property
    def dir(self) -> Path:
        return self.layout.workspace(self.label)

    @property
    def repo_dir(self) -> Path:
        return self.dir / "repo"

    @property
    def input_dir(self) -> Path:
        """Where the patch input is copied for the run: the jail exposes it read-only."""
        return self.dir / "input"

    @property
    def meta_path(self) -> Path:
        return self.dir / "meta.json"

    @property
    def branch(self) -> str:
        return branch_name(self.label)

    @property
    def worktree(self) -> str:
        return self.meta.worktree or worktree_name(self.label)

    def open(self) -> Repo:
        return Repo.open(self.repo_dir, self.memory)


def branch_name(label: str) -> str:
    return f"am_patch/{label}"


def worktree_name(label: str) -> str:
    return f"am_patch_{label}"


def open_existing(live: Repo, layout: Layout, label: str) -> Workspace | None:
    wdir = layout.workspace(label)
    if not _is_valid(live, wdir, label):
        return None
    return Workspace(layout=layout, label=label, meta=Meta.read(wdir / "meta.json"))


def _is_valid(live: Repo, wdir: Path, label: str) -> bool:
    repo_dir = wdir / "repo"
    if any(p.is_symlink() for p in (wdir, wdir / "meta.json", repo_dir, repo_dir / ".git")):
        return False  # never ours: a commit tracked links here
    if not (wdir / "meta.json").is_file() or not (repo_dir / ".git").is_file():
        return False
    ws = Repo.try_open(repo_dir)
    if ws is None:
        return False
    return ws.common_dir == live.common_dir and ws.head_branch() == branch_name(label)


def prepare(
    live: Repo,
    layout: Layout,
    *,
    label: str,
    issue_id: str,
    live_head: CommitOid,
    message: str,
    files: tuple[str, ...],
    update_base: bool,
    soft_reset_first: bool = False,
) -> Workspace:
    """Reuse the issue's workspace (keeping its base), or make a new one at live_head.

    A reused workspace is soft-reset first when asked; otherwise an un-promoted result a previous
    attempt left in it is set aside (see `set_aside`), so the patch is not applied twice.
    """
    wdir = layout.workspace(label)
    layout.check(wdir)  # a commit may track a link here; it is never followed or removed
    if _is_valid(live, wdir, label):
        meta = Meta.read(wdir / "meta.json")
        log.info("workspace reused: %s (base %s, attempt %d)", wdir, meta.base, meta.attempt)
        ws = Workspace(layout=layout, label=label, meta=meta)
        if update_base and not soft_reset_first and meta.base != live_head:
            _refuse_dropping_own_changes(ws)
        if soft_reset_first:
            ws = soft_reset(live, ws)
        elif meta.pending is not None and meta.pending.interrupted:
            ws = recover_killed(live, ws)
        elif meta.pending is not None:
            ws = set_aside(live, ws)
        if update_base and ws.meta.base != live_head:
            ws = move_base(live, ws, live_head)
        meta = ws.meta
    else:
        if os.path.lexists(wdir):
            log.info("workspace %s is incomplete or foreign: recreating it", wdir)
            remove_tree(wdir)
        layout.mkdir(wdir)
        memory, name = _new_worktree(live, layout, wdir / "repo", label, live_head)
        meta = Meta(
            issue_id=issue_id,
            base=live_head,
            attempt=0,
            message=message,
            files=files,
            created=time.time(),
            worktree=name,
        )
        meta = replace(meta, attempt=meta.attempt + 1, message=message, files=files)
        return _saved(Workspace(layout=layout, label=label, meta=meta, memory=memory, fresh=True))
    meta = replace(meta, attempt=meta.attempt + 1, message=message, files=files)
    ws = Workspace(layout=layout, label=label, meta=meta)
    return _saved(ws)


def _new_worktree(
    live: Repo, layout: Layout, repo_dir: Path, label: str, base: CommitOid
) -> tuple[Memory, str]:
    """A worktree at repo_dir on the issue's branch at base: a recycled one from the pool (only
    what differs is written), else a new checkout. What its files are, and its git name."""
    branch = branch_name(label)
    taken = pool.take(live, layout, repo_dir, branch, base)
    if taken is not None:
        return taken.memory, taken.worktree
    name = worktree_name(label)
    for stale in {live.worktree_at(repo_dir) or name, name}:
        if live.prune_worktree(stale):
            log.info("stale worktree entry %s pruned", stale)
    live.set_branch(branch, base)
    try:
        live.add_worktree(name, repo_dir, branch)
    except Exception as exc:
        raise Refusal(Category.WORKSPACE, f"cannot create workspace {repo_dir}: {exc}") from exc
    memory = Memory()
    Repo.open(repo_dir, memory).assume(live.tree_of(base))
    log.info("workspace created: %s at base %s", repo_dir, base)
    return memory, name


def _refuse_dropping_own_changes(ws: Workspace) -> None:
    """-W starts the workspace over from live main; changes made there by hand (a held result
    aside, which a rerun sets aside anyway) would be lost, so they refuse it, changing nothing."""
    repo = ws.open()
    kept = ws.meta.pending.before if ws.meta.pending else repo.snapshot(ws.meta.base).tree
    own = [c.path for c in repo.diff_trees(repo.tree_of(ws.meta.base), kept)]
    if own:
        issue = ws.meta.issue_id
        raise Refusal(
            Category.WORKSPACE,
            f"the workspace of issue {issue} has changes of its own ({', '.join(own[:3])}) "
            f"that -W would drop: land them with --finalize-workspace {issue}, or add "
            "--soft-reset-workspace to drop them",
        )


def move_base(live: Repo, ws: Workspace, new_base: CommitOid, tree: str | None = None) -> Workspace:
    """Start over from new_base: branch, index, and files (tree, else new_base's own)."""
    pending = ws.meta.pending
    if pending is not None and pending.interrupted:
        # an attempt in progress (a re-gate after a rebase) stays recorded, its start carried over
        own = [c.path for c in live.diff_trees(live.tree_of(ws.meta.base), pending.before)]
        before = live.tree_with(live.tree_of(new_base), pending.before, own)
        pending = Pending(before=TreeOid(before), after=None)
    else:
        pending = None
    live.set_branch(ws.branch, new_base)
    repo = ws.open()
    repo.restore(tree or repo.tree_of(new_base), tracked_in=ws.meta.base)
    repo.reset_index(repo.tree_of(new_base))
    log.info("workspace base moved from %s to %s", ws.meta.base, new_base)
    return _saved(replace(ws, meta=replace(ws.meta, base=new_base, pending=pending)))


def keep_landed(live: Repo, ws: Workspace, commit: CommitOid) -> Workspace:
    """A workspace kept after a success: the landed commit is its new base (branch, index and
    meta.json), so the next run of the issue starts from it; its files stay as they are."""
    live.set_branch(ws.branch, commit)
    ws.open().reset_index(live.tree_of(commit))
    log.info("workspace kept; its base is now the landed commit %s", commit)
    return _saved(replace(ws, meta=replace(ws.meta, base=commit, pending=None)))


def restore(live: Repo, ws: Workspace, tree: str) -> None:
    """The workspace's files exactly as tree (untracked files too), branch and index at its base."""
    repo = ws.open()
    repo.restore(tree, tracked_in=ws.meta.base)
    live.set_branch(ws.branch, ws.meta.base)
    repo.reset_index(repo.tree_of(ws.meta.base))


def soft_reset(live: Repo, ws: Workspace) -> Workspace:
    """Back to the base: tracked files as committed there, untracked files removed."""
    restore(live, ws, live.tree_of(ws.meta.base))
    log.info("workspace soft-reset to its base %s", ws.meta.base)
    return _saved(replace(ws, meta=replace(ws.meta, pending=None)))


def hold(live: Repo, ws: Workspace, *, base: CommitOid, before: str, after: str) -> Workspace:
    """Record the gated result a run leaves without landing it: `before` is the workspace
    snapshotted at `base` before the patch, `after` the snapshot the gates left. When a rebase
    moved the base since, before's own changes are carried onto the new base."""
    if base != ws.meta.base:
        own = [c.path for c in live.diff_trees(live.tree_of(base), before)]
        before = live.tree_with(live.tree_of(ws.meta.base), before, own)
    pending = Pending(before=TreeOid(before), after=TreeOid(after))
    log.info("un-promoted result held in the workspace: %s (before the patch: %s)", after, before)
    return _saved(replace(ws, meta=replace(ws.meta, pending=pending)))


def begin_attempt(ws: Workspace, before: str) -> Workspace:
    """Record, before the patch touches it, that an attempt is changing the workspace from
    `before`: a run killed where it cannot roll back leaves this for the next run to undo."""
    return _saved(
        replace(ws, meta=replace(ws.meta, pending=Pending(before=TreeOid(before), after=None)))
    )


def end_attempt(ws: Workspace) -> Workspace:
    """The attempt ended in a way the run controlled (rolled back, held or landed): forget it."""
    if ws.meta.pending is None or not ws.meta.pending.interrupted or not ws.dir.is_dir():
        return ws
    return _saved(replace(ws, meta=replace(ws.meta, pending=None)))


def recover_killed(live: Repo, ws: Workspace) -> Workspace:
    """A run was killed mid-attempt: put the workspace back as it was before that attempt, so
    the patch is not applied on top of its half-done self."""
    pending = ws.meta.pending
    assert pending is not None and pending.interrupted
    repo = ws.open()
    if not repo.contains(pending.before):
        raise Refusal(
            Category.WORKSPACE,
            f"a killed attempt left the workspace of issue {ws.meta.issue_id} half-patched and "
            "git no longer has its state before that attempt (pruned?): start over with "
            "--soft-reset-workspace",
        )
    now = repo.snapshot(tracked_in=ws.meta.base, write=False).entries
    if now != repo.tree_entries(pending.before) or repo.head_commit() != ws.meta.base:
        restore(live, ws, pending.before)
        say(
            "[workspace] a killed attempt left the workspace half-patched; "
            "restored it to the state before that attempt"
        )
    log.info("killed attempt undone: workspace at %s", pending.before)
    return _saved(replace(ws, meta=replace(ws.meta, pending=None)))


def set_aside(live: Repo, ws: Workspace) -> Workspace:
    """A rerun over a held result: back to the state before it when the workspace still is
    exactly that result; PREFLIGHT:WORKSPACE, changing nothing, when it was edited since."""
    pending = ws.meta.pending
    assert pending is not None
    issue = ws.meta.issue_id
    next_step = (
        f"land it with --finalize-workspace {issue}, or start over with --soft-reset-workspace"
    )
    assert pending.after is not None
    repo = ws.open()
    if not (repo.contains(pending.before) and repo.contains(pending.after)):
        raise Refusal(
            Category.WORKSPACE,
            f"the workspace of issue {issue} holds an un-promoted result whose record git "
            f"no longer has (pruned?): {next_step}",
        )
    now = repo.snapshot(tracked_in=ws.meta.base, write=False).entries
    held = now == repo.tree_entries(pending.after)
    # equal to `before` instead: a run was killed while setting it aside, finish that
    if not held and now != repo.tree_entries(pending.before):
        raise Refusal(
            Category.WORKSPACE,
            f"the workspace of issue {issue} holds an un-promoted result that was edited "
            f"since it was gated: {next_step}",
        )
    restore(live, ws, pending.before)
    log.info("un-promoted result %s set aside; workspace back at %s", pending.after, pending.before)
    if held:
        say(
            "[workspace] set aside the previous attempt's un-promoted result; "
            "applying the patch to the state before it"
        )
    return _saved(replace(ws, meta=replace(ws.meta, pending=None)))


def _saved(ws: Workspace) -> Workspace:
    ws.layout.write(ws.meta_path, ws.meta.to_json())
    return ws


def retire(
    live: Repo, ws: Workspace, commit: CommitOid, pool_size: int, seen: Snapshot | None = None
) -> None:
    """A workspace that is done: its worktree goes to the pool, cleaned to exactly commit's
    tree, while the pool has room; else it is deleted. Its branch and files go either way.
    `seen` is the workspace as the run last walked it (see pool.give)."""
    if ws.repo_dir.is_dir() and pool.give(
        live, ws.layout, ws.open(), ws.worktree, commit, pool_size, seen
    ):
        remove_tree(ws.dir)
        live.delete_branch(ws.branch)
        log.info("workspace done: %s (its worktree kept for the next issue)", ws.dir)
        return
    remove(live, ws)


def remove(live: Repo, ws: Workspace) -> None:
    live.remove_worktree(ws.worktree, ws.repo_dir)
    if os.path.lexists(ws.dir):
        remove_tree(ws.dir)
    live.delete_branch(ws.branch)
    log.info("workspace deleted: %s", ws.dir)


def drop(live: Repo, layout: Layout, issue: str) -> tuple[Path, Path | None]:
    """Delete the workspace of `issue` (never while a run of it holds its lock). What it holds
    beyond its base, committed or not, is first saved as a git patch under
    patches/unsuccessful/: nothing made there is lost. The workspace and the saved patch."""
    label = f"issue_{issue}"
    if layout.journal.exists():  # the landing may be this workspace's: recovery comes first
        raise Refusal(
            Category.WORKSPACE,
            "an am-patch landing was interrupted; finish or roll it back first "
            "(am-patch-hook recover, or any am-patch run), then drop the workspace",
        )
    with issue_lock(layout, label):
        ws = open_existing(live, layout, label)
        if ws is None:
            raise Refusal(Category.WORKSPACE, f"issue {issue} has no workspace to drop")
        repo = ws.open()
        now = repo.snapshot(repo.head_commit()).tree
        base = live.tree_of(ws.meta.base)
        saved = None
        if now != base:
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
            saved = layout.filed("unsuccessful") / f"{label}_dropped_{stamp}.patch"
            layout.mkdir(saved.parent)
            layout.write(saved, live.patch_text(base, now).encode())
        remove(live, ws)
        return ws.dir, saved
