"""Quality gates: which run for a change, on what targets, and their verdicts."""

from __future__ import annotations

import configparser
import dataclasses
import logging
import shutil
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from am_patch import limits, sandbox
from am_patch.config import Config, GateSpec
from am_patch.errors import Category, Refusal, RunnerError, Stage
from am_patch.proc import ProcResult
from am_patch.sandbox import Jail
from am_patch.verdicts import VerdictCache

log = logging.getLogger("am_patch")

PYTHON_SUFFIXES = (".py", ".pyi")
# files whose change can alter what pytest, mypy or ruff find, though they are no project code:
# every file pytest reads as its config (pytest.toml and .pytest.toml since pytest 9), mypy's and
# ruff's, conftest.py, and py.typed (which makes mypy check a package as typed)
TOOL_CONFIGS = frozenset(
    {"pyproject.toml", "setup.cfg", "setup.py", "tox.ini", "conftest.py", "py.typed"}
    | {"pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml"}
    | {"mypy.ini", ".mypy.ini", "ruff.toml", ".ruff.toml"}
)
PYTEST_NO_TESTS = 5
REWRITE_ROUNDS = 3  # passes over the gates while formatters and fixers keep changing the tree


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
    # files a checking gate changed while it ran, or a rewriter still changed in the last round
    changed: tuple[str, ...] = ()
    unsettled: bool = False  # a rewriter that never left the tree as it found it
    hint: str = ""  # what to do when the cause is known (the interpreter lacks the tool)
    stale: bool = False  # ran on a tree a rewriter changed since; the gates stopped before rerun

    @property
    def label(self) -> str:
        if self.skipped:
            return f"{self.name}: SKIPPED ({self.skipped})"
        if self.cached:
            return f"{self.name}: PASS (cached: this tree already passed)"
        shown = ", ".join(self.changed[:3])
        if self.unsettled:
            return f"{self.name}: FAIL (still changing {shown} after {REWRITE_ROUNDS} rounds)"
        if self.changed:
            return f"{self.name}: FAIL (it changed {shown} while running)"
        if self.hint:
            return f"{self.name}: FAIL ({self.hint})"
        duration = f" in {self.result.duration_s:.1f}s" if self.result else ""
        return f"{self.name}: {'PASS' if self.ok else 'FAIL'}{duration}"


def python_for(config: Config, live_root: Path) -> Path:
    """The project's interpreter: gate_python, else <live>/.venv/bin/python, else our own.

    A relative gate_python path (`venv/bin/python`) is taken from the project root, where git
    runs hooks; a bare name (`python3`) stays a command looked up on PATH.
    """
    if config.gate_python:
        named = Path(config.gate_python).expanduser()
        return live_root / named if "/" in config.gate_python else named
    venv = live_root / ".venv" / "bin" / "python"
    if venv.exists():
        return venv
    return Path(sys.executable)


def check_python(config: Config, live_root: Path) -> None:
    """PREFLIGHT:CONFIG when gate_python names no executable, rather than a crash in the gates,
    or a file of the working tree outside a venv: a patch may have written it, and the jail
    hides the working tree (only a venv there is the interpreter's)."""
    if not config.gate_python:
        return
    python = python_for(config, live_root)
    if shutil.which(python) is None:
        raise Refusal(
            Category.CONFIG,
            f"config key 'gate_python': no executable interpreter at {config.gate_python!r} "
            "(unset it to use <live>/.venv/bin/python or am-patch's own)",
        )
    if python.is_absolute() and not sandbox.is_interpreter_home(python, live_root):
        raise Refusal(
            Category.CONFIG,
            f"config key 'gate_python': {config.gate_python!r} is a file of the working tree "
            "outside a venv; am-patch never runs such a file (a patch may have written it): "
            "name a venv's python",
        )


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
    config: Config,
    *,
    changed: Sequence[str],
    root: Path,
    python: Path,
    run_all: bool,
    exists: Callable[[str], bool] | None = None,
) -> list[Planned]:
    """The gates of gates_order, each with its argv or the reason it is skipped.

    `exists` says whether a changed path is still there (default: a file under root).
    """
    existing = [p for p in changed if (exists(p) if exists else (root / p).is_file())]
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
    no_tests = name == "pytest" and result.returncode == PYTEST_NO_TESTS and not result.bound
    ok = result.ok or no_tests
    if result.timed_out:
        log.info("gate %s timed out after %ss", name, timeout)
    if result.bound:
        hint = f"stopped by {limits.describe(result.bound, jail.bounds)}"
    else:
        hint = "" if ok else missing_module(planned.argv, result)
    return Verdict(name=name, ok=ok, result=result, hint=hint)


def missing_module(argv: Sequence[str], result: ProcResult) -> str:
    """For `PYTHON -m MODULE ...` failing because PYTHON lacks MODULE: what to set, else ''."""
    if len(argv) < 3 or argv[1] != "-m":
        return ""
    module = argv[2]
    if f"No module named {module}" not in result.output:
        return ""
    return (
        f"{argv[0]} has no module {module}: set gate_python in am_patch.toml to the interpreter "
        'that has your project\'s test tools, e.g. gate_python = "venv/bin/python"'
    )


