"""What a run leaves behind: the patch input filed away, and the success or failure zip."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from am_patch.errors import Category, Refusal
from am_patch.layout import Layout
from am_patch.repo import EXEC, LINK, CommitOid, Repo

log = logging.getLogger("am_patch")

EXCLUDED_DIRS = frozenset(
    {".git", "venv", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}
)


def file_input(layout: Layout, patch: Path, outcome: str) -> Path:
    """Move the patch input into patches/<outcome>; a name already there gets the next _vN
    suffix. Neither the input nor the folder is followed if it is a link."""
    dest_dir = layout.mkdir(layout.filed(outcome))
    if patch.parent == dest_dir:
        return patch
    target = dest_dir / patch.name
    n = 1
    while os.path.lexists(target):
        n += 1
        target = dest_dir / f"{patch.stem}_v{n}{patch.suffix}"
    layout.move(patch, target)
    os.utime(target, follow_symlinks=False)  # filed now: -l picks the newest by this time
    log.info("patch input filed as %s", target)
    return target


def _archivable(rel: str) -> bool:
    parts = rel.split("/")
    return not any(p in EXCLUDED_DIRS for p in parts) and not rel.endswith(".pyc")


def _numbered(layout: Layout, label: str) -> list[tuple[int, Path]]:
    pattern = re.compile(rf"patched_{re.escape(label)}_v(\d+)\.zip")
    return sorted(
        (int(m.group(1)), p)
        for p in layout.patches.glob(f"patched_{label}_v*.zip")
        if (m := pattern.fullmatch(p.name))
    )


def failure_zip(layout: Layout, label: str, log_path: Path, files: Mapping[str, bytes]) -> Path:
    """patched_<label>_v<NN>.zip: the log plus the changed and declared files as left."""
    numbers = [n for n, _ in _numbered(layout, label)]
    target = layout.failure_zip(label, max(numbers, default=0) + 1)
    with (
        layout.open(target, "wb", exclusive=True) as handle,
        zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as zf,
    ):
        with layout.open(log_path, "rb") as run_log:
            zf.writestr(f"logs/{log_path.name}", run_log.read())
        for rel in sorted(files):
            if _archivable(rel):
                zf.writestr(rel, files[rel])
    log.info("failure archive: %s", target)
    return target


def prune_failure_zips(layout: Layout, label: str, keep: int) -> None:
    """After a success, keep only the newest `keep` failure zips of this label."""
    zips = [p for _, p in _numbered(layout, label)]
    for old in zips[: max(0, len(zips) - keep)]:
        old.unlink()  # unlink removes a link itself, never its target
        log.info("old failure archive removed: %s", old.name)


def success_zip(layout: Layout, repo: Repo, commit: CommitOid) -> Path:
    """patched_success.zip: every file of commit, as `git archive` of it holds them.

    After the first time only what changed is written: the zip made for the previous landing
    is copied, the entries of the files that changed since are dropped from its directory and
    their new versions appended. The zip is made whole again once the dropped bytes outweigh the
    live ones. It is written to a new file and renamed over the old one (a link there is
    replaced, never written through).
    """
    with layout.exclusive(layout.success_record.with_name(".success_zip.lock")):
        return _success_zip(layout, repo, commit)


def _success_zip(layout: Layout, repo: Repo, commit: CommitOid) -> Path:
    target = layout.success_zip
    record = _zip_record(layout)
    if record is not None and _newer(repo, record["commit"], commit) and _matches(target, record):
        return target  # a run side by side landed after us and wrote the newer zip
    with layout.directory(target.parent):
        fresh = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    stamp = repo.commit_time(commit)
    try:
        incremental = (
            record is not None and _matches(target, record) and repo.contains(record["commit"])
        )
        dead = 0
        if record is not None and incremental:
            with layout.open(target, "rb") as old, layout.open(fresh, "wb", exclusive=True) as new:
                shutil.copyfileobj(old, new)
            dead = record["dead"] + _update(fresh, repo, record["commit"], commit, stamp)
        if not incremental or dead > os.path.getsize(fresh) // 2:
            with layout.open(fresh, "wb") as handle, zipfile.ZipFile(handle, "w") as zf:
                for path, (oid, mode) in sorted(repo.tree_entries(repo.tree_of(commit)).items()):
                    _add(zf, path, repo.blob_bytes(oid), mode, stamp)
            dead = 0
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        log.info("patched_success.zip not written: %s", exc)
        fresh.unlink(missing_ok=True)
        return target
    layout.move(fresh, target)
    size = os.path.getsize(target)
    layout.write(
        layout.success_record, json.dumps({"commit": commit, "size": size, "dead": dead}).encode()
    )
    return target


def _newer(repo: Repo, recorded: str, commit: CommitOid) -> bool:
    return recorded != commit and repo.contains(recorded) and repo.is_ancestor(commit, recorded)


def _zip_record(layout: Layout) -> dict[str, Any] | None:
    try:
        data = json.loads(layout.success_record.read_text(encoding="utf-8"))
        return {"commit": str(data["commit"]), "size": int(data["size"]), "dead": int(data["dead"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _matches(target: Path, record: dict[str, Any]) -> bool:
    """The zip is the one the record describes (nobody replaced it since)."""
    return (
        target.is_file() and not target.is_symlink() and os.path.getsize(target) == record["size"]
    )


def _update(path: Path, repo: Repo, old: str, new: str, stamp: float) -> int:
    """Turn the zip of commit old at path into one of commit new; the bytes left dead."""
    changes = repo.diff_trees(repo.tree_of(old), repo.tree_of(new))
    with zipfile.ZipFile(path, "a") as zf:
        dead = 0
        for change in changes:
            info = zf.NameToInfo.pop(change.path, None)
            if info is not None:
                zf.filelist.remove(info)
                dead += info.compress_size + len(info.filename) + 30
        tree = repo.tree_of(new)
        for change in changes:
            entry = repo.entry(tree, change.path)
            if change.status != "D" and entry is not None:
                _add(zf, change.path, repo.blob_bytes(entry[0]), entry[1], stamp)
    return dead


def _add(zf: zipfile.ZipFile, path: str, data: bytes, mode: int, stamp: float) -> None:
    info = zipfile.ZipInfo(path, date_time=time.localtime(stamp)[:6])
    info.create_system = 3  # unix: the mode below is a file mode
    info.external_attr = (
        0o120777 if mode == LINK else 0o100755 if mode == EXEC else 0o100644
    ) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def latest_input(layout: Layout, issue_id: str) -> Path:
    """For -l: the newest archived input of exactly this issue (issue_3, never issue_37).

    Inputs named issue_<ID>.* are found by name; any other name through the run records
    (logs/*.json), which remember where each run filed its input.
    """
    pattern = re.compile(rf"issue_{re.escape(issue_id)}(_v\d+)?\.(py|patch|diff|zip)")
    found = {
        p
        for sub in ("successful", "unsuccessful")
        if layout.filed(sub).is_dir()
        for p in layout.filed(sub).iterdir()
        if p.is_file() and pattern.fullmatch(p.name)
    }
    found.update(_recorded_inputs(layout, issue_id))
    if not found:
        raise Refusal(
            Category.PATCH_PATH,
            f"-l: no archived input of issue {issue_id} in patches/successful "
            "or patches/unsuccessful",
        )
    return max(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


def _recorded_inputs(layout: Layout, issue_id: str) -> set[Path]:
    found = set()
    patches_dir = layout.patches
    for record in layout.logs.glob("*.json"):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("issue_id") != issue_id:
            continue
        filed = data.get("archived_input")
        if isinstance(filed, str):
            path = patches_dir.parent / filed
            if path.is_file() and path.parent.parent == patches_dir:
                found.add(path)
    return found
