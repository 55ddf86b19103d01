"""Patch scripts: where they may live, ASCII and syntax checks, FILES from the syntax tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from am_patch import patchfile
from am_patch.errors import Refusal, RunnerError, Stage
from am_patch.patchfile import Kind
from testing.project import CALC, NO_GATES, Project

EDIT_CALC = f"""
p = Path({CALC!r})
p.write_text(p.read_text() + "\\n\\ndef sub(a: int, b: int) -> int:\\n    return a - b\\n")
"""


def _error(code: str, func: object, *args: object, **kwargs: object) -> RunnerError:
    assert callable(func)
    with pytest.raises(Refusal) as info:
        func(*args, **kwargs)
    failed = RunnerError.at(Stage.PREFLIGHT, info.value)  # the input is read in preflight
    assert failed.code == code, failed.message
    return failed


def _state(project: Project) -> tuple[str, ...]:
    """Live repo state bad input must not change (patches/ itself is am-patch's own area)."""
    state = project.repo_state(include_patches=False)
    return (*state, project.git("worktree", "list", "--porcelain"))


def _assert_fails(project: Project, code: str, *args: str) -> str:
    """Run am-patch, expect `RESULT: FAIL code` and an untouched live repo; the REASON line."""
    before = _state(project)
    out = project.run(*args)
    assert out.code == 1, out.stdout + out.stderr
    assert out.result_line == f"RESULT: FAIL {code}", out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert _state(project) == before
    issue = args[0]
    assert not project.workspace_dir(issue).exists()
    return out.line("REASON:")


def _script(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="ascii")
    else:
        path.write_bytes(text)
    return path


# --- unit: where a patch may live -----------------------------------------------------------


@pytest.fixture
def patches(tmp_path: Path) -> Path:
    path = tmp_path / "live" / "patches"
    path.mkdir(parents=True)
    return path


def test_bare_name_resolves_under_patches(patches: Path) -> None:
    script = _script(patches / "fix.py", "FILES = ['a']\n")
    assert patchfile.resolve_path(patches, "1", "fix.py") == script.resolve()


def test_patches_prefix_resolves_under_patches(patches: Path) -> None:
    script = _script(patches / "fix.py", "FILES = ['a']\n")
    assert patchfile.resolve_path(patches, "1", "patches/fix.py") == script.resolve()
    assert patchfile.resolve_path(patches, "1", "./patches/fix.py") == script.resolve()


def test_subdirectory_of_patches_is_allowed(patches: Path) -> None:
    script = _script(patches / "inbox" / "fix.py", "FILES = ['a']\n")
    assert patchfile.resolve_path(patches, "1", "inbox/fix.py") == script.resolve()


def test_absolute_path_under_patches_is_allowed(patches: Path) -> None:
    script = _script(patches / "fix.py", "FILES = ['a']\n")
    assert patchfile.resolve_path(patches, "1", str(script)) == script.resolve()


def test_absolute_symlink_from_outside_into_patches_is_allowed(patches: Path) -> None:
    script = _script(patches / "fix.py", "FILES = ['a']\n")
    link = patches.parent.parent / "link.py"
    link.symlink_to(script)
    assert patchfile.resolve_path(patches, "1", str(link)) == script.resolve()


@pytest.mark.parametrize("suffix", patchfile.SUFFIXES)
def test_default_patch_for_each_suffix(patches: Path, suffix: str) -> None:
    script = _script(patches / f"issue_12{suffix}", "x")
    _script(patches / "issue_1.py", "x")
    _script(patches / "issue_120.py", "x")
    assert patchfile.resolve_path(patches, "12", None) == script.resolve()


@pytest.mark.parametrize(
    ("setup", "arg", "needle"),
    [
        ((), None, "no patch given"),
        (("issue_9.py", "issue_9.patch"), None, "ambiguous"),
        (("issue_9.diff", "issue_9.zip"), None, "ambiguous"),
        ((), "missing.py", "no such patch file"),
        ((), "patches/missing.py", "no such patch file"),
        ((), "../outside.py", "must lie under"),
        ((), "patches/../outside.py", "must lie under"),
        ((), "../patches-evil/x.py", "must lie under"),
        ((), "", "must lie under"),
        ((), ".", "must lie under"),
        ((), "patches", "must lie under"),
        (("inbox/x.py",), "inbox", "no such patch file"),
    ],
)
def test_bad_patch_path(
    patches: Path, setup: tuple[str, ...], arg: str | None, needle: str
) -> None:
    for name in setup:
        _script(patches / name, "FILES = ['a']\n")
    _script(patches.parent / "outside.py", "FILES = ['a']\n")
    _script(patches.parent / "patches-evil" / "x.py", "FILES = ['a']\n")
    error = _error("PREFLIGHT:PATCH_PATH", patchfile.resolve_path, patches, "9", arg)
    assert needle in error.message


def test_absolute_path_outside_patches_is_rejected(patches: Path) -> None:
    outside = _script(patches.parent / "outside.py", "FILES = ['a']\n")
    _error("PREFLIGHT:PATCH_PATH", patchfile.resolve_path, patches, "1", str(outside))


def test_symlink_in_patches_pointing_outside_is_rejected(patches: Path) -> None:
    outside = _script(patches.parent / "outside.py", "FILES = ['a']\n")
    (patches / "evil.py").symlink_to(outside)
    _error("PREFLIGHT:PATCH_PATH", patchfile.resolve_path, patches, "1", "evil.py")
    _error("PREFLIGHT:PATCH_PATH", patchfile.resolve_path, patches, "1", str(patches / "evil.py"))


def test_default_patch_that_is_a_symlink_outside_is_rejected(patches: Path) -> None:
    outside = _script(patches.parent / "outside.py", "FILES = ['a']\n")
    (patches / "issue_4.py").symlink_to(outside)
    _error("PREFLIGHT:PATCH_PATH", patchfile.resolve_path, patches, "4", None)


def test_symlinked_patches_directory_still_confines(tmp_path: Path) -> None:
    real = tmp_path / "real_patches"
    script = _script(real / "fix.py", "FILES = ['a']\n")
    outside = _script(tmp_path / "outside.py", "FILES = ['a']\n")
    link = tmp_path / "live" / "patches"
    link.parent.mkdir()
    link.symlink_to(real)
    assert patchfile.resolve_path(link, "1", "fix.py") == script.resolve()
    _error("PREFLIGHT:PATCH_PATH", patchfile.resolve_path, link, "1", str(outside))


# --- unit: ASCII and syntax -----------------------------------------------------------------


def test_check_ascii_names_line_column_and_byte(tmp_path: Path) -> None:
    data = b"FILES = ['a']\n# ok\nx = 'caf\xc3\xa9'\n"
    error = _error("PREFLIGHT:PATCH_ASCII", patchfile.check_ascii, tmp_path / "p.py", data)
    assert "p.py:3:9:" in error.message
    assert "0xc3" in error.message
    assert "ascii_only_patch" in error.message


def test_check_ascii_accepts_exactly_the_ascii_bytes(tmp_path: Path) -> None:
    patchfile.check_ascii(tmp_path / "p.py", bytes(range(0x80)))  # every ASCII byte passes
    for byte in (0x80, 0xFF):
        with pytest.raises(Refusal):
            patchfile.check_ascii(tmp_path / "p.py", b"FILES = []\n" + bytes([byte]))


@pytest.mark.parametrize(
    "data",
    [b"FILES = ['a'\n", b"FILES = ['a']\ndef f(:\n", b"FILES = ['a']\n\tif x:\n  y\n"],
)
def test_syntax_error_is_patch_syntax(tmp_path: Path, data: bytes) -> None:
    error = _error("PREFLIGHT:PATCH_SYNTAX", patchfile.read_script_files, tmp_path / "p.py", data)
    assert "syntax error" in error.message


def test_invalid_utf8_is_patch_syntax(tmp_path: Path) -> None:
    data = b"FILES = ['a']\nx = '\xff\xfe'\n"
    error = _error("PREFLIGHT:PATCH_SYNTAX", patchfile.read_script_files, tmp_path / "p.py", data)
    assert "UTF-8" in error.message


def test_non_ascii_utf8_script_parses_when_allowed(tmp_path: Path) -> None:
    data = "FILES = ['docs/café.md']\n".encode()
    assert patchfile.read_script_files(tmp_path / "p.py", data) == ("docs/café.md",)


def test_utf8_bom_is_accepted_like_python_does(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfFILES = ['a.py']\n"
    assert patchfile.read_script_files(tmp_path / "p.py", data) == ("a.py",)
    _error("PREFLIGHT:PATCH_ASCII", patchfile.check_ascii, tmp_path / "p.py", data)


# --- unit: FILES ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("FILES = ['a.py']\n", ("a.py",)),
        ("FILES = ('a.py', 'b/c.py')\n", ("a.py", "b/c.py")),
        ("FILES: list[str] = ['a.py']\n", ("a.py",)),
        ("FILES: list[str]\nFILES = ['a.py']\n", ("a.py",)),
        ("FILES = [\n    'a.py',  # why\n    'b.py',\n]\n", ("a.py", "b.py")),
        ("FILES = ['./a//b.py']\n", ("a/b.py",)),
        ("FILES = ['a/./b.py', 'a/b.py', './a/b.py']\n", ("a/b.py",)),
        ("FILES = ['b.py', 'a.py', 'b.py']\n", ("b.py", "a.py")),
        ("FILES = ['docs/my file.md']\n", ("docs/my file.md",)),
        ("FILES = ['.gitignore', '.github/x.yml', 'a/.gitkeep']\n", None),
        ("def f():\n    FILES = ['x']\nFILES = ['a.py']\n", ("a.py",)),
        ("class C:\n    FILES = ['x']\nFILES = ['a.py']\n", ("a.py",)),
        ("FILES = ['a.py']\nFILES_EXTRA = ['b.py']\n", ("a.py",)),
    ],
)
def test_files_read_from_the_syntax_tree(
    tmp_path: Path, source: str, expected: tuple[str, ...] | None
) -> None:
    files = patchfile.read_script_files(tmp_path / "p.py", source.encode())
    if expected is None:
        expected = (".gitignore", ".github/x.yml", "a/.gitkeep")
    assert files == expected


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("X = ['a.py']\n", "no module-level FILES"),
        ("", "no module-level FILES"),
        ("if True:\n    FILES = ['a.py']\n", "no module-level FILES"),
        ("def f():\n    FILES = ['a.py']\n", "no module-level FILES"),
        ("FILES: list[str]\n", "no module-level FILES"),
        ("FILES = ['a.py']\nFILES = ['b.py']\n", "more than once"),
        ("FILES = ['a.py']\nFILES: list[str] = ['b.py']\n", "more than once"),
        ("FILES = sorted(['a.py'])\n", "literal list"),
        ("FILES = [p for p in ['a.py']]\n", "literal list"),
        ("FILES = ['a.py'] + ['b.py']\n", "literal list"),
        ("FILES = 'a.py'\n", "literal list"),
        ("FILES = {'a.py'}\n", "literal list"),
        ("FILES = {'a.py': 1}\n", "literal list"),
        ("FILES = None\n", "literal list"),
        ("FILES = ['a.py', 1]\n", "string literals"),
        ("FILES = ['a.py', None]\n", "string literals"),
        ("FILES = [b'a.py']\n", "string literals"),
        ("X = 'a.py'\nFILES = [X]\n", "string literals"),
        ("FILES = [f'{1}.py']\n", "string literals"),
        ("FILES = ['a' 'b.py', ['c.py']]\n", "string literals"),
        ("FILES = []\n", "empty"),
        ("FILES = ()\n", "empty"),
        ("FILES = ['']\n", "empty path"),
        ("FILES = ['   ']\n", "empty path"),
        ("FILES = ['a.py', '']\n", "empty path"),
        ("FILES = ['/etc/passwd']\n", "absolute"),
        ("FILES = ['C:/x.py']\n", "absolute"),
        ("FILES = ['../x.py']\n", ".."),
        ("FILES = ['src/../../x.py']\n", ".."),
        ("FILES = ['src/../x.py']\n", ".."),
        ("FILES = ['..\\\\x.py']\n", ".."),
        ("FILES = ['.']\n", "repository itself"),
        ("FILES = ['./']\n", "repository itself"),
        ("FILES = ['.git/config']\n", ".git"),
        ("FILES = ['.GIT/x']\n", ".git"),
        ("FILES = ['.git']\n", ".git"),
        ("FILES = ['sub/.git/hooks/pre-commit']\n", ".git"),
        ("FILES = ['.git./config']\n", ".git"),
        ("FILES = ['a\\x00b']\n", "NUL"),
    ],
)
def test_bad_files_is_patch_files(tmp_path: Path, source: str, needle: str) -> None:
    error = _error(
        "PREFLIGHT:PATCH_FILES", patchfile.read_script_files, tmp_path / "p.py", source.encode()
    )
    assert needle in error.message


