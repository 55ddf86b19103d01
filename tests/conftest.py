"""Seal every test off from this machine's git and home configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import ConfigLevel

from testing.hooks import clone, install
from testing.project import Project

# The gates' compiled installation (am_patch/bytecode.py) is shared by every test, as by every
# repository of a user: the home of each test is its own, the bytecode cache is not.
SHARED_CACHE = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path / "home"
    home.mkdir()
    for key in [k for k in __import__("os").environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": SHARED_CACHE,
        "PRE_COMMIT_HOME": str(home / ".cache" / "pre-commit"),  # pre-commit's stays per test
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.invalid",
        "GIT_COMMITTER_NAME": "Test Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.invalid",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
        "GIT_EDITOR": "false",
        "GIT_TERMINAL_PROMPT": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    saved = {
        level: pygit2.settings.search_path[level]
        for level in (ConfigLevel.SYSTEM, ConfigLevel.GLOBAL, ConfigLevel.XDG)
    }
    for level in saved:
        pygit2.settings.search_path[level] = str(home)
    yield
    for level, value in saved.items():
        pygit2.settings.search_path[level] = value


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A bare origin and a live clone on main with a src-layout project whose gates pass."""
    return Project.create(tmp_path / "work")


@pytest.fixture
def hooked(project: Project) -> Project:
    """The demo project with pre-commit and pre-push installed in .git/hooks."""
    install(project.live)
    return project


@pytest.fixture
def server(project: Project) -> Path:
    """pre-receive installed on origin.git; returns a clone without local hooks to push from."""
    out = install(project.live, "--server", str(project.origin))
    assert str(project.origin / "hooks" / "pre-receive") in out
    return clone(project, "dev")
