"""The one error type of a run: a stage, a category and a message telling the user what to do."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    PREFLIGHT = "PREFLIGHT"
    PATCH = "PATCH"
    SCOPE = "SCOPE"
    GATES = "GATES"
    PROMOTION = "PROMOTION"
    LIVE_GATES = "LIVE_GATES"
    PUSH = "PUSH"
    AUDIT = "AUDIT"
    INTERNAL = "INTERNAL"


class Category(StrEnum):
    CONFIG = "CONFIG"
    PATCH_PATH = "PATCH_PATH"
    PATCH_FILES = "PATCH_FILES"
    PATCH_SYNTAX = "PATCH_SYNTAX"
    PATCH_ASCII = "PATCH_ASCII"
    GIT = "GIT"
    ORIGIN_AHEAD = "ORIGIN_AHEAD"
    LOCK = "LOCK"
    WORKSPACE = "WORKSPACE"
    SANDBOX = "SANDBOX"
    EXEC = "EXEC"
    TIMEOUT = "TIMEOUT"
    APPLY = "APPLY"
    UNDECLARED = "UNDECLARED"
    UNTOUCHED = "UNTOUCHED"
    NOOP = "NOOP"
    UNSAFE = "UNSAFE"
    LIMIT = "LIMIT"  # a patch script or the audit hit a resource bound; see README
    POLICY = "POLICY"  # a change to the policy without --allow-policy-change; see README
    LIVE_CHANGED = "LIVE_CHANGED"
    LIVE_DIRTY = "LIVE_DIRTY"
    FAILED = "FAILED"
    BUG = "BUG"
    INTERRUPTED = "INTERRUPTED"  # Ctrl-C (exit 130); not in SPEC's table, see README


class Refusal(Exception):
    """An expected "no" from a lower layer: a category and a message telling the user what to do
    next. The stage boundary that catches it knows the stage and makes it a RunnerError."""

    def __init__(self, category: Category | str, message: str) -> None:
        super().__init__(message)
        self.category = str(category)
        self.message = message


class RunnerError(Refusal):
    """A run stops here. `category` is a Category, or a gate name in upper case for GATES."""

    def __init__(self, stage: Stage, category: Category | str, message: str) -> None:
        super().__init__(category, message)
        self.stage = stage

    @property
    def code(self) -> str:
        return f"{self.stage}:{self.category}"

    @classmethod
    def at(cls, stage: Stage, refusal: Refusal) -> RunnerError:
        """refusal with the stage it happened in; one that already names a stage keeps it (a
        re-gate in the promotion stage still fails GATES:<GATE>)."""
        if isinstance(refusal, RunnerError):
            return refusal
        return cls(stage, refusal.category, refusal.message)


class UsageError(Exception):
    """A command-line usage error: exit code 2."""
