"""Benchmark: what the gate-verdict cache saves on a full run (workspace gates + live gates).

Builds the demo project with a bare origin, then lands the same kind of one-file patch several
times with the cache on and with it off (`--override gate_cache=false`), alternating, and prints
the median wall time of each and their ratio. With the cache, the live gates on the promoted
tree (identical to the gated workspace tree) are reused instead of run again.

    .venv/bin/python bench/gate_cache.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from am_patch import config
from am_patch.demo import make_project
from am_patch.gating import warm_bytecode

PATCH = """\
from pathlib import Path

FILES = ["src/democalc/calc.py"]
p = Path("src/democalc/calc.py")
p.write_text(p.read_text() + "\\n\\ndef f{n}(a: int) -> int:\\n    return a + {n}\\n")
"""


def land_once(live: Path, n: int, *extra: str) -> float:
    (live / "patches" / f"issue_{n}.py").write_text(PATCH.format(n=n))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "am_patch", str(n), f"bench {n}", *extra],
        cwd=live,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run {n} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="am-patch-bench-") as tmp:
        _, live = make_project(Path(tmp))
        (live / "patches").mkdir()
        warm_bytecode(config.load(live), live)  # as on any second run of this venv
        land_once(live, 1)  # warm-up: interpreter, bwrap and OS caches
        cached, uncached = [], []
        for r in range(args.rounds):
            n = 10 + 2 * r
            cached.append(land_once(live, n))
            uncached.append(land_once(live, n + 1, "--override", "gate_cache=false"))
    with_cache, without = statistics.median(cached), statistics.median(uncached)
    print(f"full run, live gates from cache : {with_cache:6.2f} s (median of {args.rounds})")
    print(f"full run, live gates re-run     : {without:6.2f} s (median of {args.rounds})")
    print(f"ratio cached/uncached           : {with_cache / without:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
