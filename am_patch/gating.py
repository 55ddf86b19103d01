"""Running the planned gates on one tree: the rewriters (formatters, fixers) first, one after
another until they leave the tree alone, then every checking gate side by side, each in its own
jail and its own copy of the tree, so that no gate can change what another one judges.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from am_patch import bytecode, precommit, sandbox, toolcache
from am_patch.config import Config
from am_patch.gates import (
    REWRITE_ROUNDS,
    Planned,
    Verdict,
    announce,
    cpus,
    python_for,
    run_one,
)
from am_patch.layout import Layout
from am_patch.progress import Progress
from am_patch.sandbox import Jail
from am_patch.verdicts import VerdictCache

log = logging.getLogger("am_patch")

Tree = Mapping[str, tuple[str, int]]  # path -> (content hash, mode): a fingerprint's result
Fingerprint = Callable[[], Tree]


def differences(before: Tree, after: Tree) -> tuple[str, ...]:
    return tuple(sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p)))


@dataclass(frozen=True, slots=True, kw_only=True)
class GateJails:
    """A jail per gate and tree copy: the copy writable, the gate's own cache writable, nothing
    of another gate's; each gate's tool cache is a warm one kept per live repo when toolcache
    allows it, else a scratch one."""

    base: Jail
    scratch: Path  # for the caches that are not kept
    layout: Layout | None  # where kept caches live; None: keep none
    prefixes: tuple[Path, ...]  # the gate interpreter's installation (for tool versions)
    pre_commit: precommit.Store | None = None  # prepared hook environments, for that gate
    pre_commit_dirs: tuple[Path, ...] = ()  # the store and pre-commit's interpreter, read-only
    node_modules: Path | None = None  # the live repo's installed node tools, read-only
    bytecode: bytecode.Compiled | None = None  # the installation's compiled modules, read-only

    @contextlib.contextmanager
    def for_gate(self, item: Planned, root: Path) -> Iterator[Jail]:
        """The gate's jail, for as long as the gate runs: a kept cache is one run's at a time
        (two mypy processes writing one cache crash, and a crash is not a verdict)."""
        name = item.spec.name
        if self.layout is None or toolcache.tool_of(item.argv) is None:
            yield self._jail(item, root, None)
            return
        with self.layout.exclusive(toolcache.lock_of(self.layout, name)):
            own = toolcache.cache_dir(
                self.layout, name, item.spec.command, item.argv, root, self.prefixes
            )
            yield self._jail(item, root, own)

    def _jail(self, item: Planned, root: Path, own: Path | None) -> Jail:
        name = item.spec.name
        if own is None:
            own = self.scratch / name
            own.mkdir(parents=True, exist_ok=True)
        src = root / "src"
        env = dict(self.base.env) | {
            "MYPY_CACHE_DIR": str(own / "mypy"),
            "RUFF_CACHE_DIR": str(own / "ruff"),
            "PYTHONPATH": str(src if src.is_dir() else root),
            "COVERAGE_FILE": "/tmp/.coverage",  # never into the tree
        }
        exposed, mounted = self.base.exposed, self.base.mounted
        writable: tuple[Path, ...] = (own,)
        if self.bytecode is not None:  # its own prefix, the installation's pycs bound into it
            prefix = self.scratch / f"{name}.pycache"
            prefix.mkdir(parents=True, exist_ok=True)
            env["PYTHONPYCACHEPREFIX"] = str(prefix)
            writable += (prefix,)
            mounted = (*mounted, *self.bytecode.mounts(prefix))
        # `biome`, `tsc`: the project's node tools, where the tree has no node_modules of its
        # own: a tracked one, or a link, is what the gates judge (a link named node_modules
        # must not put the live tools over the tree's src/)
        if self.node_modules is not None and not os.path.lexists(root / "node_modules"):
            mounted = (*mounted, (self.node_modules, root / "node_modules"))
            env["PATH"] = f"{root / 'node_modules' / '.bin'}:{env.get('PATH', '')}"
        if name == precommit.GATE and self.pre_commit is not None:
            env |= precommit.env(self.pre_commit)
            exposed = (*exposed, *self.pre_commit_dirs)
        return dataclasses.replace(
            self.base,
            writable=root,
            chdir=root,
            extra_writable=writable,
            env=env,
            exposed=exposed,
            mounted=mounted,
        )


def make_jails(
    config: Config,
    *,
    live_root: Path,
    git_common_dir: Path,
    workdir: Path,
    scratch: Path,
    layout: Layout | None,
    pre_commit: precommit.Store | None = None,
) -> GateJails:
    """The gates' jails: like the patch's, plus a writable cache; the tree's code comes first.
    The pre_commit gate's also sees the prepared hook environments; every gate sees the live
    repo's node_modules (installed by you, never by a patch) at the tree's node_modules."""
    python = python_for(config, live_root)
    base = sandbox.make_jail(
        bwrap=config.bwrap,
        enabled=config.sandbox == "bwrap" and config.sandbox_gates,
        writable=workdir,
        live_root=live_root,
        git_common_dir=git_common_dir,
        python=python,
        bounds=config.bounds,
    )
    prefixes = sandbox.interpreter_dirs(python, live_root)
    node_modules = live_root / "node_modules"
    pre_commit_dirs: tuple[Path, ...] = ()
    if pre_commit is not None:
        pre_commit_dirs = (
            pre_commit.path,
            *sandbox.interpreter_dirs(pre_commit.python, live_root),
        )
    return GateJails(
        base=dataclasses.replace(base, exposed=(*base.exposed, *sandbox.node_dirs())),
        scratch=scratch,
        layout=layout,
        prefixes=prefixes,
        pre_commit=pre_commit,
        pre_commit_dirs=pre_commit_dirs,
        node_modules=(
            node_modules.resolve()
            if node_modules.is_dir() and workdir.resolve() != live_root.resolve()
            else None
        ),
        bytecode=installed_bytecode(prefixes, live_root) if base.bwrap is not None else None,
    )


def installed_bytecode(prefixes: Sequence[Path], live_root: Path) -> bytecode.Compiled | None:
    """The compiled installation of the gate interpreter (its `prefixes`) and of ours, which
    runs pre-commit."""
    own = sandbox.interpreter_dirs(Path(sys.executable), live_root)
    return bytecode.prefix_for((*prefixes, *own))


def warm_bytecode(config: Config, live_root: Path) -> None:
    """Compile the gate interpreter's installation now, as its second run would: the benches
    measure warm runs, and a bench's venv is new each time."""
    prefixes = sandbox.interpreter_dirs(python_for(config, live_root), live_root)
    for _ in range(2):
        installed_bytecode(prefixes, live_root)


