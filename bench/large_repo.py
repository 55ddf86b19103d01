"""Benchmark: am-patch on a 20,000-file repository, README-only patches, against git itself.

Builds (in `--dir`, default a new temp dir) `origin.git`, a bare origin, and `live`, a clone on
`main` with one commit of `--dirs` x `--files-per-dir` small files (default 200 x 100 = 20,000,
half `.py`, half `.txt`, written with `git fast-import` and checked out) plus README.md. No
`am_patch.toml`: every default holds, and a README-only patch runs no gate.

Measured in the same run, in this order:

1. `git worktree add --detach` of live `main` (then `git worktree remove`), `--worktree-reps`
   times (default 3), and once more after each issue (file creation on a small VM is noisy:
   interleaving lets drift hit both sides); the median of all is the baseline. On ext4, file
   creation slows down for a few minutes after many files were deleted (the inode allocator
   skips recently deleted inodes: `recently_deleted` in a kernel profile), so each removed
   worktree or workspace of 20,000 files makes the next checkout slower; the samples are printed
   in order to show that drift.
2. `git status --porcelain` in live (median of 5).
3. Three consecutive issues (ids 1, 2, 3) in the same live repo, each landing a README-only
   patch with `python -m am_patch ID "msg"`: a unified diff by default (`patches/issue_<ID>.diff`,
   no code runs), or a patch script with `--patch-kind script` (runs in the bwrap jail). Each is
   timed end to end and must end in `RESULT: SUCCESS` with `PUSH: OK`.

Prints the worktree-add and status times, each issue's time, the ratios issue_N/worktree_add
(issue 10's goals: issue 1 <= 1x, issues 2 and 3 <= 0.1x), whether each issue was no slower than
the one before, and where each issue's time went. The `[stage]` lines am-patch prints are stamped
as they stream; the run log (`patches/logs/<run>.log`, whose own stamps are HH:MM:SS) is tailed
while the run goes, so each log line gets a stamp to ~10 ms, and the largest gaps between
consecutive log lines (the step logged just before a gap is the one that took the time) are shown.

    .venv/bin/python bench/large_repo.py [--patch-kind diff|script] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ISSUES = (1, 2, 3)
GOAL_FIRST = 1.0
GOAL_LATER = 0.1
IDENTITY = {
    "GIT_AUTHOR_NAME": "am-patch bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "am-patch bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}
README = "# large repository bench\n\nTwenty thousand small files.\n"
SCRIPT = """\
from pathlib import Path

FILES = ["README.md"]
readme = Path("README.md")
readme.write_text(readme.read_text() + "Issue {n} was here.\\n")
"""
POLL_S = 0.01


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without GIT_* and a venv of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "VIRTUAL_ENV"}
    env.update(extra)
    return env


def run(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, stdin: bytes = b""
) -> bytes:
    """Run argv; on failure stop the bench with the command's output tail."""
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stdout.decode(errors="replace").splitlines()[-30:])
        raise SystemExit(f"FAILED ({done.returncode}) in {cwd}: {' '.join(argv)}\n{tail}")
    return done.stdout


def git(cwd: Path, *args: str, stdin: bytes = b"") -> bytes:
    return run(["git", "-c", "commit.gpgsign=false", *args], cwd, clean_env(**IDENTITY), stdin)


def timed(argv: Sequence[str], cwd: Path) -> float:
    start = time.perf_counter()
    git(cwd, *argv)
    return time.perf_counter() - start


def worktree_add(live: Path, base: Path) -> float:
    """`git worktree add` of live's HEAD, timed; the worktree is removed again."""
    tree = base / "worktree"
    seconds = timed(["worktree", "add", "-q", "--detach", str(tree)], live)
    git(live, "worktree", "remove", "--force", str(tree))
    return seconds


# --- the repository ------------------------------------------------------------------------


