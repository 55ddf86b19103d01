"""Scope end to end: what a patch may change, and that exactly the promotion set lands."""

from __future__ import annotations

import stat

from testing.project import CALC, NO_GATES, Outcome, Project

APPEND_SUB = """
p = Path("src/democalc/calc.py")
p.write_text(p.read_text() + "\\n\\ndef sub(a: int, b: int) -> int:\\n    return a - b\\n")
"""


def committed_files(project: Project) -> list[tuple[str, str]]:
    """(status, path) of the last commit, as git itself reports them."""
    raw = project.git("-c", "core.quotePath=false", "diff", "--name-status", "-z", "HEAD~1", "HEAD")
    fields = raw.strip("\0").split("\0")
    return list(zip(fields[0::2], fields[1::2], strict=True))


def assert_landed_unchanged(project: Project, before: str, out: Outcome) -> None:
    assert out.code == 1, out.stdout + out.stderr
    assert project.head() == before, "a failed run moved live main"
    assert project.origin_head() == before, "a failed run pushed"
    assert project.status() == ""


def test_undeclared_file_fails_and_a_promotes_it(project: Project) -> None:
    before = project.head()
    body = APPEND_SUB + 'Path("notes.txt").write_text("stray\\n")\n'
    project.patch("issue_11.py", [CALC], body)

    out = project.run("11", "Add sub", *NO_GATES)
    assert out.result_line == "RESULT: FAIL SCOPE:UNDECLARED"
    assert "notes.txt" in out.line("REASON:")
    assert_landed_unchanged(project, before, out)

    project.patch("issue_11.py", [CALC], body)
    out = project.run("11", "Add sub", "-a", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert committed_files(project) == [("A", "notes.txt"), ("M", CALC)]
    assert (project.live / "notes.txt").read_text() == "stray\n"
    assert project.origin_head() == project.head() != before


def test_untouched_declared_file_fails_and_t_allows_it(project: Project) -> None:
    before = project.head()
    project.patch("issue_12.py", [CALC, "README.md"], APPEND_SUB)

    out = project.run("12", "Add sub", *NO_GATES)
    assert out.result_line == "RESULT: FAIL SCOPE:UNTOUCHED"
    assert "README.md" in out.line("REASON:")
    assert_landed_unchanged(project, before, out)

    project.patch("issue_12.py", [CALC, "README.md"], APPEND_SUB)
    out = project.run("12", "Add sub", "-t", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert committed_files(project) == [("M", CALC)]


def test_noop_fails_and_n_succeeds_without_a_commit(project: Project) -> None:
    before = project.head()
    rewrite_same = 'p = Path("README.md")\np.write_text(p.read_text())\n'
    project.patch("issue_13.py", ["README.md"], rewrite_same)

    out = project.run("13", "Nothing", *NO_GATES)
    assert out.result_line == "RESULT: FAIL SCOPE:NOOP"
    assert_landed_unchanged(project, before, out)

    project.patch("issue_13.py", ["README.md"], rewrite_same)
    out = project.run("13", "Nothing", "-n", *NO_GATES)
    assert out.code == 0, out.stdout + out.stderr
    assert out.result_line == "RESULT: SUCCESS"
    assert out.line("COMMIT:") == "COMMIT: -"
    assert project.head() == before
    assert project.origin_head() == before
    assert project.status() == ""


def test_blessed_gate_output_is_promoted_without_a(project: Project) -> None:
    junit = "audit/results/pytest_junit.xml"
    body = APPEND_SUB + (
        'Path("audit/results").mkdir(parents=True)\n'
        f'Path("{junit}").write_text("<testsuites/>\\n")\n'
    )
    project.patch("issue_14.py", [CALC], body)

    out = project.run("14", "Add sub", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr
    assert committed_files(project) == [("A", junit), ("M", CALC)]
    assert project.git("--git-dir", str(project.origin), "show", f"main:{junit}") == "<testsuites/>"


def test_every_kind_of_change_lands_exactly(project: Project) -> None:
    project.write("old.txt", "to be deleted\n")
    project.write("scripts/run.sh", "#!/bin/sh\necho hi\n")
    before = project.commit_all("Files to change")
    binary = bytes(range(256)) * 4 + b"\0\r\n\xff"
    spaced = "docs/release notes.txt"
    accented = "data/caf\u00e9 \u00fcber.txt"
    header = f'FILES = ["old.txt", "scripts/run.sh", "{spaced}", "data/caf\\u00e9 \\u00fcber.txt", '
    header += '"assets/blob.bin"]\n'
    body = f"""
    import os
    os.remove("old.txt")
    os.chmod("scripts/run.sh", 0o755)
    Path("docs").mkdir()
    Path("{spaced}").write_text("with spaces\\n")
    Path("data").mkdir()
    Path("data/caf\\u00e9 \\u00fcber.txt").write_text("gr\\u00fc\\u00dfe\\n", encoding="utf-8")
    Path("assets").mkdir()
    Path("assets/blob.bin").write_bytes({binary!r})
    """
    project.patch("issue_15.py", header, body)

    out = project.run("15", "Every kind", *NO_GATES)
    assert out.result_line == "RESULT: SUCCESS", out.stdout + out.stderr

    expected = {
        ("D", "old.txt"),
        ("M", "scripts/run.sh"),
        ("A", spaced),
        ("A", accented),
        ("A", "assets/blob.bin"),
    }
    assert set(committed_files(project)) == expected
    assert sorted(out.files) == sorted(committed_files(project))
    assert project.git("rev-parse", "HEAD~1") == before

    live = project.live
    assert not (live / "old.txt").exists()
    assert (live / "scripts/run.sh").stat().st_mode & stat.S_IXUSR
    assert (live / spaced).read_text() == "with spaces\n"
    assert (live / accented).read_text(encoding="utf-8") == "gr\u00fc\u00dfe\n"
    assert (live / "assets/blob.bin").read_bytes() == binary
    assert project.status() == ""

    assert project.origin_head() == project.head()
    listing = project.git(
        "--git-dir", str(project.origin), "-c", "core.quotePath=false", "ls-tree", "-r", "main"
    )
    modes = {line.split("\t", 1)[1]: line.split()[0] for line in listing.splitlines()}
    assert "old.txt" not in modes
    assert modes["scripts/run.sh"] == "100755"
    assert modes[accented] == modes[spaced] == modes["assets/blob.bin"] == "100644"
    blob = project.git("--git-dir", str(project.origin), "rev-parse", "main:assets/blob.bin")
    assert blob == project.git("hash-object", "assets/blob.bin")
