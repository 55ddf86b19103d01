"""Warm caches for the gates' tools, kept per live repo, that can never turn a failing tree into a
pass.

Only ruff and mypy keep a cache between runs (`<git dir>/am_patch/cache/<gate>/<key>`): they run
no code of the project, so only they write what is in it. mypy keeps none when its config loads
plugins (plugins are the project's code). pytest keeps none: it runs the patch's own tests,
which could plant a bytecode file the next run would trust. Each cache is mounted writable in
its own gate's jail only (a conftest.py run by pytest cannot reach mypy's), and its key is the
gate's exact command, the tool's installed version and the tool's config files: when any of them
changes, the cache is dropped and the gate starts cold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from collections.abc import Sequence
from pathlib import Path

from am_patch.layout import Layout
from am_patch.repo import remove_tree

log = logging.getLogger("am_patch")

WARM_TOOLS = ("ruff", "mypy")
CONFIG_FILES = (
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "mypy.ini",
    ".mypy.ini",
    "ruff.toml",
    ".ruff.toml",
)


def tool_of(argv: Sequence[str]) -> str | None:
    """The tool a `PYTHON -m TOOL ...` gate runs, if it is one whose cache may be kept."""
    if len(argv) >= 3 and argv[1] == "-m" and argv[2] in WARM_TOOLS:
        return argv[2]
    return None


def installed_version(tool: str, prefixes: Sequence[Path]) -> str:
    """The tool's version from its dist-info in the interpreter's site-packages, read without
    running anything; '' when it is not found (the key then changes with nothing)."""
    for prefix in prefixes:
        for info in sorted(prefix.glob(f"lib/python3*/site-packages/{tool}-*.dist-info")):
            return info.name.removeprefix(f"{tool}-").removesuffix(".dist-info")
    return ""


def _loads_plugins(root: Path) -> bool:
    """mypy's config in the tree names plugins: project code runs inside mypy."""
    for name in ("mypy.ini", ".mypy.ini", "setup.cfg"):
        path = root / name
        if path.is_file() and "plugins" in path.read_text(encoding="utf-8", errors="replace"):
            return True
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return True  # unreadable: assume the worst
        return bool(tool.get("mypy", {}).get("plugins"))
    return False


def lock_of(layout: Layout, gate: str) -> Path:
    """The lock a gate holds while it uses (or drops) its kept caches."""
    return layout.state / "cache" / f".{gate}.lock"


def cache_dir(
    layout: Layout,
    gate: str,
    command: Sequence[str],
    argv: Sequence[str],
    root: Path,
    prefixes: Sequence[Path],
) -> Path | None:
    """The gate's warm cache for this command (its configured form: the targets change from
    run to run), interpreter, tool version and config, made empty when new, its older siblings
    dropped; None when the gate keeps no cache between runs. Call it holding lock_of(gate): runs
    side by side use one cache at a time."""
    tool = tool_of(argv)
    if tool is None or (tool == "mypy" and _loads_plugins(root)):
        return None
    configs = {name: _digest(root / name) for name in CONFIG_FILES}
    version = installed_version(tool, prefixes)
    key = {"command": [*command, argv[0]], "version": version, "configs": configs}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    own = layout.state / "cache" / gate
    wanted = own / digest
    if own.is_dir() and not own.is_symlink():
        for old in own.iterdir():
            if old.name != digest:
                remove_tree(old)
                log.info("gate %s: cache %s dropped (command, tool or config changed)", gate, old)
    return layout.mkdir(wanted)


def _digest(path: Path) -> str:
    if not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()
