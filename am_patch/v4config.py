"""The v4 runner's config schema, read as am-patch keys.

Repositories that used the older v4 runner keep its config at scripts/am_patch/am_patch.toml:
tables such as [git], [scope], [gates] and [security] over keys of v4's own names. v4 treats the
tables as cosmetic (every key is read by its bare name, wherever it is), so this module flattens
the file the same way and translates each key it reads into the am-patch key with the same
effect. Keys without an am-patch meaning are accepted and named in one warning, because v4 itself
accepted any key. A key that would weaken the jail or the scope policy is never honoured: a file
a patch can edit must not be able to switch off what judges patches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from am_patch.errors import Category, Refusal

# v4's tables in the order its flattening reads them: top level first, then the first of these
# that holds a key (so ruff_targets under [security] still reach the gates).
SECTIONS = (
    "git",
    "paths",
    "workspace",
    "patch",
    "scope",
    "gates",
    "promotion",
    "security",
    "logging",
    "audit",
)

# v4 gate names and the am-patch gates doing their work (v4's `ruff` formats, then checks).
_GATE_NAMES: Mapping[str, tuple[str, ...]] = {
    "compile": ("compile",),
    "ruff": ("ruff_format", "ruff"),
    "pytest": ("pytest",),
    "mypy": ("mypy",),
}

# v4's gates for other languages, each run on the changed files with its extensions: (v4 gate,
# command key, extensions key, whether its command takes one file at a time). They become
# am-patch file-pattern gates of the same name.
_FILE_GATES = (
    ("js", "gate_js_command", "gate_js_extensions", True),  # node --check reads one file
    ("biome", "gate_biome_command", "gate_biome_extensions", False),
    ("typescript", "gate_typescript_command", "gate_typescript_extensions", False),
)
# bash -c this N CMD... FILE...: CMD (its N words) on each FILE; fails if one fails
_EACH_FILE = 'n=$1; shift; for f in "${@:n+1}"; do "${@:1:n}" "$f" || r=1; done; exit ${r:-0}'

# Non-table values of [gates] that only v4 writes there. am-patch's own [gates] holds tables
# only, so one of these tells a v4 file; any other non-table value stays an am-patch error.
_V4_GATES_KEYS = frozenset(
    {
        "order",
        "gates_order",
        "compile_check",
        "compile_targets",
        "compile_exclude",
        "ruff_autofix",
        "ruff_format",
        "ruff_targets",
        "pytest_use_venv",
        "pytest_targets",
        "mypy_targets",
        "typescript_targets",
        "run_all_tests",
        "dont_touch_paths",
    }
)
_V4_GATES_PREFIXES = ("gates_", "gate_", "biome_", "apply_failure_", "ruff_autofix_")


@dataclass(frozen=True, slots=True)
class Setting:
    """One am-patch key (`gates.<name>.<attr>` for a gate) and the v4 keys it comes from."""

    key: str
    value: object
    origins: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Translation:
    """What a v4 file means for am-patch: the settings, and warnings for the user."""

    settings: tuple[Setting, ...]
    notes: tuple[str, ...]


def is_v4(table: Mapping[str, Any]) -> bool:
    """A file in the v4 schema: it has one of v4's tables, or a [gates] table with v4's values
    (am-patch's own [gates.<name>] entries are tables)."""
    if any(isinstance(table.get(name), dict) for name in SECTIONS if name != "gates"):
        return True
    gates = table.get("gates")
    return isinstance(gates, dict) and any(
        not isinstance(value, dict)
        and (key in _V4_GATES_KEYS or key.startswith(_V4_GATES_PREFIXES))
        for key, value in gates.items()
    )


@dataclass(slots=True)
class _Flat:
    """The file as v4 reads it: each key by its bare name with where it was found, and which keys
    the translation has read (the others have no meaning in am-patch)."""

    entries: dict[str, tuple[Any, str]]
    shadowed: list[tuple[str, str]] = field(default_factory=list)  # (not read, read instead)
    read: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, table: Mapping[str, Any]) -> _Flat:
        entries: dict[str, tuple[Any, str]] = {
            key: (value, key)
            for key, value in table.items()
            if not (key in SECTIONS and isinstance(value, dict))
        }
        flat = cls(entries)
        for section in SECTIONS:
            inner = table.get(section)
            if not isinstance(inner, dict):
                continue
            for key, value in inner.items():
                if key in entries:
                    flat.shadowed.append((f"{section}.{key}", entries[key][1]))
                else:
                    entries[key] = (value, f"{section}.{key}")
        return flat

    def origin(self, name: str) -> str:
        return self.entries[name][1]

    def pick(self, *names: str) -> str | None:
        """The first of names present (v4's aliases: the later ones count only without it)."""
        present = [name for name in names if name in self.entries]
        for other in present[1:]:
            self.read.add(other)
            self.shadowed.append((self.origin(other), self.origin(present[0])))
        return present[0] if present else None

    def value(self, name: str | None) -> Any:
        """The raw value of name (None when absent), which counts as read."""
        if name is None or name not in self.entries:
            return None
        self.read.add(name)
        return self.entries[name][0]

    def error(self, name: str, why: str, value: Any) -> Refusal:
        return Refusal(
            Category.CONFIG, f"config key '{self.origin(name)}' (v4 schema): {why}, got {value!r}"
        )

    def flag(self, name: str | None) -> bool | None:
        value = self.value(name)
        if value is None or isinstance(value, bool):
            return value
        assert name is not None
        raise self.error(name, "expected true or false", value)

    def text(self, name: str) -> str | None:
        value = self.value(name)
        if value is None or isinstance(value, str):
            return value
        raise self.error(name, "expected a string", value)

    def count(self, name: str) -> int | None:
        value = self.value(name)
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        raise self.error(name, "expected a non-negative integer", value)

    def strings(self, name: str | None) -> tuple[str, ...] | None:
        """A list of strings; like v4, a string is a list of one and an empty list is unset."""
        value = self.value(name)
        if isinstance(value, str):
            value = [value]
        if value is None or value == []:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        assert name is not None
        raise self.error(name, "expected a list of strings", value)

    def restating(self, name: str, same: bool) -> None:
        """A key whose value `same` is what am-patch always does: read silently. The other
        value stays unread, so the warning names it as having no meaning here."""
        if self.flag(name) not in (None, same):
            self.read.discard(name)

    def unread(self) -> list[str]:
        return [origin for name, (_, origin) in self.entries.items() if name not in self.read]


