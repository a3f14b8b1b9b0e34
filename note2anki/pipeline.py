"""The pipeline: discover -> parse -> extract -> render -> [identity -> export].

`build` runs all of it; `check` and `list` stop before identity and export, so they never write anything.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from pathlib import Path

from note2anki import state
from note2anki.config import Config
from note2anki.discover import discover
from note2anki.export import build_time, write_apkg
from note2anki.extract import extract
from note2anki.model import BuildResult, DeckNote, Diagnostic, RenderedCard
from note2anki.parse import parse
from note2anki.render import MediaIndex, render


class FrozenStateError(Exception):
    """`--frozen` was given and the build would change the card state file."""


def run(
    root: Path,
    config: Config,
    out: Path | None = None,
    *,
    frozen: bool = False,
    split: str | None = None,
    only: Collection[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BuildResult:
    """Read the vault at `root`; with `out`, also give cards their identity from the vault's state file,
    write the deck to `out` (one per subject with `split="subject"`) and update the state file.

    Problems in notes come back as diagnostics; a bad note never stops the others. `only` limits reading to
    those vault-relative note paths (pre-commit's staged files); `progress(done, total)` is called per note.
    """
    vault = discover(root, config)
    if only is not None:
        vault = dataclasses.replace(vault, notes=tuple(n for n in vault.notes if n.rel in only))
    media_index = MediaIndex(vault)
    cards: list[RenderedCard] = []
    diagnostics: list[Diagnostic] = []
    unreadable: list[str] = []
    for done, source in enumerate(vault.notes, 1):
        if progress is not None:
            progress(done, len(vault.notes))
        note, problems = parse(source, config)
        diagnostics.extend(problems)
        if note is None:
            unreadable.append(source.rel)
            continue
        found, problems = extract(note, config)
        diagnostics.extend(problems)
        for card in found:
            rendered, problems = render(card, vault, config, media_index)
            diagnostics.extend(problems)
            cards.append(rendered)
    result = BuildResult(
        notes_read=len(vault.notes),
        cards=tuple(cards),
        diagnostics=tuple(sorted(set(diagnostics), key=_order)),
        media=tuple(sorted({m.name: m for c in cards for m in c.media}.values(), key=lambda m: m.name)),
        decks=tuple(sorted({c.deck for c in cards})),
    )
    if out is None:
        return result

    state_path = vault.root / state.STATE_FILE
    old = state.read_state(state_path)
    notes, entries, report = state.assign(cards, old, int(build_time()), keep_paths=unreadable)
    text = state.format_state(entries)
    if frozen and text != state.format_state(old):
        raise FrozenStateError(
            f"{state_path} would change ({len(report.added)} added, {len(report.changed)} changed, "
            f"{len(report.removed)} removed); run `note2anki build` locally and commit {state.STATE_FILE}"
        )
    outputs = []
    for path, group in _decks(notes, out, split, vault.name):
        write_apkg(group, path)
        outputs.append(path)
    changed = state.write_state(state_path, text)
    return dataclasses.replace(result, report=report, state_changed=changed, outputs=tuple(outputs))


def _decks(
    notes: list[DeckNote], out: Path, split: str | None, fallback: str
) -> list[tuple[Path, list[DeckNote]]]:
    """One deck for all notes, or with `split="subject"` one per subject, named OUT-<subject>.apkg."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if split is None:
        return [(out, notes)]
    groups: dict[str, list[DeckNote]] = {}
    for n in notes:
        groups.setdefault(n.card.subject or fallback, []).append(n)
    return [
        (out.with_name(f"{out.stem}-{_file_part(subject)}{out.suffix or '.apkg'}"), group)
        for subject, group in sorted(groups.items())
    ]


def _file_part(text: str) -> str:
    return re.sub(r'[\\/:*?"<>|\s]+', "_", text).strip("._") or "deck"


def _order(d: Diagnostic) -> tuple[str, int, str, str]:
    return (d.path, d.line or 0, d.code, d.message)
