"""The command line: short and full help, one-letter aliases, --version and usage errors."""

from __future__ import annotations

import argparse
import re

import pytest

from am_patch import __version__
from am_patch.cli import build_parser, cli_values, short_help
from testing.project import Project

# SPEC "Short help": these options, and only these, have one-letter aliases.
SHORT_ALIASES = {
    "-h": "--help",
    "-H": "--help-all",
    "-c": "--show-config",
    "-n": "--allow-no-op",
    "-a": "--allow-undeclared-paths",
    "-t": "--allow-untouched-files",
    "-l": "--rerun-latest",
    "-r": "--run-all-gates",
    "-g": "--allow-gates-fail",
    "-f": "--finalize-live",
    "-u": "--skip-up-to-date",
    "-W": "--update-workspace",
    "-k": "--keep-workspace",
}
LONG_ONLY = (
    "--finalize-workspace",
    "--test-mode",
    "--override",
    "--config",
    "--repo",
    "--require-push-success",
    "--disable-promotion",
    "--overwrite-live",
    "--overwrite-workspace",
    "--allow-live-changed",
    "--soft-reset-workspace",
    "--allow-non-main",
    "--version",
    "--unsafe-no-sandbox",
)
SHORT_HELP_LINE = re.compile(r"^  (-\w), (--[\w-]+)\b")


def _actions() -> list[argparse.Action]:
    return list(build_parser()._actions)


def _option_strings() -> list[str]:
    return [s for action in _actions() for s in action.option_strings]


def _repo_state(project: Project) -> tuple[str, ...]:
    """Everything a usage error must leave alone, patches/ and .git/info/exclude included."""
    exclude = project.live / ".git" / "info" / "exclude"
    return (*project.repo_state(), exclude.read_text() if exclude.exists() else "")


# --- the parser --------------------------------------------------------------------------


def test_only_the_spec_options_have_one_letter_aliases() -> None:
    short = [s for s in _option_strings() if len(s) == 2]
    assert sorted(short) == sorted(SHORT_ALIASES)
    assert len(short) == len(set(short))


@pytest.mark.parametrize(("short", "long"), sorted(SHORT_ALIASES.items()))
def test_each_alias_belongs_to_its_long_option(short: str, long: str) -> None:
    [action] = [a for a in _actions() if short in a.option_strings]
    assert long in action.option_strings


@pytest.mark.parametrize("option", LONG_ONLY)
def test_long_only_options_exist_without_a_short_alias(option: str) -> None:
    [action] = [a for a in _actions() if option in a.option_strings]
    assert all(len(s) > 2 for s in action.option_strings)


def test_allow_live_changed_is_an_alias_of_overwrite_live() -> None:
    parser = build_parser()
    one = cli_values(parser.parse_args(["--overwrite-live", "1", "m"]))
    other = cli_values(parser.parse_args(["--allow-live-changed", "1", "m"]))
    assert one == other == {"live_changed_resolution": "overwrite_live"}


def test_switches_map_to_their_config_keys() -> None:
    args = build_parser().parse_args(
        ["-n", "-a", "-t", "-r", "-g", "-u", "-W", "-k", "--unsafe-no-sandbox", "1", "m"]
    )
    assert cli_values(args) == {
        "allow_no_op": True,
        "allow_undeclared_paths": True,
        "allow_untouched_files": True,
        "run_all_gates": True,
        "allow_gates_fail": True,
        "skip_up_to_date": True,
        "update_workspace": True,
        "delete_workspace_on_success": False,
        "sandbox": "off",
    }


def test_no_switch_sets_no_config_key() -> None:
    assert cli_values(build_parser().parse_args(["1", "m"])) == {}


def test_short_help_lists_exactly_the_aliased_options() -> None:
    listed = {}
    for line in short_help().splitlines():
        match = SHORT_HELP_LINE.match(line)
        if match:
            listed[match.group(1)] = match.group(2)
    assert listed == SHORT_ALIASES
    for option in LONG_ONLY:
        assert option not in short_help()


# --- end to end: help and version ---------------------------------------------------------


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_short_help_exits_zero(project: Project, flag: str) -> None:
    before = _repo_state(project)
    out = project.run(flag)
    assert out.code == 0, out.stderr
    assert out.stdout.startswith("usage: am-patch [options] ISSUE_ID MESSAGE [PATCH]")
    assert out.stdout.strip() == short_help().strip()
    assert out.stderr == ""
    assert _repo_state(project) == before