def test_files_is_read_without_executing_the_script(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = (
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        f"FILES = ['a.py']\nraise SystemExit(3)\n"
    )
    assert patchfile.read_script_files(tmp_path / "p.py", source.encode()) == ("a.py",)
    bad = f"FILES = [open({str(marker)!r}, 'w').name]\n"
    _error("PREFLIGHT:PATCH_FILES", patchfile.read_script_files, tmp_path / "p.py", bad.encode())
    assert not marker.exists()


def test_load_detects_a_script_and_keeps_its_bytes(patches: Path) -> None:
    data = b"FILES = ['./a.py', 'a.py']\n"
    _script(patches / "issue_2.py", data)
    loaded = patchfile.load(patches, "2", None, ascii_only=True)
    assert loaded.kind is Kind.SCRIPT
    assert loaded.files == ("a.py",)
    assert loaded.data == data
    assert loaded.path == (patches / "issue_2.py").resolve()


def test_load_checks_ascii_only_when_asked(patches: Path) -> None:
    _script(patches / "issue_2.py", "FILES = ['a.py']\n# café\n".encode())
    _error("PREFLIGHT:PATCH_ASCII", patchfile.load, patches, "2", None, ascii_only=True)
    assert patchfile.load(patches, "2", None, ascii_only=False).files == ("a.py",)


def test_load_reports_ascii_before_invalid_utf8(patches: Path) -> None:
    _script(patches / "issue_2.py", b"FILES = ['a.py']\n# \xff\n")
    _error("PREFLIGHT:PATCH_ASCII", patchfile.load, patches, "2", None, ascii_only=True)
    _error("PREFLIGHT:PATCH_SYNTAX", patchfile.load, patches, "2", None, ascii_only=False)


def test_a_script_without_py_suffix_is_still_a_script(patches: Path) -> None:
    _script(patches / "fix.txt", "FILES = ['a.py']\n")
    loaded = patchfile.load(patches, "2", "fix.txt", ascii_only=True)
    assert loaded.kind is Kind.SCRIPT


# --- end to end: bad input changes nothing --------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "args", "needle"),
    [
        ((), ("11", "Fix"), "no patch given"),
        ((), ("11", "Fix", "missing.py"), "no such patch file"),
        ((), ("11", "Fix", "patches/missing.py"), "no such patch file"),
        (("issue_11.py", "issue_11.patch"), ("11", "Fix"), "ambiguous"),
        ((), ("11", "Fix", "../src/democalc/calc.py"), "must lie under"),
        ((), ("11", "Fix", "../x.py"), "must lie under"),
        ((), ("11", "Fix", "patches"), "must lie under"),
    ],
)
def test_run_with_bad_patch_path(
    project: Project, setup: tuple[str, ...], args: tuple[str, ...], needle: str
) -> None:
    for name in setup:
        project.patch(name, [CALC], EDIT_CALC)
    project.write("x.py", "FILES = ['README.md']\n")
    reason = _assert_fails(project, "PREFLIGHT:PATCH_PATH", *args, *NO_GATES)
    assert needle in reason


