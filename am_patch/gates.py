"""Quality gates: which run for a change, on what targets, and their verdicts."""

from __future__ import annotations

import configparser
import dataclasses
import hashlib
import logging
import os
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from am_patch import sandbox
from am_patch.config import Config, GateSpec
from am_patch.errors import RunnerError, Stage
from am_patch.proc import ProcResult
from am_patch.repo import Repo
from am_patch.sandbox import Jail
from am_patch.verdicts import VerdictCache

log = logging.getLogger("am_patch")

PYTHON_SUFFIXES = (".py", ".pyi")
TOOL_CONFIGS = frozenset(
    {
        "pyproject.toml",
        "setup.cfg",
        "setup.py",
        "tox.ini",
        "mypy.ini",
        ".mypy.ini",
        "pytest.ini",
        "ruff.toml",
        ".ruff.toml",
        "conftest.py",
    }
)
PYTEST_NO_TESTS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    spec: GateSpec
    argv: tuple[str, ...]
    skip_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    name: str
    ok: bool
    skipped: str | None = None
    result: ProcResult | None = None
    cached: bool = False
    changed: tuple[str, ...] = ()  # files a non-rewriting gate changed while it ran

    @property
    def label(self) -> str:
        if self.skipped:
            return f"{self.name}: SKIPPED ({self.skipped})"
        if self.cached:
            return f"{self.name}: PASS (cached: this tree already passed)"
        if self.changed:
            return f"{self.name}: FAIL (it changed {', '.join(self.changed[:3])} while running)"
        duration = f" in {self.result.duration_s:.1f}s" if self.result else ""
        return f"{self.name}: {'PASS' if self.ok else 'FAIL'}{duration}"


def python_for(config: Config, live_root: Path) -> Path:
    """The project's interpreter: gate_python, else <live>/.venv/bin/python, else our own."""
    if config.gate_python:
        return Path(config.gate_python)
    venv = live_root / ".venv" / "bin" / "python"
    if venv.exists():
        return venv
    return Path(sys.executable)


def is_python(path: str) -> bool:
    return path.endswith(PYTHON_SUFFIXES)


def touches_project(paths: Iterable[str]) -> bool:
    return any(is_python(p) or p.rsplit("/", 1)[-1] in TOOL_CONFIGS for p in paths)


def mypy_targets(root: Path) -> list[str]:
    """Nothing when the project's mypy config names its files; else src/ if present, else '.'."""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            tool = {}
        if tool.get("mypy", {}).get("files"):
            return []
    for name in ("mypy.ini", ".mypy.ini", "setup.cfg"):
        parser = configparser.ConfigParser()
        try:
            parser.read(root / name, encoding="utf-8")
        except configparser.Error:
            continue
        if parser.has_option("mypy", "files"):
            return []
    return ["src"] if (root / "src").is_dir() else ["."]


def _expand(spec: GateSpec, python: Path, targets: Sequence[str], root: Path) -> tuple[str, ...]:
    argv: list[str] = []
    for arg in spec.command:
        if arg == "{targets}":
            argv.extend(targets)
        elif arg == "{mypy_targets}":
            argv.extend(mypy_targets(root))
        else:
            argv.append(arg.replace("{python}", str(python)))
    return tuple(argv)


def plan(
    config: Config, *, changed: Sequence[str], root: Path, python: Path, run_all: bool
) -> list[Planned]:
    """The gates of gates_order, each with its argv or the reason it is skipped."""
    existing = [p for p in changed if (root / p).is_file()]
    py_files = sorted(p for p in existing if is_python(p))
    project = touches_project(changed)
    planned = []
    for name in config.gates_order:
        spec = config.gate(name)
        skip = None
        targets: Sequence[str] = spec.full_targets
        if spec.runs_on == "python_files" and not run_all:
            targets = py_files
            if not py_files:
                skip = "no Python files in scope"
        elif spec.runs_on == "project" and not run_all and not project:
            skip = "no Python or tool config files in scope"
        planned.append(
            Planned(spec=spec, argv=_expand(spec, python, targets, root), skip_reason=skip)
        )
    return planned


