"""What `build` prints on stderr: problems, the one-line summary, removed cards, and the progress bar."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from note2anki.build.removed import search as removed_search
from note2anki.model import BuildResult, CardKind, RemovedCard
from note2anki.state import STATE_FILE
from note2anki.sync import SyncResult
from note2anki.sync.local import RemovedCards


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 card`, `2 cards`, `1,000 media files`."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def report(result: BuildResult, quiet: bool, verbose: bool = False) -> None:
    """Errors always; warnings of the notes read this time (all with `verbose`), the others counted in one
    line; then the summary."""
    hidden = []
    for d in result.diagnostics:
        if d.severity.value == "error" or (not quiet and (verbose or result.is_new(d))):
            click.echo(d.format(), err=True)
        elif not quiet:
            hidden.append(d)
    if quiet:
        return
    if hidden:
        notes = len({d.path for d in hidden})
        click.echo(
            f"note2anki: {plural(len(hidden), 'warning')} in {plural(notes, 'unchanged note')} not shown "
            "again (`note2anki check` or `build --verbose` lists them)",
            err=True,
        )
    summary = (
        f"note2anki: {plural(result.notes_read, 'note')} read, "
        f"{plural(result.count(CardKind.CUE), 'cue card')}, "
        f"{plural(result.count(CardKind.SUMMARY), 'summary card')}, "
        f"{plural(result.count(CardKind.CLOZE), 'cloze note')}, {plural(len(result.media), 'media file')}, "
        f"{plural(len(result.errors), 'error')}, {plural(len(result.warnings), 'warning')}"
    )
    if result.report is not None:
        r = result.report
        summary += (
            f"; since last build: {len(r.added)} added, {len(r.changed)} changed, "
            f"{len(r.rekeyed)} re-keyed, {len(r.removed)} removed"
        )
        if result.state_changed:
            summary += f" ({STATE_FILE} updated)"
    if result.outputs:
        summary += " -> " + ", ".join(str(p) for p in result.outputs)
        if result.up_to_date:
            summary += " (already up to date: nothing changed since the last build)"
    click.echo(summary, err=True)


#: the removed cards' search is printed in full up to this many cards; beyond, `note2anki removed` prints it
SEARCH_MAX_CARDS = 200


def report_removed(cards: Sequence[RemovedCard]) -> None:
    if not cards:
        return
    if len(cards) <= SEARCH_MAX_CARDS:
        how = f"find them in Anki's browser with: {removed_search(cards)}"
    else:
        how = "`note2anki removed` prints the Anki search that finds them all"
    click.echo(
        f"note2anki: {plural(len(cards), 'card')} removed from your notes may still be in Anki (an .apkg "
        f"cannot delete them); {how}, delete them there, then run `note2anki removed --clear`",
        err=True,
    )


#: a bar is drawn only for vaults at least this large, and only when stderr is a terminal
PROGRESS_MIN_NOTES = 300


@contextlib.contextmanager
def progress(quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    if quiet or not sys.stderr.isatty():
        yield None
        return
    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and total >= PROGRESS_MIN_NOTES:
            bar = click.progressbar(length=total, label="note2anki", file=sys.stderr).__enter__()
        if bar is not None:
            bar.update(done - bar.pos)

    try:
        yield update
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def report_sync(done: SyncResult, removed: RemovedCards, dry_run: bool) -> None:
    """The sync's line, shaped like the build's: what it did to the collection, and where the backup is."""
    p = done.plan
    fate = {"suspend": "suspended", "delete": "deleted", "keep": "kept"}[removed.value]
    what = (
        f"{len(p.added)} added, {len(p.updated)} updated, {p.unchanged} unchanged, "
        f"{len(p.removed)} removed ({fate}), {len(p.restored)} restored, {len(p.moved)} moved, "
        f"{plural(len(p.media), 'media file')} new"
    )
    if dry_run:
        tail = " (dry run: nothing was written)"
    elif not done.written:
        tail = " (already up to date: the collection was not changed)"
    else:
        tail = f" (backup: {done.backup})" if done.backup else ""
    click.echo(
        f"note2anki: sync{' would do' if dry_run else ''}: {what} -> {done.collection}{tail}", err=True
    )
