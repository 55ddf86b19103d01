"""The git command line, for what git's own behaviour is the point of: fetch and push
(credentials, ssh config, hooks), apply and --3way, archive. One place builds its argv and its
environment: inherited GIT_* variables are dropped, as they belong to whatever started us."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from am_patch import proc


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without GIT_* variables (a hook's GIT_DIR would point git elsewhere),
    plus extra."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return clean | dict(extra or {})


def run(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    stdin: str | None = None,
    quiet: bool = False,
) -> proc.ProcResult:
    """`git args` in cwd; `env` adds to the clean environment (GIT_INDEX_FILE, say)."""
    return proc.run(
        ["git", *args],
        cwd=cwd,
        env=environment(env),
        timeout_s=timeout_s,
        stdin=stdin,
        quiet=quiet,
    )
