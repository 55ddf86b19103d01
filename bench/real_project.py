"""Benchmark: am-patch on a real project (click from its PyPI sdist) against a serial runner.

What it builds (in a work dir, `--dir`, default a new temp dir):

- `origin.git`, a bare origin, and `live`, a clone on `main` holding click's sdist
  (`pip download --no-binary :all: --no-deps click==8.5.1`; if that version is not on PyPI, the
  newest click sdist is taken and the output says so). Two commits:
  1. "click X as shipped": the unpacked sdist, untouched.
  2. "baseline": a `.gitignore` (venv and tool caches), and `ruff format .` over the tree. The
     sdist of 8.5.1 is ruff-clean and mypy-clean with its own config (`[tool.mypy] files = ["src",
     "tests/typing"]`, strict), but current ruff also formats the Python code blocks of Markdown
     files, and 12 files of README.md and docs/ fail `ruff format --check .`; formatting them
     changes no code. No `am_patch.toml` is needed: am-patch runs with every default. If a future
     sdist needs more, the build stops and says which gate is red on the baseline tree.
- `live/.venv`, the project's venv: click installed editable, plus pytest, pytest-xdist, ruff and
  mypy. am-patch's gates find it as `<live>/.venv/bin/python`.

Cached between runs in `--cache-dir` (default `~/.cache/am-patch-bench`): the sdist, and a
wheelhouse with the tools and click's build backend, so the venv is rebuilt offline in seconds (a
venv is not relocatable: click's editable install points at this run's `live/src`).

Then, `--rounds` times (default 3), alternately:

(a) am-patch: a patch script `patches/issue_<ID>.py` (a new issue each round) appends a small
    typed function with a docstring to one click module (a different module and function each
    round); `python -m am_patch ID "msg"` with every default, timed end to end. It must end in
    `RESULT: SUCCESS` with `PUSH: OK`, or the bench fails and prints the output's tail.
(b) the serial baseline: a fresh `git clone` of the origin, then `ruff format --check .`,
    `ruff check .`, `pytest -q` (one process) and `mypy` one after another with the project's
    venv interpreter (`PYTHONPATH=src`, so the tests import the clone's code, as am-patch's
    gates import the workspace's), timed as a whole.

One warm-up pair runs first and is not counted (page cache, bytecode of the tools). Prints each
pair, the gate times am-patch reported, and the median ratio am-patch/baseline (issue 10's goal:
<= 0.6).

    .venv/bin/python bench/real_project.py [--rounds 3] [--dir DIR] [--cache-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from am_patch import config
from am_patch.gating import warm_bytecode

CLICK_VERSION = "8.5.1"
TOOLS = ("pytest", "pytest-xdist", "ruff", "mypy")
GOAL = 0.6
RERUN_GOAL = 0.1
# (module, a harmless addition); each round takes the next one
TARGETS = (
    "src/click/utils.py",
    "src/click/formatting.py",
    "src/click/exceptions.py",
    "src/click/termui.py",
    "src/click/globals.py",
)
PATCH = '''\
"""Bench issue {n}: add a small helper to {path}."""

from pathlib import Path

FILES = ["{path}"]
target = Path("{path}")
target.write_text(
    target.read_text()
    + "\\n\\ndef _bench_helper_{n}(value: int) -> int:\\n"
    + '    """Return value plus {n} (added by the am-patch benchmark, issue {n})."""\\n'
    + "    return value + {n}\\n"
)
'''
GITIGNORE = """\
.venv/
__pycache__/
*.egg-info/
.mypy_cache/
.ruff_cache/
.pytest_cache/
build/
dist/
"""
IDENTITY = {
    "GIT_AUTHOR_NAME": "am-patch bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "am-patch bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without GIT_* and a venv of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "VIRTUAL_ENV"}
    env.update(extra)
    return env


def run(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> str:
    """Run argv; on failure stop the bench with the command's output tail."""
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-30:])
        raise SystemExit(f"FAILED ({done.returncode}) in {cwd}: {' '.join(argv)}\n{tail}")
    return done.stdout


def git(cwd: Path, *args: str) -> str:
    return run(["git", "-c", "commit.gpgsign=false", *args], cwd, clean_env(**IDENTITY))


# --- the cached inputs ---------------------------------------------------------------------


def fetch_sdist(cache: Path, version: str) -> tuple[Path, str]:
    """The click sdist (cached) and a note when it is not the version asked for."""
    sdists = cache / "sdist"
    sdists.mkdir(parents=True, exist_ok=True)
    wanted = sdists / f"click-{version}.tar.gz"
    if wanted.is_file():
        return wanted, ""
    pip = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
    with tempfile.TemporaryDirectory(dir=sdists) as tmp:
        done = subprocess.run(
            [*pip, "-d", tmp, f"click=={version}"], capture_output=True, text=True
        )
        note = ""
        if done.returncode != 0:
            run([*pip, "-d", tmp, "click"], Path(tmp))
            note = f"click=={version} is not on PyPI: took the newest click sdist instead"
        found = sorted(Path(tmp).glob("click-*.tar.gz"))
        if len(found) != 1:
            raise SystemExit(f"pip download left {found}, expected one click-*.tar.gz")
        final = sdists / found[0].name
        found[0].replace(final)
    if note:
        note += f" ({final.name})"
    return final, note


