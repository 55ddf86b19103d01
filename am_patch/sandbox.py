"""The bubblewrap jail that patch scripts (and, by default, gates) run in."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from am_patch import proc
from am_patch.errors import Category, RunnerError, Stage

log = logging.getLogger("am_patch")

BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
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
_PROBE_SCRIPT = (
    "import sys, site; print(sys.prefix); print(sys.base_prefix); "
    "print(site.getusersitepackages()); print(*sys.path, sep=chr(10))"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Jail:
    """How to run a command confined to `writable`; `bwrap` is None when the sandbox is off."""

    bwrap: str | None
    writable: Path
    extra_writable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    exposed: tuple[Path, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    chdir: Path | None = None  # the command's working directory; default: writable

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
        args += ["--tmpfs", "/tmp"]
        for hidden in self.hidden:
            args += ["--tmpfs", str(hidden)]
        for path in self.exposed:
            args += ["--ro-bind", str(path), str(path)]
        for path in (self.writable, *self.extra_writable):
            args += ["--bind", str(path), str(path)]
        pointer = self.writable / ".git"  # the worktree's gitdir pointer stays read-only
        if pointer.exists():
            args += ["--ro-bind", str(pointer), str(pointer)]
        args += ["--remount-ro", "/"]  # the jail's own root (its /etc) is read-only too
        args += ["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
        for key, value in sorted(self.env.items()):
            args += ["--setenv", key, value]
        args += ["--chdir", str(self.chdir or self.writable), "--"]
        return args + list(command)

    def run(self, command: Sequence[str], *, timeout_s: float | None) -> proc.ProcResult:
        # bwrap itself gets the minimal environment too: its pid 1 in the jail keeps the
        # environment it was started with, readable there as /proc/1/environ
        env = dict(self.env)
        cwd = self.chdir or self.writable
        return proc.run(self.argv(command), cwd=cwd, env=env, timeout_s=timeout_s)


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


def interpreter_dirs(python: Path, root: Path) -> tuple[Path, ...]:
    """What an interpreter needs (venv, base install, sys.path), never the live tree.

    A venv inside the live repo is exposed; other sys.path entries inside it (an editable
    install's .pth pointing at live's src/) stay hidden, so gates import the workspace's code.
    """
    venv = python.parent.parent.absolute()
    dirs = {venv, python.resolve().parent.parent}
    result = proc.run([str(python), "-I", "-c", _PROBE_SCRIPT], cwd=root, quiet=True)
    if result.ok:
        dirs.update(Path(line) for line in result.output.splitlines() if line.strip())
    live = root.resolve()
    keep = []
    for path in sorted(dirs):
        if not path.is_absolute() or not path.exists() or path == Path("/"):
            continue
        real = path.resolve()
        if live.is_relative_to(real):
            continue  # an ancestor of the live repo would expose it
        if real.is_relative_to(live) and not (path.is_relative_to(venv) or real == venv.resolve()):
            continue
        keep.append(path)
    return tuple(keep)


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
) -> Jail:
    env = base_env(python) | dict(extra_env or {})
    if not enabled:
        return Jail(bwrap=None, writable=writable, extra_writable=extra_writable, env=env)
    found = shutil.which(bwrap)
    if found is None:
        raise RunnerError(
            Stage.PREFLIGHT,
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


def probe(jail: Jail, python: Path) -> None:
    """Run the exact jail once with a no-op; PREFLIGHT:SANDBOX with the likely cause if it fails."""
    if jail.bwrap is None:
        return
    result = jail.run([str(python), "-c", "pass"], timeout_s=60)
    if result.ok:
        return
    raise RunnerError(
        Stage.PREFLIGHT,
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
