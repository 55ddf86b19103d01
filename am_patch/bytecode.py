"""Bytecode of the gate interpreter's own installation, compiled once and shared by every jail.

The jails set PYTHONPYCACHEPREFIX so that no `__pycache__` of the tree is ever read (a patch could
plant bytecode that does not match its source). Without more, that also hides the bytecode of the
installed tools, and every gate compiled pytest, mypy and pre-commit from source again: about
0.4 s of each gate's start (measured: `import pytest` 0.61 s against 0.14 s).

So am-patch compiles the installation's directories (the standard library and the venv's
site-packages, never the tree) into a prefix directory of its own, outside any jail, with its own
interpreter in isolated mode: compiling runs none of the compiled code. The files are
checked-hash pycs: on every import Python hashes the source and uses a pyc only when it matches,
so a stale or foreign pyc is ignored, never trusted, and the cache cannot change a verdict. The
directory is mounted read-only in the gates' jails, under each gate's own PYTHONPYCACHEPREFIX;
the tree's own modules still compile in memory.

It is kept per user, an entry per library directory (`$XDG_CACHE_HOME/am-patch/bytecode/<key>`,
the key naming the directory and when it last changed), so a standard library is compiled once
for all the venvs made from it. A directory is compiled the second time a run sees it: a venv
used once (a throw-away one) costs nothing, and the project's own venv is warm from its second
run on. Entries are built by one process at a time, used only once complete, and the least
recently used beyond KEEP are dropped.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from am_patch import proc
from am_patch.repo import remove_tree
from am_patch.runlog import say

log = logging.getLogger("am_patch")

COMPLETE = "am-patch-complete"
KEEP = 8  # entries kept: a standard library and the venvs of a few projects
SEEN_KEPT = 256  # directories seen once, remembered for their second run
BUILD_TIMEOUT_S = 600
# parts of a standard library that no gate imports and that are most of its size
_STDLIB_SKIP = (
    *("site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo", "lib2to3"),
    "ensurepip",
)


def root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "am-patch" / "bytecode"


def library_dirs(prefixes: Sequence[Path]) -> tuple[Path, ...]:
    """The directories of the gate interpreter's installation (its `prefixes`, see
    sandbox.interpreter_dirs) that hold modules of this interpreter's version: bytecode
    compiled here is for this version only."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = [p / "lib" / version for p in prefixes if (p / "lib" / version).is_dir()]
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class Compiled:
    """Complete entries: each library directory (absolute) and the entry mirroring it."""

    entries: tuple[tuple[Path, Path], ...]

    def mounts(self, prefix: Path) -> tuple[tuple[Path, Path], ...]:
        """Read-only binds that put each compiled directory at its place below a jail's own
        writable PYTHONPYCACHEPREFIX: the installation's modules load compiled, and what a
        gate compiles itself (compileall) goes to its writable prefix."""
        binds = []
        for lib, entry in self.entries:
            rel = lib.relative_to("/")
            if (entry / rel).is_dir():
                binds.append((entry / rel, prefix / rel))
        return tuple(binds)


def prefix_for(prefixes: Sequence[Path]) -> Compiled | None:
    """The compiled entries for the interpreter with these installation prefixes: each library
    directory's, built now when this is the second time it is seen. None when none is ready
    (the gates then compile in memory, as before: this only saves time)."""
    try:
        where = root()
        ready = [(lib, e) for lib in library_dirs(prefixes) if (e := _entry(lib, where))]
    except OSError as exc:
        log.info("bytecode: no shared bytecode (%s); gates compile in memory", exc)
        return None
    return Compiled(tuple(ready)) if ready else None


def _key(lib: Path) -> str:
    stamps = {
        str(path): path.stat().st_mtime_ns if path.is_dir() else 0
        for path in (lib, lib / "site-packages")
    }
    data = {"tag": sys.implementation.cache_tag, "python": sys.version, "dirs": stamps}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _exclude(lib: Path) -> str:
    """compileall's -x: the bulk of a standard library that no gate needs (a venv's
    site-packages is compiled; a base installation's is not: a venv does not see it)."""
    if not (lib / "os.py").is_file():
        return r"^$"
    return rf"^{re.escape(str(lib))}/({'|'.join(_STDLIB_SKIP)})/"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _entry(lib: Path, where: Path) -> Path | None:
    """lib's complete entry (its use noted), built when lib is seen the second time."""
    wanted = where / _key(lib)
    done = wanted / COMPLETE
    if done.is_file():
        os.utime(done)  # recently used: kept
        return wanted
    seen = where / f".seen-{wanted.name}"
    if not seen.exists():
        _note_seen(where, seen)
        return None
    with _locked(where / ".lock"):
        if done.is_file():  # another process built it meanwhile
            return wanted
        if not _build(lib, wanted):
            return None
        seen.unlink(missing_ok=True)
        _drop_old(where, keep=wanted, lib=lib)
        return wanted


def _note_seen(where: Path, seen: Path) -> None:
    """Mark a directory seen once; the oldest marks beyond SEEN_KEPT go (throw-away venvs)."""
    where.mkdir(parents=True, exist_ok=True)
    seen.touch()
    marks = sorted(where.glob(".seen-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in marks[SEEN_KEPT:]:
        old.unlink(missing_ok=True)


def _build(lib: Path, wanted: Path) -> bool:
    """Compile lib into a fresh directory, then put it in place whole."""
    building = wanted.parent / f".{wanted.name}.{os.getpid()}"
    if os.path.lexists(building):
        remove_tree(building)
    building.mkdir(parents=True)
    say(f"[gates] compiling {lib} once, for the gates of every later run")
    argv = [sys.executable, "-I", "-X", f"pycache_prefix={building}", "-m", "compileall"]
    argv += ["-q", "-j0", "--invalidation-mode", "checked-hash", "-x", _exclude(lib)]
    # -e: a link to a file outside lib is not compiled (nor is a linked dir, ever): nothing
    # outside the installation reaches the jails this way
    result = proc.run(
        [*argv, "-e", str(lib), str(lib)],
        cwd=building,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        timeout_s=BUILD_TIMEOUT_S,
        quiet=True,
    )
    if result.timed_out:
        remove_tree(building)
        log.info("bytecode: compiling %s timed out; gates compile in memory", lib)
        return False
    # a module that does not compile (a py2 leftover) only has no pyc: that is no failure
    (building / COMPLETE).write_text(str(lib) + "\n")
    os.rename(building, wanted)
    log.info("bytecode: compiled %s into %s in %.1fs", lib, wanted, result.duration_s)
    return True


def _drop_old(where: Path, *, keep: Path, lib: Path) -> None:
    """Drop the entries of lib as it was before, and the least recently used beyond KEEP."""
    entries = []
    for entry in where.iterdir():
        done = entry / COMPLETE
        if entry == keep or entry.name.startswith(".") or not done.is_file():
            continue
        if done.read_text().strip() == str(lib):  # the same directory, changed since
            remove_tree(entry)
        else:
            entries.append((done.stat().st_mtime, entry))
    for _, entry in sorted(entries, reverse=True)[KEEP - 1 :]:
        remove_tree(entry)