def fast_import_stream(dirs: int, per_dir: int) -> bytes:
    """One commit on refs/heads/main: README.md plus dirs x per_dir small files."""
    out = [b"commit refs/heads/main\n", b"committer am-patch bench <bench@example.invalid> "]
    out.append(b"1700000000 +0000\n")
    message = f"{dirs * per_dir} files".encode()
    out.append(b"data %d\n%s\n" % (len(message), message))

    def add(path: str, text: str) -> None:
        data = text.encode()
        out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))

    add("README.md", README)
    for d in range(dirs):
        for f in range(per_dir):
            if f % 2:
                add(f"pkg_{d:03d}/notes_{f:03d}.txt", f"notes {d}/{f}\n")
            else:
                add(f"pkg_{d:03d}/mod_{f:03d}.py", f'"""Module {d}/{f}."""\n\nVALUE = {f}\n')
    out.append(b"\n")
    return b"".join(out)


def build(base: Path, dirs: int, per_dir: int) -> tuple[Path, Path]:
    started = time.perf_counter()
    origin, live = base / "origin.git", base / "live"
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(base, "init", "-q", "-b", "main", str(live))
    for key, value in (("user.name", "am-patch bench"), ("user.email", "bench@example.invalid")):
        git(live, "config", key, value)
    git(live, "fast-import", "--quiet", stdin=fast_import_stream(dirs, per_dir))
    git(live, "reset", "-q", "--hard", "main")
    git(live, "remote", "add", "origin", str(origin))
    git(live, "push", "-q", "-u", "origin", "main")
    (live / "patches").mkdir()
    count = len(git(live, "ls-files").splitlines())
    print(f"built {count} files at {live} in {time.perf_counter() - started:.1f}s")
    return origin, live


# --- one am-patch run, stamped as it streams -----------------------------------------------


class LogTail(threading.Thread):
    """Tails the run log am-patch creates in logs_dir, stamping each line as it appears."""

    def __init__(self, logs_dir: Path, start: float) -> None:
        super().__init__(daemon=True)
        self.logs_dir = logs_dir
        self.start_t = start
        self.before = set(logs_dir.glob("*.log")) if logs_dir.is_dir() else set()
        self.lines: list[tuple[float, str]] = []
        self.done = threading.Event()
        self._path: Path | None = None
        self._offset = 0
        self._partial = ""

    def _find(self) -> Path | None:
        if self._path is None and self.logs_dir.is_dir():
            fresh = sorted(set(self.logs_dir.glob("*.log")) - self.before)
            self._path = fresh[0] if fresh else None
        return self._path

    def _read(self) -> None:
        path = self._find()
        if path is None:
            return
        with path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        if not chunk:
            return
        now = time.perf_counter() - self.start_t
        self._offset += len(chunk)
        text = self._partial + chunk.decode(errors="replace")
        *complete, self._partial = text.split("\n")
        self.lines.extend((now, line) for line in complete)

    def run(self) -> None:
        while not self.done.is_set():
            self._read()
            time.sleep(POLL_S)
        self._read()


@dataclass(frozen=True, slots=True)
class Run:
    issue: int
    total: float
    stdout: tuple[tuple[float, str], ...]
    log: tuple[tuple[float, str], ...]


def land(live: Path, n: int, kind: str) -> Run:
    """One README-only issue; stops the bench unless SUCCESS with PUSH: OK."""
    patches = live / "patches"
    if kind == "script":
        (patches / f"issue_{n}.py").write_text(SCRIPT.format(n=n))
    else:
        old = (live / "README.md").read_text()
        new = old + f"Issue {n} was here.\n"
        diff = difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            "a/README.md",
            "b/README.md",
        )
        (patches / f"issue_{n}.diff").write_text("".join(diff))
    argv = [sys.executable, "-m", "am_patch", str(n), f"Bench: README note {n}"]
    start = time.perf_counter()
    tail = LogTail(patches / "logs", start)
    tail.start()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(
        argv,
        cwd=live,
        env=clean_env(PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))
        code = child.wait()
    total = time.perf_counter() - start
    tail.done.set()
    tail.join()
    texts = [text for _, text in lines]
    if code != 0 or "RESULT: SUCCESS" not in texts or "PUSH: OK" not in texts:
        shown = "\n".join(texts[-40:])
        raise SystemExit(f"am-patch issue {n} did not land (exit {code}):\n{shown}")
    return Run(n, total, tuple(lines), tuple(tail.lines))