def translate(
    table: Mapping[str, Any],
    *,
    name: str,
    commands: Mapping[str, tuple[str, ...]],
    default_order: tuple[str, ...],
) -> Translation:
    """The am-patch settings of a v4 file and the warnings about it. `name` is the file as the
    warnings name it; `commands` are am-patch's default gate commands, which some v4 keys
    adjust; `default_order` is am-patch's gates_order, which v4's gate switches thin out."""
    flat = _Flat.of(table)
    settings: list[Setting] = []
    notes: list[str] = []

    def put(key: str, value: object, *names: str | None) -> None:
        origins = tuple(flat.origin(n) for n in names if n is not None and n in flat.entries)
        settings.append(Setting(key, value, origins))

    _workflow(flat, put)
    _gate_settings(flat, put, commands)
    names = {**_GATE_NAMES, "dont-touch": (), **_file_gates(flat, put)}  # dont-touch: see below
    dropped = _gates_order(flat, put, default_order, names)
    weakening = _never_weaken(flat)
    unread = flat.unread()
    if unread:
        notes.append(
            f"v4 config {name}: keys with no meaning in am-patch, ignored: {', '.join(unread)}"
        )
    notes += [f"v4 config {name}: {line}" for line in weakening]
    if dropped:
        notes.append(
            f"v4 config {name}: v4 gates with no am-patch gate, left out of gates_order: "
            + ", ".join(dropped)
            + " (declare them as file-pattern gates: README, Gates for other languages)"
        )
    notes += [
        f"v4 config {name}: {loser} is not read: {winner} is read instead (as v4 does)"
        for loser, winner in flat.shadowed
    ]
    return Translation(settings=tuple(settings), notes=tuple(notes))


class _Put(Protocol):
    """translate's `put`: an am-patch key, its value, and the v4 keys it comes from."""

    def __call__(self, key: str, value: object, *names: str | None) -> None: ...


def _either(flat: _Flat, same: str, inverse: str) -> tuple[bool | None, tuple[str, ...]]:
    """An am-patch switch v4 spells twice, as itself and as its inverse (`skip_up_to_date` and
    `require_up_to_date`): on when either says so, as v4 checks both."""
    direct, inverted = flat.flag(same), flat.flag(inverse)
    if direct is None and inverted is None:
        return None, ()
    on = bool(direct) or inverted is False
    return on, tuple(n for n, v in ((same, direct), (inverse, inverted)) if v is not None)


