"""The patches waiting in patches/ for --batch: issue_<ID>.py|.patch|.diff|.zip, in issue order,
each with the commit message its input carries.

A message is read, never executed: a script's module-level `MESSAGE = "..."` string literal
(from the syntax tree, like FILES), the `Subject:` of a `git format-patch` file (its [PATCH]
prefix dropped), or a zip's COMMIT_MESSAGE.txt member. An input without one is skipped, with
the reason.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from am_patch import patchfile
from am_patch.errors import Refusal

NAME = re.compile(r"issue_([0-9]{1,18})(\.py|\.patch|\.diff|\.zip)")
MAX_MESSAGE = 4000  # characters: a commit message, not a document
_PATCH_PREFIX = re.compile(r"^\[[^\]]*\]\s*")


@dataclass(frozen=True, slots=True)
class Waiting:
    """One issue's input: its message, or why it does not run."""

    issue_id: str
    path: Path
    message: str = ""
    skip: str = ""


def waiting(patches: Path) -> list[Waiting]:
    """The inputs directly in patches/, ordered by issue number."""
    if not patches.is_dir() or patches.is_symlink():
        return []
    found: dict[str, list[Path]] = {}
    for entry in patches.iterdir():
        match = NAME.fullmatch(entry.name)
        if match and entry.is_file():
            found.setdefault(match.group(1), []).append(entry)
    inputs = []
    for issue_id in sorted(found, key=int):
        paths = sorted(found[issue_id])
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            inputs.append(Waiting(issue_id, paths[0], skip=f"several inputs ({names})"))
            continue
        inputs.append(_judged(issue_id, paths[0]))
    return inputs


def _judged(issue_id: str, path: Path) -> Waiting:
    try:
        data = path.read_bytes()
        message = _clean(message_of(path, data))
    except (OSError, Refusal, ValueError) as exc:
        return Waiting(issue_id, path, skip=str(exc))
    return Waiting(issue_id, path, message=message)


def message_of(path: Path, data: bytes) -> str:
    """The message the input carries; ValueError saying what is missing."""
    kind = patchfile.detect_kind(path, data)
    if kind is patchfile.Kind.SCRIPT:
        return _script_message(path, data)
    if kind is patchfile.Kind.DIFF:
        return _subject(data)
    member = patchfile.message_member(path, data)
    if member is None:
        raise ValueError(f"no message: the zip has no {patchfile.MESSAGE_MEMBER} member")
    return member.decode("utf-8", errors="strict")


def _script_message(path: Path, data: bytes) -> str:
    try:
        module = ast.parse(data.decode("utf-8-sig"), filename=path.name)
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise ValueError(f"no message: the script does not parse ({exc})") from exc
    values = [
        node.value
        for node in module.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "MESSAGE" for t in node.targets)
    ]
    if len(values) != 1:
        raise ValueError('no message: the script needs one module-level MESSAGE = "..."')
    value = values[0]
    if not isinstance(value, ast.Constant) or not isinstance(value.value, str):
        raise ValueError("no message: MESSAGE must be a string literal")
    return value.value


def _subject(data: bytes) -> str:
    """The Subject: of a mail-formatted patch (git format-patch), RFC 2047 words decoded."""
    head = data.split(b"\n\n", 1)[0]
    import email.parser  # only --batch reads mail headers: every run's start-up skips it
    import email.policy

    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    subject = parsed.get("Subject")
    if not subject:
        raise ValueError("no message: the diff has no Subject: header (git format-patch)")
    return _PATCH_PREFIX.sub("", " ".join(str(subject).split()))


def _clean(message: str) -> str:
    text = message.strip()
    if not text:
        raise ValueError("no message: it is empty")
    if "\x00" in text:
        raise ValueError("no message: it holds a NUL character")
    if len(text) > MAX_MESSAGE:
        raise ValueError(f"no message: it is longer than {MAX_MESSAGE} characters")
    return text
