"""Benchmark: what the pre_commit gate costs, against pre-commit run by hand on the same files.

Builds the demo project with a bare origin and a .pre-commit-config.yaml of local hooks (a
pygrep check, a `system` shell check and a `system` whitespace fixer), lands clean docs
patches (so the fixer has nothing to fix and the gate one round to run), and prints the median
time the gate took (from the summary's `GATE pre_commit: PASS in Xs`) against
`pre-commit run --files` of the same file in a plain clone (the baseline: no jail, its own repo),
and the whole run's time with and without the config (what a user pays per run).

    .venv/bin/python bench/pre_commit_gate.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from am_patch import config
from am_patch.demo import LOCAL_HOOKS, make_project
from am_patch.gating import warm_bytecode

PATCH = """\
from pathlib import Path

FILES = ["docs/n{n}.md"]
Path("docs").mkdir(exist_ok=True)
Path("docs/n{n}.md").write_text("note {n}\\n")
"""
GATE_TIME = re.compile(r"GATE pre_commit: PASS in ([0-9.]+)s")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def land(live: Path, n: int) -> tuple[float, float | None]:
    """The whole run's seconds and the pre_commit gate's (None when it did not run)."""
    (live / "patches" / f"issue_{n}.py").write_text(PATCH.format(n=n))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "am_patch", str(n), f"bench {n}"],
        cwd=live,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run {n} failed:\n{done.stdout}\n{done.stderr}")
    found = GATE_TIME.search(done.stdout)
    return elapsed, float(found.group(1)) if found else None


def by_hand(clone: Path, n: int) -> float:
    """pre-commit run --files on one new docs file in a plain clone: the baseline."""
    path = clone / "docs" / f"h{n}.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"note {n}\n")
    git(clone, "add", str(path))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--files", str(path)],
        cwd=clone,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="am-patch-bench-") as tmp:
        origin, live = make_project(Path(tmp))
        (live / "patches").mkdir()
        warm_bytecode(config.load(live), live)  # as on any second run of this venv
        land(live, 1)  # warm-up: interpreter, bwrap and OS caches
        plain = [land(live, 10 + r)[0] for r in range(args.rounds)]
        (live / ".pre-commit-config.yaml").write_text(LOCAL_HOOKS)
        git(live, "add", ".pre-commit-config.yaml")
        git(live, "commit", "-q", "-m", "pre-commit hooks")
        git(live, "push", "-q", "origin", "main")
        land(live, 2)  # the first run prepares the (empty) hook store
        hooked = [land(live, 20 + r) for r in range(args.rounds)]
        clone = Path(tmp) / "clone"
        git(Path(tmp), "clone", "-q", str(origin), str(clone))
        baseline = [by_hand(clone, r) for r in range(args.rounds + 1)][1:]
    gate = statistics.median(t for _, t in hooked if t is not None)
    hand = statistics.median(baseline)
    with_config = statistics.median(t for t, _ in hooked)
    without = statistics.median(plain)
    print(f"pre_commit gate (jailed, in the run)  : {gate:6.2f} s (median of {args.rounds})")
    print(f"pre-commit run --files by hand        : {hand:6.2f} s (median of {args.rounds})")
    print(f"ratio gate/by hand                    : {gate / hand:6.2f}")
    print(f"docs run with the config              : {with_config:6.2f} s")
    print(f"docs run without a config (gate skip) : {without:6.2f} s")
    print(f"ratio with/without                    : {with_config / without:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
