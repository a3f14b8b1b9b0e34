"""The pipeline: discover -> parse -> extract -> render -> export. `build`, `check` and `list` all run it;
`check` and `list` simply stop before the export step."""

from __future__ import annotations

from pathlib import Path

from note2anki.config import Config
from note2anki.discover import discover
from note2anki.export import write_apkg
from note2anki.extract import extract
from note2anki.model import BuildResult, Diagnostic, RenderedCard
from note2anki.parse import parse
from note2anki.render import MediaIndex, render


def run(root: Path, config: Config, out: Path | None = None) -> BuildResult:
    """Read the vault at `root`; write the deck to `out` when given. Problems in notes come back as
    diagnostics; a bad note never stops the others."""
    vault = discover(root, config)
    media_index = MediaIndex(vault)
    cards: list[RenderedCard] = []
    diagnostics: list[Diagnostic] = []
    for source in vault.notes:
        note, problems = parse(source, config)
        diagnostics.extend(problems)
        if note is None:
            continue
        found, problems = extract(note, config)
        diagnostics.extend(problems)
        for card in found:
            rendered, problems = render(card, vault, config, media_index)
            diagnostics.extend(problems)
            cards.append(rendered)
    media = tuple(sorted({m.name: m for c in cards for m in c.media}.values(), key=lambda m: m.name))
    if out is not None:
        write_apkg(cards, media, out)
    return BuildResult(
        notes_read=len(vault.notes),
        cards=tuple(cards),
        diagnostics=tuple(sorted(set(diagnostics), key=_order)),
        output=out,
        media=media,
        decks=tuple(sorted({c.deck for c in cards})),
    )


def _order(d: Diagnostic) -> tuple[str, int, str, str]:
    return (d.path, d.line or 0, d.code, d.message)
