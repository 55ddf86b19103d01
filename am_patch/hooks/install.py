"""Installing the hook shims without clobbering foreign hooks; uninstall restores them."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from am_patch.errors import Category, Refusal
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
    """Our shim, as a regular file: a symlink is never ours, even to our shim (it is the user's
    way of sharing one hook script between hooks, and writing through it clobbers its target)."""
    if path.is_symlink():
        return False
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def _exists(path: Path) -> bool:
    """A file or a symlink, dangling or not, is there: nothing may be written over it."""
    return path.is_symlink() or path.exists()


def _runs(directory: Path, foreign: Path, hooks: tuple[str, ...]) -> Path:
    """What the shim runs for a kept foreign hook: the kept hook itself, unless it is a symlink
    to another hook of this directory that now is our shim; then the script that hook kept."""
    if not foreign.is_symlink():
        return foreign
    target = Path(os.path.normpath(directory / os.readlink(foreign)))
    if target.parent == directory and target.name in hooks:
        return directory / (target.name + FOREIGN_SUFFIX)
    return foreign


def _write_shim(hook: Path, text: str) -> None:
    """A new regular file replacing hook's directory entry: never writes through a symlink."""
    tmp = hook.with_name(hook.name + ".am-patch-tmp")
    tmp.unlink(missing_ok=True)
    tmp.write_text(text)
    tmp.chmod(0o755)
    tmp.replace(hook)


def hooks_dir(repo: Repo, *, server: bool) -> Path:
    """Where git looks for hooks: core.hooksPath if set (and usable), else <git dir>/hooks."""
    configured = repo.config_value("core.hooksPath")
    if configured:
        base = repo.git_dir if server else repo.root
        path = (base / os.path.expanduser(configured)).resolve()
        if not path.is_dir():
            raise Refusal(
                Category.GIT,
                f"core.hooksPath is {configured!r}, which is not a directory; create it or unset "
                "core.hooksPath, then install again",
            )
        return path
    return repo.common_dir / "hooks"


def install(repo: Repo, *, server: bool) -> list[Installed]:
    directory = hooks_dir(repo, server=server)
    directory.mkdir(parents=True, exist_ok=True)
    names = SERVER_HOOKS if server else LOCAL_HOOKS
    for name in names:  # refuse before moving anything
        hook = directory / name
        foreign = directory / (name + FOREIGN_SUFFIX)
        if _exists(hook) and not is_ours(hook) and _exists(foreign):
            raise Refusal(
                Category.GIT,
                f"{hook} exists and {foreign.name} is taken; move one of them away first",
            )
    done = []
    for name in names:  # every foreign hook aside before any shim: a link may name another
        hook = directory / name
        foreign = directory / (name + FOREIGN_SUFFIX)
        if _exists(hook) and not is_ours(hook):
            hook.replace(foreign)  # rename(2): moves a symlink itself, never its target
    for name in names:
        hook = directory / name
        foreign = directory / (name + FOREIGN_SUFFIX)
        _write_shim(hook, shim(name, _runs(directory, foreign, names)))
        done.append(Installed(hook, foreign if _exists(foreign) else None))
    if server:  # so that a pusher can allow a policy change: git push -o ...
        repo.set_config("receive.advertisePushOptions", "true")
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
        if _exists(foreign) and not _exists(hook):
            foreign.replace(hook)  # a kept symlink comes back exactly as it was
    return restored
