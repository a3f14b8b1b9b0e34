"""The pipeline: discover -> parse -> extract -> render -> [identity -> export].

`build` runs all of it; `check` and `list` stop before identity and export, so they never write anything.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from note2anki import state
from note2anki.config import Config
from note2anki.discover import discover
from note2anki.export import build_time, write_apkg
from note2anki.extract import extract
from note2anki.model import BuildResult, Diagnostic, RenderedCard
from note2anki.parse import parse
from note2anki.render import MediaIndex, render


class FrozenStateError(Exception):
    """`--frozen` was given and the build would change the card state file."""


def run(root: Path, config: Config, out: Path | None = None, *, frozen: bool = False) -> BuildResult:
    """Read the vault at `root`; with `out`, also give cards their identity from the vault's state file,
    write the deck to `out` and update the state file. Problems in notes come back as diagnostics; a bad
    note never stops the others."""
    vault = discover(root, config)
    media_index = MediaIndex(vault)
    cards: list[RenderedCard] = []
    diagnostics: list[Diagnostic] = []
    unreadable: list[str] = []
    for source in vault.notes:
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
        output=out,
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
    write_apkg(notes, out)
    changed = state.write_state(state_path, text)
    return dataclasses.replace(result, report=report, state_changed=changed)


def _order(d: Diagnostic) -> tuple[str, int, str, str]:
    return (d.path, d.line or 0, d.code, d.message)
