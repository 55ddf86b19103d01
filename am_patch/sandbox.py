"""The bubblewrap jail that patch scripts (and, by default, gates) run in."""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from am_patch import limits, proc
from am_patch.errors import Category, Refusal
from am_patch.limits import Bounds

log = logging.getLogger("am_patch")

BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
HIDDEN_TMPFS_BYTES = 1024 * 1024
# Only these system directories exist in the jail (read-only): binding all of / would leave host
# unix sockets (/run, /var, ...) connectable, since a read-only mount does not stop connect().
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Of /etc, only what the loader, Python, ruff, mypy and pytest read (public data, relative to
# /etc, globs allowed). A run as root (CI) keeps uid 0 in the jail, so a bound /etc would hand a
# patch /etc/shadow, the ssh host keys and ssl/private to copy into a declared file.
ETC_ALLOWED = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "passwd",
    "group",
    "nsswitch.conf",
    "host.conf",
    "hosts",
    "gai.conf",
    "services",
    "protocols",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "pki/tls/certs",
    "pki/ca-trust",
    "python3",
    "python3.*",
    "alternatives",
    "mime.types",
    "locale.alias",
    "os-release",
)
# Never exposed, even when an allowed name is a symlink into them.
ETC_SECRETS = (
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "sudoers",
    "sudoers.d",
    "ssh",
    "ssl/private",
    "pki/tls/private",
    "security/opasswd",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Jail:
    """How to run a command confined to `writable`; `bwrap` is None when the sandbox is off."""

    bwrap: str | None
    writable: Path
    extra_writable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    exposed: tuple[Path, ...] = ()
    mounted: tuple[tuple[Path, Path], ...] = ()  # (source, where): read-only, inside the tree
    env: Mapping[str, str] = field(default_factory=dict)
    chdir: Path | None = None  # the command's working directory; default: writable
    bounds: Bounds = field(default_factory=Bounds)

    @property
    def description(self) -> str:
        if self.bwrap is None:
            return "NONE (sandbox disabled by the user: the patch ran with full access)"
        return (
            f"bubblewrap ({self.bwrap}): read-only system dirs (a whitelist of /etc), "
            f"writable {self.writable}, no network, clean environment"
        )

    def with_exposed(self, *paths: Path) -> Jail:
        """The same jail with more paths visible read-only."""
        return dataclasses.replace(self, exposed=(*self.exposed, *paths))

    def argv(self, command: Sequence[str]) -> list[str]:
        if self.bwrap is None:
            return list(command)
        args = [self.bwrap, *system_mounts(), *etc_mounts(), "--dev", "/dev", "--proc", "/proc"]
        if self.bounds.disk_bytes:  # a tmpfs is memory: the disk bound sizes it
            args += ["--size", str(self.bounds.disk_bytes)]
        args += ["--tmpfs", "/tmp"]
        for hidden in self.hidden:  # masks, not storage: too small to fill
            args += ["--size", str(HIDDEN_TMPFS_BYTES), "--tmpfs", str(hidden)]
        for path in self.exposed:
            args += ["--ro-bind", str(path), str(path)]
        for path in (self.writable, *self.extra_writable):
            args += ["--bind", str(path), str(path)]
        for source, where in self.mounted:
            args += ["--ro-bind", str(source), str(where)]
        pointer = self.writable / ".git"  # the worktree's gitdir pointer stays read-only
        if pointer.exists():
            args += ["--ro-bind", str(pointer), str(pointer)]
        args += ["--remount-ro", "/"]  # the jail's own root (its /etc) is read-only too
        args += ["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
        for key, value in sorted(self.env.items()):
            args += ["--setenv", key, value]
        args += ["--chdir", str(self.chdir or self.writable), "--"]
        return args + list(command)

    def run(
        self,
        command: Sequence[str],
        *,
        timeout_s: float | None,
        on_output: Callable[[bytes], None] | None = None,
        stop: threading.Event | None = None,
    ) -> proc.ProcResult:
        """Run command in the jail within its bounds; a hit bound is the result's `bound`, and
        `stop` set ends it early (bound "cancelled")."""
        # bwrap itself gets the minimal environment too: its pid 1 in the jail keeps the
        # environment it was started with, readable there as /proc/1/environ
        env = dict(self.env)
        cwd = self.chdir or self.writable
        disk = None
        if self.bounds.disk_bytes:
            disk = limits.DiskWatch((self.writable, *self.extra_writable), self.bounds.disk_bytes)

        def watch() -> str | None:
            if stop is not None and stop.is_set():
                return "cancelled"
            return disk() if disk is not None else None

        with limits.bounded(self.bounds) as bounded:
            result = proc.run(
                self.argv(command),
                cwd=cwd,
                env=env,
                timeout_s=timeout_s,
                output_limit=self.bounds.output_bytes,
                watch=watch,
                on_output=on_output,
                prefix=bounded.prefix,
            )
            if not result.bound and not result.timed_out:
                hit = bounded.hit(result.returncode, result.output)
                if hit:
                    result = dataclasses.replace(result, bound=hit)
        if result.bound and result.bound in limits.BOUND_KEYS:
            log.info("  -> stopped by %s", limits.describe(result.bound, self.bounds))
        return result


def system_mounts() -> list[str]:
    """The read-only system: merged-/usr symlinks stay symlinks."""
    args: list[str] = []
    for name in SYSTEM_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def etc_mounts(etc: Path = Path("/etc")) -> list[str]:
    """The allowed part of /etc, read-only; a symlink into the bound system stays a symlink (a
    zone name is read from /etc/localtime's target), any other is bound as what it points to."""
    secrets = [(etc / name).resolve() for name in ETC_SECRETS]
    args = ["--dir", str(etc)]
    for pattern in ETC_ALLOWED:
        for path in sorted(etc.glob(pattern)):
            real = path.resolve()
            if not real.exists() or any(real.is_relative_to(s) for s in secrets):
                continue
            if path.is_symlink() and real.parts[1:2] and real.parts[1] in SYSTEM_DIRS:
                args += ["--symlink", str(real), str(path)]
            else:
                args += ["--ro-bind", str(real), str(path)]
    return args


def _private_dir(prefix: str) -> str:
    """A new directory only this user can reach (mode 0700), removed when am-patch exits."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, True)
    return path


def base_env(python: Path) -> dict[str, str]:
    """A minimal environment: nothing inherited, so no secrets and no GIT_* leak in."""
    return {
        "PATH": f"{python.parent}:{BASE_PATH}",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONPYCACHEPREFIX": "/tmp/pycache",
    }


def interpreter_dirs(python: Path, live_root: Path) -> tuple[Path, ...]:
    """What an interpreter needs to run, found without running it: `python` may be a file a
    patch wrote, and nothing from the working tree runs outside the jail.

    That is each venv on the way from `python` to the real executable (the directory holding
    pyvenv.cfg) with the installation it was made from (pyvenv.cfg's `home`), and the prefix
    of the real executable. Not the directories .pth files add to sys.path: an editable install
    of another project would hand a test its files. Never the live tree (except a venv inside
    it), $HOME, the system root or an ancestor of any of them.
    """
    found = shutil.which(python) if not python.is_absolute() else str(python)
    if found is None:
        return ()
    prefixes: list[Path] = []
    for exe in _link_chain(Path(found)):
        prefixes.append(exe.parent.parent)
        home = _venv(exe.parent.parent).get("home")
        if home:
            prefixes.append(Path(home).parent)
    live = live_root.resolve()
    home_dir = Path(os.environ.get("HOME", "/root")).resolve()
    keep: list[Path] = []
    for prefix in dict.fromkeys(p.resolve() for p in prefixes if p.is_absolute()):
        if not prefix.is_dir() or any(prefix.is_relative_to(Path("/", d)) for d in SYSTEM_DIRS):
            continue  # gone, or already in the jail as part of the system
        if any(owner.is_relative_to(prefix) for owner in (live, home_dir)):
            continue  # the root, $HOME, the live repo or an ancestor: would expose them
        if prefix.is_relative_to(live) and not _venv(prefix):
            continue  # inside the live tree only a venv is the interpreter's
        keep.append(prefix)
    return tuple(keep)


def is_interpreter_home(python: Path, live_root: Path) -> bool:
    """python is outside the live tree, or inside a venv there (such as <live>/.venv)."""
    live = live_root.resolve()
    where = Path(os.path.normpath(python.absolute()))
    if not where.is_relative_to(live):
        return True
    return any(_venv(parent) for parent in where.parents if parent.is_relative_to(live))


def _link_chain(exe: Path) -> list[Path]:
    """exe, then each symlink target in turn, as written (relative links taken from their
    directory), up to the real file."""
    chain = [exe]
    while chain[-1].is_symlink() and len(chain) < 40:
        link = chain[-1]
        chain.append(Path(os.path.normpath(link.parent / os.readlink(link))))
    return chain


def _venv(prefix: Path) -> dict[str, str]:
    """The settings of the venv at prefix (its pyvenv.cfg); empty when it is none."""
    try:
        text = (prefix / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    pairs = (line.partition("=") for line in text.splitlines())
    return {key.strip(): value.strip() for key, sep, value in pairs if sep} or {"venv": "yes"}


def node_dirs() -> tuple[Path, ...]:
    """Where the node on PATH is installed, when that is outside the system dirs (nvm, a
    tarball in /opt): gates may run the project's node tools. Found without running it."""
    found = shutil.which("node")
    if found is None:
        return ()
    prefix = Path(found).resolve().parent.parent
    home = Path(os.environ.get("HOME", "/root")).resolve()
    if any(prefix.is_relative_to(Path("/", d)) for d in SYSTEM_DIRS) or prefix in home.parents:
        return ()
    if prefix == home or prefix == Path("/"):
        return ()
    return (prefix,)


def hidden_dirs(live_root: Path, git_common_dir: Path) -> tuple[Path, ...]:
    """$HOME and the live repository (and its git dir if elsewhere), outside /tmp."""
    candidates = [Path(os.environ.get("HOME", "/root")), live_root, git_common_dir]
    result: list[Path] = []
    for path in sorted({p.resolve() for p in candidates}, key=lambda p: len(p.parts)):
        if path == Path("/") or not path.exists():
            continue
        if path.is_relative_to("/tmp") or any(path.is_relative_to(h) for h in result):
            continue
        result.append(path)
    return tuple(result)


def make_jail(
    *,
    bwrap: str,
    enabled: bool,
    writable: Path,
    live_root: Path,
    git_common_dir: Path,
    python: Path,
    extra_writable: tuple[Path, ...] = (),
    extra_env: Mapping[str, str] | None = None,
    bounds: Bounds | None = None,
) -> Jail:
    env = base_env(python) | dict(extra_env or {})
    bounds = bounds or Bounds()
    if not enabled:
        # no private /tmp: a shared /tmp/pycache could hold another local user's bytecode
        env["PYTHONPYCACHEPREFIX"] = _private_dir("am-patch-pycache-")
        return Jail(
            bwrap=None, writable=writable, extra_writable=extra_writable, env=env, bounds=bounds
        )
    found = shutil.which(bwrap)
    if found is None:
        raise Refusal(
            Category.SANDBOX,
            f"bubblewrap not found ({bwrap}): install it (apt-get install bubblewrap) "
            "or run with --unsafe-no-sandbox",
        )
    return Jail(
        bwrap=found,
        writable=writable,
        extra_writable=extra_writable,
        hidden=hidden_dirs(live_root, git_common_dir),
        exposed=interpreter_dirs(python, live_root),
        env=env,
        bounds=bounds,
    )


def preflight(
    *, bwrap: str, live_root: Path, git_common_dir: Path, pythons: Sequence[Path]
) -> None:
    """Build and run the jail once per interpreter it will host, before anything is applied:
    PREFLIGHT:SANDBOX naming the cause when bwrap is missing or cannot build it."""
    wanted = list(dict.fromkeys(pythons))
    with tempfile.TemporaryDirectory(prefix="am-patch-probe-") as scratch:
        for python in wanted:
            jail = make_jail(
                bwrap=bwrap,
                enabled=True,
                writable=Path(scratch),
                live_root=live_root,
                git_common_dir=git_common_dir,
                python=python,
            )
            probe(jail, python)
    log.info("sandbox probe: bubblewrap (%s) runs %s", bwrap, ", ".join(map(str, wanted)))


class Probing:
    """sandbox.preflight running in the background while the workspace is prepared; `wait()`
    before anything is applied gives its refusal, if any."""

    def __init__(self, **preflight_args: Any) -> None:
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(preflight_args,), daemon=True)
        self._thread.start()

    def _run(self, args: dict[str, Any]) -> None:
        try:
            preflight(**args)
        except Exception as exc:  # handed to wait(), in the run's own thread
            self._failed = exc

    def wait(self) -> None:
        self._thread.join()
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed


def probe(jail: Jail, python: Path) -> None:
    """Run the exact jail once with a no-op; PREFLIGHT:SANDBOX with the likely cause if it fails."""
    if jail.bwrap is None:
        return
    result = jail.run([str(python), "-c", "pass"], timeout_s=60)
    if result.ok:
        return
    raise Refusal(
        Category.SANDBOX,
        f"the sandbox cannot run: {_hint()}; bwrap said: {result.tail(3) or result.returncode}",
    )


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _hint() -> str:
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" and os.geteuid() != 0:
        return (
            "AppArmor restricts unprivileged user namespaces "
            "(kernel.apparmor_restrict_unprivileged_userns=1; add an AppArmor profile for bwrap)"
        )
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0" and os.geteuid() != 0:
        return "user namespaces are off (sysctl kernel.unprivileged_userns_clone=1)"
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        return "user namespaces are off (sysctl user.max_user_namespaces=0)"
    return "bwrap failed to set up the jail (in a container, allow user namespaces)"
