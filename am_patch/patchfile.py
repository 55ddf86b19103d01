"""Patch input: where it may live, what kind it is, and the FILES it declares."""

from __future__ import annotations

import ast
import posixpath
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from am_patch.errors import Category, RunnerError, Stage
from am_patch.repo import RepoPath, is_git_component

SUFFIXES = (".py", ".patch", ".diff", ".zip")


class Kind(StrEnum):
    SCRIPT = "script"
    DIFF = "diff"
    ZIP = "zip"


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchInput:
    path: Path
    kind: Kind
    files: tuple[RepoPath, ...]
    data: bytes


def _path_error(message: str) -> RunnerError:
    return RunnerError(Stage.PREFLIGHT, Category.PATCH_PATH, message)


def _files_error(message: str) -> RunnerError:
    return RunnerError(Stage.PREFLIGHT, Category.PATCH_FILES, message)


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
                raise RunnerError(
                    Stage.PREFLIGHT,
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
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
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
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunnerError(
            Stage.PREFLIGHT, Category.PATCH_SYNTAX, f"{path.name}: not valid UTF-8 ({exc.reason})"
        ) from exc
    try:
        module = ast.parse(source, filename=path.name)
    except SyntaxError as exc:
        raise RunnerError(
            Stage.PREFLIGHT,
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


def load(patches_dir: Path, issue_id: str, arg: str | None, *, ascii_only: bool) -> PatchInput:
    path = resolve_path(patches_dir, issue_id, arg)
    data = path.read_bytes()
    kind = detect_kind(path, data)
    if kind is Kind.SCRIPT:
        if ascii_only:
            check_ascii(path, data)
        files = read_script_files(path, data)
    else:
        raise RunnerError(
            Stage.PREFLIGHT,
            Category.PATCH_PATH,
            f"{path.name}: {kind} patches are not supported yet",
        )
    return PatchInput(path=path, kind=kind, files=files, data=data)