def _workflow(flat: _Flat, put: _Put) -> None:
    """The keys of branch, push, workspace, promotion, patch and audit behaviour."""
    for key, inverse in (
        ("skip_up_to_date", "require_up_to_date"),
        ("allow_non_main", "enforce_main_branch"),
        ("allow_no_op", "no_op_fail"),
    ):
        on, names = _either(flat, key, inverse)
        if on is not None:
            put(key, on, *names)
    allow_push_fail = flat.flag("allow_push_fail")
    if allow_push_fail is not None:
        put("require_push_success", not allow_push_fail, "allow_push_fail")
    commit_and_push = flat.flag("commit_and_push")
    if commit_and_push is not None:
        put("disable_promotion", not commit_and_push, "commit_and_push")
    branch = flat.text("default_branch")
    if branch is not None:
        put("main_branch", branch, "default_branch")
    delete = flat.pick("delete_workspace_on_success", "delete_on_success")
    value = flat.flag(delete)
    if value is not None:
        put("delete_workspace_on_success", value, delete)
    for key in (
        "update_workspace",
        "soft_reset_workspace",
        "test_mode",
        "ascii_only_patch",
        "post_success_audit",
    ):
        value = flat.flag(key)
        if value is not None:
            put(key, value, key)
    resolution = flat.text("live_changed_resolution")
    if resolution is not None:
        put("live_changed_resolution", resolution, "live_changed_resolution")
    # true is am-patch's behaviour; false meant "let live_changed_resolution decide" in v4
    if resolution is None:
        flat.restating("fail_if_live_files_changed", True)
    else:
        flat.flag("fail_if_live_files_changed")
    rollback = flat.value("rollback_workspace_on_fail")
    if rollback is not None:
        put("rollback_workspace_on_fail", _rollback(flat, rollback), "rollback_workspace_on_fail")
    keep = flat.count("failure_zip_keep_per_issue")
    if keep is not None:
        put("failure_zips_keep", keep, "failure_zip_keep_per_issue")
    for key, v4_key in (
        ("blessed_outputs", "blessed_gate_outputs"),
        ("forbidden_paths", "dont_touch_paths"),
    ):
        paths = flat.strings(v4_key)
        if paths is None:
            continue
        if key == "forbidden_paths":  # v4 names files and directories; patterns cover both
            paths = tuple(p for raw in paths for p in (raw.strip("/"), raw.strip("/") + "/*"))
        put(key, paths, v4_key)


def _rollback(flat: _Flat, value: Any) -> str:
    """v4's rollback_workspace_on_fail: a bool or a mode. am-patch applies a patch all or nothing,
    so v4's "none-applied" (roll back when nothing was applied) is its "always"."""
    modes: dict[bool | str, str] = {
        True: "always",
        "none-applied": "always",
        "always": "always",
        False: "never",
        "never": "never",
    }
    if isinstance(value, bool | str) and value in modes:
        return modes[value]
    raise flat.error(
        "rollback_workspace_on_fail",
        "expected true, false, 'none-applied', 'always' or 'never'",
        value,
    )


def _gate_settings(flat: _Flat, put: _Put, commands: Mapping[str, tuple[str, ...]]) -> None:
    """v4's per-gate keys as the commands and targets of am-patch's gates."""
    allow_fail = flat.flag("gates_allow_fail")
    if allow_fail is not None:
        put("allow_gates_fail", allow_fail, "gates_allow_fail")
    ruff_targets = flat.strings("ruff_targets")
    if ruff_targets is not None:
        put("gates.ruff_format.full_targets", ruff_targets, "ruff_targets")
        put("gates.ruff.full_targets", ruff_targets, "ruff_targets")
    compile_targets = flat.strings("compile_targets")
    if compile_targets is not None:
        put("gates.compile.full_targets", compile_targets, "compile_targets")
    if flat.flag("ruff_autofix") is False and "ruff" in commands:
        put(
            "gates.ruff.command", tuple(a for a in commands["ruff"] if a != "--fix"), "ruff_autofix"
        )
    pytest_targets = flat.strings("pytest_targets")
    if pytest_targets is not None and "pytest" in commands:
        put("gates.pytest.command", (*commands["pytest"], *pytest_targets), "pytest_targets")
    mypy_targets = flat.strings("mypy_targets")
    if mypy_targets is not None and "mypy" in commands:
        mypy = tuple(
            a
            for arg in commands["mypy"]
            for a in (mypy_targets if arg == "{mypy_targets}" else (arg,))
        )
        put("gates.mypy.command", mypy, "mypy_targets")
    excluded = flat.strings("compile_exclude")
    compile_argv = commands.get("compile", ())
    if excluded is not None and "-x" in compile_argv[:-1]:
        at = compile_argv.index("-x") + 1
        pattern = compile_argv[at]
        extra = [e.strip("/") for e in excluded if not re.search(pattern, e.strip("/"))]
        if extra:  # am-patch already leaves out patches/, .venv/ and the like
            wider = pattern + r"|(^|/)(" + "|".join(re.escape(e) for e in extra) + r")(/|$)"
            argv = (*compile_argv[:at], wider, *compile_argv[at + 1 :])
            put("gates.compile.command", argv, "compile_exclude")
    flat.restating("run_all_tests", True)  # am-patch's pytest gate runs the whole suite
    flat.restating("pytest_use_venv", True)  # am-patch's gates use <live>/.venv/bin/python


