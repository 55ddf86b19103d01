"""Patch input: where it may live, what kind it is, and the FILES it declares."""

from __future__ import annotations

import ast
import codecs
import io
import lzma
import posixpath
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from am_patch import git
from am_patch.errors import Category, Refusal
from am_patch.repo import RepoPath, is_git_component

SUFFIXES = (".py", ".patch", ".diff", ".zip")
DIFF_SUFFIXES = (".patch", ".diff")
MAX_MEMBER_BYTES = 32 * 1024 * 1024
MAX_MEMBERS = 500
MESSAGE_MEMBER = "COMMIT_MESSAGE.txt"  # a zip's commit message (--batch), never applied
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)
_SUPPORTED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


class Kind(StrEnum):
    SCRIPT = "script"
    DIFF = "diff"
    ZIP = "zip"


@dataclass(frozen=True, slots=True, kw_only=True)
class Diff:
    """One unified diff: a .patch/.diff file or a member of a zip."""

    name: str
    data: bytes
    files: tuple[RepoPath, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchInput:
    path: Path
    kind: Kind
    files: tuple[RepoPath, ...]
    data: bytes
    diffs: tuple[Diff, ...] = field(default=())


def _path_error(message: str) -> Refusal:
    return Refusal(Category.PATCH_PATH, message)


def _files_error(message: str) -> Refusal:
    return Refusal(Category.PATCH_FILES, message)


def resolve_path(patches_dir: Path, issue_id: str, arg: str | None) -> Path:
    """The patch file for this run: under patches/ after resolving symlinks, or PATCH_PATH."""
    root = patches_dir.resolve()
    if arg is None:
        found = [patches_dir / f"issue_{issue_id}{s}" for s in SUFFIXES]
        found = [p for p in found if p.is_file()]
        if not found:
            raise _path_error(
                f"no patch given and no patches/issue_{issue_id}.py/.patch/.diff/.zip"
            )
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise _path_error(
                f"ambiguous: several patches for issue {issue_id} ({names}); name one"
            )
        candidate = found[0]
    else:
        given = Path(arg)
        if given.is_absolute():
            candidate = given
        elif given.parts[:1] == ("patches",):
            candidate = patches_dir.parent / given
        else:
            candidate = patches_dir / given
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise _path_error(f"{arg or candidate}: a patch must lie under {root}")
    if not resolved.is_file():
        raise _path_error(f"{arg or candidate}: no such patch file under patches/")
    return resolved


def detect_kind(path: Path, data: bytes) -> Kind:
    if data[:4] == b"PK\x03\x04" or path.suffix == ".zip":
        return Kind.ZIP
    if path.suffix in (".patch", ".diff"):
        return Kind.DIFF
    if path.suffix != ".py":
        head = data[:4096]
        if head.startswith((b"diff --git ", b"--- ", b"From ")) or b"\ndiff --git " in head:
            return Kind.DIFF
    return Kind.SCRIPT


def check_ascii(path: Path, data: bytes) -> None:
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        for col, byte in enumerate(line, start=1):
            if byte > 0x7F:
                raise Refusal(
                    Category.PATCH_ASCII,
                    f"{path.name}:{lineno}:{col}: non-ASCII byte 0x{byte:02x} "
                    "(ascii_only_patch is on; set it false to allow)",
                )


def normalize_file(raw: str) -> RepoPath:
    """A declared path as git spells it, or PATCH_FILES naming what is wrong with it."""
    if not raw.strip():
        raise _files_error("FILES holds an empty path")
    if "\0" in raw:
        raise _files_error(f"FILES entry {raw!r} holds a NUL byte")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        shown = raw.encode("utf-8", "backslashreplace").decode()
        raise _files_error(f"FILES entry {shown!r} is not valid text (a lone surrogate)") from None
    drive = len(raw) > 1 and raw[0].isalpha() and raw[1] == ":" and raw[2:3] in ("", "/", "\\")
    if raw.startswith("/") or drive:
        raise _files_error(f"FILES entry {raw!r} is absolute; give repo-relative paths")
    parts = raw.replace("\\", "/").split("/")
    if ".." in parts:
        raise _files_error(f"FILES entry {raw!r} leaves the repository (..)")
    norm = posixpath.normpath(raw)
    if norm in (".", ""):
        raise _files_error(f"FILES entry {raw!r} names the repository itself")
    if any(is_git_component(p) for p in norm.split("/")):
        raise _files_error(f"FILES entry {raw!r} is inside .git")
    return RepoPath(norm)


def read_script_files(path: Path, data: bytes) -> tuple[RepoPath, ...]:
    """FILES of a patch script, read from its syntax tree; the script is never executed here."""
    try:
        source = data.decode("utf-8-sig")  # Python accepts a UTF-8 BOM
    except UnicodeDecodeError as exc:
        raise Refusal(
            Category.PATCH_SYNTAX, f"{path.name}: not valid UTF-8 ({exc.reason})"
        ) from exc
    try:
        module = ast.parse(source, filename=path.name)
    except SyntaxError as exc:
        raise Refusal(
            Category.PATCH_SYNTAX,
            f"{path.name}:{exc.lineno}: syntax error: {exc.msg}",
        ) from exc
    values = [
        node.value
        for node in module.body
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value and _assigns_files(node)
    ]
    if not values:
        raise _files_error(f"{path.name}: no module-level FILES = [...] list")
    if len(values) > 1:
        raise _files_error(f"{path.name}: FILES is assigned more than once")
    value = values[0]
    if not isinstance(value, ast.List | ast.Tuple):
        raise _files_error(f"{path.name}: FILES must be a literal list of strings")
    raw = []
    for elt in value.elts:
        if not isinstance(elt, ast.Constant) or not isinstance(elt.value, str):
            raise _files_error(f"{path.name}:{elt.lineno}: FILES entries must be string literals")
        raw.append(elt.value)
    if not raw:
        raise _files_error(f"{path.name}: FILES is empty")
    return tuple(dict.fromkeys(normalize_file(r) for r in raw))


def _assigns_files(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == "FILES" for t in node.targets)
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return isinstance(node.target, ast.Name) and node.target.id == "FILES"
    return False


def _unquote(text: str) -> str:
    """A path as git writes it in a header: C-quoted when it holds special characters."""
    if not text.startswith('"'):
        return text
    raw, _ = codecs.escape_decode(text[1:-1].encode("latin-1", "backslashreplace"))
    return bytes(raw).decode("utf-8", errors="surrogateescape")


def diff_files(name: str, data: bytes) -> tuple[RepoPath, ...]:
    """The paths a diff touches, as git apply reads them; escaping paths are PATCH_FILES."""
    with tempfile.NamedTemporaryFile(suffix=".patch") as tmp:
        tmp.write(data)
        tmp.flush()
        result = git.run(
            ["apply", "--numstat", "-z", tmp.name], cwd=Path(tempfile.gettempdir()), quiet=True
        )
    if not result.ok:
        raise Refusal(Category.PATCH_SYNTAX, f"{name}: not a usable diff: {result.tail(1)}")
    raw: list[str] = []
    records = result.output.split("\0")
    for record in records:
        parts = record.split("\t", 2)
        raw.append(parts[2] if len(parts) == 3 else record)
    for line in data.decode("utf-8", errors="surrogateescape").splitlines():
        for header in ("rename from ", "copy from "):
            if line.startswith(header):
                raw.append(_unquote(line[len(header) :]))
    paths = [r for r in raw if r]
    if not paths:
        raise Refusal(Category.PATCH_FILES, f"{name}: the diff touches no file")
    return tuple(dict.fromkeys(normalize_file(p) for p in paths))


def _zip_error(message: str) -> Refusal:
    return Refusal(Category.PATCH_FILES, message)


def read_zip(path: Path, data: bytes) -> tuple[Diff, ...]:
    """The .patch/.diff members in name order; unsafe or oversized members refuse the whole zip."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (*_ZIP_ERRORS, NotImplementedError, UnicodeDecodeError) as exc:
        raise Refusal(
            Category.PATCH_SYNTAX, f"{path.name}: not a readable zip file ({exc})"
        ) from exc
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_MEMBERS:
            raise _zip_error(f"{path.name}: more than {MAX_MEMBERS} members")
        diffs = []
        for info in sorted(infos, key=lambda i: i.filename):
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
                raise _zip_error(f"{path.name}: member {name!r} has an absolute name")
            if ".." in parts:
                raise _zip_error(f"{path.name}: member {name!r} leaves the archive (zip-slip)")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _zip_error(f"{path.name}: member {name!r} is a link")
            if info.file_size > MAX_MEMBER_BYTES:
                raise _zip_error(f"{path.name}: member {name!r} is larger than 32 MiB")
            if name == MESSAGE_MEMBER:
                continue
            if not name.endswith(DIFF_SUFFIXES):
                raise _zip_error(f"{path.name}: member {name!r} is not a .patch or .diff")
            member = _read_member(path.name, archive, info)
            diffs.append(Diff(name=name, data=member, files=diff_files(name, member)))
    if not diffs:
        raise _zip_error(f"{path.name}: no .patch or .diff members")
    return tuple(diffs)


def message_member(path: Path, data: bytes) -> bytes | None:
    """The bytes of the zip's COMMIT_MESSAGE.txt, or None when it has none (or is no zip)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (*_ZIP_ERRORS, NotImplementedError, UnicodeDecodeError):
        return None
    with archive:
        try:
            info = archive.getinfo(MESSAGE_MEMBER)
        except KeyError:
            return None
        if info.file_size > MAX_MEMBER_BYTES:
            raise _zip_error(f"{path.name}: member {MESSAGE_MEMBER!r} is larger than 32 MiB")
        return _read_member(path.name, archive, info)


def _read_member(zip_name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes; an encrypted, exotic or corrupt member is PATCH_SYNTAX naming it."""
    name = info.filename
    if info.flag_bits & 0x1:
        why = "is encrypted"
    elif info.compress_type not in _SUPPORTED:
        why = f"uses an unsupported compression method ({info.compress_type})"
    else:
        try:
            return archive.read(info)
        except _ZIP_ERRORS as exc:
            why = f"is corrupt ({exc})"
        except (RuntimeError, NotImplementedError) as exc:
            why = f"cannot be read ({exc})"
    raise Refusal(Category.PATCH_SYNTAX, f"{zip_name}: member {name!r} {why}")


def load(patches_dir: Path, issue_id: str, arg: str | None, *, ascii_only: bool) -> PatchInput:
    path = resolve_path(patches_dir, issue_id, arg)
    data = path.read_bytes()
    kind = detect_kind(path, data)
    diffs: tuple[Diff, ...] = ()
    if kind is Kind.SCRIPT:
        if ascii_only:
            check_ascii(path, data)
        files = read_script_files(path, data)
    elif kind is Kind.DIFF:
        diffs = (Diff(name=path.name, data=data, files=diff_files(path.name, data)),)
        files = diffs[0].files
    else:
        diffs = read_zip(path, data)
        files = tuple(dict.fromkeys(f for d in diffs for f in d.files))
    return PatchInput(path=path, kind=kind, files=files, data=data, diffs=diffs)
