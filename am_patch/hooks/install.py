"""Installing the hook shims without clobbering foreign hooks; uninstall restores them."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from am_patch.errors import Category, RunnerError, Stage
from am_patch.repo import Repo

MARKER = "# managed by am-patch-hook install"
FOREIGN_SUFFIX = ".am-patch-foreign"
LOCAL_HOOKS = ("pre-commit", "pre-push")
SERVER_HOOKS = ("pre-receive",)


@dataclass(frozen=True, slots=True)
class Installed:
    hook: Path
    foreign: Path | None


def shim(hook: str, foreign: Path) -> str:
    """A shell shim: the foreign hook first (same stdin and args), then am-patch-hook."""
    python = shlex.quote(sys.executable)
    kept = shlex.quote(str(foreign))
    return f"""#!/bin/sh
{MARKER}
# Runs {foreign.name} (the hook that was here before) first, if present, then am-patch-hook.
input=$(mktemp) || exit 1
trap 'rm -f "$input"' EXIT
cat > "$input"
if [ -x {kept} ]; then
  {kept} "$@" < "$input" || exit $?
fi
{python} -m am_patch.hooks {hook} "$@" < "$input"
"""


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def hooks_dir(repo: Repo, *, server: bool) -> Path:
    """Where git looks for hooks: core.hooksPath if set (and usable), else <git dir>/hooks."""
    configured = repo.config_value("core.hooksPath")
    if configured:
        base = repo.git_dir if server else repo.root
        path = (base / os.path.expanduser(configured)).resolve()
        if not path.is_dir():
            raise RunnerError(
                Stage.PREFLIGHT,
                Category.GIT,
                f"core.hooksPath is {configured!r}, which is not a directory; create it or unset "
                "core.hooksPath, then install again",
            )
        return path
    return repo.common_dir / "hooks"


def install(repo: Repo, *, server: bool) -> list[Installed]:
    directory = hooks_dir(repo, server=server)
    directory.mkdir(parents=True, exist_ok=True)
    done = []
    for name in SERVER_HOOKS if server else LOCAL_HOOKS:
        hook = directory / name
        foreign = directory / (name + FOREIGN_SUFFIX)
        if (hook.exists() or hook.is_symlink()) and not is_ours(hook):
            if foreign.exists():
                raise RunnerError(
                    Stage.PREFLIGHT,
                    Category.GIT,
                    f"{hook} exists and {foreign.name} is taken; move one of them away first",
                )
            hook.replace(foreign)
        hook.write_text(shim(name, foreign))
        hook.chmod(0o755)
        done.append(Installed(hook, foreign if foreign.exists() else None))
    return done


def uninstall(repo: Repo, *, server: bool) -> list[Path]:
    directory = hooks_dir(repo, server=server)
    restored = []
    for name in SERVER_HOOKS if server else LOCAL_HOOKS:
        hook = directory / name
        foreign = directory / (name + FOREIGN_SUFFIX)
        if is_ours(hook):
            hook.unlink()
            restored.append(hook)
        if foreign.exists() and not hook.exists():
            foreign.replace(hook)
    return restored