def wheelhouse(cache: Path, build_requires: Sequence[str]) -> Path:
    """Wheels of the tools and click's build backend for this Python, built once."""
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    house = cache / f"wheelhouse-{tag}"
    wanted = sorted([*TOOLS, *build_requires])
    marker = house / "complete.txt"
    if marker.is_file() and marker.read_text().splitlines() == wanted:
        return house
    house.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(house), *wanted], house)
    marker.write_text("\n".join(wanted) + "\n")
    return house


# --- the project ---------------------------------------------------------------------------


def unpack(sdist: Path, dest: Path) -> str:
    """The sdist's files into dest (its top directory stripped); returns click's version."""
    with tarfile.open(sdist) as tar:
        tops = {m.name.split("/", 1)[0] for m in tar.getmembers()}
        if len(tops) != 1:
            raise SystemExit(f"{sdist.name}: expected one top directory, found {sorted(tops)}")
        top = tops.pop()
        tar.extractall(dest.parent / "unpack", filter="data")
    (dest.parent / "unpack" / top).rename(dest)
    (dest.parent / "unpack").rmdir()
    return top.removeprefix("click-")


def make_venv(live: Path, house: Path) -> Path:
    python = live / ".venv" / "bin" / "python"
    run([sys.executable, "-m", "venv", "--without-pip", str(live / ".venv")], live)
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    offline = ["--no-index", "--find-links", str(house)]
    run([*pip, *offline, *TOOLS], live)
    run([*pip, *offline, "-e", "."], live)
    return python


def build(base: Path, cache: Path, version: str) -> tuple[Path, Path, str]:
    """origin.git, live (with .venv), ready for am-patch; returns (live, python, note)."""
    started = time.perf_counter()
    sdist, note = fetch_sdist(cache, version)
    origin, live = base / "origin.git", base / "live"
    got = unpack(sdist, live)
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(live, "init", "-q", "-b", "main")
    for key, value in (("user.name", "am-patch bench"), ("user.email", "bench@example.invalid")):
        git(live, "config", key, value)
    git(live, "add", "-A")
    git(live, "commit", "-q", "-m", f"click {got} as shipped")
    requires = tomllib.loads((live / "pyproject.toml").read_text())["build-system"]["requires"]
    house = wheelhouse(cache, requires)
    (live / ".gitignore").write_text(GITIGNORE)
    python = make_venv(live, house)
    run([str(python), "-m", "ruff", "format", "-q", "."], live)
    git(live, "add", "-A")
    git(live, "commit", "-q", "-m", "baseline: .gitignore; ruff format (Markdown code blocks)")
    git(live, "remote", "add", "origin", str(origin))
    git(live, "push", "-q", "-u", "origin", "main")
    (live / "patches").mkdir()
    print(f"built click {got} at {live} in {time.perf_counter() - started:.1f}s")
    return live, python, note


# --- one measurement -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timed:
    total: float
    parts: tuple[tuple[str, float], ...]
    output: tuple[str, ...]


BASELINE_STEPS = (
    ("ruff format --check", ("-m", "ruff", "format", "--check", ".")),
    ("ruff check", ("-m", "ruff", "check", ".")),
    ("pytest", ("-m", "pytest", "-q")),
    ("mypy", ("-m", "mypy")),
)


def serial_baseline(origin: Path, python: Path, scratch: Path) -> Timed:
    """A fresh clone, then the four tools one after another; every step must pass."""
    clone = scratch / "clone"
    shutil.rmtree(clone, ignore_errors=True)
    parts: list[tuple[str, float]] = []
    start = time.perf_counter()
    git(scratch, "clone", "-q", str(origin), str(clone))
    parts.append(("clone", time.perf_counter() - start))
    env = clean_env(PYTHONPATH=str(clone / "src"))
    for name, args in BASELINE_STEPS:
        step = time.perf_counter()
        run([str(python), *args], clone, env)
        parts.append((name, time.perf_counter() - step))
    total = time.perf_counter() - start
    shutil.rmtree(clone)
    return Timed(total, tuple(parts), ())


GATE_LINE = re.compile(r"^GATE (\w+): (.*)$")


def land(live: Path, n: int, path: str) -> Timed:
    """One issue with am-patch's defaults; stops the bench unless SUCCESS with PUSH: OK."""
    (live / "patches" / f"issue_{n}.py").write_text(PATCH.format(n=n, path=path))
    argv = [sys.executable, "-m", "am_patch", str(n), f"Bench: helper {n} in {path}"]
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=live, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    total = time.perf_counter() - start
    lines = tuple(done.stdout.splitlines())
    if done.returncode != 0 or "RESULT: SUCCESS" not in lines or "PUSH: OK" not in lines:
        tail = "\n".join(lines[-40:])
        raise SystemExit(f"am-patch issue {n} did not land (exit {done.returncode}):\n{tail}")
    gates = []
    for line in lines:
        match = GATE_LINE.match(line)
        if match:
            seconds = re.search(r"in ([\d.]+)s", match.group(2))
            gates.append((match.group(1), float(seconds.group(1)) if seconds else 0.0))
    gates.append(("outside gates", total - sum(seconds for _, seconds in gates)))
    return Timed(total, tuple(gates), lines)