def test_run_with_absolute_path_outside_patches(project: Project) -> None:
    outside = project.base / "elsewhere.py"
    outside.write_text(f"FILES = [{CALC!r}]\n")
    _assert_fails(project, "PREFLIGHT:PATCH_PATH", "11", "Fix", str(outside), *NO_GATES)


def test_run_with_symlink_in_patches_pointing_outside(project: Project) -> None:
    outside = project.base / "elsewhere.py"
    outside.write_text(f"from pathlib import Path\nFILES = [{CALC!r}]\n{EDIT_CALC}")
    (project.patches / "issue_11.py").symlink_to(outside)
    _assert_fails(project, "PREFLIGHT:PATCH_PATH", "11", "Fix", *NO_GATES)
    _assert_fails(project, "PREFLIGHT:PATCH_PATH", "11", "Fix", "issue_11.py", *NO_GATES)
    assert "def sub" not in (project.live / CALC).read_text()


@pytest.mark.parametrize(
    "arg",
    [None, "issue_21.py", "patches/issue_21.py", "ABSOLUTE", "inbox/fix.py"],
)
def test_run_accepts_each_allowed_patch_spelling(project: Project, arg: str | None) -> None:
    name = "inbox/fix.py" if arg == "inbox/fix.py" else "issue_21.py"
    script = project.patch(name, [CALC], EDIT_CALC)
    before = project.head()
    args = [] if arg is None else [str(script) if arg == "ABSOLUTE" else arg]
    out = project.run("21", "Add sub", *args, *NO_GATES)
    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert project.git("rev-parse", "main^") == before
    assert project.origin_head() == project.head()
    assert "def sub" in (project.live / CALC).read_text()