@dataclass(slots=True)
class _Round:
    """What the rewriters did so far: each verdict, the tree it is for, the tree now."""

    verdicts: dict[str, Verdict]
    ran_on: dict[str, Tree]
    current: Tree


def run_all(
    planned: Sequence[Planned],
    jails: GateJails,
    config: Config,
    *,
    root: Path,
    keep_going: bool,
    fingerprint: Fingerprint,
    cache: VerdictCache | None = None,
    tree: str | None = None,
    progress: Progress | None = None,
) -> list[Verdict]:
    """Run the gates on the tree at root, reusing passes cached for `tree`; a verdict each, in
    gates_order.

    The rewriters run first, in order, again and again while one of them changes the tree, for
    at most REWRITE_ROUNDS rounds (one still changing files then fails). Then the checking gates
    run, up to gate_jobs at once, each on its own copy of the settled tree: a checking gate that
    changes a file fails, since the tree that would land is not the tree that passed. Without
    -g the first failure stops the gates still running. A cached pass counts for `tree`, the
    tree before any rewriter ran. Blessed outputs (a gate's report) are products, not inputs:
    they are left out of every comparison and copied back to root.
    """
    blessed = frozenset(config.blessed_outputs)

    def take() -> Tree:
        return {p: v for p, v in fingerprint().items() if p not in blessed}

    start = take()
    state = _Round(verdicts={}, ran_on={}, current=start)
    for item in planned:
        if item.skip_reason:
            with jails.for_gate(item, root) as jail:
                state.verdicts[item.spec.name] = run_one(item, jail, config)
            announce(state.verdicts[item.spec.name])
    rewriters = [p for p in planned if p.spec.rewrites and not p.skip_reason]
    if not _rewrite(rewriters, state, jails, config, root, take, cache, tree, keep_going, progress):
        return _in_order(planned, state, stop=True)
    unchanged = state.current == start
    todo = []
    for item in planned:
        name = item.spec.name
        if item.spec.rewrites or item.skip_reason:
            continue
        if unchanged and cache and tree and cache.passed(tree, name, item.argv):
            log.info("gate %s: cached pass for tree %s", name, tree)
            state.verdicts[name] = Verdict(name=name, ok=True, cached=True)
            announce(state.verdicts[name])
        else:
            todo.append(item)
    state.verdicts.update(_check(todo, jails, config, root, blessed, keep_going, progress))
    return _in_order(planned, state, stop=False)


