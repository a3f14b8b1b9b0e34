"""`note2anki sync --collection`: the deck `build` makes, put straight into the student's Anki collection.

Syncing is "build, then import" with the official `anki` package (Anki closed), plus what an `.apkg`
cannot do: cards removed from the notes are suspended and tagged (or deleted), restored ones come back,
cards whose deck changed move, and decks note2anki emptied go. Only notes this vault put into the
collection are ever touched: the collection remembers them (its config key `note2anki:<vault name>`:
GUID -> the deck they were synced to), so the student's own notes, other decks and a second vault's cards
are never suspended or deleted.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from note2anki.errors import Note2AnkiError, UsageError
from note2anki.notetypes import MODEL_MOD
from note2anki.sync.deck import NOTE_TYPE_IDS, Deck

REMOVED_TAG = "note2anki::removed"
_RECORD = "note2anki:{vault}"
#: a sync that would remove more than this share of the vault's cards (and more than GUARD_MIN) is refused
GUARD_SHARE = 0.5
GUARD_MIN = 10


class RemovedCards(str, enum.Enum):
    SUSPEND = "suspend"
    DELETE = "delete"
    KEEP = "keep"


class CollectionBusy(Note2AnkiError):
    """Anki (or another program) has the collection open."""


class SyncRefused(Note2AnkiError):
    """The sync would remove too much of the vault's cards; nothing was changed."""


def need_anki() -> None:
    """The official `anki` package, or a usage error that says how to install it."""
    try:
        import anki.collection  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            "`note2anki sync` needs the official anki package, which is not installed; install it with "
            "pip install 'note2anki[sync]'"
        ) from exc


@contextlib.contextmanager
def open_collection(path: Path) -> Iterator[Any]:
    """The collection at `path`, open for this process only; closed (saved) when the block ends."""
    need_anki()
    from anki.collection import Collection
    from anki.errors import DBError

    if not path.is_file():
        raise UsageError(f"--collection {path}: no such file (give an existing collection.anki2)")
    try:
        col = Collection(str(path))
    except DBError as exc:
        if "already open" in str(exc):
            raise CollectionBusy(
                f"{path} is open in Anki (or another program): close Anki and sync again, or sync through "
                "AnkiWeb instead (`note2anki sync --server`), which works while Anki is open"
            ) from exc
        raise Note2AnkiError(f"{path}: Anki cannot open this collection ({exc})") from exc
    try:
        yield col
    finally:
        col.close()


