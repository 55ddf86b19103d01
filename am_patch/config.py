"""Configuration: defaults, config file, --override and CLI flags, each value with its source."""

from __future__ import annotations

import dataclasses
import difflib
import shlex
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from am_patch import v4config
from am_patch.errors import Category, Refusal
from am_patch.limits import Bounds

DEFAULT = "default"
CLI = "cli"
OVERRIDE = "override"

RunsOn = Literal["python_files", "project", "always", "files"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GateSpec:
    """One gate; `command` may hold {python}, {targets} (many args) and {mypy_targets}."""

    name: str
    command: tuple[str, ...]
    runs_on: RunsOn = "project"
    full_targets: tuple[str, ...] = (".",)
    timeout_s: int = 0  # 0: the config's gate_timeout_s
    rewrites: bool = False  # a formatter or fixer: its edits become part of the result
    workers: str = ""  # pytest-xdist: "auto" (a process a CPU, when installed), a number, "off"
    files: tuple[str, ...] = ()  # runs_on = "files": gitignore-style patterns of its files


_EXCLUDE = r"(^|/)(\.venv|venv|\.git|patches|build|\.tox|node_modules)(/|$)"
DEFAULT_GATES: tuple[GateSpec, ...] = (
    # the project's .pre-commit-config.yaml hooks on the files in scope (precommit.py)
    GateSpec(
        name="pre_commit",
        command=("{pre_commit}", "{targets}"),
        runs_on="files",
        files=("*",),
        full_targets=(),
        rewrites=True,
    ),
    GateSpec(
        name="compile",
        command=("{python}", "-m", "compileall", "-q", "-x", _EXCLUDE, "{targets}"),
        runs_on="python_files",
    ),
    GateSpec(
        name="ruff_format",
        command=("{python}", "-m", "ruff", "format", "{targets}"),
        runs_on="python_files",
        rewrites=True,
    ),
    GateSpec(
        name="ruff",
        command=("{python}", "-m", "ruff", "check", "--fix", "{targets}"),
        runs_on="python_files",
        rewrites=True,
    ),
    GateSpec(
        name="pytest",
        command=("{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir=."),
        full_targets=(),
        workers="off",  # measured: xdist's start-up and per-worker collection cost more than
    ),  # they save on the demo project (7.0 s vs 11.3 s for 4 issues) and gain nothing on click
    GateSpec(name="mypy", command=("{python}", "-m", "mypy", "{mypy_targets}"), full_targets=()),
)
DEFAULT_GATES_ORDER = tuple(g.name for g in DEFAULT_GATES)


# Keys that only shape how a run goes (retries, clean-up, what is kept): a change to them needs
# no human flag. Every other key is policy: it decides what runs, where, with which bounds, and
# what is accepted, so a patch or commit that changes it is refused without one (policy.py).
WORKFLOW = types.MappingProxyType({"workflow": True})


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Every behaviour of a run. Field names are the config keys."""

    ascii_only_patch: bool = True
    patch_timeout_s: int = 300
    rollback_workspace_on_fail: Literal["always", "never"] = field(
        default="always", metadata=WORKFLOW
    )
    live_changed_resolution: Literal["fail", "overwrite_live", "overwrite_workspace"] = "fail"
    post_success_audit: bool = field(default=True, metadata=WORKFLOW)
    audit_command: str = "python3 -u audit/audit_report.py"
    gates_order: tuple[str, ...] = DEFAULT_GATES_ORDER
    gate_timeout_s: int = 900
    gate_python: str = ""
    blessed_outputs: tuple[str, ...] = ("audit/results/pytest_junit.xml",)
    allow_no_op: bool = False
    allow_undeclared_paths: bool = False
    allow_untouched_files: bool = False
    run_all_gates: bool = False
    allow_gates_fail: bool = False
    skip_up_to_date: bool = False
    update_workspace: bool = field(default=False, metadata=WORKFLOW)
    delete_workspace_on_success: bool = field(default=True, metadata=WORKFLOW)
    soft_reset_workspace: bool = field(default=False, metadata=WORKFLOW)
    require_push_success: bool = field(default=False, metadata=WORKFLOW)
    disable_promotion: bool = field(default=False, metadata=WORKFLOW)
    allow_non_main: bool = False
    test_mode: bool = field(default=False, metadata=WORKFLOW)
    sandbox: Literal["bwrap", "off"] = "bwrap"
    sandbox_gates: bool = True
    sandbox_audit: bool = True
    bwrap: str = "bwrap"
    remote: str = "origin"
    main_branch: str = "main"
    max_rebase_attempts: int = field(default=3, metadata=WORKFLOW)
    failure_zips_keep: int = field(default=5, metadata=WORKFLOW)
    gate_cache: bool = field(default=True, metadata=WORKFLOW)
    workspace_pool: int = field(default=2, metadata=WORKFLOW)  # idle worktrees kept for reuse
    gate_jobs: int = field(default=0, metadata=WORKFLOW)  # checking gates at once; 0: one a CPU
    jobs: int = field(default=0, metadata=WORKFLOW)  # --batch: issues at once; 0: half the CPUs
    forbidden_paths: tuple[str, ...] = ()
    max_file_bytes: int = 50 * 1024 * 1024
    hook_gates_on_push: bool = True
    limit_processes: int = 512
    limit_memory_mb: int = 4096
    limit_disk_mb: int = 2048
    limit_output_mb: int = 16
    pre_commit_gate: bool = True  # the pre_commit gate runs when the tree has a pre-commit config
    gates: tuple[GateSpec, ...] = DEFAULT_GATES
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    # warnings about the config file for the user (a v4 file's ignored keys), not a key
    notes: tuple[str, ...] = field(default=(), compare=False)

    def gate(self, name: str) -> GateSpec:
        for spec in self.gates:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def bounds(self) -> Bounds:
        """What a jailed command may take (each limit_* key; 0 is unbounded)."""
        return Bounds.of(
            processes=self.limit_processes,
            memory_mb=self.limit_memory_mb,
            disk_mb=self.limit_disk_mb,
            output_mb=self.limit_output_mb,
        )

    def audit_argv(self) -> list[str]:
        return shlex.split(self.audit_command)


_SCALAR_KEYS = tuple(
    f.name for f in dataclasses.fields(Config) if f.name not in ("gates", "sources", "notes")
)
_GATE_KEYS = tuple(f.name for f in dataclasses.fields(GateSpec) if f.name != "name")
_HINTS = typing.get_type_hints(Config)
_GATE_HINTS = typing.get_type_hints(GateSpec)

CONFIG_CANDIDATES = ("am_patch.toml", "scripts/am_patch/am_patch.toml")


def _config_error(key: str, why: str) -> Refusal:
    return Refusal(Category.CONFIG, f"config key '{key}': {why}")


def _unknown_key(key: str) -> str:
    close = difflib.get_close_matches(key, _SCALAR_KEYS, n=1)
    guess = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key{guess} (am-patch -H lists every key)"


def policy_keys() -> tuple[str, ...]:
    """The scalar keys a change of which is a policy change (every gates.* key is one too)."""
    return tuple(
        f.name for f in dataclasses.fields(Config) if f.name in _SCALAR_KEYS and not f.metadata
    )


def key_names() -> tuple[str, ...]:
    """Every config key, gate keys as gates.<name>.<field>."""
    return (*_SCALAR_KEYS, *(f"gates.<name>.{k}" for k in _GATE_KEYS))


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return "a list of strings"
    return {bool: "true or false", int: "an integer", str: "a string"}.get(hint, str(hint))


def _check(key: str, hint: Any, value: Any) -> Any:
    """Return value converted to the field's type, or raise a CONFIG error naming the key."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value in typing.get_args(hint):
            return value
    elif origin is tuple:
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    elif isinstance(value, hint):
        return value
    raise _config_error(key, f"expected {_type_name(hint)}, got {value!r}")


def _parse_text(key: str, hint: Any, text: str) -> Any:
    """Typed parsing of a --override value: the key's type decides how the text is read."""
    if hint is bool:
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise _config_error(key, f"expected true or false, got {text!r}")
    if hint is int:
        try:
            return int(text)
        except ValueError:
            raise _config_error(key, f"expected an integer, got {text!r}") from None
    if typing.get_origin(hint) is tuple:
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                return tomllib.loads(f"v = {stripped}")["v"]
            except tomllib.TOMLDecodeError:
                raise _config_error(key, f"not a TOML list: {text!r}") from None
        if key.rpartition(".")[2] == "command":  # an argv: a comma may be part of an argument
            try:
                return shlex.split(stripped)
            except ValueError as exc:
                raise _config_error(key, f"not a command line ({exc}): {text!r}") from None
        return [part.strip() for part in stripped.split(",") if part.strip()]
    if typing.get_origin(hint) is Literal:
        return text.strip()
    return text


@dataclass(slots=True)
class _Builder:
    values: dict[str, Any]
    sources: dict[str, str]
    gates: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def set(self, key: str, value: Any, source: str) -> None:
        if key.startswith("gates."):
            self._set_gate(key, value, source)
            return
        if key not in _SCALAR_KEYS:
            raise _config_error(key, _unknown_key(key))
        self.values[key] = _check(key, _HINTS[key], value)
        self.sources[key] = source

    def set_text(self, key: str, text: str, source: str) -> None:
        hint = self._hint(key)
        self.set(key, _parse_text(key, hint, text), source)

    def _hint(self, key: str) -> Any:
        if key.startswith("gates."):
            parts = key.split(".")
            if len(parts) != 3 or parts[2] not in _GATE_KEYS:
                raise _config_error(key, f"expected gates.<name>.<{'|'.join(_GATE_KEYS)}>")
            return _GATE_HINTS[parts[2]]
        if key not in _SCALAR_KEYS:
            raise _config_error(key, _unknown_key(key))
        return _HINTS[key]

    def _set_gate(self, key: str, value: Any, source: str) -> None:
        hint = self._hint(key)
        _, name, attr = key.split(".")
        checked = _check(key, hint, value)
        if attr == "command" and not checked:
            raise _config_error(key, "a gate command must not be empty")
        self.gates.setdefault(name, {})[attr] = checked
        self.sources[key] = source

    def build(self) -> Config:
        known = {spec.name: spec for spec in DEFAULT_GATES}
        for name, attrs in self.gates.items():
            if name in known:
                known[name] = dataclasses.replace(known[name], **attrs)
            elif "command" not in attrs:
                raise _config_error(f"gates.{name}.command", "a new gate needs a command")
            else:
                known[name] = GateSpec(name=name, **attrs)
        for name, spec in known.items():
            if spec.runs_on == "files" and not spec.files:
                raise _config_error(
                    f"gates.{name}.files", 'runs_on = "files" needs patterns, e.g. ["*.sh"]'
                )
            if spec.files:
                _check_patterns(f"gates.{name}.files", spec.files)
            if spec.workers not in ("", "auto", "off") and not spec.workers.isdigit():
                raise _config_error(
                    f"gates.{name}.workers",
                    f"expected 'auto', 'off' or a number, got {spec.workers!r}",
                )
        order = self.values.get("gates_order", DEFAULT_GATES_ORDER)
        for name in order:
            if name not in known:
                raise _config_error("gates_order", f"unknown gate {name!r}")
        if len(set(order)) != len(order):
            raise _config_error("gates_order", f"a gate is listed twice: {list(order)}")
        return Config(
            **self.values,
            gates=tuple(known.values()),
            sources=types.MappingProxyType(self.sources),
            notes=tuple(self.notes),
        )


Reader = Callable[[str], bytes | None]  # a repo-relative path's bytes; None when it is absent


def dir_reader(root: Path) -> Reader:
    """Files of the working tree under root."""

    def read(rel: str) -> bytes | None:
        path = root / rel
        return path.read_bytes() if path.is_file() else None

    return read


def in_tree_config(
    read: Reader, explicit: str | None = None, where: Path | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The first config found through read, with the table that holds am-patch's keys:
    `explicit` (a repo-relative path), am_patch.toml, scripts/am_patch/am_patch.toml, or the
    [tool.am_patch] table of pyproject.toml. Errors name the file under `where` when given."""

    def name(rel: str) -> str:
        return str(where / rel) if where is not None else rel

    for rel in (explicit,) if explicit else CONFIG_CANDIDATES:
        data = read(rel)
        if data is not None:
            return rel, _parse_toml(name(rel), data)
        if explicit:
            raise _config_error("--config", f"no such file: {name(explicit)}")
    data = read("pyproject.toml")
    if data is None:
        return None
    tool = _parse_toml(name("pyproject.toml"), data).get("tool", {})
    table = tool.get("am_patch") if isinstance(tool, dict) else None
    if isinstance(table, dict):
        return "pyproject.toml", table
    if table is not None:
        raise _config_error("tool.am_patch", f"{name('pyproject.toml')}: expected a table")
    return None


def find_config_file(root: Path, explicit: Path | None) -> tuple[Path, dict[str, Any]] | None:
    """The first config found for the live repo at root (an --config path outside it too)."""
    if explicit is not None and not explicit.absolute().is_relative_to(root):
        if not explicit.is_file():
            raise _config_error("--config", f"no such file: {explicit}")
        return explicit, _parse_toml(str(explicit), explicit.read_bytes())
    rel = explicit.absolute().relative_to(root).as_posix() if explicit is not None else None
    found = in_tree_config(dir_reader(root), rel, root)
    return (root / found[0], found[1]) if found else None


def _parse_toml(name: str, data: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise Refusal(Category.CONFIG, f"{name}: not valid TOML: {exc}") from exc


def _check_patterns(key: str, patterns: tuple[str, ...]) -> None:
    """Each pattern is one gitignore would take (a bad one fails here, not mid-run)."""
    import pathspec  # only a config with file-pattern gates needs it

    for pattern in patterns:
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern])
        except ValueError:
            raise _config_error(key, f"not a gitignore-style pattern: {pattern!r}") from None


def _apply_table(
    builder: _Builder, table: Mapping[str, Any], source: str, name: str | None = None
) -> None:
    """The keys of one config file; `name` is how warnings name it (default: `source`)."""
    if v4config.is_v4(table):
        _apply_v4(builder, table, source, name or source)
        return
    for key, value in table.items():
        if key == "gates":
            if not isinstance(value, dict):
                raise _config_error("gates", "expected a table of gates")
            for name, attrs in value.items():
                if not isinstance(attrs, dict):
                    raise _config_error(f"gates.{name}", "expected a table")
                for attr, attr_value in attrs.items():
                    builder.set(f"gates.{name}.{attr}", attr_value, source)
        else:
            builder.set(key, value, source)


def _apply_v4(builder: _Builder, table: Mapping[str, Any], source: str, name: str) -> None:
    """A file in the v4 runner's schema, translated key by key; each value's source names the
    v4 key it comes from, and the translation's warnings go with the config."""
    found = v4config.translate(
        table,
        name=name,
        commands={spec.name: spec.command for spec in DEFAULT_GATES},
        default_order=DEFAULT_GATES_ORDER,
    )
    for setting in found.settings:
        origins = ", ".join(setting.origins)
        try:
            builder.set(setting.key, setting.value, f"{source} (v4: {origins})")
        except Refusal as exc:
            raise Refusal(exc.category, f"{exc.message} (from v4 key {origins})") from exc
    builder.notes.extend(found.notes)


def load(
    root: Path,
    *,
    explicit: Path | None = None,
    overrides: tuple[str, ...] = (),
    cli: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults < config file < --override < CLI flags."""
    builder = _Builder(values={}, sources={}, gates={})
    found = find_config_file(root, explicit)
    if found is not None:
        path = found[0]
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        _apply_table(builder, found[1], str(path), str(shown))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise _config_error(item, "--override takes KEY=VALUE")
        builder.set_text(key.strip(), text, OVERRIDE)
    for key, value in (cli or {}).items():
        builder.set(key, value, CLI)
    return builder.build()


def load_in_tree(read: Reader, explicit: str | None = None) -> Config:
    """The config a tree carries (defaults < its config file): what a change to it changes."""
    builder = _Builder(values={}, sources={}, gates={})
    found = in_tree_config(read, explicit)
    if found is not None:
        _apply_table(builder, found[1], found[0])
    return builder.build()


def describe(config: Config) -> list[str]:
    """Every effective key with its value and source, one per line, for -c and the log."""
    lines = []
    for key in _SCALAR_KEYS:
        value = getattr(config, key)
        shown = list(value) if isinstance(value, tuple) else value
        lines.append(f"{key} = {_toml(shown)}  # {config.sources.get(key, DEFAULT)}")
    for spec in config.gates:
        for attr in _GATE_KEYS:
            value = getattr(spec, attr)
            shown = list(value) if isinstance(value, tuple) else value
            source = config.sources.get(f"gates.{spec.name}.{attr}", DEFAULT)
            lines.append(f"gates.{spec.name}.{attr} = {_toml(shown)}  # {source}")
    return lines


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)
