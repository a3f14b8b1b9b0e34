"""The pipeline: discover -> parse -> extract -> render -> [identity -> export].

`build` runs all of it; `check` and `list` stop before identity and export, so they never write anything
(they read `.note2anki/cache` but never write it). Reading notes (cache, process pool) is incremental.py.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from pathlib import Path

from note2anki import state
from note2anki.cache import NoteCache
from note2anki.config import Config
from note2anki.discover import discover
from note2anki.export import build_time, write_apkg
from note2anki.incremental import LastBuild, Summary, kind_counts, read_notes, read_sources
from note2anki.model import BuildResult, CardKind, DeckNote, Diagnostic, RenderedCard
from note2anki.render import MediaIndex


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
    jobs: int | None = None,
    cache: bool = True,
) -> BuildResult:
    """Read the vault at `root`; with `out`, also give cards their identity from the vault's state file,
    write the deck to `out` (one per subject with `split="subject"`) and update the state file.

    Problems in notes come back as diagnostics; a bad note never stops the others. `only` limits reading to
    those vault-relative note paths (pre-commit's staged files); `progress(done, total)` is called per note.
    Notes unchanged since the last build come from `.note2anki/cache` (written by builds only; `cache=False`
    ignores it); the others are read by `jobs` processes (default: one per CPU, for big vaults).
    """
    vault = discover(root, config)
    if only is not None:
        vault = dataclasses.replace(vault, notes=tuple(n for n in vault.notes if n.rel in only))
    store = NoteCache(vault, config, writable=out is not None) if cache else None
    sources = read_sources(vault, store)
    state_path = vault.root / state.STATE_FILE
    last = None
    if out is not None and store is not None:
        options = {"out": str(out.resolve()), "split": split}
        last = LastBuild(vault, store.fingerprint, options)
        summary = last.unchanged(sources, state_path, MediaIndex(vault))
        if summary is not None:  # the deck and state file on disk are what this build would write
            return BuildResult(
                notes_read=len(vault.notes),
                cards=(),
                diagnostics=summary.diagnostics,
                media=summary.media,
                decks=summary.decks,
                report=state.Report(),
                outputs=summary.outputs,
                up_to_date=True,
                counts=kind_counts(summary.counts),
            )
    results = read_notes(vault, config, sources, store, progress=progress, jobs=jobs)
    if store is not None:
        store.prune()
    cards: list[RenderedCard] = []
    diagnostics: list[Diagnostic] = []
    unreadable: list[str] = []
    for source, note in zip(vault.notes, results, strict=True):
        cards.extend(note.cards)
        diagnostics.extend(note.diagnostics)
        if not note.readable:
            unreadable.append(source.rel)
    result = BuildResult(
        notes_read=len(vault.notes),
        cards=tuple(cards),
        diagnostics=tuple(sorted(set(diagnostics), key=_order)),
        media=tuple(sorted({m.name: m for c in cards for m in c.media}.values(), key=lambda m: m.name)),
        decks=tuple(sorted({c.deck for c in cards})),
    )
    if out is None:
        return result

    old_text = state_path.read_text(encoding="utf-8") if state_path.is_file() else ""
    old = state.read_state(state_path)
    notes, entries, report = state.assign(cards, old, int(build_time()), keep_paths=unreadable)
    text = state.format_state(entries)
    if frozen and text != (old_text or state.format_state(old)):
        raise FrozenStateError(
            f"{state_path} would change ({len(report.added)} added, {len(report.changed)} changed, "
            f"{len(report.removed)} removed); run `note2anki build` locally and commit {state.STATE_FILE}"
        )
    outputs = []
    if last is not None:
        last.forget()  # until this build has finished
    for path, group in _decks(notes, out, split, vault.name):
        write_apkg(group, path)
        outputs.append(path)
    changed = state.write_state(state_path, text)
    if last is not None:
        counts = {kind.value: result.count(kind) for kind in CardKind}
        summary = Summary(counts, result.decks, result.media, result.diagnostics, tuple(outputs))
        last.record(sources, results, state_path, summary)
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
