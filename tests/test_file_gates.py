"""Gates for other languages: file-pattern gates (`runs_on = "files"`) and the project's node
tools, in the runner and in the hooks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from am_patch import gates
from am_patch.demo import PROJECT_FILES
from testing.hooks import hook, run
from testing.project import Project, assert_fails, assert_success

CONFIG = """\
gates_order = ["shell", "trailing", "compile", "ruff_format", "ruff", "pytest", "mypy"]

[gates.shell]
runs_on = "files"
files = ["*.sh", "!vendor/**"]
command = ["sh", "-c", "for f; do bash -n \\"$f\\" || exit 1; done", "sh", "{targets}"]

[gates.trailing]
runs_on = "files"
files = ["docs/**/*.md"]
command = ["sed", "-i", "-e", "s/[[:space:]]*$//", "{targets}"]
rewrites = true
"""
# a node "tool" as npm would install it: node_modules/.bin/jscheck -> a script run by node
JSCHECK = """\
#!/usr/bin/env node
const { execFileSync } = require("child_process");
let failed = 0;
for (const file of process.argv.slice(2)) {
  try { execFileSync(process.execPath, ["--check", file], { stdio: "inherit" }); }
  catch (e) { failed = 1; }
}
process.exit(failed);
"""
NODE_CONFIG = """\
gates_order = ["js"]

[gates.js]
runs_on = "files"
files = ["*.js"]
command = ["jscheck", "{targets}"]
"""


def make(tmp_path: Path, config: str, extra: dict[str, str] | None = None) -> Project:
    files = {**PROJECT_FILES, "am_patch.toml": config, **(extra or {})}
    return Project.create(tmp_path / "work", files)


def test_matching_follows_gitignore_rules() -> None:
    paths = ["run.sh", "tools/x.sh", "vendor/y.sh", "web/app/a.ts", "web/a.js", "README.md"]
    assert gates.matching(["*.sh", "!vendor/**"], paths) == ["run.sh", "tools/x.sh"]
    assert gates.matching(["web/**/*.ts"], paths) == ["web/app/a.ts"]
    assert gates.matching(["/*.md"], [*paths, "docs/b.md"]) == ["README.md"]


def test_a_shell_gate_fails_a_broken_script_and_skips_a_docs_patch(tmp_path: Path) -> None:
    project = make(tmp_path, CONFIG)
    before = project.head()
    project.file_patch("1", "tools/run.sh", "if then fi\n")

    out = project.run("1", "Script")

    assert_fails(out, "GATES:SHELL")
    assert "syntax error" in out.stdout
    assert project.head() == before

    project.readme_patch("2", "docs only\n")
    out = project.run("2", "Docs")
    assert_success(out)
    assert (
        out.line("GATE shell:") == "GATE shell: SKIPPED (no changed file matches *.sh, !vendor/**)"
    )


def test_the_gate_gets_only_the_matching_changed_files_and_all_of_them_with_r(
    tmp_path: Path,
) -> None:
    project = make(tmp_path, CONFIG, {"old.sh": "echo old\n", "vendor/v.sh": "if then fi\n"})
    project.file_patch("3", "new.sh", "echo new\n")

    out = project.run("3", "Script")

    assert_success(out)
    assert " sh new.sh)" in project.log_of(out)
    project.file_patch("4", "another.sh", "echo another\n")
    out = project.run("4", "Script", "-r")
    assert_success(out)
    assert " sh another.sh new.sh old.sh)" in project.log_of(out), "-r: all but vendor/"


def test_a_rewriting_file_gate_lands_its_edit(tmp_path: Path) -> None:
    project = make(tmp_path, CONFIG)
    project.file_patch("9", "docs/guide/a.md", "tidy me   \n")

    out = project.run("9", "Docs")

    assert_success(out)
    assert project.git("show", "HEAD:docs/guide/a.md") == "tidy me"


def test_the_hooks_judge_a_hand_commit_with_the_same_gates(tmp_path: Path) -> None:
    project = make(tmp_path, CONFIG)
    hook(project.live, "install")
    (project.live / "run.sh").write_text("if then fi\n")
    project.git("add", "run.sh")
    refused = run(["git", "commit", "-q", "-m", "By hand"], project.live)
    assert refused.returncode != 0
    assert "gate shell failed" in refused.stderr

    (project.live / "run.sh").write_text("echo fine\n")
    project.git("add", "run.sh")
    assert run(["git", "commit", "-q", "-m", "By hand"], project.live).returncode == 0


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_gate_runs_the_projects_node_tools_in_the_jail(tmp_path: Path) -> None:
    project = make(tmp_path, NODE_CONFIG, {".gitignore": "node_modules/\n"})
    tool = project.live / "node_modules" / "jscheck" / "cli.js"
    tool.parent.mkdir(parents=True)
    tool.write_text(JSCHECK)
    tool.chmod(0o755)
    (project.live / "node_modules" / ".bin").mkdir()
    (project.live / "node_modules" / ".bin" / "jscheck").symlink_to("../jscheck/cli.js")
    project.file_patch("5", "web/app.js", "function (\n")

    out = project.run("5", "Script")

    assert_fails(out, "GATES:JS")
    assert "SyntaxError" in out.stdout
    project.file_patch("6", "web/app.js", "console.log('fine');\n")
    assert_success(project.run("6", "Script"))


def test_a_bad_pattern_fails_the_config_naming_it(tmp_path: Path) -> None:
    bad = CONFIG.replace('files = ["*.sh", "!vendor/**"]', 'files = ["*.sh", "!"]')
    project = make(tmp_path, bad)
    project.file_patch("9", "docs/a.md", "a\n")

    out = project.run("9", "Docs")

    assert_fails(out, "PREFLIGHT:CONFIG")
    assert "gates.shell.files" in out.line("REASON:") and "'!'" in out.line("REASON:")


def test_a_node_modules_link_in_the_tree_does_not_bring_in_the_live_one(tmp_path: Path) -> None:
    """The live node_modules is mounted only where the tree has none: a patch's link named
    node_modules (here to src/) must not put the live files over what the gates judge."""
    config = (
        'gates_order = ["look"]\n[gates.look]\nruns_on = "always"\n'
        'command = ["sh", "-c", "test ! -e node_modules/live-only"]\n'
    )
    project = make(tmp_path, config)
    (project.live / "node_modules").mkdir()  # installed by hand, untracked
    (project.live / "node_modules" / "live-only").write_text("from the live repo\n")
    project.patch("issue_7.py", ["node_modules"], "Path('node_modules').symlink_to('src')\n")

    out = project.run("7", "Link", "--test-mode")  # the gates' verdict is the point

    assert_success(out)
    assert out.line("GATE look:").startswith("GATE look: PASS")