def test_run_from_a_subdirectory_resolves_patch_under_patches(project: Project) -> None:
    project.patch("issue_22.py", [CALC], EDIT_CALC)
    out = project.run("22", "Add sub", "issue_22.py", *NO_GATES, cwd=project.live / "src")
    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"


@pytest.mark.parametrize(
    "header",
    [
        "X = 1\n",
        "FILES = sorted(['README.md'])\n",
        "FILES = ['README.md', 1]\n",
        "FILES = []\n",
        "FILES = ['']\n",
        "FILES = ['/etc/hostname']\n",
        "FILES = ['../outside.txt']\n",
        "FILES = ['.git/config']\n",
        "FILES = ['.GIT/x']\n",
        "FILES = ['.git/hooks/pre-commit', 'README.md']\n",
        "FILES = ['README.md']\nFILES = ['src/democalc/calc.py']\n",
        "if True:\n    FILES = ['README.md']\n",
    ],
)
def test_run_with_bad_files(project: Project, header: str) -> None:
    project.patch("issue_12.py", header, "Path('README.md').write_text('changed\\n')\n")
    _assert_fails(project, "PREFLIGHT:PATCH_FILES", "12", "Fix", *NO_GATES)
    assert (project.live / "README.md").read_text() != "changed\n"


def test_bad_files_is_found_without_running_the_script(project: Project) -> None:
    """Even with the sandbox off, a script whose FILES is bad never runs."""
    marker = project.base / "script_ran"
    body = f"Path({str(marker)!r}).write_text('ran')\n"
    project.patch("issue_13.py", "FILES = [str(Path('README.md'))]\n", body)
    _assert_fails(project, "PREFLIGHT:PATCH_FILES", "13", "Fix", "--unsafe-no-sandbox", *NO_GATES)
    assert not marker.exists()
    # The control: the same body with a good FILES does run and leaves the marker.
    project.patch("issue_14.py", ["README.md"], body)
    out = project.run("14", "Fix", "--unsafe-no-sandbox", *NO_GATES)
    assert out.result_line.startswith("RESULT: FAIL SCOPE:"), out.stdout + out.stderr
    assert marker.read_text() == "ran"