Tree = Mapping[str, tuple[str, int]]  # path -> (content hash, mode): a fingerprint's result
Fingerprint = Callable[[], Tree]


def differences(before: Tree, after: Tree) -> tuple[str, ...]:
    return tuple(sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p)))


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
        bounds=config.bounds,
    )
    return GateJails(base=base, cache_dir=cache_dir)


def all_cached(planned: Sequence[Planned], cache: VerdictCache, tree: str) -> bool:
    return all(p.skip_reason or cache.passed(tree, p.spec.name, p.argv) for p in planned)


def record(
    planned: Sequence[Planned], verdicts: Sequence[Verdict], cache: VerdictCache, tree: str
) -> None:
    """Remember the passes of this run for tree."""
    ran = {v.name for v in verdicts if v.ok and not v.skipped and not v.cached and not v.stale}
    for item in planned:
        if item.spec.name in ran:
            cache.record_pass(tree, item.spec.name, item.argv)


def run_all(
    planned: Sequence[Planned],
    jails: GateJails,
    config: Config,
    *,
    keep_going: bool,
    fingerprint: Fingerprint,
    cache: VerdictCache | None = None,
    tree: str | None = None,
) -> list[Verdict]:
    """Run gates in order, reusing passes cached for tree, until every verdict is for the tree
    the gates leave; stop at the first failure.

    Only gates marked `rewrites` (formatter, fixer) may change files: a checking gate that
    changes one fails, since the tree that would land is not the tree that passed. When a
    rewriter changes the tree, every gate that ran on an earlier tree runs again, for at most
    REWRITE_ROUNDS rounds; a rewriter still changing files in the last round fails. A cached
    pass counts as run on the starting tree, `tree`. Blessed outputs (a gate's report) are
    products, not inputs: they are left out of every comparison.
    """
    blessed = frozenset(config.blessed_outputs)

    def take() -> Tree:
        return {p: v for p, v in fingerprint().items() if p not in blessed}

    current = start = take()
    verdicts: dict[str, Verdict] = {}
    ran_on: dict[str, Tree] = {}  # the tree each gate's verdict is for
    todo = list(planned)
    for round_no in range(1, REWRITE_ROUNDS + 1):
        rewrote: dict[str, tuple[str, ...]] = {}
        for item in todo:
            name = item.spec.name
            if item.skip_reason:
                verdict = run_one(item, jails.for_gate(name), config)
            elif round_no == 1 and cache and tree and cache.passed(tree, name, item.argv):
                log.info("gate %s: cached pass for tree %s", name, tree)
                verdict = Verdict(name=name, ok=True, cached=True)
                ran_on[name] = start
            else:
                verdict = run_one(item, jails.for_gate(name), config)
                after = take()
                ran_on[name], changed = current, differences(current, after)
                current = after
                if changed and item.spec.rewrites:
                    rewrote[name] = changed
                elif changed:
                    log.info("gate %s changed files while running: %s", name, ", ".join(changed))
                    verdict = dataclasses.replace(verdict, ok=False, changed=changed)
            verdicts[name] = verdict
            if verdict.changed or (not verdict.ok and not keep_going):
                return [
                    dataclasses.replace(v, stale=ran_on.get(v.name, current) != current)
                    for v in (verdicts[p.spec.name] for p in planned if p.spec.name in verdicts)
                ]
        todo = [p for p in planned if not p.skip_reason and ran_on[p.spec.name] != current]
        if not todo:
            break
        if round_no == REWRITE_ROUNDS:  # only a rewriter changing files leaves gates behind
            for name, changed in rewrote.items():
                verdicts[name] = dataclasses.replace(
                    verdicts[name], ok=False, changed=changed, unsettled=True
                )
            break
        log.info(
            "the rewriters changed %s: running %s again on the tree they left",
            ", ".join(sorted({f for files in rewrote.values() for f in files})[:5]),
            ", ".join(p.spec.name for p in todo),
        )
    return [verdicts[p.spec.name] for p in planned]


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
        first = tampered[0]
        shown = ", ".join(first.changed[:3])
        if first.unsettled:
            return RunnerError(
                stage,
                first.name.upper(),
                f"gate {first.name} still changed {shown} after {REWRITE_ROUNDS} rounds of "
                "gates: the formatters and fixers disagree; settle those files by hand and rerun",
            )
        return RunnerError(
            stage,
            first.name.upper(),
            f"gate {first.name} changed {shown} while it ran; only formatters "
            "(rewrites = true) may change files",
        )
    first = next(v for v in verdicts if not v.ok)
    timed_out = first.result is not None and first.result.timed_out
    return RunnerError(
        stage,
        first.name.upper(),
        f"gate {first.name} failed"
        + (" (timed out)" if timed_out else "")
        + (f": {first.hint}" if first.hint else "; its full output is in the log"),
    )