def _rewrite(
    rewriters: Sequence[Planned],
    state: _Round,
    jails: GateJails,
    config: Config,
    root: Path,
    take: Fingerprint,
    cache: VerdictCache | None,
    tree: str | None,
    keep_going: bool,
    progress: Progress | None,
) -> bool:
    """The rewriters to a fixpoint; False when the gates must stop (a failure without -g, or
    a rewriter that never settles)."""
    for round_no in range(1, REWRITE_ROUNDS + 1):
        rewrote: dict[str, tuple[str, ...]] = {}
        for item in rewriters:
            name = item.spec.name
            if round_no == 1 and cache and tree and cache.passed(tree, name, item.argv):
                log.info("gate %s: cached pass for tree %s", name, tree)
                state.verdicts[name] = Verdict(name=name, ok=True, cached=True)
                announce(state.verdicts[name])
                state.ran_on[name] = state.current
                continue
            with jails.for_gate(item, root) as jail:
                ran = run_one(item, jail, config, progress=progress)
                verdict = _all_rounds(state.verdicts.get(name), ran)
            after = take()
            state.ran_on[name], changed = state.current, differences(state.current, after)
            state.current = after
            if changed:
                rewrote[name] = changed
            state.verdicts[name] = verdict
            announce(verdict)
            if not verdict.ok and not keep_going and not changed:
                return False  # a fixer that fails while it rewrites (pre-commit's) runs again
        if not rewrote:
            return True
        if round_no == REWRITE_ROUNDS:
            for name, changed in rewrote.items():
                state.verdicts[name] = dataclasses.replace(
                    state.verdicts[name], ok=False, changed=changed, unsettled=True
                )
                announce(state.verdicts[name])
            return False
        log.info(
            "the rewriters changed %s: running them again on the tree they left",
            ", ".join(sorted({f for files in rewrote.values() for f in files})[:5]),
        )
    return True


def _all_rounds(earlier: Verdict | None, verdict: Verdict) -> Verdict:
    """A rewriter's verdict of this round, timed over every round it ran (the summary shows
    what it cost, not only its last, quick round)."""
    if earlier is None or earlier.result is None or verdict.result is None:
        return verdict
    spent = earlier.result.duration_s + verdict.result.duration_s
    return dataclasses.replace(
        verdict, result=dataclasses.replace(verdict.result, duration_s=spent)
    )


