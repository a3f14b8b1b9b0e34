"""One build's settings, and the steps every way of building (whole, incremental) ends with."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from note2anki import state
from note2anki.build import removed as removed_list
from note2anki.build.cache import NoteCache
from note2anki.build.lastbuild import Totals
from note2anki.build.notes import Sources, read_notes
from note2anki.build.private import private_dir
from note2anki.config import Config
from note2anki.errors import StateError
from note2anki.model import (
    BuildResult,
    CardKind,
    Diagnostic,
    MediaFile,
    NoteResult,
    RemovedCard,
    Report,
    Vault,
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Job:
    """One build of `vault` into `out`, and what every way of building needs."""

    vault: Vault
    config: Config
    out: Path
    frozen: bool
    split: str | None
    progress: Progress | None
    jobs: int | None
    store: NoteCache | None
    work: Path | None  # where deck temporary files go (`.note2anki/tmp`), None: the system's
    #: False: write the deck only, record nothing (no state file, cache or last build): `sync --dry-run`
    record: bool = True

    @property
    def state_path(self) -> Path:
        return self.vault.root / state.STATE_FILE

    def read(self, vault: Vault, sources: Sources) -> list[NoteResult]:
        return read_notes(vault, self.config, sources, self.store, progress=self.progress, jobs=self.jobs)


def from_totals(vault: Vault, totals: Totals, outputs: Iterable[Path]) -> BuildResult:
    """A build result told by the notes' totals (what every note of the deck adds up to)."""
    counts: dict[CardKind, int] = dict.fromkeys(CardKind, 0)
    for kind, n in totals.counts.items():
        counts[CardKind(kind)] += n
    media = {name: MediaFile(vault.root / rel, name) for rel, name in totals.media}
    return BuildResult(
        notes_read=len(vault.notes) - totals.unreadable,
        counts=counts,
        diagnostics=tuple(sorted(set(totals.diagnostics), key=order)),
        outputs=tuple(outputs),
        media=tuple(media[name] for name in sorted(media)),
        decks=tuple(sorted({deck for deck, _ in totals.pairs})),
    )


def remember_removed(vault: Vault, report: Report) -> tuple[RemovedCard, ...]:
    """The vault's list of removed cards after this build (removed.py)."""
    known = removed_list.load(vault.root)
    gone = [RemovedCard(e.nid, e.guid, e.path, e.question, e.kind) for e in report.removed]
    pending = removed_list.update(known, gone, (e.guid for e in report.added))
    if pending != known:
        removed_list.save(vault.root, pending)
    return tuple(pending)


def write_state(path: Path, data: bytes, current: bytes, decks: Sequence[Path]) -> bool:
    """The state file, written after the decks; when it cannot be, the message says the decks were."""
    with stage_state(path, data, current, decks) as commit:
        return commit()


@contextlib.contextmanager
def stage_state(
    path: Path, data: bytes, current: bytes, decks: Sequence[Path]
) -> Iterator[Callable[[], bool]]:
    """`write_state` in two steps (see state.stage_state): the file is written on entry, while `decks` are
    still being written; the function yielded puts it in place once they are."""
    try:
        tmp_dir: Path | None = private_dir(path.parent, "tmp")  # a killed build leaves nothing in sight
    except OSError:
        tmp_dir = None
    try:
        with state.stage_state(path, data, current, tmp_dir) as commit:
            yield commit
    except StateError as exc:
        written = ", ".join(str(d) for d in decks)
        raise StateError(
            f"{exc}. The deck was written ({written}), but until {state.STATE_FILE} can be saved the next "
            "build cannot tell which cards are new: make the vault writable and build again"
        ) from exc


def frozen_message(state_path: Path, report: Report) -> str:
    return (
        f"{state_path} would change ({len(report.added)} added, {len(report.changed)} changed, "
        f"{len(report.removed)} removed); run `note2anki build` locally and commit {state.STATE_FILE}"
    )


def order(d: Diagnostic) -> tuple[str, int, str, str]:
    """Diagnostics are reported by file, line, code."""
    return (d.path, d.line or 0, d.code, d.message)