def test_run_with_syntax_error(project: Project) -> None:
    project.patch("issue_15.py", f"FILES = [{CALC!r}]\n", "def broken(:\n    pass\n")
    reason = _assert_fails(project, "PREFLIGHT:PATCH_SYNTAX", "15", "Fix", *NO_GATES)
    assert "syntax error" in reason


def test_run_with_invalid_utf8(project: Project) -> None:
    _script(project.patches / "issue_16.py", b"FILES = ['README.md']\n# \xff\xfe\n")
    _assert_fails(project, "PREFLIGHT:PATCH_ASCII", "16", "Fix", *NO_GATES)
    reason = _assert_fails(
        project,
        "PREFLIGHT:PATCH_SYNTAX",
        "16",
        "Fix",
        "--override",
        "ascii_only_patch=false",
        *NO_GATES,
    )
    assert "UTF-8" in reason


def test_run_with_non_ascii_byte(project: Project) -> None:
    _script(
        project.patches / "issue_17.py",
        b"from pathlib import Path\n"
        b"FILES = ['README.md']\n"
        b"Path('README.md').write_text('na\\u00efve\\n')  # na\xc3\xafve\n",
    )
    reason = _assert_fails(project, "PREFLIGHT:PATCH_ASCII", "17", "Fix", *NO_GATES)
    assert "issue_17.py:3:" in reason
    assert "0xc3" in reason