def run_one(planned: Planned, jail: Jail, config: Config) -> Verdict:
    name = planned.spec.name
    if planned.skip_reason:
        log.info("gate %s skipped: %s", name, planned.skip_reason)
        return Verdict(name=name, ok=True, skipped=planned.skip_reason)
    log.info("gate %s:", name)
    timeout = planned.spec.timeout_s or config.gate_timeout_s
    result = jail.run(planned.argv, timeout_s=timeout or None)
    ok = result.ok or (name == "pytest" and result.returncode == PYTEST_NO_TESTS)
    if result.timed_out:
        log.info("gate %s timed out after %ss", name, timeout)
    return Verdict(name=name, ok=ok, result=result)


Fingerprint = Callable[[], Mapping[str, tuple[str, int]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class GateJails:
    """One jail per gate: each sees only its own cache, so a test cannot poison mypy's cache."""

    base: Jail
    cache_dir: Path

    def for_gate(self, name: str) -> Jail:
        own = self.cache_dir / name
        own.mkdir(parents=True, exist_ok=True)
        env = dict(self.base.env) | {
            "MYPY_CACHE_DIR": str(own / "mypy"),
            "RUFF_CACHE_DIR": str(own / "ruff"),
        }
        return dataclasses.replace(self.base, extra_writable=(own,), env=env)


def make_jails(
    config: Config, *, live_root: Path, git_common_dir: Path, workdir: Path, cache_dir: Path
) -> GateJails:
    """The gates' jails: like the patch's, plus a writable cache; workdir's code comes first."""
    src = workdir / "src"
    base = sandbox.make_jail(
        bwrap=config.bwrap,
        enabled=config.sandbox == "bwrap" and config.sandbox_gates,
        writable=workdir,
        live_root=live_root,
        git_common_dir=git_common_dir,
        python=python_for(config, live_root),
        extra_env={"PYTHONPATH": str(src if src.is_dir() else workdir)},
    )
    return GateJails(base=base, cache_dir=cache_dir)


def all_cached(planned: Sequence[Planned], cache: VerdictCache, tree: str) -> bool:
    return all(p.skip_reason or cache.passed(tree, p.spec.name, p.argv) for p in planned)


def record(
    planned: Sequence[Planned], verdicts: Sequence[Verdict], cache: VerdictCache, tree: str
) -> None:
    """Remember the passes of this run for tree."""
    ran = {v.name for v in verdicts if v.ok and not v.skipped and not v.cached}
    for item in planned:
        if item.spec.name in ran:
            cache.record_pass(tree, item.spec.name, item.argv)


def run_all(
    planned: Sequence[Planned],
    jails: GateJails,
    config: Config,
    *,
    keep_going: bool,
    cache: VerdictCache | None = None,
    tree: str | None = None,
    fingerprint: Fingerprint | None = None,
) -> list[Verdict]:
    """Run gates in order, reusing passes cached for tree; stop at the first failure.

    Only gates marked `rewrites` (formatter, fixer) may change files: around every other gate
    the tree is fingerprinted, and a change fails that gate, since the tree that would land is
    not the tree that passed.
    """
    verdicts = []
    before: Mapping[str, tuple[str, int]] | None = None
    for item in planned:
        name = item.spec.name
        if cache and tree and not item.skip_reason and cache.passed(tree, name, item.argv):
            log.info("gate %s: cached pass for tree %s", name, tree)
            verdict = Verdict(name=name, ok=True, cached=True)
        elif item.spec.rewrites or fingerprint is None or item.skip_reason:
            verdict = run_one(item, jails.for_gate(name), config)
            before = None if item.spec.rewrites else before
        else:
            before = before if before is not None else fingerprint()
            verdict = run_one(item, jails.for_gate(name), config)
            after = fingerprint()
            changed = tuple(
                sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
            )
            if changed:
                log.info("gate %s changed files while running: %s", name, ", ".join(changed))
                verdict = dataclasses.replace(verdict, ok=False, changed=changed)
            before = after
        verdicts.append(verdict)
        if not verdict.ok and not keep_going:
            break
    return verdicts


def run_in(
    config: Config,
    *,
    workdir: Path,
    cache_dir: Path,
    project_root: Path,
    git_common_dir: Path,
    touched: Sequence[str],
    cache: VerdictCache,
    tree: str | None,
    fingerprint: Fingerprint,
) -> tuple[list[Planned], list[Verdict]]:
    """Plan and run the gates on workdir, each in its jail, reusing the passes cached for tree."""
    python = python_for(config, project_root)
    planned = plan(
        config, changed=touched, root=workdir, python=python, run_all=config.run_all_gates
    )
    jails = make_jails(
        config,
        live_root=project_root,
        git_common_dir=git_common_dir,
        workdir=workdir,
        cache_dir=cache_dir,
    )
    verdicts = run_all(
        planned,
        jails,
        config,
        keep_going=config.allow_gates_fail,
        cache=cache,
        tree=tree,
        fingerprint=fingerprint,
    )
    return planned, verdicts


def failure(verdicts: Sequence[Verdict], stage: Stage) -> RunnerError:
    """The error for failed verdicts: a gate that changed files first, else the first failure.

    A checking gate that changed files fails even with -g (allow_gates_fail): the tree on disk is
    no longer the tree that passed.
    """
    tampered = [v for v in verdicts if v.changed]
    if tampered:
        return RunnerError(
            stage,
            tampered[0].name.upper(),
            f"gate {tampered[0].name} changed {', '.join(tampered[0].changed[:3])} while it "
            "ran; only formatters (rewrites = true) may change files",
        )
    first = next(v for v in verdicts if not v.ok)
    timed_out = first.result is not None and first.result.timed_out
    return RunnerError(
        stage,
        first.name.upper(),
        f"gate {first.name} failed"
        + (" (timed out)" if timed_out else "")
        + "; its full output is in the log",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeCheck:
    verdicts: list[Verdict]
    tree: str  # the tree as the gates left it: a formatter's edits included
    rewritten: Sequence[str]  # files a formatter or fixer changed: the tree itself is not clean

    @property
    def problems(self) -> list[str]:
        found = [f"gate {v.name} failed" for v in self.verdicts if not v.ok]
        if self.rewritten:
            found.append(
                "the formatter/fixer would change "
                + ", ".join(self.rewritten[:5])
                + ": run ruff format / ruff check --fix, stage, and commit again"
            )
        return found


def check_tree(
    config: Config,
    repo: Repo,
    *,
    tree: str,
    touched: Sequence[str],
    cache: VerdictCache,
    project_root: Path,
    scratch_parent: Path | None = None,
) -> TreeCheck:
    """Gate exactly `tree`, exported to a scratch directory; nothing else is touched.

    The passes are recorded for the tree the gates leave, which is `tree` unless a formatter
    rewrote a file.
    """
    if scratch_parent is not None:
        scratch_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="am-patch-gates-", dir=scratch_parent) as tmp:
        root = Path(tmp) / "repo"
        repo.export_tree(tree, root)
        planned, verdicts = run_in(
            config,
            workdir=root,
            cache_dir=Path(tmp) / "cache",
            project_root=project_root,
            git_common_dir=repo.common_dir,
            touched=touched,
            cache=cache,
            tree=tree,
            fingerprint=dir_fingerprint(root),
        )
        after = repo.tree_from_dir(tree, root, touched)
        record(planned, verdicts, cache, after)
        rewritten = [c.path for c in repo.diff_trees(tree, after)] if after != tree else []
        return TreeCheck(verdicts=verdicts, tree=after, rewritten=rewritten)


def dir_fingerprint(root: Path) -> Fingerprint:
    """Content hashes of every file under root (a temporary export: no ignore rules apply)."""

    def take() -> Mapping[str, tuple[str, int]]:
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
