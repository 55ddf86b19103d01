"""Gate verdicts keyed by tree id and gate definition: a tree already gated is not gated again."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence

from am_patch.layout import Layout

log = logging.getLogger("am_patch")


def key(tree: str, gate: str, argv: Sequence[str]) -> str:
    """The verdict's identity: the tree and exactly how the gate is run on it."""
    blob = json.dumps([tree, gate, list(argv)]).encode()
    return hashlib.sha256(blob).hexdigest()


class VerdictCache:
    """Passing verdicts in <git common dir>/am_patch/verdicts.json, shared by runner and hooks."""

    def __init__(self, layout: Layout, *, enabled: bool = True) -> None:
        self.layout = layout
        self.path = layout.verdicts
        self.enabled = enabled
        self._known: dict[str, str] | None = None  # as last read: passes are only ever added

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def passed(self, tree: str, gate: str, argv: Sequence[str]) -> bool:
        if not self.enabled:
            return False
        if self._known is None:
            self._known = self._load()
        return key(tree, gate, argv) in self._known

    def record_pass(self, tree: str, gate: str, argv: Sequence[str]) -> None:
        if not self.enabled:
            return
        with self.layout.exclusive(self.path.with_name(".verdicts.lock")):  # runs side by side
            data = self._load()
            data[key(tree, gate, argv)] = f"{gate} {tree}"
            self._known = data
            self.layout.write(self.path, json.dumps(data, indent=0).encode())
