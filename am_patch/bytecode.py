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
directory is mounted read-only in the gates' jails, where it is the PYTHONPYCACHEPREFIX; the
tree's own modules still compile in memory. It is kept per user
(`$XDG_CACHE_HOME/am-patch/bytecode/<key>`, the key naming the directories and when they last
changed), built by one process at a time, and used only once complete.
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

log = logging.getLogger("am_patch")

COMPLETE = "am-patch-complete"
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


def _key(dirs: Sequence[Path]) -> str:
    stamps = {}
    for lib in dirs:
        for path in (lib, lib / "site-packages"):
            stamps[str(path)] = path.stat().st_mtime_ns if path.is_dir() else 0
    data = {"tag": sys.implementation.cache_tag, "python": sys.version, "dirs": stamps}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _exclude(dirs: Sequence[Path]) -> str:
    """compileall's -x: the bulk of each standard library that no gate needs. A venv's
    site-packages is compiled; a base installation's is not (a venv does not see it)."""
    stdlibs = [lib for lib in dirs if (lib / "os.py").is_file()]
    if not stdlibs:
        return r"^$"
    names = "|".join(_STDLIB_SKIP)
    return "|".join(rf"^{re.escape(str(lib))}/({names})/" for lib in stdlibs)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A complete bytecode prefix: `path` mirrors each of `dirs` (absolute) below it."""

    path: Path
    dirs: tuple[Path, ...]

    def mounts(self, prefix: Path) -> tuple[tuple[Path, Path], ...]:
        """Read-only binds that put the compiled dirs at their place below a jail's own
        writable PYTHONPYCACHEPREFIX: the installation's modules load compiled, and what a
        gate compiles itself (compileall) goes to its writable prefix."""
        inside = [lib.relative_to("/") for lib in self.dirs]
        return tuple(
            (self.path / rel, prefix / rel) for rel in inside if (self.path / rel).is_dir()
        )


def prefix_for(prefixes: Sequence[Path]) -> Compiled | None:
    """The complete bytecode prefix for the interpreter with these installation prefixes,
    built now when missing; None when there is nothing to compile for this version or the
    build failed (the gates then compile in memory, as before: this only saves time)."""
    dirs = library_dirs(prefixes)
    if not dirs:
        return None
    try:
        built = _built(dirs, root())
        return Compiled(built, dirs) if built is not None else None
    except OSError as exc:
        log.info("bytecode: no shared bytecode (%s); gates compile in memory", exc)
        return None


def _built(dirs: Sequence[Path], where: Path) -> Path | None:
    wanted = where / _key(dirs)
    if (wanted / COMPLETE).is_file():
        return wanted
    with _locked(where / ".lock"):
        if (wanted / COMPLETE).is_file():  # another process built it meanwhile
            return wanted
        building = where / f".{wanted.name}.{os.getpid()}"
        if os.path.lexists(building):
            remove_tree(building)
        building.mkdir(parents=True)
        argv = [sys.executable, "-I", "-X", f"pycache_prefix={building}", "-m", "compileall"]
        argv += ["-q", "-j0", "--invalidation-mode", "checked-hash", "-x", _exclude(dirs)]
        for lib in dirs:  # -e: a link to a file outside the dir is not compiled (nor are
            # linked dirs, ever): nothing outside the installation reaches the jails this way
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
                return None
        # a module that does not compile (a py2 leftover) only has no pyc: that is no failure
        named = json.dumps([str(d) for d in dirs]) + "\n"
        (building / COMPLETE).write_text(named)
        for old in where.iterdir():
            if old.name.startswith(".") or not (old / COMPLETE).is_file():
                continue
            if (old / COMPLETE).read_text() == named:  # the same installation, changed since
                remove_tree(old)
        os.rename(building, wanted)
        log.info("bytecode: compiled %s into %s", ", ".join(map(str, dirs)), wanted)
        return wanted
