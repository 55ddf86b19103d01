"""The shared bytecode of the gate interpreter's installation: built outside the jail from the
installation only, read-only in the jails, and never trusted over a source that changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from am_patch import bytecode, sandbox
from am_patch.demo import PROJECT_FILES
from testing.project import Project, assert_fails, assert_success

VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
TAG = sys.implementation.cache_tag


@pytest.fixture
def installation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake installation prefix with one module, and a private cache root."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lib = tmp_path / "prefix" / "lib" / VERSION / "site-packages"
    lib.mkdir(parents=True)
    (lib / "tool.py").write_text("ANSWER = 1\n")
    return tmp_path / "prefix"


def import_answer(compiled: bytecode.Compiled, lib: Path) -> str:
    """What `tool.ANSWER` is for an interpreter that reads the compiled entry, as a jail does."""
    ((_, entry),) = compiled.entries
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPYCACHEPREFIX": str(entry),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(lib),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import tool; print(tool.ANSWER)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def compiled_now(installation: Path) -> bytecode.Compiled:
    """The entries, built: a directory is compiled the second time it is seen."""
    bytecode.prefix_for((installation,))
    compiled = bytecode.prefix_for((installation,))
    assert compiled is not None
    return compiled


def test_a_directory_is_compiled_when_seen_twice_then_reused(installation: Path) -> None:
    assert bytecode.prefix_for((installation,)) is None  # once: a throw-away venv costs nothing
    second = bytecode.prefix_for((installation,))
    third = bytecode.prefix_for((installation,))

    assert second is not None and third == second
    ((lib, entry),) = second.entries
    assert lib == installation / "lib" / VERSION
    pyc = entry / lib.relative_to("/") / "site-packages" / f"tool.{TAG}.pyc"
    assert pyc.is_file()
    assert (entry / bytecode.COMPLETE).is_file()


def test_a_changed_directory_gets_a_new_entry_and_the_old_goes(installation: Path) -> None:
    ((_, old),) = compiled_now(installation).entries
    (installation / "lib" / VERSION / "site-packages" / "more.py").write_text("X = 1\n")

    ((_, new),) = compiled_now(installation).entries

    assert new != old and new.is_dir() and not old.exists()


def test_a_stale_pyc_is_never_trusted_over_its_source(installation: Path) -> None:
    site = installation / "lib" / VERSION / "site-packages"
    compiled = compiled_now(installation)
    assert import_answer(compiled, site) == "1"
    source = site / "tool.py"
    stat = source.stat()
    source.write_text("ANSWER = 2\n")  # same size, and the old mtime put back
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert import_answer(compiled, site) == "2"  # the pyc's hash no longer matches: ignored


def test_nothing_outside_the_installation_is_compiled(installation: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "secret.py"
    outside.parent.mkdir()
    outside.write_text("TOKEN = 'do-not-leak'\n")
    site = installation / "lib" / VERSION / "site-packages"
    (site / "leak.py").symlink_to(outside)
    (site / "linked").symlink_to(outside.parent, target_is_directory=True)

    ((_, entry),) = compiled_now(installation).entries

    names = [p.name for p in entry.rglob("*.pyc")]
    assert any(n.startswith("tool.") for n in names)
    assert not any(n.startswith(("leak.", "secret.")) for n in names), names


def test_no_installation_of_this_version_means_no_cache(tmp_path: Path) -> None:
    assert bytecode.prefix_for((tmp_path,)) is None


def test_a_gate_cannot_write_the_shared_bytecode(tmp_path: Path) -> None:
    """A gate may compile the tree into its own prefix (the compile gate does), but the
    installation's pycs in it are read-only: a test cannot plant code for the next run."""
    stdlib = Path(os.__file__).parent
    target = f"{stdlib.relative_to('/')}/os.{sys.implementation.cache_tag}.pyc"
    plant = (
        "import os, sys; p = os.path.join(os.environ['PYTHONPYCACHEPREFIX'], sys.argv[1]); "
        "open(p, 'ab').close()"
    )
    config = (
        'gates_order = ["compile", "plant"]\n[gates.plant]\nruns_on = "always"\n'
        f"command = ['{{python}}', '-c', {plant!r}, {target!r}]\n"
    )
    project = Project.create(tmp_path / "work", {**PROJECT_FILES, "am_patch.toml": config})
    installed = sandbox.interpreter_dirs(Path(sys.executable), project.live)
    for _ in range(2):  # seen twice: compiled, so the gates' jails get it
        compiled = bytecode.prefix_for(installed)
    assert compiled is not None and any(lib == stdlib for lib, _ in compiled.entries)
    project.readme_patch("50", "readme\n")

    out = project.run("50", "Docs")

    assert_fails(out, "GATES:PLANT")
    assert "Read-only file system" in project.log_of(out)
    project.readme_patch("51", "readme again\n")
    assert_success(project.run("51", "Docs", "--override", "gates_order=['compile']"))