@dataclass(frozen=True)
class Plan:
    """What a sync does (or, with --dry-run, would do); GUIDs of the notes concerned."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: int = 0
    removed: tuple[str, ...] = ()  # suspended, deleted, or (keep) left as they are
    restored: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    media: tuple[str, ...] = ()  # files the collection does not have yet
    note_types: bool = False  # the note types' look is newer than the collection's
    owned: int = 0  # this vault's cards in the collection before the sync
    record: dict[str, Any] = field(default_factory=dict)  # the vault's record after the sync

    def to_json(self) -> dict[str, object]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": self.unchanged,
            "removed": len(self.removed),
            "restored": len(self.restored),
            "moved": len(self.moved),
            "media": list(self.media),
            "note_types_updated": self.note_types,
        }


def _tags(text: str) -> set[str]:
    return {t.casefold() for t in text.split()}


def plan(col: Any, deck: Deck, vault_key: str, removed: RemovedCards) -> Plan:
    """Compare the deck with the collection; nothing is written."""
    rows = col.db.all("SELECT id, guid, mid, mod, tags FROM notes")
    present = {str(guid): (int(nid), int(mid), int(mod), str(tags)) for nid, guid, mid, mod, tags in rows}
    old = col.get_config(_RECORD.format(vault=vault_key), default=None) or {}
    synced: dict[str, str] = dict(old.get("guids", {}))
    ours = {g for g, (_, mid, _, _) in present.items() if mid in NOTE_TYPE_IDS}
    tagged = {g for g in ours if REMOVED_TAG in _tags(present[g][3])}
    added = sorted(g for g in deck.notes if g not in present)
    updated = sorted(g for g in deck.notes if g in ours and deck.notes[g].mod > present[g][2])
    active = [g for g in synced if g in ours and g not in tagged]
    gone = sorted(g for g in synced if g in ours and g not in deck.notes)
    if removed is RemovedCards.SUSPEND:
        gone = [g for g in gone if g not in tagged]
    moved = sorted(g for g in deck.notes if g in ours and g in synced and synced[g] != deck.notes[g].deck)
    media_dir = Path(col.media.dir())
    kept = {g: synced[g] for g in gone if removed is not RemovedCards.DELETE}
    kept.update({g: synced[g] for g in synced if g in tagged and g not in deck.notes})
    record = {
        "guids": {**kept, **{g: n.deck for g, n in deck.notes.items()}},
        "decks": sorted(set(old.get("decks", ()))),
    }
    return Plan(
        added=tuple(added),
        updated=tuple(updated),
        unchanged=len(deck.notes) - len(added) - len(updated),
        removed=tuple(gone),
        restored=tuple(sorted(g for g in deck.notes if g in tagged)),
        moved=tuple(moved),
        media=tuple(name for name in deck.media if not (media_dir / name).exists()),
        note_types=any(
            (model := col.models.get(mid)) is not None and int(model.get("mod", 0)) < MODEL_MOD
            for mid in NOTE_TYPE_IDS
        ),
        owned=len(active),
        record=record if record != old else {},
    )


def guard(p: Plan, removed: RemovedCards, force: bool) -> None:
    """Refuse to remove every card of the vault, or most of them: notes that vanished (a wrong include, a
    failed checkout, a moved folder) must never wipe a deck."""
    if force or removed is RemovedCards.KEEP or not p.removed or not p.owned:
        return
    n, total = len(p.removed), p.owned
    if n >= total or (n > total * GUARD_SHARE and n > GUARD_MIN):
        raise SyncRefused(
            f"this sync would remove {n:,} of this vault's {total:,} cards from the collection; nothing was "
            "changed. If the notes really are gone, sync again with --force; otherwise check the vault "
            "folder and the include/exclude settings"
        )


def changes_anything(p: Plan, removed: RemovedCards) -> bool:
    acts_on_removed = bool(p.removed) and removed is not RemovedCards.KEEP
    return bool(p.added or p.updated or p.restored or p.moved or p.note_types or acts_on_removed or p.record)


def apply(col: Any, apkg: Path, deck: Deck, p: Plan, vault_key: str, removed: RemovedCards) -> None:
    """Write the plan into the collection (the caller has made a backup)."""
    from anki.import_export_pb2 import (
        ImportAnkiPackageOptions,
        ImportAnkiPackageRequest,
        ImportAnkiPackageUpdateCondition,
    )

    if_newer = ImportAnkiPackageUpdateCondition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_IF_NEWER
    before = {d.name for d in col.decks.all_names_and_ids()}
    if p.added or p.updated or p.note_types:
        options = ImportAnkiPackageOptions(
            update_notes=if_newer, update_notetypes=if_newer, with_scheduling=False
        )
        col.import_anki_package(ImportAnkiPackageRequest(package_path=str(apkg), options=options))
    wanted = {n.deck for n in deck.notes.values()}
    record = dict(p.record) or dict(col.get_config(_RECORD.format(vault=vault_key), default=None) or {})
    decks = set(record.get("decks", ())) | (wanted - before)

    def notes_of(guids: tuple[str, ...]) -> tuple[list[int], list[int]]:
        if not guids:
            return [], []
        marks = ",".join("?" * len(guids))
        nids = [int(n) for n in col.db.list(f"SELECT id FROM notes WHERE guid IN ({marks})", *guids)]
        cids = [int(c) for nid in nids for c in col.card_ids_of_note(nid)]
        return nids, cids

    for guid in p.moved:
        _, cids = notes_of((guid,))
        col.set_deck(cids, col.decks.id(deck.notes[guid].deck))
    nids, cids = notes_of(p.restored)
    if nids:
        col.sched.unsuspend_cards(cids)
        col.tags.bulk_remove(nids, REMOVED_TAG)
    if removed is not RemovedCards.KEEP:
        nids, cids = notes_of(p.removed)
        if nids and removed is RemovedCards.DELETE:
            col.remove_notes(nids)
        elif nids:
            col.sched.suspend_cards(cids)
            col.tags.bulk_add(nids, REMOVED_TAG)
    for name in sorted(decks - wanted, key=lambda n: -n.count("::")):  # children before parents
        did = col.decks.id_for_name(name)
        if did and not col.decks.card_count(did, include_subdecks=True):
            col.decks.remove([did])
    record["decks"] = sorted(d for d in decks if col.decks.id_for_name(d))
    record.setdefault("guids", {})
    col.set_config(_RECORD.format(vault=vault_key), record)
