"""Benchmark: several issues at once (issue 12).

Part 1, one live repository: the demo project (am_patch.demo) gets 4 independent issues, each
adding its own module and test, so every gate runs (compile, ruff format, ruff, pytest, mypy).
Timed in the same run, on fresh copies of the same project:

  serial    `am-patch ID MSG` four times, one after another
  batch     `am-patch --batch --override jobs=4`, the four at once
  default   `am-patch --batch` with the default jobs (half the CPUs)

It also prints how many cores the serial runs keep busy (/proc/stat), and so the floor: the
serial runs' CPU work packed perfectly on every core, no gate run twice.

Runs that land after another rebase and gate again: that is the price of "exactly the tested
commit", and it is in the figure. Goal: batch / serial <= 0.6 on 2 cores.

Part 2, a fleet: two live clones of one bare origin with the pre-receive hook installed, 3
patches each, both `am-patch --batch -u --override jobs=1` started at once. Goal: all 6 land,
origin's history is linear, and every tree on origin's main passed the gates on the machine
that landed it (read from the two machines' verdict caches).

    .venv/bin/python bench/throughput.py [--rounds 2] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from am_patch import config
from am_patch.demo import make_project
from am_patch.gating import warm_bytecode

GOAL = 0.6
ISSUES = ("11", "12", "13", "14")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def patch_script(issue: str) -> str:
    """A patch adding module f<issue> with a typed function and a test: every gate runs."""
    module, test = f"src/democalc/f{issue}.py", f"tests/test_f{issue}.py"
    body = f'"""Feature {issue}."""\n\n\ndef f{issue}(x: int) -> int:\n    return x + {issue}\n'
    check = (
        f"from democalc.f{issue} import f{issue}\n\n\n"
        f"def test_f{issue}() -> None:\n    assert f{issue}(1) == {int(issue) + 1}\n"
    )
    return (
        f"FILES = [{module!r}, {test!r}]\n"
        f"MESSAGE = 'Add f{issue}'\n"
        "from pathlib import Path\n"
        f"Path({module!r}).write_text({body!r})\n"
        f"Path({test!r}).write_text({check!r})\n"
    )


def am_patch(live: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "am_patch", *args],
        cwd=live,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def project(base: Path, issues: Sequence[str]) -> Path:
    _, live = make_project(base)
    (live / "patches").mkdir()
    for issue in issues:
        (live / "patches" / f"issue_{issue}.py").write_text(patch_script(issue))
    warm_bytecode(config.load(live), live)  # as on any second run of this venv
    return live


def expect_success(done: subprocess.CompletedProcess[str], what: str) -> None:
    last = done.stdout.strip().splitlines()[-1:] or [""]
    if done.returncode != 0 or last[0] != "RESULT: SUCCESS":
        sys.exit(f"{what} did not succeed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")


def busy_cpu_s() -> float:
    """CPU seconds the whole machine spent busy so far (/proc/stat: every process, jails too)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def serial(base: Path) -> tuple[float, float]:
    """Seconds for the four one after another, and the CPU seconds they kept busy."""
    live = project(base, ISSUES)
    start, cpu = time.perf_counter(), busy_cpu_s()
    for issue in ISSUES:
        expect_success(am_patch(live, issue, f"Add f{issue}"), f"issue {issue}")
    return time.perf_counter() - start, busy_cpu_s() - cpu


def batch(base: Path, jobs: int = 4) -> float:
    live = project(base, ISSUES)
    start = time.perf_counter()
    expect_success(am_patch(live, "--batch", "--override", f"jobs={jobs}"), "the batch")
    took = time.perf_counter() - start
    subjects = git(live, "log", "--format=%s").splitlines()
    if len(subjects) != len(ISSUES) + 1 or git(live, "rev-list", "--merges", "main"):
        sys.exit(f"the batch did not land the four issues linearly: {subjects}")
    return took


def passed_trees(live: Path) -> set[str]:
    """The trees a machine's gates passed (its verdict cache: "<gate> <tree>" per pass)."""
    path = live / ".git" / "am_patch" / "verdicts.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    return {str(v).split()[-1] for v in data.values()}


def fleet(base: Path) -> None:
    origin, first = make_project(base)
    hook = subprocess.run(
        [sys.executable, "-m", "am_patch.hooks", "install", "--server", str(origin)],
        cwd=first,
        capture_output=True,
        text=True,
    )
    if hook.returncode != 0:
        sys.exit(f"could not install the pre-receive hook: {hook.stdout}{hook.stderr}")
    second = base / "second"
    git(base, "clone", "-q", str(origin), str(second))
    machines = {first: ("21", "22", "23"), second: ("31", "32", "33")}
    for live, issues in machines.items():
        (live / "patches").mkdir(exist_ok=True)
        for issue in issues:
            (live / "patches" / f"issue_{issue}.py").write_text(patch_script(issue))
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "am_patch", "--batch", "-u", "--override", "jobs=1"],
            cwd=live,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **GIT_ENV},
        )
        for live in machines
    ]
    outputs = [p.communicate() for p in procs]
    took = time.perf_counter() - start
    for proc, (out, err) in zip(procs, outputs, strict=True):
        expect_success(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), "a fleet")
    landed = git(origin, "log", "--format=%s", "main").splitlines()[:-1]
    linear = git(origin, "rev-list", "--merges", "main") == ""
    trees = git(origin, "log", "--format=%T", "main").splitlines()[:-1]
    gated = passed_trees(first) | passed_trees(second)
    ungated = [t for t in trees if t not in gated]
    caught_up = sum(
        log.read_text().count("another runner pushed first")
        for live in machines
        for log in (live / "patches" / "logs").glob("issue_*.log")
    )
    print(f"fleet: {len(landed)} of 6 landed on origin in {took:.1f}s, linear history: {linear}")
    print(f"fleet: pushes that lost the race and caught up: {caught_up}")
    print(f"fleet: landed trees without a recorded gate pass: {len(ungated)}")
    ok = len(landed) == 6 and linear and not ungated
    print(f"fleet goal (all 6 land, linear, every landed tree gated): {'met' if ok else 'NOT met'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="am-patch-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir: {work}; {os.cpu_count()} CPU(s); 4 issues, every gate")
    try:
        batch(work / "warmup")  # page cache, tools' bytecode; not counted
        ratios, default_ratios, floors = [], [], []
        cores = os.cpu_count() or 1
        for n in range(1, args.rounds + 1):
            one_by_one, cpu = serial(work / f"serial{n}")
            at_once = batch(work / f"batch{n}")
            by_default = batch(work / f"default{n}", 0)
            ratios.append(at_once / one_by_one)
            default_ratios.append(by_default / one_by_one)
            floors.append(cpu / cores / one_by_one)  # all of serial's CPU work packed on every core
            print(
                f"round {n}: serial {one_by_one:.1f}s (keeps {cpu / one_by_one:.2f} cores busy), "
                f"batch jobs=4 {at_once:.1f}s (ratio {ratios[-1]:.2f}), batch default jobs "
                f"{by_default:.1f}s (ratio {default_ratios[-1]:.2f})"
            )
        median = statistics.median(ratios)
        verdict = "met" if median <= GOAL else "NOT met"
        print(f"median ratio batch (jobs=4)/serial: {median:.2f} (goal <= {GOAL}: {verdict})")
        print(f"median ratio batch (default jobs)/serial: {statistics.median(default_ratios):.2f}")
        print(
            f"floor: serial's own CPU work packed perfectly on {cores} cores would take "
            f"{statistics.median(floors):.2f}x serial's time, with no gate run twice"
        )
        fleet(work / "fleet")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
