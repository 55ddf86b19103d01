"""Configuration: defaults, config file, --override and CLI flags, each value with its source."""

from __future__ import annotations

import dataclasses
import difflib
import shlex
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from am_patch.errors import Category, RunnerError, Stage

DEFAULT = "default"
CLI = "cli"
OVERRIDE = "override"

RunsOn = Literal["python_files", "project", "always"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GateSpec:
    """One gate; `command` may hold {python}, {targets} (many args) and {mypy_targets}."""

    name: str
    command: tuple[str, ...]
    runs_on: RunsOn = "project"
    full_targets: tuple[str, ...] = (".",)
    timeout_s: int = 0  # 0: the config's gate_timeout_s
    rewrites: bool = False  # a formatter or fixer: its edits become part of the result


_EXCLUDE = r"(^|/)(\.venv|venv|\.git|patches|build|\.tox|node_modules)(/|$)"
DEFAULT_GATES: tuple[GateSpec, ...] = (
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
    ),
    GateSpec(name="mypy", command=("{python}", "-m", "mypy", "{mypy_targets}"), full_targets=()),
)
DEFAULT_GATES_ORDER = tuple(g.name for g in DEFAULT_GATES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Every behaviour of a run. Field names are the config keys."""

    ascii_only_patch: bool = True
    patch_timeout_s: int = 300
    rollback_workspace_on_fail: Literal["always", "never"] = "always"
    live_changed_resolution: Literal["fail", "overwrite_live", "overwrite_workspace"] = "fail"
    post_success_audit: bool = True
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
    update_workspace: bool = False
    delete_workspace_on_success: bool = True
    soft_reset_workspace: bool = False
    require_push_success: bool = False
    disable_promotion: bool = False
    allow_non_main: bool = False
    test_mode: bool = False
    sandbox: Literal["bwrap", "off"] = "bwrap"
    sandbox_gates: bool = True
    sandbox_audit: bool = True
    bwrap: str = "bwrap"
    remote: str = "origin"
    main_branch: str = "main"
    max_rebase_attempts: int = 3
    failure_zips_keep: int = 5
    gate_cache: bool = True
    forbidden_paths: tuple[str, ...] = ()
    max_file_bytes: int = 50 * 1024 * 1024
    hook_gates_on_push: bool = True
    gates: tuple[GateSpec, ...] = DEFAULT_GATES
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def gate(self, name: str) -> GateSpec:
        for spec in self.gates:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def audit_argv(self) -> list[str]:
        return shlex.split(self.audit_command)


_SCALAR_KEYS = tuple(
    f.name for f in dataclasses.fields(Config) if f.name not in ("gates", "sources")
)
_GATE_KEYS = tuple(f.name for f in dataclasses.fields(GateSpec) if f.name != "name")
_HINTS = typing.get_type_hints(Config)
_GATE_HINTS = typing.get_type_hints(GateSpec)

CONFIG_CANDIDATES = ("am_patch.toml", "scripts/am_patch/am_patch.toml")


def _config_error(key: str, why: str) -> RunnerError:
    return RunnerError(Stage.PREFLIGHT, Category.CONFIG, f"config key '{key}': {why}")


def _unknown_key(key: str) -> str:
    close = difflib.get_close_matches(key, _SCALAR_KEYS, n=1)
    guess = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key{guess} (am-patch -H lists every key)"


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
        order = self.values.get("gates_order", DEFAULT_GATES_ORDER)
        for name in order:
            if name not in known:
                raise _config_error("gates_order", f"unknown gate {name!r}")
        if len(set(order)) != len(order):
            raise _config_error("gates_order", f"a gate is listed twice: {list(order)}")
        return Config(
            **self.values, gates=tuple(known.values()), sources=types.MappingProxyType(self.sources)
        )


def find_config_file(root: Path, explicit: Path | None) -> tuple[Path, dict[str, Any]] | None:
    """The first config found, with the table that holds am-patch's keys."""
    if explicit is not None:
        if not explicit.is_file():
            raise _config_error("--config", f"no such file: {explicit}")
        return explicit, _read_toml(explicit)
    for rel in CONFIG_CANDIDATES:
        path = root / rel
        if path.is_file():
            return path, _read_toml(path)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool", {})
        table = tool.get("am_patch") if isinstance(tool, dict) else None
        if isinstance(table, dict):
            return pyproject, table
        if table is not None:
            raise _config_error("tool.am_patch", f"{pyproject}: expected a table")
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RunnerError(
            Stage.PREFLIGHT, Category.CONFIG, f"{path}: not valid TOML: {exc}"
        ) from exc


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
        path, table = found
        for key, value in table.items():
            if key == "gates":
                if not isinstance(value, dict):
                    raise _config_error("gates", "expected a table of gates")
                for name, attrs in value.items():
                    if not isinstance(attrs, dict):
                        raise _config_error(f"gates.{name}", "expected a table")
                    for attr, attr_value in attrs.items():
                        builder.set(f"gates.{name}.{attr}", attr_value, str(path))
            else:
                builder.set(key, value, str(path))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise _config_error(item, "--override takes KEY=VALUE")
        builder.set_text(key.strip(), text, OVERRIDE)
    for key, value in (cli or {}).items():
        builder.set(key, value, CLI)
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
