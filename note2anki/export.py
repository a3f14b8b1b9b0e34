"""Stage 5: write rendered cards as an `.apkg` with genanki, byte-for-byte reproducibly.

The export contract with Anki (see README "How identity works"):
- note types (notetypes.py) have fixed ids and frozen field/template names and order, so Anki never imports
  a "+" copy;
- a note's GUID comes from its note's vault path and its normalised prompt, never from the answer;
- the zip has fixed entry times and order, so identical input gives identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import genanki

from note2anki.atomic import atomic_write
from note2anki.model import DeckNote
from note2anki.notetypes import MODELS

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class ExportError(Exception):
    """The deck cannot be written (disk, permissions); the previous deck, if any, is left intact."""


def build_time() -> float:
    """`SOURCE_DATE_EPOCH` when set (reproducible builds), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return float(epoch) if epoch.isdigit() else time.time()


def deck_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:6], "big") + (1 << 50)


class _Note(genanki.Note):  # type: ignore[misc]
    """A genanki note with its own id, card ids and `mod`, not ones taken from the build time."""

    def __init__(self, *args: object, nid: int, mod: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.nid = nid
        self.mod = mod
        self.cids: tuple[int, ...] = (nid,)

    @property
    def cards(self) -> list[genanki.Card]:
        return sorted(super().cards, key=lambda c: c.ord)

    def write_to_db(self, cursor: sqlite3.Cursor, timestamp: float, deck_id: int, id_gen: object) -> None:
        super().write_to_db(cursor, self.mod, deck_id, iter((self.nid, *self.cids)))


def _card_ids(notes: Sequence[_Note]) -> None:
    """Card ids: the first card of a note has the note's id (stable, so `cid:`/`nid:` searches agree); a
    cloze note's further cards take the next ids not used in the package. Anki matches an existing note's
    cards by note and card number on import, so these ids never decide identity."""
    used = {n.nid for n in notes}
    for note in notes:
        cids = [note.nid]
        candidate = note.nid
        for _ in note.cards[1:]:
            candidate += 1
            while candidate in used:
                candidate += 1
            used.add(candidate)
            cids.append(candidate)
        note.cids = tuple(cids)


def _package(notes: Sequence[DeckNote]) -> genanki.Package:
    decks: dict[str, genanki.Deck] = {}
    made = []
    for n in notes:
        card = n.card
        deck = decks.get(card.deck)
        if deck is None:
            deck = decks[card.deck] = genanki.Deck(deck_id(card.deck), card.deck)
        note = _Note(
            model=MODELS[card.kind],
            fields=list(card.fields),
            tags=list(card.tags),
            guid=n.guid,
            nid=n.nid,
            mod=n.mod,
        )
        deck.add_note(note)
        made.append(note)
    _card_ids(made)
    return genanki.Package([decks[name] for name in sorted(decks)])


def write_apkg(notes: Sequence[DeckNote], out: Path) -> None:
    """Write the deck to `out` atomically: a temporary file renamed into place only when complete.

    Nothing in the file depends on the clock or the machine: ids and times come from `notes`, zip entries
    have fixed times and order, media are sorted by name.
    """
    guids = [n.guid for n in notes]
    if len(set(guids)) != len(guids):
        dupes = sorted({g for g in guids if guids.count(g) > 1})
        raise ExportError(f"two cards share the GUID(s) {', '.join(dupes)}; this is a bug in note2anki")
    package = _package(notes)
    files = sorted({m.name: m for n in notes for m in n.card.media}.values(), key=lambda m: m.name)
    stamp = max((n.mod for n in notes), default=0)
    out = out.resolve()
    with tempfile.TemporaryDirectory(prefix="note2anki-") as work:
        db_path = Path(work) / "collection.anki2"
        conn = sqlite3.connect(db_path)
        try:
            package.write_to_db(conn.cursor(), stamp, iter(()))
            conn.commit()
        finally:
            conn.close()
        try:
            with atomic_write(out) as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
                _add(zf, "collection.anki2", db_path.read_bytes())
                _add(zf, "media", json.dumps({str(i): m.name for i, m in enumerate(files)}).encode())
                for i, m in enumerate(files):
                    _add(zf, str(i), m.path.read_bytes())
        except OSError as exc:
            raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from exc


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)
