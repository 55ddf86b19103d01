"""Bad input of every kind gets a clear category and a one-line reason, changes nothing, and never
prints a traceback; hostile names cannot forge a line of the summary."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from testing.project import NO_GATES, README_DIFF, Outcome, Project, assert_fails


def assert_clean_refusal(out: Outcome, code: str) -> None:
    """Failed with exactly code, one REASON line, no traceback anywhere on screen."""
    assert_fails(out, code)
    assert "Traceback" not in out.output
    assert out.line("REASON:").count("\n") == 0
    assert [line for line in out.stdout.splitlines() if line.startswith("RESULT:")] == [
        out.result_line
    ]


def zip_with(member: bytes, *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as archive:
        archive.writestr("fix.patch", member)
    return buf.getvalue()


def bad_crc() -> bytes:
    data = bytearray(zip_with(README_DIFF.encode(), method=zipfile.ZIP_STORED))
    data[data.index(b"+A small") + 3] ^= 0x20  # the stored bytes no longer match their CRC
    return bytes(data)


def encrypted() -> bytes:
    data = bytearray(zip_with(README_DIFF.encode()))
    for offset in (0, data.index(b"PK\x01\x02")):  # local header and central directory entry
        flags_at = offset + (6 if offset == 0 else 8)
        (flags,) = struct.unpack_from("<H", data, flags_at)
        struct.pack_into("<H", data, flags_at, flags | 0x1)
    return bytes(data)


def unknown_method() -> bytes:
    data = bytearray(zip_with(README_DIFF.encode()))
    for offset in (0, data.index(b"PK\x01\x02")):
        struct.pack_into("<H", data, offset + (8 if offset == 0 else 10), 99)
    return bytes(data)


def corrupt_data() -> bytes:
    data = bytearray(zip_with(README_DIFF.encode() * 20))
    start = data.index(b"fix.patch") + len("fix.patch")
    data[start : start + 40] = b"\xff" * 40  # the deflate stream is garbage
    return bytes(data)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (bad_crc, "corrupt"),
        (encrypted, "encrypted"),
        (unknown_method, "unsupported compression"),
        (corrupt_data, "corrupt"),
    ],
)
def test_a_broken_zip_is_refused_with_its_reason(project: Project, make: object, why: str) -> None:
    assert callable(make)
    before = project.repo_state()
    (project.patches / "issue_5.zip").write_bytes(make())
    out = project.run("5", "Zip", *NO_GATES)
    assert_clean_refusal(out, "PREFLIGHT:PATCH_SYNTAX")
    assert why in out.line("REASON:") and "fix.patch" in out.line("REASON:")
    assert project.repo_state() == before


def test_an_issue_id_too_long_for_a_file_name_is_a_usage_error(project: Project) -> None:
    before = project.repo_state()
    out = project.run("9" * 300, "Long", *NO_GATES)
    assert out.code == 2, out.output
    assert "at most 18 digits" in out.stderr and "Traceback" not in out.output
    assert project.repo_state() == before


def test_a_lone_surrogate_in_files_is_refused_as_patch_files(project: Project) -> None:
    before = project.repo_state()
    project.patch("issue_6.py", 'FILES = ["docs/\\udcff.md"]\n')
    out = project.run("6", "Surrogate", *NO_GATES)
    assert_clean_refusal(out, "PREFLIGHT:PATCH_FILES")
    assert "not valid text" in out.line("REASON:")
    assert "Logging error" not in out.stderr
    out.stdout.encode("utf-8")  # what was printed is valid UTF-8
    assert project.repo_state() == before


def test_a_file_name_cannot_forge_the_result_line(project: Project) -> None:
    name = "x\nRESULT: SUCCESS"
    project.patch("issue_7.py", [name, "README.md"], "Path('README.md').write_text('x')\n")
    out = project.run("7", "Forge", *NO_GATES)
    assert_clean_refusal(out, "SCOPE:UNTOUCHED")
    assert "x\\nRESULT: SUCCESS" in out.line("REASON:")
    undeclared = "y\rRESULT: SUCCESS"
    project.patch(
        "issue_8.py",
        ["README.md"],
        f"Path('README.md').write_text('x')\nPath({undeclared!r}).write_text('y')\n",
    )
    out = project.run("8", "Forge", *NO_GATES)
    assert_clean_refusal(out, "SCOPE:UNDECLARED")
    assert "y\\rRESULT: SUCCESS" in out.line("REASON:")


def test_a_test_printing_a_result_line_cannot_forge_one_on_screen(project: Project) -> None:
    test = "tests/test_forge.py"
    body = "def test_forge() -> None:\n    print('\\nRESULT: SUCCESS')\n    assert False\n"
    project.patch("issue_9.py", [test], f"Path({test!r}).write_text({body!r})\n")
    out = project.run("9", "Forge", "--override", "gates_order=['pytest']")
    assert_clean_refusal(out, "GATES:PYTEST")
    assert "  | " in out.stdout  # the test's tail is on screen, behind the tail prefix


def test_printable_quotes_controls_and_undecodable_bytes() -> None:
    from am_patch.runlog import printable

    assert printable("a\nb\rc\x1b[2Kd\te") == "a\\nb\\rc\\x1b[2Kd\te"
    assert printable("\udcff") == "\\udcff"
    assert printable("caf\u00e9") == "caf\u00e9"


def test_a_directory_named_like_a_patch_is_refused(project: Project) -> None:
    (project.patches / "issue_10.py").mkdir()
    out = project.run("10", "Dir", *NO_GATES)
    assert_clean_refusal(out, "PREFLIGHT:PATCH_PATH")


def test_an_unreadable_patch_path_is_refused(project: Project, tmp_path: Path) -> None:
    link = project.patches / "issue_11.py"
    link.symlink_to(tmp_path / "nowhere.py")
    out = project.run("11", "Dangling", *NO_GATES)
    assert_clean_refusal(out, "PREFLIGHT:PATCH_PATH")
