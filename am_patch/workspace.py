"""Per-issue workspaces: a pygit2 worktree of the live repo plus meta.json."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from am_patch.errors import Category, RunnerError, Stage
from am_patch.repo import CommitOid, Repo, _rmtree

log = logging.getLogger("am_patch")


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta:
    issue_id: str
    base: CommitOid
    attempt: int
    message: str
    files: tuple[str, ...]
    created: float

    @classmethod
    def read(cls, path: Path) -> Meta:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            issue_id=str(data["issue_id"]),
            base=CommitOid(str(data["base"])),
            attempt=int(data["attempt"]),
            message=str(data["message"]),
            files=tuple(str(f) for f in data["files"]),
            created=float(data.get("created", 0)),
        )

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    issue_id: str
    dir: Path
    meta: Meta

    @property
    def repo_dir(self) -> Path:
        return self.dir / "repo"

    @property
    def cache_dir(self) -> Path:
        return self.dir / "cache"

    @property
    def meta_path(self) -> Path:
        return self.dir / "meta.json"

    @property
    def branch(self) -> str:
        return branch_name(self.issue_id)

    def open(self) -> Repo:
        return Repo.open(self.repo_dir)


def branch_name(issue_id: str) -> str:
    return f"am_patch/issue_{issue_id}"


def worktree_name(issue_id: str) -> str:
    return f"am_patch_issue_{issue_id}"


def workspace_dir(patches_dir: Path, issue_id: str) -> Path:
    return patches_dir / "workspaces" / f"issue_{issue_id}"


def _is_valid(live: Repo, wdir: Path, issue_id: str) -> bool:
    repo_dir = wdir / "repo"
    if not (wdir / "meta.json").is_file() or not (repo_dir / ".git").is_file():
        return False
    ws = Repo.try_open(repo_dir)
    if ws is None:
        return False
    return ws.common_dir == live.common_dir and ws.head_branch() == branch_name(issue_id)


def prepare(
    live: Repo,
    wdir: Path,
    *,
    issue_id: str,
    live_head: CommitOid,
    message: str,
    files: tuple[str, ...],
    update_base: bool,
) -> Workspace:
    """Reuse the issue's workspace (keeping its base), or make a new one at live_head."""
    name = worktree_name(issue_id)
    if _is_valid(live, wdir, issue_id):
        meta = Meta.read(wdir / "meta.json")
        log.info("workspace reused: %s (base %s, attempt %d)", wdir, meta.base, meta.attempt)
        ws = Workspace(issue_id=issue_id, dir=wdir, meta=meta)
        if update_base and meta.base != live_head:
            move_base(live, ws, live_head)
            meta = replace(meta, base=live_head)
    else:
        if wdir.exists():
            log.info("workspace %s is incomplete or foreign: recreating it", wdir)
            _rmtree(wdir)
        if live.prune_worktree(name):
            log.info("stale worktree entry %s pruned", name)
        wdir.mkdir(parents=True)
        live.set_branch(branch_name(issue_id), live_head)
        try:
            live.add_worktree(name, wdir / "repo", branch_name(issue_id))
        except Exception as exc:
            raise RunnerError(
                Stage.PREFLIGHT, Category.WORKSPACE, f"cannot create workspace {wdir}: {exc}"
            ) from exc
        meta = Meta(
            issue_id=issue_id,
            base=live_head,
            attempt=0,
            message=message,
            files=files,
            created=time.time(),
        )
        log.info("workspace created: %s at base %s", wdir, live_head)
    meta = replace(meta, attempt=meta.attempt + 1, message=message, files=files)
    meta.write(wdir / "meta.json")
    return Workspace(issue_id=issue_id, dir=wdir, meta=meta)


def move_base(live: Repo, ws: Workspace, new_base: CommitOid) -> None:
    """-W: the workspace starts over from new_base (its branch, index and files)."""
    live.set_branch(ws.branch, new_base)
    repo = ws.open()
    tree = repo.tree_of(new_base)
    repo.restore(tree, tracked_in=repo.tree_of(ws.meta.base))
    repo.reset_index(tree)
    log.info("workspace base moved from %s to %s", ws.meta.base, new_base)


def remove(live: Repo, ws: Workspace) -> None:
    live.remove_worktree(worktree_name(ws.issue_id), ws.repo_dir)
    if ws.dir.exists():
        _rmtree(ws.dir)
    live.delete_branch(ws.branch)
    log.info("workspace deleted: %s", ws.dir)