def stages(run: Run) -> list[str]:
    """The [stage] lines with the time since the previous one (what the stage line closed)."""
    out, last = [], 0.0
    for at, text in run.stdout:
        if text.startswith("["):
            out.append(f"    {at:7.2f}s (+{at - last:6.2f}) {text[:100]}")
            last = at
    out.append(f"    {run.total:7.2f}s (+{run.total - last:6.2f}) (exit)")
    return out


def gaps(run: Run, top: int) -> list[str]:
    """The largest gaps between consecutive log lines, with the lines on both sides."""
    stamped = [(0.0, "(process start)"), *run.log, (run.total, "(process exit)")]
    spans = []
    for (at, text), (nxt, following) in itertools.pairwise(stamped):
        spans.append((nxt - at, text, following))
    spans.sort(key=lambda s: s[0], reverse=True)
    out = []
    for seconds, text, following in spans[:top]:
        if seconds < 0.05:
            break
        out.append(f"    {seconds:6.2f}s after: {strip(text)[:110]}")
        out.append(f"             until: {strip(following)[:110]}")
    return out


def strip(line: str) -> str:
    """A log line without its HH:MM:SS stamp."""
    head, _, rest = line.partition(" ")
    return rest if len(head) == 8 and head.count(":") == 2 else line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dirs", type=int, default=200)
    parser.add_argument("--files-per-dir", type=int, default=100)
    parser.add_argument("--patch-kind", choices=("diff", "script"), default="diff")
    parser.add_argument("--worktree-reps", type=int, default=3)
    parser.add_argument("--top", type=int, default=8, help="log gaps shown per issue")
    parser.add_argument("--dir", type=Path, help="work dir (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp work dir")
    args = parser.parse_args(argv)
    if args.dir is not None:
        base = args.dir.resolve()
        if base.exists() and any(base.iterdir()):
            parser.error(f"--dir {base} is not empty")
        base.mkdir(parents=True, exist_ok=True)
    else:
        base = Path(tempfile.mkdtemp(prefix="am-patch-bench-large-"))
    try:
        _, live = build(base, args.dirs, args.files_per_dir)
        adds = [worktree_add(live, base) for _ in range(args.worktree_reps)]
        statuses = [timed(["status", "--porcelain"], live) for _ in range(5)]
        runs = []
        for n in ISSUES:
            runs.append(land(live, n, args.patch_kind))
            adds.append(worktree_add(live, base))  # interleaved: the machine's drift hits both
    finally:
        if args.dir is None and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"work dir kept: {base}")
    add, status = statistics.median(adds), statistics.median(statuses)
    shown = ", ".join(f"{a:.2f}" for a in adds)
    print(f"git worktree add:     {add:6.2f} s (median of {len(adds)}: {shown})")
    print(f"git status:           {status:6.2f} s (median of {len(statuses)})")
    previous: float | None = None
    for run in runs:
        goal = GOAL_FIRST if run.issue == ISSUES[0] else GOAL_LATER
        ratio = run.total / add
        verdict = "met" if ratio <= goal else "not met"
        slower = ""
        if previous is not None:
            slower = "  no slower than the one before" if run.total <= previous else "  SLOWER"
        print(
            f"issue {run.issue} ({args.patch_kind}):     {run.total:6.2f} s  "
            f"= {ratio:5.2f}x worktree add (goal <= {goal}x: {verdict}){slower}"
        )
        previous = run.total
    fastest = min(adds)  # a checkout on a file system no deletion has slowed down
    print(
        f"against the fastest worktree add ({fastest:.2f} s): "
        + ", ".join(f"issue {r.issue} {r.total / fastest:.2f}x" for r in runs)
    )
    for run in runs:
        print(f"issue {run.issue}: stages as printed (time since the previous stage line)")
        print("\n".join(stages(run)))
        print(f"issue {run.issue}: largest gaps between log lines")
        print("\n".join(gaps(run, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
