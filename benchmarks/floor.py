"""How fast can any build be while mistune reads the cards? Time mistune alone on exactly the text note2anki
gives it (the cue and summary sections, not the main notes), then its HTML renderer on the tokens.

    python benchmarks/floor.py               # a generated vault of 1,000 notes
    python benchmarks/floor.py --notes 2000

A cold build has to parse and render all of this, whatever else it does: the sum, spread over every CPU
with no overhead at all, is a lower bound on a cold build's wall time. The script prints it for 10,000
notes next to issue 7's target (8 s).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import mistune
from mistune.core import BlockState

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402

from note2anki import markdown  # noqa: E402
from note2anki.config import load_config  # noqa: E402
from note2anki.discover import discover  # noqa: E402
from note2anki.parse import parse  # noqa: E402


def chunks_of(vault: Path) -> list[str]:
    """Every piece of text the section-only parse gives mistune, over the whole vault."""
    config = load_config(vault)
    seen: list[str] = []
    real = markdown.parse_blocks

    def spy(text: str) -> list[markdown.Token]:
        seen.append(text)
        return real(text)

    markdown.parse_blocks = spy  # type: ignore[assignment]
    try:
        for source in discover(vault, config).notes:
            parse(source, config)
    finally:
        markdown.parse_blocks = real  # type: ignore[assignment]
    return seen


def best_of(runs: int, fn: object) -> float:
    assert callable(fn)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def mistune_seconds(chunks: list[str], runs: int) -> tuple[float, float, float]:
    """Best-of-`runs` seconds: mistune with no plugins, with note2anki's plugins, and its plain HTML
    renderer on the tokens (the floor is the first plus the last)."""
    plain = mistune.create_markdown(renderer=None)  # no plugins at all: the least mistune can do
    ours = markdown.ast_parser()
    tokens = [plain(c) for c in chunks]  # rendered by the plain renderer: again the least there is
    html = mistune.HTMLRenderer(escape=False)

    def render() -> None:
        for t in tokens:
            html.render_tokens(t, BlockState())  # type: ignore[arg-type]

    return (
        best_of(runs, lambda: [plain(c) for c in chunks]),
        best_of(runs, lambda: [ours(c) for c in chunks]),
        best_of(runs, render),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="timings taken; the best is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="n2a-floor-") as tmp:
        vault = Path(tmp) / "vault"
        generate(vault, args.notes)
        chunks = chunks_of(vault)
    t_plain, t_ours, t_render = mistune_seconds(chunks, args.runs)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    per_note = (t_plain + t_render) / args.notes
    size = sum(len(c.encode()) for c in chunks)
    print(
        f"{args.notes:,} notes; mistune is given {size / args.notes / 1000:.2f} KB a note (cue and summary)"
    )
    for label, seconds in (
        ("mistune parse, no plugins", t_plain),
        ("mistune parse, note2anki's plugins", t_ours),
        ("mistune HTML render of the tokens", t_render),
    ):
        print(f"  {label:<36} {seconds:6.2f} s  ({seconds / args.notes * 1000:.2f} ms a note)")
    print(
        f"  lower bound for 10,000 notes on {cpus} CPUs, mistune alone, perfect parallelism: "
        f"{per_note * 10_000 / cpus:.1f} s (issue 7's target for the whole cold build: 8 s)"
    )


if __name__ == "__main__":
    main()