def _check(
    todo: Sequence[Planned],
    jails: GateJails,
    config: Config,
    root: Path,
    blessed: frozenset[str],
    keep_going: bool,
    progress: Progress | None,
) -> dict[str, Verdict]:
    """The checking gates side by side (gate_jobs at once), each on a copy of the tree but the
    first. Without -g a failure cancels the gates after it in gates_order, never one before it:
    the failure reported is the first in gates_order, however the gates raced."""
    if not todo:
        return {}
    stops = [threading.Event() for _ in todo]  # stops[i]: a gate before the i-th failed
    jobs = max(1, min(config.gate_jobs or cpus(), len(todo)))
    if jobs == 1:  # one after another on the same tree, each between two fingerprints
        roots = [root] * len(todo)
    else:
        roots = [root, *(_copy(root, item.spec.name) for item in todo[1:])]

    def one(number: int, item: Planned, where: Path) -> Verdict:
        if stops[number].is_set():
            cancelled = Verdict(name=item.spec.name, ok=False, cancelled=True)
            announce(cancelled)
            return cancelled
        walk = _fingerprint(where, blessed)
        before = walk()
        with jails.for_gate(item, where) as jail:
            verdict = run_one(item, jail, config, progress=progress, cancel=stops[number])
        changed = differences(before, walk())
        if changed:
            log.info("gate %s changed files while running: %s", item.spec.name, ", ".join(changed))
            verdict = dataclasses.replace(verdict, ok=False, changed=changed)
        announce(verdict)
        if not verdict.ok and not verdict.cancelled and not keep_going:
            for later in stops[number + 1 :]:
                later.set()
        if where != root:
            _bring_back(where, root, blessed)
        return verdict

    try:
        if jobs == 1:
            found = [one(number, item, roots[number]) for number, item in enumerate(todo)]
        else:
            with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="gate") as pool:
                try:
                    found = list(pool.map(one, range(len(todo)), todo, roots))
                except BaseException:  # Ctrl-C, SIGTERM: the running gates are killed, not awaited
                    for stop in stops:
                        stop.set()
                    raise
    finally:
        for copy in set(roots) - {root}:
            shutil.rmtree(copy.parent, ignore_errors=True)
    return {v.name: v for v in found}


def _copy(root: Path, name: str) -> Path:
    """A private copy of the tree at root, beside it, for one gate."""
    target = root.parent / f"{root.name}-{name}" / root.name
    shutil.copytree(root, target, symlinks=True)
    return target


def _bring_back(copy: Path, root: Path, blessed: frozenset[str]) -> None:
    """Blessed outputs a gate wrote in its copy: products of the tree, into root."""
    for rel in blessed:
        made = copy / rel
        if made.is_file() and not made.is_symlink():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(made, root / rel)


def _fingerprint(root: Path, blessed: frozenset[str]) -> Fingerprint:
    walk = dir_fingerprint(root)

    def take() -> Tree:
        return {p: v for p, v in walk().items() if p not in blessed}

    return take


def _in_order(planned: Sequence[Planned], state: _Round, *, stop: bool) -> list[Verdict]:
    """The verdicts in gates_order; when the gates stopped early, a verdict for an earlier tree
    is marked stale (never cached) and the gates that never ran are left out."""
    found = [state.verdicts[p.spec.name] for p in planned if p.spec.name in state.verdicts]
    if not stop:
        return found
    return [
        dataclasses.replace(v, stale=state.ran_on.get(v.name, state.current) != state.current)
        for v in found
    ]


def dir_fingerprint(root: Path) -> Fingerprint:
    """Content hashes of every file under root (a temporary export: no ignore rules apply)."""

    def take() -> Tree:
        found: dict[str, tuple[str, int]] = {}
        for dirpath, _, files in os.walk(root):
            for name in files:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                if os.path.islink(full):
                    digest = hashlib.sha1(os.fsencode(os.readlink(full))).hexdigest()
                    found[rel] = (digest, 0o120000)
                elif os.path.isfile(full):
                    with open(full, "rb") as handle:
                        digest = hashlib.file_digest(handle, "sha1").hexdigest()
                    found[rel] = (digest, os.stat(full).st_mode)
        return found

    return take
