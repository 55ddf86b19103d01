"""Unified diffs and zips of them end to end: made by git, landed exactly, refused when unsafe."""

from __future__ import annotations

import io
import itertools
import stat
import subprocess
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from testing.files import file_states
from testing.project import CALC, NO_GATES, Outcome, Project

NOTES = "docs/notes.txt"
Change = Callable[[Path], None]


def git_bytes(project: Project, *args: str) -> bytes:
    """git output byte for byte: a diff must keep its trailing newline and binary hunks."""
    done = subprocess.run(["git", *args], cwd=project.live, capture_output=True, check=True)
    return done.stdout


def tree(project: Project, rev: str, git_dir: Path | None = None) -> str:
    where = ("--git-dir", str(git_dir)) if git_dir else ()
    return project.git(*where, "rev-parse", f"{rev}^{{tree}}")


def diffs_of(project: Project, *changes: Change, binary: bool = False) -> tuple[list[bytes], str]:
    """Make each change in turn in live with `git diff`; the diffs and the final tree. Live is
    left as it was."""
    trees = [tree(project, "HEAD")]
    for change in changes:
        change(project.live)
        project.git("add", "-A")
        trees.append(project.git("write-tree"))
    project.git("reset", "-q", "--hard")
    flags = ["--binary"] if binary else []
    diffs = [git_bytes(project, "diff", "-M", *flags, a, b) for a, b in itertools.pairwise(trees)]
    return diffs, trees[-1]


def format_patch_of(project: Project, change: Change) -> tuple[bytes, str]:
    """Commit change on a scratch branch and `git format-patch` it; live is back on main."""
    project.git("checkout", "-q", "-b", "scratch")
    change(project.live)
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "Scratch change")
    data = git_bytes(project, "format-patch", "-1", "--stdout", "-M")
    expected = tree(project, "HEAD")
    project.git("checkout", "-q", "main")
    project.git("branch", "-q", "-D", "scratch")
    return data, expected


def failure_reason(out: Outcome, code: str) -> str:
    """The REASON: line of a run that failed with code."""
    assert out.code == 1
    assert out.result_line == f"RESULT: FAIL {code}", out.stdout + out.stderr
    return out.line("REASON:")


def assert_landed(project: Project, out: Outcome, expected_tree: str, before: str) -> None:
    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert project.git("rev-parse", "HEAD^") == before
    assert tree(project, "HEAD") == expected_tree
    assert project.origin_head() == project.head()
    assert tree(project, "main", project.origin) == expected_tree
    assert project.status() == "", "the live files must match the landed commit"


# --- the kinds of change, by git diff and by git format-patch ----------------------------------


def new_file(root: Path) -> None:
    (root / "src/democalc/extra.py").write_text('"""Extra."""\n\nANSWER = 42\n')


def deletion(root: Path) -> None:
    (root / "README.md").unlink()


def rename(root: Path) -> None:
    (root / "docs").mkdir()
    (root / "README.md").rename(root / "docs/README.md")


def binary(root: Path) -> None:
    (root / "src/democalc/logo.bin").write_bytes(bytes(range(256)) * 8 + b"\x00\xff")


def mode_change(root: Path) -> None:
    calc = root / "src/democalc/calc.py"
    calc.chmod(0o755)


CHANGES: dict[str, Change] = {
    "new_file": new_file,
    "deletion": deletion,
    "rename": rename,
    "binary": binary,
    "mode_change": mode_change,
}


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_git_diff_lands_exactly(project: Project, kind: str) -> None:
    before = project.head()
    [data], expected = diffs_of(project, CHANGES[kind], binary=kind == "binary")
    (project.patches / "issue_5.patch").write_bytes(data)

    out = project.run("5", f"Diff {kind}", *NO_GATES)

    assert_landed(project, out, expected, before)
    assert project.git("log", "-1", "--format=%s") == f"Issue 5: Diff {kind}"
    assert "applied exactly" in project.log_of(out)
    assert (project.patches / "successful" / "issue_5.patch").read_bytes() == data


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_format_patch_lands_exactly(project: Project, kind: str) -> None:
    before = project.head()
    data, expected = format_patch_of(project, CHANGES[kind])
    (project.patches / "issue_6.diff").write_bytes(data)

    out = project.run("6", f"Mail {kind}", *NO_GATES)

    assert_landed(project, out, expected, before)
    assert project.git("log", "-1", "--format=%s") == f"Issue 6: Mail {kind}"


