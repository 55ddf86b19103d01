"""The pre_commit gate: the project's own `.pre-commit-config.yaml` hooks, run in the jail.

Preparing a hook environment installs code the config names (a clone, a pip install), with the
network: that happens outside the jail, so only from a trusted tree's config (the workspace's
base, or HEAD for a hook), never from the patched one. The environments live in one store per
live repository (`<git dir>/am_patch/pre-commit`), prepared again only when that config
changes. In the jail the store is mounted read-only at its own path (a store cannot move: its
database holds absolute paths) and there is no network, so a hook the patched config adds is
run if its environment is prepared already and otherwise fails at once, saying how to prepare
it. pre-commit needs a git repository: the jail gets a throw-away one in its /tmp whose index
holds the files in scope, since pre-commit sees a hook's rewrite through `git diff`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from am_patch import git, proc
from am_patch.layout import Layout
from am_patch.repo import Repo

log = logging.getLogger("am_patch")

CONFIG = ".pre-commit-config.yaml"
GATE = "pre_commit"
# am-patch's own hooks (.pre-commit-hooks.yaml): inside the gate they would run am-patch again
OWN_HOOKS = ("am-patch-scope", "am-patch-gates", "am-patch-origin-guard")
EMPTY = b"repos: []\n"
PREPARE_TIMEOUT_S = 1800
# Run in the jail with the files in scope as arguments; pre-commit's interpreter and the store
# come through the environment (see env()).
IN_JAIL = (
    "set -e\n"
    'git init -q "$TMPDIR/am-patch-pre-commit"\n'
    'export GIT_DIR="$TMPDIR/am-patch-pre-commit/.git" GIT_WORK_TREE="$PWD"\n'
    'git add -f -- "$@"\n'
    'exec "$AM_PATCH_PRE_COMMIT_PYTHON" -m pre_commit run --color never --files "$@"\n'
)
COMMAND = ("sh", "-c", IN_JAIL, GATE)
_FAILED_HOOK = re.compile(r"^.+?\.{3,}Failed\n- hook id: (\S+)", re.MULTILINE)
_READ_ONLY = "Read-only file system"


@dataclass(frozen=True, slots=True)
class Store:
    """Where the hook environments are, and the interpreter that runs pre-commit (ours)."""

    path: Path
    python: Path


def store_of(layout: Layout) -> Store:
    return Store(path=layout.state / "pre-commit", python=Path(sys.executable))


def prepare(layout: Layout, repo: Repo, trusted_tree: str, path_env: str) -> Store:
    """The store with every environment the trusted tree's config needs (none: still a store
    pre-commit can open). Runs `pre-commit install-hooks` outside the jail, one run at a time,
    only when that config changed since the last time. A failure is logged; the gate then
    fails in the jail, naming what is not prepared."""
    store = store_of(layout)
    entry = repo.entry(trusted_tree, CONFIG)
    config = repo.blob_bytes(entry[0]) if entry is not None else EMPTY
    digest = hashlib.sha256(config + str(store.python).encode()).hexdigest()
    marker = store.path / "am-patch-prepared"
    with layout.exclusive(layout.state / ".pre-commit.lock"):
        if marker.is_file() and marker.read_text(encoding="utf-8").strip() == digest:
            return store
        layout.mkdir(store.path)
        trusted = store.path / "am-patch-base-config.yaml"
        layout.write(trusted, config)
        scratch = layout.mkdir(store.path / "am-patch-repo")  # install-hooks needs a git repo
        if not (scratch / ".git").exists():
            git.run(["init", "-q", str(scratch)], cwd=store.path)
        result = proc.run(
            [str(store.python), "-m", "pre_commit", "install-hooks", "-c", str(trusted)],
            cwd=scratch,
            env=git.environment({"PRE_COMMIT_HOME": str(store.path), "PATH": path_env}),
            timeout_s=PREPARE_TIMEOUT_S,
        )
        if result.ok:
            layout.write(marker, (digest + "\n").encode())
            log.info("pre-commit: hook environments prepared from the base tree's %s", CONFIG)
        else:
            marker.unlink(missing_ok=True)
            log.info("pre-commit: preparing the hook environments failed:\n%s", result.tail(20))
    return store


def env(store: Store) -> dict[str, str]:
    """What the gate's jail needs besides its own environment."""
    return {
        "PRE_COMMIT_HOME": str(store.path),
        "PRE_COMMIT_COLOR": "never",
        "SKIP": ",".join(OWN_HOOKS),
        "AM_PATCH_PRE_COMMIT_PYTHON": str(store.python),
    }


def hint(output: str, store: Path) -> str:
    """Why the gate failed, in a line: the failing hooks' ids, or the environments that are
    not prepared."""
    if _READ_ONLY in output or "pre-commit.log" in output:
        return (
            f"hook environments of this {CONFIG} are not prepared: am-patch prepares them only "
            "from the base tree's config, outside the jail; after reviewing the new config "
            f"(preparing installs the code it names), run PRE_COMMIT_HOME={store} pre-commit "
            "install-hooks -c <the new config, e.g. in patches/workspaces/issue_<ID>/repo>, "
            "then rerun"
        )
    failed = list(dict.fromkeys(_FAILED_HOOK.findall(output)))
    return f"failed hooks: {', '.join(failed)}" if failed else ""