@pytest.mark.parametrize("flag", ["-H", "--help-all"])
def test_full_help_shows_every_option(project: Project, flag: str) -> None:
    before = _repo_state(project)
    out = project.run(flag)
    assert out.code == 0, out.stderr
    for option in [*_option_strings(), *LONG_ONLY]:
        assert option in out.stdout, option
    assert "KEY=VALUE" in out.stdout
    assert _repo_state(project) == before


def test_version(project: Project) -> None:
    out = project.run("--version")
    assert out.code == 0, out.stderr
    assert out.stdout.strip() == f"am-patch {__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", __version__)


def test_help_works_outside_a_git_repository(project: Project) -> None:
    out = project.run("-h", cwd=project.base)
    assert out.code == 0
    assert "--show-config" in out.stdout


# --- end to end: usage errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((), "expected ISSUE_ID MESSAGE"),
        (("7",), "expected ISSUE_ID MESSAGE"),
        (("7", "msg", "issue_7.py", "extra"), "expected ISSUE_ID MESSAGE"),
        (("seven", "msg"), "ISSUE_ID must be a number"),
        (("7a", "msg"), "ISSUE_ID must be a number"),
        (("-7", "msg"), "ISSUE_ID must be a number"),
        (("7.0", "msg"), "ISSUE_ID must be a number"),
        (("7", ""), "MESSAGE must not be empty"),
        (("7", "   "), "MESSAGE must not be empty"),
        (("--bogus", "7", "msg"), "--bogus"),
        (("-x", "7", "msg"), "-x"),
        (("7", "msg", "--override"), "--override"),
        (("7", "msg", "--config"), "--config"),
        (("-f",), "-f"),
        (("-f", "   "), "MESSAGE must not be empty"),
        (("-f", "msg", "7"), "takes no ISSUE_ID"),
        (("-f", "msg", "--finalize-workspace", "7"), "exclude each other"),
        (("-l", "-f", "msg"), "exclude each other"),
        (("-f", "msg", "--test-mode"), "--test-mode"),
        (("--finalize-workspace", "seven"), "ISSUE_ID must be a number"),
        (("--finalize-workspace", "7", "msg"), "takes no other arguments"),
        (("-l", "7"), "-l takes ISSUE_ID MESSAGE"),
        (("-l", "7", "msg", "issue_7.py"), "-l takes ISSUE_ID MESSAGE"),
        (("-l", "x", "msg"), "ISSUE_ID must be a number"),
    ],
)
def test_usage_error_exits_2_with_one_line_and_changes_nothing(
    project: Project, args: tuple[str, ...], needle: str
) -> None:
    project.patch("issue_7.py", ["src/democalc/calc.py"], "Path('src/democalc/calc.py').touch()\n")
    before = _repo_state(project)
    out = project.run(*args)
    assert out.code == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("am-patch: ")
    assert needle in lines[0]
    assert "RESULT:" not in out.stdout
    assert "Traceback" not in out.stderr
    assert _repo_state(project) == before
    assert not (project.patches / "logs").exists()
    assert not (project.patches / "workspaces").exists()
    assert (project.patches / "issue_7.py").is_file()


def test_usage_error_wins_over_help_when_an_option_is_unknown(project: Project) -> None:
    out = project.run("-h", "--nope")
    assert out.code == 2
    assert "--nope" in out.stderr


def test_show_config_needs_no_positional_arguments(project: Project) -> None:
    out = project.run("-c")
    assert out.code == 0, out.stdout + out.stderr
    assert out.stdout.startswith(f"# am-patch {__version__} config for ")


def test_show_config_outside_a_repository_fails_git(project: Project) -> None:
    out = project.run("-c", cwd=project.base)
    assert out.code == 1
    assert out.result_line == "RESULT: FAIL PREFLIGHT:GIT"


def test_repo_option_points_at_the_live_repository(project: Project) -> None:
    project.write("am_patch.toml", "patch_timeout_s = 17\n")
    out = project.run("--repo", str(project.live), "-c", cwd=project.base)
    assert out.code == 0, out.stdout + out.stderr
    assert f"patch_timeout_s = 17  # {project.live / 'am_patch.toml'}" in out.stdout


def test_runs_from_a_subdirectory_of_the_live_repo(project: Project) -> None:
    project.write("am_patch.toml", "patch_timeout_s = 18\n")
    out = project.run("-c", cwd=project.live / "src" / "democalc")
    assert out.code == 0, out.stdout + out.stderr
    assert "patch_timeout_s = 18  # " in out.stdout
