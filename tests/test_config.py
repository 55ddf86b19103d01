"""Configuration: defaults, discovery, precedence, typed --override and validation."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from am_patch import config
from am_patch.config import Config, load
from am_patch.errors import Refusal, RunnerError, Stage
from testing.project import NO_GATES, Project


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _config_error(
    root: Path,
    *,
    explicit: Path | None = None,
    overrides: tuple[str, ...] = (),
    cli: Mapping[str, Any] | None = None,
) -> RunnerError:
    with pytest.raises(Refusal) as info:
        load(root, explicit=explicit, overrides=overrides, cli=cli)
    failed = RunnerError.at(Stage.PREFLIGHT, info.value)  # config is read in preflight
    assert failed.code == "PREFLIGHT:CONFIG"
    return failed


def _config_failure_reason(project: Project, *args: str) -> str:
    """Run am-patch, expect PREFLIGHT:CONFIG with the live repo untouched; the REASON line."""
    before = project.repo_state(include_patches=False)
    out = project.run(*args)
    assert out.code == 1, out.stdout + out.stderr
    assert out.result_line == "RESULT: FAIL PREFLIGHT:CONFIG"
    assert "Traceback" not in out.stderr
    assert project.repo_state(include_patches=False) == before
    return out.line("REASON:")


def _shown(out_stdout: str, key: str) -> str:
    """The `-c` line of key, e.g. 'patch_timeout_s = 5  # default'."""
    [line] = [ln for ln in out_stdout.splitlines() if ln.startswith(f"{key} = ")]
    return line


SCALAR_KEYS = [
    f.name for f in dataclasses.fields(Config) if f.name not in ("gates", "sources", "notes")
]


# --- defaults ----------------------------------------------------------------------------


def test_defaults_without_any_config_file(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert cfg == Config()
    assert cfg.ascii_only_patch is True
    assert cfg.rollback_workspace_on_fail == "always"
    assert cfg.live_changed_resolution == "fail"
    assert cfg.post_success_audit is True
    assert cfg.audit_command == "python3 -u audit/audit_report.py"
    assert cfg.gates_order == ("pre_commit", "compile", "ruff_format", "ruff", "pytest", "mypy")
    assert [g.name for g in cfg.gates] == list(cfg.gates_order)
    assert dict(cfg.sources) == {}


def test_describe_shows_every_key_with_source_default(tmp_path: Path) -> None:
    lines = config.describe(load(tmp_path))
    shown = {line.split(" = ", 1)[0] for line in lines}
    assert set(SCALAR_KEYS) <= shown
    for name in ("compile", "ruff_format", "ruff", "pytest", "mypy"):
        assert f"gates.{name}.command" in shown
        assert f"gates.{name}.timeout_s" in shown
    assert all(line.endswith("  # default") for line in lines)


def test_spec_named_keys_exist() -> None:
    for key in (
        "ascii_only_patch",
        "patch_timeout_s",
        "rollback_workspace_on_fail",
        "live_changed_resolution",
        "post_success_audit",
        "audit_command",
        "gates_order",
    ):
        assert key in SCALAR_KEYS


def test_every_cli_switch_has_a_config_key() -> None:
    from am_patch.flags import ALLOW_POLICY_CHANGE, FLAGS

    # --wait, --events and --batch are about this invocation, not about how the repo is patched
    not_behaviours = (
        *(
            "-l",
            "-f",
            "--finalize-workspace",
            "--batch",
            "--drop-workspace",
            "--version",
            "--wait",
            "--events",
        ),
        ALLOW_POLICY_CHANGE,
    )
    switches = [
        flag
        for flag in FLAGS
        if flag.group not in ("Help", "Config") and flag.names[0] not in not_behaviours
    ]
    assert len(switches) >= 15
    for flag in switches:
        assert flag.key in SCALAR_KEYS, flag.names
    # the one switch that is never a config key: only a human on the command line says it
    assert [f.key for f in FLAGS if ALLOW_POLICY_CHANGE in f.names] == [None]


# --- discovery -------------------------------------------------------------------------------


def _all_candidates(root: Path) -> dict[str, Path]:
    return {
        "root": _write(root / "am_patch.toml", "patch_timeout_s = 1\n"),
        "scripts": _write(
            root / "scripts/am_patch/am_patch.toml", "patch_timeout_s = 2\nremote = 'up'\n"
        ),
        "pyproject": _write(
            root / "pyproject.toml", "[project]\nname='x'\n[tool.am_patch]\npatch_timeout_s = 3\n"
        ),
    }


def test_explicit_config_wins_over_every_discovered_file(tmp_path: Path) -> None:
    _all_candidates(tmp_path)
    explicit = _write(tmp_path / "elsewhere" / "mine.toml", "patch_timeout_s = 4\n")
    cfg = load(tmp_path, explicit=explicit)
    assert cfg.patch_timeout_s == 4
    assert cfg.sources["patch_timeout_s"] == str(explicit)


def test_root_am_patch_toml_comes_first(tmp_path: Path) -> None:
    paths = _all_candidates(tmp_path)
    cfg = load(tmp_path)
    assert cfg.patch_timeout_s == 1
    assert cfg.sources["patch_timeout_s"] == str(paths["root"])


def test_only_the_first_found_file_is_read(tmp_path: Path) -> None:
    _all_candidates(tmp_path)
    cfg = load(tmp_path)
    assert cfg.remote == "origin"
    assert "remote" not in cfg.sources


def test_scripts_am_patch_toml_comes_second(tmp_path: Path) -> None:
    paths = _all_candidates(tmp_path)
    paths["root"].unlink()
    cfg = load(tmp_path)
    assert (cfg.patch_timeout_s, cfg.remote) == (2, "up")
    assert cfg.sources["remote"] == str(paths["scripts"])


def test_pyproject_tool_table_comes_last(tmp_path: Path) -> None:
    paths = _all_candidates(tmp_path)
    paths["root"].unlink()
    paths["scripts"].unlink()
    cfg = load(tmp_path)
    assert cfg.patch_timeout_s == 3
    assert cfg.sources["patch_timeout_s"] == str(paths["pyproject"])


def test_pyproject_without_the_tool_table_means_defaults(tmp_path: Path) -> None:
    _write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n[tool.ruff]\nline-length = 99\n")
    cfg = load(tmp_path)
    assert cfg == Config()
    assert dict(cfg.sources) == {}


def test_pyproject_keys_outside_the_tool_table_are_not_config(tmp_path: Path) -> None:
    _write(
        tmp_path / "pyproject.toml",
        "[project]\nname = 'x'\n[tool.am_patch]\nallow_no_op = true\n",
    )
    cfg = load(tmp_path)
    assert cfg.allow_no_op is True
    assert set(cfg.sources) == {"allow_no_op"}


def test_pyproject_tool_am_patch_must_be_a_table(tmp_path: Path) -> None:
    _write(tmp_path / "pyproject.toml", "[tool]\nam_patch = 5\n")
    assert "tool.am_patch" in _config_error(tmp_path).message


def test_pyproject_with_a_non_table_tool_key_is_not_a_crash(tmp_path: Path) -> None:
    _write(tmp_path / "pyproject.toml", "tool = 5\n")
    assert load(tmp_path) == Config()


def test_a_directory_named_like_a_config_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "am_patch.toml").mkdir()
    scripts = _write(tmp_path / "scripts/am_patch/am_patch.toml", "patch_timeout_s = 2\n")
    cfg = load(tmp_path)
    assert cfg.sources["patch_timeout_s"] == str(scripts)


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "am_patch.toml", "patch_timeout_s = 1\n")
    error = _config_error(tmp_path, explicit=tmp_path / "nope.toml")
    assert "--config" in error.message
    assert "nope.toml" in error.message


def test_explicit_config_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    error = _config_error(tmp_path, explicit=tmp_path)
    assert "--config" in error.message


@pytest.mark.parametrize(
    "rel",
    ["am_patch.toml", "scripts/am_patch/am_patch.toml", "pyproject.toml", "explicit.toml"],
)
def test_invalid_toml_is_a_clear_config_error(tmp_path: Path, rel: str) -> None:
    path = _write(tmp_path / rel, "patch_timeout_s = = 5\n[unclosed\n")
    explicit = path if rel == "explicit.toml" else None
    error = _config_error(tmp_path, explicit=explicit)
    assert str(path) in error.message
    assert "not valid TOML" in error.message


def test_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "am_patch.toml").write_bytes(b"audit_command = '\xff'\n")
    assert "not valid TOML" in _config_error(tmp_path).message


# --- validation of the file --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("no_such_key = 1\n", "no_such_key"),
        ("Ascii_Only_Patch = true\n", "Ascii_Only_Patch"),
        ("[extra]\nx = 1\n", "extra"),
        ("sources = {}\n", "sources"),
        ("ascii_only_patch = 'yes'\n", "ascii_only_patch"),
        ("ascii_only_patch = 1\n", "ascii_only_patch"),
        ("patch_timeout_s = '30'\n", "patch_timeout_s"),
        ("patch_timeout_s = 1.5\n", "patch_timeout_s"),
        ("patch_timeout_s = true\n", "patch_timeout_s"),
        ("patch_timeout_s = -1\n", "patch_timeout_s"),
        ("rollback_workspace_on_fail = 'sometimes'\n", "rollback_workspace_on_fail"),
        ("live_changed_resolution = 'merge'\n", "live_changed_resolution"),
        ("sandbox = false\n", "sandbox"),
        ("audit_command = ['python3', 'a.py']\n", "audit_command"),
        ("gates_order = 'pytest'\n", "gates_order"),
        ("gates_order = ['pytest', 1]\n", "gates_order"),
        ("gates_order = ['pytest', 'nosuchgate']\n", "gates_order"),
        ("blessed_outputs = 'a.xml'\n", "blessed_outputs"),
        ("gates = 5\n", "gates"),
        ("[gates]\npytest = 5\n", "gates.pytest"),
        ("[gates.pytest]\nname = 'other'\n", "gates.pytest.name"),
        ("[gates.pytest]\nbogus = 1\n", "gates.pytest.bogus"),
        ("[gates.pytest]\ntimeout_s = 'soon'\n", "gates.pytest.timeout_s"),
        ("[gates.pytest]\nruns_on = 'sometimes'\n", "gates.pytest.runs_on"),
        ("[gates.pytest]\ncommand = 'pytest -q'\n", "gates.pytest.command"),
        ("[gates.pytest]\ncommand = []\n", "gates.pytest.command"),
        ("[gates.lint]\nruns_on = 'always'\n", "gates.lint.command"),
        ("[gates.lint]\ncommand = []\n", "gates.lint.command"),
    ],
)
def test_bad_file_key_or_value_is_rejected_naming_the_key(
    tmp_path: Path, toml: str, key: str
) -> None:
    _write(tmp_path / "am_patch.toml", toml)
    assert f"'{key}'" in _config_error(tmp_path).message


def test_file_values_are_typed(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "am_patch.toml",
        """
        ascii_only_patch = false
        patch_timeout_s = 0
        rollback_workspace_on_fail = "never"
        live_changed_resolution = "overwrite_workspace"
        audit_command = "make audit"
        gates_order = ["pytest", "ruff"]
        blessed_outputs = []
        """,
    )
    cfg = load(tmp_path)
    assert cfg.ascii_only_patch is False
    assert cfg.patch_timeout_s == 0
    assert cfg.rollback_workspace_on_fail == "never"
    assert cfg.live_changed_resolution == "overwrite_workspace"
    assert cfg.audit_argv() == ["make", "audit"]
    assert cfg.gates_order == ("pytest", "ruff")
    assert cfg.blessed_outputs == ()
    assert {cfg.sources[k] for k in cfg.sources} == {str(path)}
    assert len(cfg.sources) == 7


def test_gate_tables_change_one_attribute_and_keep_the_rest(tmp_path: Path) -> None:
    path = _write(tmp_path / "am_patch.toml", "[gates.pytest]\ntimeout_s = 5\n")
    cfg = load(tmp_path)
    default = next(g for g in config.DEFAULT_GATES if g.name == "pytest")
    assert cfg.gate("pytest") == dataclasses.replace(default, timeout_s=5)
    assert cfg.sources["gates.pytest.timeout_s"] == str(path)
    assert cfg.gate("mypy") == next(g for g in config.DEFAULT_GATES if g.name == "mypy")


def test_custom_gate_with_a_command(tmp_path: Path) -> None:
    _write(
        tmp_path / "am_patch.toml",
        """
        gates_order = ["lint", "pytest"]
        [gates.lint]
        command = ["{python}", "-m", "pyflakes", "{targets}"]
        runs_on = "python_files"
        """,
    )
    cfg = load(tmp_path)
    lint = cfg.gate("lint")
    assert lint.command == ("{python}", "-m", "pyflakes", "{targets}")
    assert lint.runs_on == "python_files"
    assert cfg.gates_order == ("lint", "pytest")
    assert "gates.lint.command = " in "\n".join(config.describe(cfg))


# --- --override ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("ascii_only_patch=false", "ascii_only_patch", False),
        ("ascii_only_patch=FALSE", "ascii_only_patch", False),
        ("ascii_only_patch=0", "ascii_only_patch", False),
        ("ascii_only_patch=no", "ascii_only_patch", False),
        ("ascii_only_patch=off", "ascii_only_patch", False),
        ("allow_no_op=true", "allow_no_op", True),
        ("allow_no_op=1", "allow_no_op", True),
        ("allow_no_op=yes", "allow_no_op", True),
        ("allow_no_op= on ", "allow_no_op", True),
        ("patch_timeout_s=42", "patch_timeout_s", 42),
        ("patch_timeout_s=0", "patch_timeout_s", 0),
        ("gates_order=[]", "gates_order", ()),
        ('gates_order=["pytest", "mypy"]', "gates_order", ("pytest", "mypy")),
        ("gates_order=pytest,mypy", "gates_order", ("pytest", "mypy")),
        ("gates_order=pytest", "gates_order", ("pytest",)),
        ("blessed_outputs=a.xml, b/c.xml", "blessed_outputs", ("a.xml", "b/c.xml")),
        ("rollback_workspace_on_fail=never", "rollback_workspace_on_fail", "never"),
        ("live_changed_resolution=overwrite_live", "live_changed_resolution", "overwrite_live"),
        ("sandbox=off", "sandbox", "off"),
        ("audit_command=make audit", "audit_command", "make audit"),
        ("audit_command=a=b", "audit_command", "a=b"),
    ],
)
def test_override_values_are_parsed_by_the_key_type(
    tmp_path: Path, item: str, key: str, value: Any
) -> None:
    cfg = load(tmp_path, overrides=(item,))
    assert getattr(cfg, key) == value
    assert type(getattr(cfg, key)) is type(value)
    assert cfg.sources[key] == "override"


@pytest.mark.parametrize(
    ("item", "key"),
    [
        ("patch_timeout_s=abc", "patch_timeout_s"),
        ("patch_timeout_s=", "patch_timeout_s"),
        ("patch_timeout_s=1.5", "patch_timeout_s"),
        ("patch_timeout_s=-3", "patch_timeout_s"),
        ("ascii_only_patch=maybe", "ascii_only_patch"),
        ("ascii_only_patch=", "ascii_only_patch"),
        ("sandbox=maybe", "sandbox"),
        ("sandbox=", "sandbox"),
        ("rollback_workspace_on_fail=sometimes", "rollback_workspace_on_fail"),
        ("live_changed_resolution=FAIL", "live_changed_resolution"),
        ("gates_order=[", "gates_order"),
        ("gates_order=[1, 2]", "gates_order"),
        ("gates_order=nosuchgate", "gates_order"),
        ("no_such_key=1", "no_such_key"),
        ("gates=x", "gates"),
        ("sources=x", "sources"),
        ("gates.pytest=5", "gates.pytest"),
        ("gates.pytest.bogus=5", "gates.pytest.bogus"),
        ("gates.pytest.timeout_s=soon", "gates.pytest.timeout_s"),
        ("gates.pytest.runs_on=sometimes", "gates.pytest.runs_on"),
        ("gates.pytest.command=[]", "gates.pytest.command"),
        ("gates.custom.runs_on=always", "gates.custom.command"),
        ("patch_timeout_s", "patch_timeout_s"),
        ("=5", "=5"),
    ],
)
def test_bad_override_is_rejected_naming_the_key(tmp_path: Path, item: str, key: str) -> None:
    assert f"'{key}'" in _config_error(tmp_path, overrides=(item,)).message


def test_override_of_a_gate_attribute(tmp_path: Path) -> None:
    cfg = load(tmp_path, overrides=("gates.pytest.timeout_s=5", "gates.mypy.runs_on=always"))
    assert cfg.gate("pytest").timeout_s == 5
    assert cfg.gate("mypy").runs_on == "always"
    assert cfg.sources["gates.pytest.timeout_s"] == "override"
    assert "gates.pytest.timeout_s = 5  # override" in config.describe(cfg)


def test_override_can_add_a_custom_gate_with_a_command(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        overrides=(
            'gates.lint.command=["{python}", "-m", "ruff", "check"]',
            "gates.lint.runs_on=always",
            "gates_order=lint",
        ),
    )
    assert cfg.gate("lint").command == ("{python}", "-m", "ruff", "check")
    assert cfg.gates_order == ("lint",)


@pytest.mark.parametrize(
    ("text", "argv"),
    [
        ("python -m pytest", ("python", "-m", "pytest")),
        (
            "{python} -m ruff check --select=E,F",
            ("{python}", "-m", "ruff", "check", "--select=E,F"),
        ),
        ("sh -c 'echo a, b'", ("sh", "-c", "echo a, b")),
        ('["{python}", "-m", "pytest"]', ("{python}", "-m", "pytest")),
    ],
)
def test_override_of_a_gate_command_is_a_command_line(
    tmp_path: Path, text: str, argv: tuple[str, ...]
) -> None:
    cfg = load(tmp_path, overrides=(f"gates.pytest.command={text}", "gates.x.command=" + text))
    assert cfg.gate("pytest").command == argv
    assert cfg.gate("x").command == argv


def test_override_of_a_gate_command_with_an_open_quote_is_refused(tmp_path: Path) -> None:
    error = _config_error(tmp_path, overrides=("gates.pytest.command=sh -c 'oops",))
    assert "'gates.pytest.command'" in error.message


def test_later_override_of_the_same_key_wins(tmp_path: Path) -> None:
    cfg = load(tmp_path, overrides=("patch_timeout_s=1", "patch_timeout_s=2"))
    assert cfg.patch_timeout_s == 2


# --- precedence: CLI > --override > file > default -------------------------------------------


def test_precedence_cli_over_override_over_file_over_default(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "am_patch.toml",
        """
        allow_no_op = false
        patch_timeout_s = 10
        gate_timeout_s = 11
        """,
    )
    cfg = load(
        tmp_path,
        overrides=("allow_no_op=false", "patch_timeout_s=20"),
        cli={"allow_no_op": True},
    )
    assert (cfg.allow_no_op, cfg.sources["allow_no_op"]) == (True, "cli")
    assert (cfg.patch_timeout_s, cfg.sources["patch_timeout_s"]) == (20, "override")
    assert (cfg.gate_timeout_s, cfg.sources["gate_timeout_s"]) == (11, str(path))
    assert (cfg.max_rebase_attempts, cfg.sources.get("max_rebase_attempts")) == (3, None)


def test_cli_values_are_validated_too(tmp_path: Path) -> None:
    assert "'no_such'" in _config_error(tmp_path, cli={"no_such": True}).message
    assert "'sandbox'" in _config_error(tmp_path, cli={"sandbox": "nope"}).message


def test_bad_file_fails_even_when_override_sets_the_same_key(tmp_path: Path) -> None:
    _write(tmp_path / "am_patch.toml", "patch_timeout_s = 'x'\n")
    assert "'patch_timeout_s'" in _config_error(tmp_path, overrides=("patch_timeout_s=5",)).message


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load(tmp_path, overrides=("patch_timeout_s=7",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.patch_timeout_s = 1  # type: ignore[misc]
    assert cfg.patch_timeout_s == 7


# --- end to end: -c ------------------------------------------------------------------------


def test_show_config_prints_every_key_with_value_and_source(project: Project) -> None:
    out = project.run("-c")
    assert out.code == 0, out.stdout + out.stderr
    assert out.stderr == ""
    for key in SCALAR_KEYS:
        assert _shown(out.stdout, key).endswith("  # default")
    assert _shown(out.stdout, "ascii_only_patch") == "ascii_only_patch = true  # default"
    assert _shown(out.stdout, "gates_order") == (
        'gates_order = ["pre_commit", "compile", "ruff_format", "ruff", "pytest", "mypy"]'
        "  # default"
    )
    assert "gates.pytest.timeout_s = 0  # default" in out.stdout
    assert "RESULT:" not in out.stdout


def test_show_config_shows_each_source(project: Project) -> None:
    toml = project.write(
        "am_patch.toml",
        """
        allow_no_op = false
        patch_timeout_s = 10
        gate_timeout_s = 11
        [gates.pytest]
        timeout_s = 7
        """,
    )
    before = project.repo_state(include_patches=False)
    out = project.run(
        "-c",
        "-n",
        "-k",
        "--overwrite-live",
        "--override",
        "allow_no_op=false",
        "--override",
        "patch_timeout_s=20",
        "--override",
        "gates.mypy.timeout_s=9",
    )
    assert out.code == 0, out.stdout + out.stderr
    assert _shown(out.stdout, "allow_no_op") == "allow_no_op = true  # cli"
    assert _shown(out.stdout, "delete_workspace_on_success") == (
        "delete_workspace_on_success = false  # cli"
    )
    assert _shown(out.stdout, "live_changed_resolution") == (
        'live_changed_resolution = "overwrite_live"  # cli'
    )
    assert _shown(out.stdout, "patch_timeout_s") == "patch_timeout_s = 20  # override"
    assert _shown(out.stdout, "gate_timeout_s") == f"gate_timeout_s = 11  # {toml}"
    assert _shown(out.stdout, "gates.pytest.timeout_s") == f"gates.pytest.timeout_s = 7  # {toml}"
    assert _shown(out.stdout, "gates.mypy.timeout_s") == "gates.mypy.timeout_s = 9  # override"
    assert _shown(out.stdout, "ascii_only_patch") == "ascii_only_patch = true  # default"
    assert project.repo_state(include_patches=False) == before


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("am_patch.toml", "remote = 'upstream'\n"),
        ("scripts/am_patch/am_patch.toml", "remote = 'upstream'\n"),
    ],
)
def test_show_config_discovers_files_at_the_live_root(
    project: Project, rel: str, text: str
) -> None:
    path = project.write(rel, text)
    out = project.run("-c", cwd=project.live / "src")
    assert out.code == 0, out.stdout + out.stderr
    assert _shown(out.stdout, "remote") == f'remote = "upstream"  # {path}'


def test_show_config_reads_the_pyproject_tool_table(project: Project) -> None:
    pyproject = project.live / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.am_patch]\npatch_timeout_s = 33\n")
    out = project.run("-c")
    assert out.code == 0, out.stdout + out.stderr
    assert _shown(out.stdout, "patch_timeout_s") == f"patch_timeout_s = 33  # {pyproject}"


def test_show_config_with_explicit_config(project: Project) -> None:
    project.write("am_patch.toml", "patch_timeout_s = 1\n")
    other = project.base / "other.toml"
    other.write_text("patch_timeout_s = 2\n")
    out = project.run("-c", "--config", str(other))
    assert out.code == 0, out.stdout + out.stderr
    assert _shown(out.stdout, "patch_timeout_s") == f"patch_timeout_s = 2  # {other}"


@pytest.mark.parametrize(
    ("args", "toml", "key"),
    [
        ((), "no_such_key = 1\n", "no_such_key"),
        ((), "patch_timeout_s = 'x'\n", "patch_timeout_s"),
        ((), "patch_timeout_s = = 1\n", "am_patch.toml"),
        (("--override", "patch_timeout_s=abc"), "", "patch_timeout_s"),
        (("--override", "sandbox=maybe"), "", "sandbox"),
        (("--override", "nope=1"), "", "nope"),
        (("--override", "gates.custom.timeout_s=1"), "", "gates.custom.command"),
        (("--config", "missing.toml"), "", "--config"),
    ],
)
def test_show_config_fails_on_bad_config(
    project: Project, args: tuple[str, ...], toml: str, key: str
) -> None:
    if toml:
        project.write("am_patch.toml", toml)
    assert key in _config_failure_reason(project, "-c", *args)


# --- end to end: real runs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "toml", "key"),
    [
        ((), "no_such_key = 1\n", "no_such_key"),
        ((), "ascii_only_patch = 'no'\n", "ascii_only_patch"),
        ((), "[gates.pytest]\ntimeout_s = -1\n", "gates.pytest.timeout_s"),
        ((), "not toml at all\n", "am_patch.toml"),
        (("--override", "patch_timeout_s=abc"), "", "patch_timeout_s"),
        (("--override", "gates_order=[nope"), "", "gates_order"),
        (("--override", "gates_order=nope"), "", "gates_order"),
        (("--override", "noequals"), "", "noequals"),
    ],
)
def test_run_with_bad_config_fails_preflight_and_changes_nothing(
    project: Project, args: tuple[str, ...], toml: str, key: str
) -> None:
    if toml:
        project.write("am_patch.toml", toml)
    marker = project.base / "script_ran"
    project.patch(
        "issue_3.py",
        ["src/democalc/calc.py"],
        f"Path({str(marker)!r}).write_text('ran')\n",
    )
    assert key in _config_failure_reason(project, "3", "Bad config", *args)
    assert not marker.exists()
    assert not project.workspace_dir("3").exists()


def test_run_honours_a_file_setting(project: Project) -> None:
    """ascii_only_patch = false in am_patch.toml lets a non-ASCII script through."""
    project.write("am_patch.toml", "ascii_only_patch = false\n")
    project.commit_all("Add am-patch config")
    before = project.head()
    (project.patches / "issue_4.py").write_bytes(
        b"from pathlib import Path\n"
        b'FILES = ["README.md"]\n'
        b"# caf\xc3\xa9\n"
        b'Path("README.md").write_text("hello\\n")\n'
    )
    out = project.run("4", "Non-ASCII script", *NO_GATES)
    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert project.git("rev-parse", "main^") == before
    assert project.origin_head() == project.head()
    assert (project.live / "README.md").read_text() == "hello\n"


def test_cli_flag_beats_the_config_file_in_a_run(project: Project) -> None:
    """allow_no_op = false in the file, -n on the command line: a no-op patch succeeds."""
    project.write("am_patch.toml", "allow_no_op = false\n")
    project.commit_all("Add am-patch config")
    before = project.head()
    project.patch("issue_5.py", ["README.md"], "")
    out = project.run("5", "Nothing", "-n", *NO_GATES)
    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert project.head() == before
    assert project.origin_head() == before