def test_non_ascii_script_runs_with_ascii_check_off(project: Project) -> None:
    before = project.head()
    _script(
        project.patches / "issue_18.py",
        b"from pathlib import Path\n"
        b"FILES = ['README.md']\n"
        b"Path('README.md').write_text('na\xc3\xafve\\n', encoding='utf-8')\n",
    )
    out = project.run("18", "Naive", "--override", "ascii_only_patch=false", *NO_GATES)
    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert project.git("rev-parse", "main^") == before
    assert (project.live / "README.md").read_text(encoding="utf-8") == "naïve\n"


def test_run_normalises_and_deduplicates_files(project: Project) -> None:
    before = project.head()
    project.patch(
        "issue_19.py", ["./src//democalc/calc.py", CALC, "src/./democalc/calc.py"], EDIT_CALC
    )
    out = project.run("19", "Add sub", "-k", *NO_GATES)
    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    files = [line.strip() for line in out.stdout.splitlines() if line.startswith("  ")]
    assert files == [f"M {CALC}"]
    assert project.git("diff", "--name-only", before, "main") == CALC
    meta = project.meta("19")
    assert meta["files"] == [CALC]


def test_run_does_not_read_files_from_a_non_module_level_block(project: Project) -> None:
    project.patch(
        "issue_20.py",
        "def declare():\n    FILES = ['README.md']\n    return FILES\n",
        "Path('README.md').write_text('x\\n')\n",
    )
    reason = _assert_fails(project, "PREFLIGHT:PATCH_FILES", "20", "Fix", *NO_GATES)
    assert "FILES" in reason


def test_bad_patch_leaves_user_edits_alone(project: Project) -> None:
    (project.live / "README.md").write_text("my local edit\n")
    project.write("notes.txt", "untracked\n")
    project.patch("issue_23.py", "FILES = ['../x']\n", "")
    _assert_fails(project, "PREFLIGHT:PATCH_FILES", "23", "Fix", *NO_GATES)
    assert (project.live / "README.md").read_text() == "my local edit\n"
    assert (project.live / "notes.txt").read_text() == "untracked\n"


def test_patch_inbox_is_kept_out_of_git_after_a_failed_preflight(project: Project) -> None:
    project.patch("issue_24.py", "FILES = []\n", "")
    _assert_fails(project, "PREFLIGHT:PATCH_FILES", "24", "Fix", *NO_GATES)
    assert "patches/" not in project.status()
    assert os.path.islink(project.patches / "am_patch.log")