def test_the_files_a_diff_touches_are_its_files(project: Project) -> None:
    def several(root: Path) -> None:
        rename(root)
        new_file(root)
        (root / "tests/test_calc.py").unlink()

    [data], _ = diffs_of(project, several)
    (project.patches / "issue_5.patch").write_bytes(data)

    out = project.run("5", "Several", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert "4 file(s) declared" in out.stdout
    files = sorted(line.split() for line in out.stdout.splitlines() if line.startswith("  "))
    assert files == [
        ["A", "docs/README.md"],
        ["A", "src/democalc/extra.py"],
        ["D", "README.md"],
        ["D", "tests/test_calc.py"],
    ]


def test_mode_change_makes_the_live_file_executable(project: Project) -> None:
    [data], _ = diffs_of(project, mode_change)
    (project.patches / "issue_5.patch").write_bytes(data)

    out = project.run("5", "Executable", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert (project.live / "src/democalc/calc.py").stat().st_mode & stat.S_IXUSR
    listing = project.git("--git-dir", str(project.origin), "ls-tree", "main", CALC)
    assert listing.startswith("100755 blob"), listing


def test_binary_file_content_is_exact_in_live(project: Project) -> None:
    [data], _ = diffs_of(project, binary, binary=True)
    (project.patches / "issue_5.patch").write_bytes(data)

    out = project.run("5", "Logo", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    logo = (project.live / "src/democalc/logo.bin").read_bytes()
    assert logo == bytes(range(256)) * 8 + b"\x00\xff"


# --- detection by content -----------------------------------------------------------------------


def test_a_git_diff_without_a_diff_suffix_is_detected_by_content(project: Project) -> None:
    before = project.head()
    [data], expected = diffs_of(project, new_file)
    (project.patches / "issue_5.txt").write_bytes(data)

    out = project.run("5", "Detected", "issue_5.txt", *NO_GATES)

    assert_landed(project, out, expected, before)
    assert "[preflight] diff issue_5.txt" in out.stdout


def test_a_plain_p1_diff_without_git_headers_applies(project: Project) -> None:
    before = project.head()
    data = (
        b"--- a/README.md\n"
        b"+++ b/README.md\n"
        b"@@ -1,3 +1,3 @@\n"
        b" # democalc\n"
        b" \n"
        b"-A tiny calculator.\n"
        b"+A tiny calculator, patched by plain diff.\n"
    )
    (project.patches / "issue_5.txt").write_bytes(data)

    out = project.run("5", "Plain", "patches/issue_5.txt", *NO_GATES)

    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert project.git("rev-parse", "HEAD^") == before
    assert (project.live / "README.md").read_text().endswith("patched by plain diff.\n")
    assert project.origin_head() == project.head()


# --- stale context ------------------------------------------------------------------------------

NOTES_LINES = [f"line {n}\n" for n in range(1, 21)]


def edit_line(number: int, text: str) -> Change:
    def change(root: Path) -> None:
        lines = (root / NOTES).read_text().splitlines(keepends=True)
        lines[number - 1] = text + "\n"
        (root / NOTES).write_text("".join(lines))

    return change


def with_notes(project: Project) -> None:
    project.write(NOTES, "".join(NOTES_LINES))
    project.commit_all("Add notes")


def stale_patch(project: Project, main_edit: Change) -> str:
    """Write patches/issue_5.patch setting line 10 of the notes, then let main_edit move main;
    main's new head."""
    with_notes(project)
    [data], _ = diffs_of(project, edit_line(10, "line 10, patched"))
    main_edit(project.live)
    moved = project.commit_all("Main moves")
    (project.patches / "issue_5.patch").write_bytes(data)
    return moved


def first_attempt(project: Project, change: Change) -> None:
    """Open issue 5's workspace (a failed run keeps it) and make change there by hand."""
    project.patch("issue_5.py", [NOTES], "raise SystemExit(1)\n")
    out = project.run("5", "First", *NO_GATES)
    assert out.result_line == "RESULT: FAIL PATCH:EXEC", out.stdout + out.stderr
    change(project.workspace_repo("5"))


def assert_merged(project: Project, out: Outcome, parent: str, line_12: str) -> None:
    """The run landed line 10 patched on parent, by --3way, line 12 reading line_12."""
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert "applied with --3way" in project.log_of(out)
    assert project.git("rev-parse", "HEAD^") == parent
    notes = (project.live / NOTES).read_text().splitlines()
    assert notes[9] == "line 10, patched"
    assert notes[11] == line_12
    assert project.origin_head() == project.head()
    assert project.status() == ""


def test_stale_context_applies_with_3way_and_the_log_says_so(project: Project) -> None:
    moved = stale_patch(project, edit_line(12, "line 12, changed on main"))

    out = project.run("5", "Stale", *NO_GATES)

    assert_merged(project, out, moved, "line 12, changed on main")
    assert "applied exactly" not in project.log_of(out)


def test_stale_context_merges_with_3way_in_a_workspace_holding_earlier_changes(
    project: Project,
) -> None:
    with_notes(project)
    base = project.head()
    first_attempt(project, edit_line(12, "line 12, first attempt"))
    [data], _ = diffs_of(project, edit_line(10, "line 10, patched"))
    (project.patches / "issue_5.patch").write_bytes(data)

    out = project.run("5", "Both", *NO_GATES)

    assert_merged(project, out, base, "line 12, first attempt")


def test_stale_context_git_cannot_merge_is_patch_apply_and_leaves_workspace(
    project: Project,
) -> None:
    with_notes(project)
    [data], _ = diffs_of(project, edit_line(10, "line 10, patched"))
    # The workspace already holds another version of line 10, and an untracked file.
    first_attempt(project, edit_line(10, "line 10, first attempt"))
    repo = project.workspace_repo("5")
    (repo / "scratch.txt").write_text("mine\n")
    state = file_states(repo)
    status = project.status(cwd=repo)
    before = project.head()
    (project.patches / "issue_5.patch").write_bytes(data)

    out = project.run("5", "Stale", *NO_GATES)

    reason = failure_reason(out, "PATCH:APPLY")
    assert NOTES in reason
    assert "line 7" in reason, reason
    assert file_states(repo) == state
    assert project.status(cwd=repo) == status
    assert project.head() == before
    assert project.origin_head() == before


def test_stale_context_conflicting_with_main_is_patch_apply(project: Project) -> None:
    moved = stale_patch(project, edit_line(10, "line 10, changed on main"))

    out = project.run("5", "Conflict", *NO_GATES)

    assert f"{NOTES} line 7" in failure_reason(out, "PATCH:APPLY")
    repo = project.workspace_repo("5")
    assert project.status(cwd=repo) == ""
    assert (repo / NOTES).read_text() == (project.live / NOTES).read_text()
    assert project.head() == moved
    assert project.origin_head() == moved


def test_stale_context_without_the_preimage_blob_is_patch_apply(project: Project) -> None:
    with_notes(project)
    data = (
        f"diff --git a/{NOTES} b/{NOTES}\n"
        "index 1234567..89abcde 100644\n"
        f"--- a/{NOTES}\n"
        f"+++ b/{NOTES}\n"
        "@@ -8,5 +8,5 @@\n"
        " line 8\n"
        " line 9\n"
        "-line 10 as someone else had it\n"
        "+line 10, patched\n"
        " line 11\n"
        " line 12\n"
    ).encode()
    (project.patches / "issue_5.patch").write_bytes(data)
    before = project.head()

    out = project.run("5", "Stale", *NO_GATES)

    reason = failure_reason(out, "PATCH:APPLY")
    assert NOTES in reason
    assert "line 8" in reason, reason
    repo = project.workspace_repo("5")
    assert project.status(cwd=repo) == ""
    assert (repo / NOTES).read_text() == "".join(NOTES_LINES)
    assert project.head() == before
    assert (project.patches / "unsuccessful" / "issue_5.patch").is_file()


# --- paths that leave the repository ------------------------------------------------------------


def escaping_diff(path: str) -> bytes:
    return (
        f"diff --git a/{path} b/{path}\n"
        "new file mode 100644\n"
        "--- /dev/null\n"
        f"+++ b/{path}\n"
        "@@ -0,0 +1 @@\n"
        "+owned\n"
    ).encode()


@pytest.mark.parametrize("path", ["../x", "src/../../x", ".git/hooks/post-commit", ".git/config"])
def test_a_diff_leaving_the_repo_is_refused_before_anything_applies(
    project: Project, path: str
) -> None:
    before = project.head()
    (project.patches / "issue_5.patch").write_bytes(escaping_diff(path))

    out = project.run("5", "Escape", *NO_GATES)

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL PREFLIGHT:PATCH_FILES", out.stdout + out.stderr
    assert not (project.base / "x").exists()
    assert not (project.live / "x").exists()
    assert not (project.live / ".git/hooks/post-commit").exists()
    assert not project.workspace_dir("5").exists()
    assert project.head() == before
    assert project.status() == ""


# --- zips -----------------------------------------------------------------------------------------


def write_zip(path: Path, members: Sequence[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def extend_extra(root: Path) -> None:
    extra = root / "src/democalc/extra.py"
    extra.write_text(extra.read_text() + "QUESTION = 'six times nine'\n")


def test_zip_members_apply_in_name_order(project: Project) -> None:
    before = project.head()
    (first, second), expected = diffs_of(project, new_file, extend_extra)
    # Written out of order: the runner must sort by name, the second needs the first.
    write_zip(
        project.patches / "issue_7.zip", [("02_extend.patch", second), ("01_new.diff", first)]
    )

    out = project.run("7", "Zip", *NO_GATES)

    assert_landed(project, out, expected, before)
    log = project.log_of(out)
    assert log.index("01_new.diff: applied exactly") < log.index("02_extend.patch: applied")
    assert (project.patches / "successful" / "issue_7.zip").is_file()


def test_zip_with_one_bad_member_applies_none(project: Project) -> None:
    with_notes(project)
    (first, second), _ = diffs_of(project, new_file, edit_line(10, "line 10, patched"))
    [bad], _ = diffs_of(project, edit_line(3, "line 3, patched"))
    bad = bad.replace(b"-line 3\n", b"-line 3 as it never was\n")
    write_zip(
        project.patches / "issue_7.zip",
        [("01_new.patch", first), ("02_bad.patch", bad), ("03_notes.patch", second)],
    )
    before = project.head()

    out = project.run("7", "Zip", *NO_GATES)

    assert "02_bad.patch" in failure_reason(out, "PATCH:APPLY")
    repo = project.workspace_repo("7")
    assert project.status(cwd=repo) == ""
    assert not (repo / "src/democalc/extra.py").exists()
    assert (repo / NOTES).read_text() == "".join(NOTES_LINES)
    assert project.head() == before
    assert project.origin_head() == before
    failure = project.patches / "patched_issue7_v01.zip"
    with zipfile.ZipFile(failure) as zf:
        names = zf.namelist()
        assert zf.read("failed_member/02_bad.patch") == bad
    assert any(n.startswith("logs/") and n.endswith(".log") for n in names), names
    assert not any(n.endswith(".zip") for n in names), names
    assert (project.patches / "unsuccessful" / "issue_7.zip").is_file()


def symlink_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def oversized_member() -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo("02_big.patch")
    info.compress_type = zipfile.ZIP_DEFLATED
    return info, bytes(33 * 1024 * 1024)  # zeros: a few dozen KiB once compressed


BAD_MEMBERS: dict[str, Callable[[], tuple[str | zipfile.ZipInfo, bytes]]] = {
    "zip_slip": lambda: ("../evil.patch", escaping_diff("evil.txt")),
    "zip_slip_nested": lambda: ("sub/../../evil.patch", escaping_diff("evil.txt")),
    "absolute": lambda: ("/tmp/evil.patch", escaping_diff("evil.txt")),
    "symlink": lambda: (symlink_member("02_link.patch"), b"../../../etc/passwd"),
    "oversized": oversized_member,
    "not_a_diff": lambda: ("02_notes.txt", b"just some notes\n"),
}


def test_zip_member_that_is_no_diff_inside_is_refused(project: Project) -> None:
    [good], _ = diffs_of(project, new_file)
    members = [("01_new.patch", good), ("02_notes.patch", b"just some notes\n")]
    write_zip(project.patches / "issue_7.zip", members)
    before = project.head()

    out = project.run("7", "Zip", *NO_GATES)

    assert out.code == 1
    assert out.result_line.startswith("RESULT: FAIL PREFLIGHT:"), out.stdout + out.stderr
    assert "02_notes.patch" in out.line("REASON:")
    assert not project.workspace_dir("7").exists()
    assert project.head() == before
    assert project.status() == ""


@pytest.mark.parametrize("kind", sorted(BAD_MEMBERS))
def test_zip_with_an_unsafe_member_is_refused_before_anything_applies(
    project: Project, kind: str
) -> None:
    [good], _ = diffs_of(project, new_file)
    write_zip(project.patches / "issue_7.zip", [("01_new.patch", good), BAD_MEMBERS[kind]()])
    before = project.head()

    out = project.run("7", "Zip", *NO_GATES)

    assert out.code == 1
    assert out.result_line == "RESULT: FAIL PREFLIGHT:PATCH_FILES", out.stdout + out.stderr
    assert not project.workspace_dir("7").exists()
    assert not (project.live / "src/democalc/extra.py").exists()
    assert not (project.live / "evil.patch").exists()
    assert not (project.base / "evil.patch").exists()
    assert project.head() == before
    assert project.origin_head() == before
    assert project.status() == ""
