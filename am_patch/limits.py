"""Bounds on what a jailed command may take: processes, memory, disk and output.

A patch script, a test run by a gate, or the audit may fork-bomb, hog memory, fill the disk or
flood its output; each bound stops it and names itself, so the stage fails with a clear reason.

- processes: a pids cgroup (v1 or v2, where this machine lets am-patch make one; root in a
  container usually may), else RLIMIT_NPROC (effective for a non-root user only);
- memory: a memory cgroup for the whole jail where available, and RLIMIT_DATA per process;
- disk: RLIMIT_FSIZE per file, the jail's /tmp is a tmpfs of that size, and a watch on the
  writable directories kills the jail once it has written more than the bound in all;
- output: the captured output is cut off and the command killed past the bound.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024
CGROUP_ROOT = Path("/sys/fs/cgroup")
_counter = itertools.count()

# Runs outside the jail, before bwrap: lowers its own limits (inherited by everything it starts,
# and no process in the jail has the capability to raise them again), joins the cgroups, execs.
_LIMITER = """\
import json, os, resource, sys
spec = json.loads(sys.argv[1])
for name, value in spec["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
for procs in spec["cgroups"]:
    with open(procs, "w") as handle:
        handle.write(str(os.getpid()))
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:  # as a shell (and proc.run) reports it
    found = isinstance(exc, PermissionError)
    why = "not executable" if found else "command not found"
    print(f"am-patch: {why}: {sys.argv[2]} ({exc.strerror})", flush=True)
    sys.exit(126 if found else 127)
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """Each 0 means unbounded."""

    processes: int = 0
    memory_bytes: int = 0
    disk_bytes: int = 0
    output_bytes: int = 0

    @classmethod
    def of(cls, *, processes: int, memory_mb: int, disk_mb: int, output_mb: int) -> Bounds:
        return cls(
            processes=processes,
            memory_bytes=memory_mb * MB,
            disk_bytes=disk_mb * MB,
            output_bytes=output_mb * MB,
        )


BOUND_KEYS = {
    "processes": "limit_processes",
    "memory": "limit_memory_mb",
    "disk": "limit_disk_mb",
    "output": "limit_output_mb",
}


def describe(bound: str, bounds: Bounds) -> str:
    """'its bound on memory (limit_memory_mb=4096)' for a hit bound."""
    value = {
        "processes": bounds.processes,
        "memory": bounds.memory_bytes // MB,
        "disk": bounds.disk_bytes // MB,
        "output": bounds.output_bytes // MB,
    }[bound]
    return f"its bound on {bound} ({BOUND_KEYS[bound]}={value})"


@dataclass(slots=True)
class Cgroup:
    """The cgroups made for one command: where to enter them and how to tell a bound was hit."""

    dirs: list[Path] = field(default_factory=list)

    @property
    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def has(self, controller: str) -> bool:
        return any((d / f"{controller}.max").exists() or _v1_file(d, controller) for d in self.dirs)

    def hit(self) -> str | None:
        """'processes' or 'memory' when the kernel refused the jail a process or memory."""
        for directory in self.dirs:
            events = _read_kv(directory / "pids.events")
            if int(events.get("max", "0")) > 0:
                return "processes"
            for name in ("memory.events", "memory.oom_control"):
                if int(_read_kv(directory / name).get("oom_kill", "0")) > 0:
                    return "memory"
        return None

    def remove(self) -> None:
        """Kill what is left in the cgroups, then remove them."""
        for directory in self.dirs:
            for _ in range(50):
                pids = _read(directory / "cgroup.procs").split()
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
                try:
                    directory.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _read_kv(path: Path) -> dict[str, str]:
    pairs = (line.split() for line in _read(path).splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def _v1_file(directory: Path, controller: str) -> bool:
    return (directory / ("pids.max" if controller == "pids" else "memory.limit_in_bytes")).exists()


def _own_cgroups() -> dict[str, Path]:
    """Where this process sits, per hierarchy: 'pids'/'memory' (v1) and '' (v2)."""
    found: dict[str, Path] = {}
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            found[name] = Path(path.lstrip("/"))
    return found


def _v2_mount() -> Path | None:
    for candidate in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        if (candidate / "cgroup.controllers").exists():
            return candidate
    return None


def make_cgroup(bounds: Bounds) -> Cgroup | None:
    """A fresh cgroup bounding processes and memory, in each hierarchy that lets us write; None
    when no hierarchy does (then rlimits alone bound the command)."""
    wanted = {"pids": bounds.processes, "memory": bounds.memory_bytes}
    wanted = {k: v for k, v in wanted.items() if v}
    if not wanted:
        return None
    own = _own_cgroups()
    name = f"am-patch-{os.getpid()}-{next(_counter)}"
    group = Cgroup()
    v2 = _v2_mount()
    if v2 is not None and "" in own:
        _try_make(group, v2 / own[""] / name, 2, wanted)
    for controller in wanted:
        if not group.has(controller) and controller in own:
            hierarchy = CGROUP_ROOT / controller
            _try_make(
                group, hierarchy / own[controller] / name, 1, {controller: wanted[controller]}
            )
    return group if group.dirs else None


def _try_make(group: Cgroup, directory: Path, version: int, wanted: dict[str, int]) -> None:
    try:
        directory.mkdir()
    except OSError:
        return
    writes: list[tuple[str, str]] = []
    for controller, value in wanted.items():
        if version == 2:
            writes.append((f"{controller}.max", str(value)))
            if controller == "memory":
                writes.append(("memory.swap.max", "0"))
        elif controller == "pids":
            writes.append(("pids.max", str(value)))
        else:
            writes.append(("memory.limit_in_bytes", str(value)))
    done = False
    for file, text in writes:
        with contextlib.suppress(OSError):
            (directory / file).write_text(text)
            done = True
    if done:
        group.dirs.append(directory)
    else:
        with contextlib.suppress(OSError):
            directory.rmdir()


def limiter_argv(bounds: Bounds, group: Cgroup | None) -> list[str]:
    """The exec wrapper that puts the bounds on a command: argv to prepend to it."""
    rlimits = {"RLIMIT_CORE": 0}
    if bounds.memory_bytes:
        rlimits["RLIMIT_DATA"] = bounds.memory_bytes
    if bounds.disk_bytes:
        rlimits["RLIMIT_FSIZE"] = bounds.disk_bytes
    if bounds.processes and (group is None or not group.has("pids")) and os.geteuid() != 0:
        rlimits["RLIMIT_NPROC"] = bounds.processes + _own_tasks()
    spec = {"rlimits": rlimits, "cgroups": group.procs if group else []}
    return [sys.executable, "-I", "-S", "-c", _LIMITER, json.dumps(spec)]


def _own_tasks() -> int:
    """How many tasks this user runs now: RLIMIT_NPROC counts them all, not only the jail's."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
    return count


@dataclass(slots=True)
class DiskWatch:
    """Whether a command has written more than `limit` bytes under `roots` since it started.

    Cheap while nothing much is written: the file system's free space is read each time, and
    only once it dropped by more than the bound are the files under roots measured (those
    created or changed since the start), so another process writing elsewhere kills nothing.
    """

    roots: Sequence[Path]
    limit: int
    start_ns: int = field(default_factory=time.time_ns)
    free_at_start: int = 0
    _next_walk: float = 0.0

    def __post_init__(self) -> None:
        self.free_at_start = _free(self.roots[0])

    def __call__(self) -> str | None:
        if self.free_at_start - _free(self.roots[0]) <= self.limit:
            return None
        now = time.monotonic()
        if now < self._next_walk:
            return None
        self._next_walk = now + 2.0
        written = sum(_written_since(root, self.start_ns) for root in self.roots)
        return "disk" if written > self.limit else None


def _free(path: Path) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def _written_since(root: Path, start_ns: int) -> int:
    total = 0
    for dirpath, dirnames, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if st.st_ctime_ns >= start_ns:
                    total += st.st_blocks * 512
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return total


_SIGNS = {
    "memory": ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory"),
    "disk": ("File too large", "No space left on device"),
    "processes": ("Resource temporarily unavailable",),
}
SIGXFSZ_EXITS = (-signal.SIGXFSZ, 128 + signal.SIGXFSZ)


@dataclass(frozen=True, slots=True)
class Bounded:
    """One command's bounds in force: the argv prefix that applies them, and after the command,
    which bound (if any) it hit."""

    bounds: Bounds
    group: Cgroup | None

    @property
    def prefix(self) -> list[str]:
        if self.bounds == Bounds() and self.group is None:
            return []  # nothing to bound (the sandbox probe)
        return limiter_argv(self.bounds, self.group)

    def hit(self, returncode: int, output: str) -> str | None:
        """The bound the command hit: what a cgroup counted, else (a failed command refused
        something by an rlimit) what its exit status and its own last words say."""
        if self.group is not None:
            counted = self.group.hit()
            if counted:
                return counted
        if returncode == 0:
            return None
        if self.bounds.disk_bytes and returncode in SIGXFSZ_EXITS:
            return "disk"
        nproc = self.group is None or not self.group.has("pids")
        active = {
            "memory": bool(self.bounds.memory_bytes),
            "disk": bool(self.bounds.disk_bytes),
            "processes": bool(self.bounds.processes) and nproc,
        }
        tail = output[-4000:]
        for bound, signs in _SIGNS.items():
            if active[bound] and any(sign in tail for sign in signs):
                return bound
        return None


@contextlib.contextmanager
def bounded(bounds: Bounds) -> Iterator[Bounded]:
    """The bounds for one command; its cgroup, if one could be made, is removed afterwards."""
    group = make_cgroup(bounds)
    try:
        yield Bounded(bounds, group)
    finally:
        if group is not None:
            group.remove()