def gate_seconds(live: Path, n: int, path: str, *extra: str) -> tuple[float, tuple[str, ...]]:
    """Run issue n (its patch written) and time its gates as they stream: from the [scope]
    line to the first line after the last [gates] verdict. (seconds, the output)."""
    (live / "patches" / f"issue_{n}.py").write_text(PATCH.format(n=n, path=path))
    argv = [sys.executable, "-m", "am_patch", str(n), f"Bench: rerun {n}", *extra]
    proc = subprocess.Popen(
        argv, cwd=live, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    stamped = [(time.perf_counter(), line.rstrip("\n")) for line in proc.stdout]
    proc.wait()
    lines = tuple(line for _, line in stamped)
    if proc.returncode != 0:
        raise SystemExit(f"am-patch issue {n} failed:\n" + "\n".join(lines[-30:]))
    scope = next(t for t, line in stamped if line.startswith("[scope]"))
    last_gate = max(i for i, (_, line) in enumerate(stamped) if line.startswith("[gates]"))
    after = stamped[last_gate + 1][0] if last_gate + 1 < len(stamped) else stamped[-1][0]
    return after - scope, lines


def rerun_of_a_gated_tree(live: Path, n: int, path: str) -> None:
    """Issue 10's third goal: gates of a tree already gated (after --disable-promotion) take
    <= 0.1x a cold run of the same gates."""
    cold, _ = gate_seconds(live, n, path, "--disable-promotion")
    warm, lines = gate_seconds(live, n, path)
    cached = [line for line in lines if line.startswith("[gates]") and "cached" in line]
    ratio = warm / cold
    verdict = "met" if ratio <= RERUN_GOAL else "not met"
    print(
        f"rerun of a gated tree: gates {warm:.2f}s against {cold:.2f}s cold = {ratio:.2f}x "
        f"(goal <= {RERUN_GOAL}: {verdict}); {len(cached)} gate(s) served from the cache"
    )


def describe(timed: Timed) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in timed.parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--version", default=CLICK_VERSION, help="click version to fetch")
    parser.add_argument("--dir", type=Path, help="work dir (default: a new temp dir)")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "am-patch-bench")
    parser.add_argument("--keep", action="store_true", help="keep the temp work dir")
    args = parser.parse_args(argv)
    if args.dir is not None:
        base = args.dir.resolve()
        if base.exists() and any(base.iterdir()):
            parser.error(f"--dir {base} is not empty")
        base.mkdir(parents=True, exist_ok=True)
    else:
        base = Path(tempfile.mkdtemp(prefix="am-patch-bench-click-"))
    try:
        live, python, note = build(base, args.cache_dir.expanduser(), args.version)
        if note:
            print(f"NOTE: {note}")
        origin, scratch = base / "origin.git", base / "scratch"
        scratch.mkdir()
        warm_base = serial_baseline(origin, python, scratch)
        print(f"baseline tree green: {describe(warm_base)} (warm-up, not counted)")
        warm_bytecode(config.load(live), live)  # the new venv, as on its second run
        warm = land(live, 100, TARGETS[-1])
        print(f"warm-up am-patch run {warm.total:.1f}s: {describe(warm)} (not counted)")
        pairs: list[tuple[Timed, Timed]] = []
        for r in range(args.rounds):
            n = 101 + r
            ours = land(live, n, TARGETS[r % len(TARGETS)])
            theirs = serial_baseline(origin, python, scratch)
            pairs.append((ours, theirs))
            print(
                f"round {r + 1}: am-patch {ours.total:6.1f}s  baseline {theirs.total:6.1f}s  "
                f"ratio {ours.total / theirs.total:5.2f}"
            )
            print(f"  am-patch gates: {describe(ours)}")
            print(f"  baseline steps: {describe(theirs)}")
        rerun_of_a_gated_tree(live, 199, TARGETS[0])
    finally:
        if args.dir is None and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"work dir kept: {base}")
    ratios = [a.total / b.total for a, b in pairs]
    median_ours = statistics.median(a.total for a, _ in pairs)
    median_theirs = statistics.median(b.total for _, b in pairs)
    print(f"am-patch (one-file patch, defaults): {median_ours:6.1f} s (median of {args.rounds})")
    print(f"serial baseline (clone + 4 tools):   {median_theirs:6.1f} s (median of {args.rounds})")
    verdict = "met" if statistics.median(ratios) <= GOAL else "not met"
    print(
        f"median ratio am-patch/baseline:      {statistics.median(ratios):6.2f} "
        f"(goal <= {GOAL}: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
