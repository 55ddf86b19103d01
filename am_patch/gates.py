"""Quality gates: which run for a change, on what targets, and their verdicts."""

from __future__ import annotations

import configparser
import logging
import os
import shutil
import sys
import threading
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from am_patch import events, limits, precommit, sandbox
from am_patch.config import Config, GateSpec
from am_patch.errors import Category, Refusal, RunnerError, Stage
from am_patch.proc import ProcResult
from am_patch.progress import Progress
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
    cancelled: bool = False  # stopped because another gate failed first

    @property
    def label(self) -> str:
        if self.skipped:
            return f"{self.name}: SKIPPED ({self.skipped})"
        if self.cached:
            return f"{self.name}: PASS (cached: this tree already passed)"
        if self.cancelled:
            return f"{self.name}: CANCELLED (another gate failed first)"
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
        elif arg == "{pre_commit}":
            argv.extend(precommit.COMMAND)
        else:
            argv.append(arg.replace("{python}", str(python)))
    return (*argv, *workers(spec, python, root))


XDIST_FLAGS = ("-n", "--numprocesses", "no:xdist", "-p no:xdist")


def workers(spec: GateSpec, python: Path, root: Path) -> tuple[str, ...]:
    """`-n N` for pytest-xdist when the gate's `workers` asks for it (auto: one a CPU), the
    interpreter has xdist, and the project's own pytest config does not decide it already."""
    if spec.workers in ("", "off", "0", "1"):
        return ()
    if _pytest_sets_workers(root):
        return ()
    prefixes = sandbox.interpreter_dirs(python, root)
    if not any(p.glob("lib/python3*/site-packages/xdist/__init__.py") for p in prefixes):
        log.info(
            "gate %s runs on one core: %s has no pytest-xdist (install it to use %d)",
            spec.name,
            python,
            cpus(),
        )
        return ()
    count = cpus() if spec.workers == "auto" else int(spec.workers)
    return ("-n", str(count)) if count > 1 else ()


def cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _pytest_sets_workers(root: Path) -> bool:
    """The project's pytest config (any file pytest reads) already sets -n or turns xdist off."""
    found: list[str] = []
    for name in ("pyproject.toml", "pytest.toml", ".pytest.toml"):
        path = root / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        tables = [data.get("tool", {}).get("pytest", {}), data.get("pytest", {})]
        tables.append(data.get("tool", {}).get("pytest", {}).get("ini_options", {}))
        for table in tables:
            opts = table.get("addopts", "") if isinstance(table, dict) else ""
            found.append(" ".join(opts) if isinstance(opts, list) else str(opts))
    for name, section in (
        ("pytest.ini", "pytest"),
        (".pytest.ini", "pytest"),
        ("tox.ini", "pytest"),
        ("setup.cfg", "tool:pytest"),
    ):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(root / name, encoding="utf-8")
        except configparser.Error:
            continue
        found.append(parser.get(section, "addopts", fallback=""))
    words = " ".join(found).split()
    return any(w in XDIST_FLAGS or w.startswith(("-n", "--numprocesses=")) for w in words)


def plan(
    config: Config,
    *,
    changed: Sequence[str],
    root: Path,
    python: Path,
    run_all: bool,
    exists: Callable[[str], bool] | None = None,
    all_files: Callable[[], Iterable[str]] | None = None,
) -> list[Planned]:
    """The gates of gates_order, each with its argv or the reason it is skipped.

    `exists` says whether a changed path is still there (default: a file under root);
    `all_files` lists the tree's files, for a file-pattern gate under -r.
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
        elif name == precommit.GATE and (why := _no_pre_commit(config, root, exists)):
            skip = why
        elif spec.runs_on == "files":
            whole = run_all and all_files is not None
            targets = matching(spec.files, all_files() if all_files and whole else existing)
            if not targets:
                which = "file of the tree" if whole else "changed file"
                skip = f"no {which} matches {', '.join(spec.files)}"
        planned.append(
            Planned(spec=spec, argv=_expand(spec, python, targets, root), skip_reason=skip)
        )
    return planned


def _no_pre_commit(config: Config, root: Path, exists: Callable[[str], bool] | None) -> str:
    """Why the pre_commit gate does not run, or ''."""
    if not config.pre_commit_gate:
        return "turned off (pre_commit_gate = false)"
    if os.environ.get("PRE_COMMIT") == "1":  # pre-commit runs this hook: it runs the others
        return "pre-commit itself is running the project's hooks on this commit"
    there = exists(precommit.CONFIG) if exists else (root / precommit.CONFIG).is_file()
    return "" if there else f"no {precommit.CONFIG} in the tree"


def matching(patterns: Sequence[str], paths: Iterable[str]) -> list[str]:
    """The paths that gitignore-style patterns match (`*.sh`, `web/**/*.ts`, `!keep.sh`)."""
    import pathspec  # only file-pattern gates need it: the hooks' start-up skips it

    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    return sorted(p for p in paths if spec.match_file(p))


def run_one(
    planned: Planned,
    jail: Jail,
    config: Config,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Verdict:
    """Run one gate in its jail; `cancel` set stops it (another gate failed)."""
    name = planned.spec.name
    if planned.skip_reason:
        log.info("gate %s skipped: %s", name, planned.skip_reason)
        return Verdict(name=name, ok=True, skipped=planned.skip_reason)
    log.info("gate %s:", name)
    events.emit("gate", gate=name, status="start")
    timeout = planned.spec.timeout_s or config.gate_timeout_s
    if progress is not None:
        progress.started(name)
    try:
        result = jail.run(
            planned.argv,
            timeout_s=timeout or None,
            on_output=progress.output if progress is not None else None,
            stop=cancel,
        )
    finally:
        if progress is not None:
            progress.finished(name)
    if result.bound == "cancelled":
        log.info("gate %s cancelled: another gate failed", name)
        return Verdict(name=name, ok=False, result=result, cancelled=True)
    no_tests = name == "pytest" and result.returncode == PYTEST_NO_TESTS and not result.bound
    ok = result.ok or no_tests
    if result.timed_out:
        log.info("gate %s timed out after %ss", name, timeout)
    if result.bound:
        hint = f"stopped by {limits.describe(result.bound, jail.bounds)}"
    else:
        hint = "" if ok else missing_module(planned.argv, result)
        if not ok and name == precommit.GATE:
            hint = precommit.hint(result.output, Path(jail.env.get("PRE_COMMIT_HOME", "")))
    return Verdict(name=name, ok=ok, result=result, hint=hint)


def announce(verdict: Verdict) -> None:
    """The gate's verdict as a `gate` event: pass, fail, skipped or cached."""
    fields: dict[str, Any] = {"gate": verdict.name}
    if verdict.result is not None:
        fields["elapsed_s"] = round(verdict.result.duration_s, 3)
    if verdict.skipped or verdict.cancelled:
        fields |= {"status": "skipped", "reason": verdict.skipped or "another gate failed first"}
    elif verdict.cached:
        fields["status"] = "cached"
    elif verdict.ok:
        fields["status"] = "pass"
    else:
        tail = verdict.result.tail(20) if verdict.result is not None else ""
        fields |= {"status": "fail", "reason": verdict.label, "tail": tail}
    events.emit("gate", **fields)


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
    first = next(v for v in verdicts if not v.ok and not v.cancelled)
    timed_out = first.result is not None and first.result.timed_out
    return RunnerError(
        stage,
        first.name.upper(),
        f"gate {first.name} failed"
        + (" (timed out)" if timed_out else "")
        + (f": {first.hint}" if first.hint else "; its full output is in the log"),
    )
