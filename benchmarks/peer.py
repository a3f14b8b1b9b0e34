"""The fastest peer, timed on the same vault: ankdown 0.7.1, installed into a throwaway venv, given the same
cue cards in its own syntax (`question`, `%`, `answer`, `---`; one folder per deck). ankdown makes cue cards
only: no summaries, cloze cards, tables or identity keeping, so the comparison flatters it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ANKDOWN = "ankdown==0.7.1"


def install(root: Path) -> Path:
    """ankdown's command in a venv under `root` (made once; needs the package index)."""
    env_dir = root / "ankdown-venv"
    exe = env_dir / ("Scripts" if os.name == "nt" else "bin") / "ankdown"
    if not exe.exists():
        venv.create(env_dir, with_pip=True)
        pip = env_dir / ("Scripts" if os.name == "nt" else "bin") / "pip"
        subprocess.run([str(pip), "install", "-q", ANKDOWN], check=True)
    return exe


def ankdown_vault(vault: Path, out: Path) -> int:
    """The vault's cue cards in ankdown's syntax under `out` (one file per note, one folder per deck); the
    number of cards. The cards are the ones `note2anki list` makes, answers as their text."""
    listed = subprocess.run(
        [sys.executable, "-m", "note2anki", "list", str(vault), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    from note2anki.render import html_to_text

    cards = [c for c in json.loads(listed.stdout) if c["kind"] == "cue"]
    by_note: dict[tuple[str, str], list[str]] = {}
    for c in cards:
        answer = html_to_text(c["answer"]).replace("\n%", "\n %").replace("\n---", "\n ---")
        by_note.setdefault((c["deck"].replace("::", "__"), c["note"]), []).append(
            f"{c['question']}\n\n%\n\n{answer}\n"
        )
    for (deck, note), parts in by_note.items():
        path = out / deck / (note.replace("/", "_"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n---\n\n".join(parts), encoding="utf-8")
    return len(cards)


def time_ankdown(exe: Path, folder: Path, apkg: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ankdown run over `folder`."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(exe), "-r", str(folder), "-p", str(apkg)], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("ankdown failed")
    return wall, usage.ru_utime + usage.ru_stime