def _file_gates(flat: _Flat, put: _Put) -> dict[str, tuple[str, ...]]:
    """v4's js, biome and typescript gates as file-pattern gates; the am-patch gates each v4
    gate became. biome's autofix runs first as a rewriting gate, `biome_fix`."""
    made: dict[str, tuple[str, ...]] = {}
    for name, command_key, extensions_key, each_file in _FILE_GATES:
        command, extensions = flat.strings(command_key), flat.strings(extensions_key)
        if command is None or extensions is None:
            flat.read.discard(command_key)
            flat.read.discard(extensions_key)
            continue
        prefixes = flat.strings("typescript_targets") if name == "typescript" else None
        files = tuple(
            f"/{prefix.strip('/')}/**/*{ext}" if prefix.strip("/") else f"*{ext}"
            for prefix in prefixes or ("",)
            for ext in extensions
        )
        origins = (command_key, extensions_key, *(["typescript_targets"] if prefixes else []))
        argv = (
            ("bash", "-c", _EACH_FILE, "bash", str(len(command)), *command, "{targets}")
            if each_file
            else (*command, "{targets}")
        )
        gates = [name]
        fix = flat.strings("gate_biome_fix_command") if name == "biome" else None
        if fix is not None and flat.flag("biome_autofix"):
            gates.insert(0, "biome_fix")
            put("gates.biome_fix.command", (*fix, "{targets}"), "gate_biome_fix_command")
            put("gates.biome_fix.rewrites", True, "biome_autofix")
        for gate in gates:
            put(f"gates.{gate}.runs_on", "files", *origins)
            put(f"gates.{gate}.files", files, *origins)
        put(f"gates.{name}.command", argv, command_key)
        made[name] = tuple(gates)
    return made


def _gates_order(
    flat: _Flat, put: _Put, default_order: tuple[str, ...], names: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """gates_order from v4's order (its names mapped to am-patch's gates by `names`) and its
    switches that leave gates out. The v4 names without an am-patch gate, for the warning.
    v4's dont-touch gate is no gate here: its paths are forbidden_paths, judged always."""
    named = flat.pick("gates_order", "order")
    listed = flat.strings(named)
    dropped: list[str] = []
    order: list[str] = []
    if listed is None:
        order = list(default_order)
    else:
        # v4 had no pre_commit gate; it keeps its place (it runs only with a pre-commit config)
        order = [g for g in default_order[:1] if g == "pre_commit"]
        for raw in listed:
            gates = names.get(raw.strip().lower().replace("_", "-"))
            if gates is None:
                dropped.append(raw)
            order += [g for g in gates or () if g not in order]
    skips = (
        ("compile_check", False, ("compile",)),
        ("ruff_format", False, ("ruff_format",)),
        ("gates_skip_ruff", True, ("ruff_format", "ruff")),
        ("gates_skip_pytest", True, ("pytest",)),
        ("gates_skip_mypy", True, ("mypy",)),
        ("gates_skip_js", True, ("js",)),
        ("gates_skip_biome", True, ("biome_fix", "biome")),
        ("gates_skip_typescript", True, ("typescript",)),
    )
    applied: list[str] = []
    for key, when, gates in skips:
        if flat.flag(key) is when:
            applied.append(key)
            order = [g for g in order if g not in gates]
    if listed is not None or applied:
        put("gates_order", tuple(order), named if listed is not None else None, *applied)
    return dropped


def _never_weaken(flat: _Flat) -> list[str]:
    """Read the v4 keys that would loosen the jail or the scope policy, and say why each such
    value is ignored. Values that restate am-patch's behaviour are read silently."""
    rules = (
        ("patch_jail", False, "patches still run in the bubblewrap jail (sandbox stays bwrap)"),
        ("patch_jail_unshare_net", False, "the jail keeps its network cut off"),
        ("allow_outside_files", True, "a patch may change only the files it declares"),
        (
            flat.pick("enforce_allowed_files", "enforce_files_only"),
            False,
            "a patch may change only the files it declares",
        ),
        ("declared_untouched_fail", False, "a declared file the patch leaves alone still fails"),
        ("allow_declared_untouched", True, "a declared file the patch leaves alone still fails"),
        *(
            (key, True, "a tool's edits outside the declared files are not legalised")
            for key in flat.entries
            if key.endswith("_legalize_outside")
        ),
    )
    lines = []
    for key, weak, why in rules:
        if key is None:
            continue
        if flat.flag(key) is weak:
            shown = "true" if weak else "false"
            lines.append(f"{flat.origin(key)} = {shown} is ignored: {why}")
    flat.restating("live_repo_guard", True)  # the jail hides the live repository anyway
    flat.restating("block_subprocess_network_best_effort", True)  # the jail has no network
    return lines
