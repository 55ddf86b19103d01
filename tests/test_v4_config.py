"""A repository that used the v4 runner: its scripts/am_patch/am_patch.toml in v4's schema is read
key by key, every value names the v4 key it came from, keys without a meaning are named in one
warning line, and no v4 key weakens the jail or the scope policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from am_patch import config
from am_patch.config import Config
from am_patch.demo import PROJECT_FILES
from am_patch.errors import Refusal
from testing.project import Project, assert_fails, assert_success

SHIPPED = (Path(__file__).parent / "data" / "v4_am_patch.toml").read_text()
V4_PATH = "scripts/am_patch/am_patch.toml"


def load_v4(tmp_path: Path, text: str) -> Config:
    path = tmp_path / V4_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return config.load(tmp_path)


def source_of(cfg: Config, key: str) -> str:
    return cfg.sources[key].rsplit(" (v4: ", 1)[1].rstrip(")")


def test_the_shipped_v4_file_maps_every_key_with_a_meaning(tmp_path: Path) -> None:
    cfg = load_v4(tmp_path, SHIPPED)

    assert cfg.post_success_audit is False  # [audit]
    assert source_of(cfg, "post_success_audit") == "audit.post_success_audit"
    assert cfg.failure_zips_keep == 1
    assert cfg.require_push_success is False  # allow_push_fail = true
    assert source_of(cfg, "require_push_success") == "git.allow_push_fail"
    assert cfg.main_branch == "main" and cfg.rollback_workspace_on_fail == "always"
    assert cfg.live_changed_resolution == "fail" and cfg.ascii_only_patch is True
    # v4's gate names: its ruff formats then checks, its js, biome (autofix first) and
    # typescript gates are file-pattern gates; dont-touch is forbidden_paths; the rest left out
    assert cfg.gates_order == (
        *("pre_commit", "compile", "js", "biome_fix", "biome", "typescript"),
        *("ruff_format", "ruff", "pytest", "mypy"),
    )
    assert "scripts/am_patch/am_patch.toml" in cfg.forbidden_paths


def test_the_targets_under_security_reach_the_gates(tmp_path: Path) -> None:
    cfg = load_v4(tmp_path, SHIPPED)

    assert cfg.gate("ruff").full_targets == ("src", "tests")
    assert cfg.gate("ruff_format").full_targets == ("src", "tests")
    assert cfg.gate("mypy").command[-1] == "src"
    assert cfg.gate("pytest").command[-1] == "tests"
    assert source_of(cfg, "gates.ruff.full_targets") == "security.ruff_targets"
    assert source_of(cfg, "gates.mypy.command") == "security.mypy_targets"


def test_keys_without_a_meaning_are_named_in_one_warning_line(tmp_path: Path) -> None:
    cfg = load_v4(tmp_path, SHIPPED)

    ignored = [n for n in cfg.notes if "keys with no meaning in am-patch" in n]
    assert len(ignored) == 1
    for key in ("ipc_socket_enabled", "logging.log_retention", "gates.gate_monolith_mode"):
        assert key in ignored[0]
    # a key that was mapped is not called meaningless
    for key in ("security.ruff_targets", "git.allow_push_fail", "audit.post_success_audit"):
        assert key not in ignored[0]


def test_no_v4_key_weakens_the_jail_or_the_scope(tmp_path: Path) -> None:
    cfg = load_v4(
        tmp_path,
        "[security]\npatch_jail = false\npatch_jail_unshare_net = false\n"
        "[scope]\nallow_outside_files = true\nenforce_allowed_files = false\n"
        "allow_declared_untouched = true\n",
    )

    assert cfg.sandbox == "bwrap" and cfg.sandbox_gates is True
    assert cfg.allow_undeclared_paths is False and cfg.allow_untouched_files is False
    said = "\n".join(cfg.notes)
    assert (
        "security.patch_jail = false is ignored: patches still run in the bubblewrap jail" in said
    )
    assert "scope.allow_outside_files = true is ignored" in said
    assert "scope.enforce_allowed_files = false is ignored" in said


def test_v4_switches_thin_out_and_adjust_the_gates(tmp_path: Path) -> None:
    cfg = load_v4(
        tmp_path,
        '[gates]\norder = ["compile", "ruff", "pytest", "mypy"]\n'
        "gates_skip_pytest = true\nruff_autofix = false\n",
    )

    assert cfg.gates_order == ("pre_commit", "compile", "ruff_format", "ruff", "mypy")
    assert "--fix" not in cfg.gate("ruff").command
    assert source_of(cfg, "gates_order") == "gates.order, gates.gates_skip_pytest"


def test_a_bad_v4_value_names_the_v4_key(tmp_path: Path) -> None:
    with pytest.raises(Refusal) as info:
        load_v4(tmp_path, '[security]\nrollback_workspace_on_fail = "sometimes"\n')

    assert "security.rollback_workspace_on_fail" in info.value.message
    assert "'sometimes'" in info.value.message


def test_an_am_patch_file_with_gate_tables_is_not_read_as_v4(tmp_path: Path) -> None:
    cfg = load_v4(tmp_path, "[gates.pytest]\ntimeout_s = 7\n")

    assert cfg.gate("pytest").timeout_s == 7 and cfg.notes == ()


def test_a_repository_carrying_the_v4_file_runs_and_shows_its_sources(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "work", {**PROJECT_FILES, V4_PATH: SHIPPED})

    shown = project.run("-c")
    assert shown.code == 0, shown.stdout + shown.stderr
    assert "(v4: security.mypy_targets)" in shown.line("gates.mypy.command =")
    assert "keys with no meaning in am-patch, ignored:" in shown.stdout

    project.calc_patch("31")
    out = project.run("31", "Multiply")
    assert_success(out)
    assert "security.patch_jail = false is ignored" in out.stdout
    assert "SANDBOX: bubblewrap" in out.line("SANDBOX:")

    # dont_touch_paths became forbidden paths: a patch of the v4 file itself is refused
    project.patch("issue_32.py", [V4_PATH], f"Path({V4_PATH!r}).write_text('x = 1\\n')\n")
    refused = project.run("32", "Touch", "--allow-policy-change")
    assert_fails(refused, "SCOPE:UNSAFE")
    assert f"forbidden by forbidden_paths ({V4_PATH})" in refused.line("REASON:")


def test_v4_gates_for_other_languages_become_file_pattern_gates(tmp_path: Path) -> None:
    cfg = load_v4(
        tmp_path,
        '[gates]\norder = ["biome", "typescript", "pytest", "docs"]\n'
        'gate_biome_command = ["biome", "lint"]\ngate_biome_extensions = [".js", ".ts"]\n'
        'biome_autofix = true\ngate_biome_fix_command = ["biome", "lint", "--write"]\n'
        'gate_typescript_command = ["tsc", "--noEmit"]\ngate_typescript_extensions = [".ts"]\n'
        '[security]\ntypescript_targets = ["web/"]\n',
    )

    assert cfg.gates_order == ("pre_commit", "biome_fix", "biome", "typescript", "pytest")
    fix, lint, tsc = cfg.gate("biome_fix"), cfg.gate("biome"), cfg.gate("typescript")
    assert fix.rewrites and fix.command == ("biome", "lint", "--write", "{targets}")
    assert not lint.rewrites and lint.command == ("biome", "lint", "{targets}")
    assert lint.runs_on == "files" and lint.files == ("*.js", "*.ts")
    assert tsc.files == ("/web/**/*.ts",)
    assert source_of(cfg, "gates.typescript.files").endswith("security.typescript_targets")
    assert any("left out of gates_order: docs" in note for note in cfg.notes)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_v4_js_gate_checks_each_changed_file_with_node(tmp_path: Path) -> None:
    v4 = (
        '[gates]\norder = ["js", "pytest"]\n'
        'gate_js_command = ["node", "--check"]\ngate_js_extensions = [".js"]\n'
    )
    project = Project.create(tmp_path / "work", {**PROJECT_FILES, V4_PATH: v4})
    files = ["web/a.js", "web/b.js"]

    def js_patch(b_text: str) -> None:
        project.patch(
            "issue_33.py",
            files,
            "Path('web').mkdir(exist_ok=True)\nPath('web/a.js').write_text('const a = 1;\\n')\n"
            f"Path('web/b.js').write_text({b_text!r})\n",
        )

    js_patch("const b = ;\n")  # the second file is broken: each file is checked
    broken = project.run("33", "JS")
    assert_fails(broken, "GATES:JS")
    assert "b.js" in broken.output

    js_patch("const b = 2;\n")
    fixed = project.run("33", "JS")
    assert_success(fixed)
    assert fixed.line("GATE js:").startswith("GATE js: PASS")
