"""Time `note2anki build` on generated vaults: cold, warm with nothing changed, and after editing one note.

    python benchmarks/run.py                 # N = 1,000 and 10,000 (vaults generated under a temp folder)
    python benchmarks/run.py --notes 1000 --jobs 1

Each build is a separate `note2anki` process; the figures are whole-process: wall time, cards per second
and peak RSS (the largest of the process and its workers, from the kernel's rusage, as `/usr/bin/time -v`
reports it; plus the peak of their sum, sampled every 10 ms). It also checks that the deck has the same bytes
whichever way it was built (cold, from the cache, one process or two).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peer  # noqa: E402
from floor import chunks_of, mistune_seconds  # noqa: E402
from generate import generate  # noqa: E402


def floor_cpu(vault: Path) -> float:
    """benchmarks/floor.py's lower bound, on this vault: mistune alone parsing and rendering what a build
    gives it, then its HTML renderer on the tokens (best of three, one process). Only those two: the
    middle figure mistune_seconds returns (the parse with note2anki's plugins) is a comparison, not a
    part of the floor."""
    plain, _ours, rendered = mistune_seconds(chunks_of(vault), runs=3)
    return plain + rendered


@dataclass
class Run:
    label: str
    seconds: float
    cards: int
    max_rss_mb: float  # largest single process (kernel rusage)
    sum_rss_mb: float  # largest sampled sum over the process tree
    cpu: float = 0.0  # user + system seconds of the process and its workers

    def row(self, notes: int) -> str:
        rate = self.cards / self.seconds if self.seconds else 0.0
        return (
            f"| {notes:>6,} | {self.label:<22} | {self.seconds:7.2f} s | {self.cpu:7.2f} s | {rate:9,.0f} | "
            f"{self.max_rss_mb:7.0f} MB | {self.sum_rss_mb:7.0f} MB |"
        )


def _tree_rss_kb(pid: int) -> int:
    """Sum of VmRSS over `pid` and its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return total


def build(vault: Path, out: Path, label: str, jobs: int | None, env: dict[str, str], *extra: str) -> Run:
    """One `note2anki build` as a student runs it (no --report, which holds every added card in memory);
    the card count comes from its summary line on stderr."""
    cmd = [sys.executable, "-m", "note2anki", "build", str(vault), "-o", str(out)]
    cmd += [*(["--jobs", str(jobs)] if jobs else []), *extra]
    log = out.with_suffix(".log")
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, env=env, stderr=err, stdout=subprocess.DEVNULL, text=True)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss_kb(proc.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    stderr = log.read_text(encoding="utf-8")
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"build failed ({label}):\n{stderr}")
    m = re.search(r"([\d,]+) cue cards?, ([\d,]+) summary cards?, ([\d,]+) cloze notes?", stderr)
    cards = sum(int(n.replace(",", "")) for n in m.groups()) if m else 0
    cpu = usage.ru_utime + usage.ru_stime
    return Run(label, seconds, cards, usage.ru_maxrss / 1024, peak / 1024, cpu)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bench(root: Path, notes: int, jobs: int | None) -> tuple[list[Run], list[str]]:
    """The builds a student runs: the first one, one with nothing changed, one after editing a note, one
    after undoing it; then full rebuilds (no cache; one process) that must give the same bytes."""
    vault = root / f"vault-{notes}"
    if not vault.exists():
        generate(vault, notes)
        # A note modified less than 2 s before a build is read and hashed again by the next builds (git's
        # "racy" files): a student's notes are older than that, so the fresh vault is left to settle.
        time.sleep(2.5)
    for leftover in (vault / "note2anki.lock", vault / ".note2anki"):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1764000000"}
    out = root / "deck.apkg"
    runs = [build(vault, out, "cold", jobs, env)]
    runs.append(build(vault, out, "warm, nothing changed", jobs, env))
    first = sorted(vault.rglob("*.md"))[0]
    original = first.read_bytes()
    edited = original.replace(
        "### 단서 질문".encode(), "### 단서 질문\n\n- 새 질문?\n    - 새 답.".encode(), 1
    )
    first.write_bytes(edited)
    env = {**env, "SOURCE_DATE_EPOCH": "1764000100"}
    runs.append(build(vault, out, "warm, one note edited", jobs, env))
    checks = []
    full = build(vault, root / "full.apkg", "(full rebuild, no cache)", jobs, env, "--no-cache")
    same = digest(out) == digest(root / "full.apkg")
    checks.append(f"one edit, incremental = full rebuild: {'yes' if same else 'NO'}")
    first.write_bytes(original)
    env = {**env, "SOURCE_DATE_EPOCH": "1764000200"}
    runs.append(build(vault, out, "warm, edit undone", jobs, env))
    runs.append(full)
    single = build(vault, root / "single.apkg", "cold, one process", 1, env, "--no-cache")
    runs.append(single)
    same = digest(out) == digest(root / "single.apkg")
    checks.append(f"edit undone, incremental = one-process rebuild: {'yes' if same else 'NO'}")
    return runs, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, action="append", help="vault size (repeatable)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: note2anki's)")
    parser.add_argument("--keep", type=Path, help="generate vaults here and keep them")
    parser.add_argument(
        "--peer", choices=["ankdown"], help="also time ankdown 0.7.1 on the same cue cards (a throwaway venv)"
    )
    args = parser.parse_args()
    sizes = args.notes or [1000, 10000]
    root = args.keep or Path(tempfile.mkdtemp(prefix="n2a-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print("|  notes | build                  |    wall   |    CPU    |  cards/s  | max RSS   | sum RSS   |")
    print("|-------:|------------------------|----------:|----------:|----------:|----------:|----------:|")
    try:
        for n in sizes:
            runs, checks = bench(root, n, args.jobs)
            for r in runs:
                print(r.row(n), flush=True)
            for check in checks:
                print(f"  same .apkg bytes, {check}")
            vault = root / f"vault-{n}"
            floor = floor_cpu(vault)
            cold = runs[0]
            single = next(r for r in runs if r.label == "cold, one process")
            print(
                f"  floor (mistune alone on the text a build parses, one process): {floor:.2f} s CPU; "
                f"cold build CPU / floor = {cold.cpu / floor:.2f}x (target 2.0x); "
                f"the one-process rebuild: {single.cpu / floor:.2f}x"
            )
            if args.peer == "ankdown":
                exe = peer.install(root)
                folder = root / f"ankdown-{n}"
                count = peer.ankdown_vault(vault, folder)
                wall, cpu = peer.time_ankdown(exe, folder, root / "ankdown.apkg")
                print(
                    f"  ankdown 0.7.1, {count:,} cue cards only: {wall:.2f} s wall, {cpu:.2f} s CPU; "
                    f"note2anki cold / ankdown wall = {cold.seconds / wall:.2f}x"
                )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
