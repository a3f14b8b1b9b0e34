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
import re
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import genanki

from note2anki.atomic import atomic_write
from note2anki.model import CardKind, DeckNote, RenderedCard
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


_CLOZE_NUMBER = re.compile(r"{{c(\d+)::.+?}}", re.DOTALL)  # as genanki and Anki count cloze cards


def _ords(card: RenderedCard) -> list[int]:
    """The card numbers (ords) a note gets: one card, or one per cloze number."""
    if card.kind is not CardKind.CLOZE:
        return [0]
    return sorted({int(n) - 1 for n in _CLOZE_NUMBER.findall(card.fields[0]) if int(n) > 0}) or [0]


def _card_ids(notes: Sequence[DeckNote], ords: list[list[int]]) -> list[list[int]]:
    """Card ids: the first card of a note has the note's id (stable, so `cid:`/`nid:` searches agree); a
    cloze note's further cards take the next ids not used in the package. Anki matches an existing note's
    cards by note and card number on import, so these ids never decide identity."""
    used = {n.nid for n in notes}
    out = []
    for note, numbers in zip(notes, ords, strict=True):
        cids = [note.nid]
        candidate = note.nid
        for _ in numbers[1:]:
            candidate += 1
            while candidate in used:
                candidate += 1
            used.add(candidate)
            cids.append(candidate)
        out.append(cids)
    return out


def _write_db(cursor: sqlite3.Cursor, notes: Sequence[DeckNote], stamp: int) -> None:
    """The collection: genanki writes the schema, decks and note types; the notes and cards go in with one
    statement each, with the row values genanki would write (a per-note genanki object costs more than the
    rest of a big build)."""
    by_deck: dict[str, list[DeckNote]] = {}
    for n in notes:
        by_deck.setdefault(n.card.deck, []).append(n)
    decks = []
    for name in sorted(by_deck):
        deck = genanki.Deck(deck_id(name), name)
        for model_id in sorted({MODELS[n.card.kind].model_id for n in by_deck[name]}):
            deck.add_model(next(m for m in MODELS.values() if m.model_id == model_id))
        decks.append(deck)
    genanki.Package(decks).write_to_db(cursor, stamp, iter(()))
    ordered = [n for name in sorted(by_deck) for n in by_deck[name]]
    ords = [_ords(n.card) for n in ordered]
    cids = _card_ids(ordered, ords)
    note_rows = []
    card_rows = []
    for n, numbers, ids in zip(ordered, ords, cids, strict=True):
        card = n.card
        did = deck_id(card.deck)
        tags = " " + " ".join(card.tags) + " "
        fields = "\x1f".join(card.fields)
        # id, guid, mid, mod, usn, tags, flds, sfld, csum, flags, data
        note_rows.append(
            (n.nid, n.guid, MODELS[card.kind].model_id, n.mod, -1, tags, fields, card.fields[0], 0, 0, "")
        )
        for ord_, cid in zip(numbers, ids, strict=True):
            card_rows.append((cid, n.nid, did, ord_, n.mod, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ""))
    cursor.executemany("INSERT INTO notes VALUES(?,?,?,?,?,?,?,?,?,?,?)", note_rows)
    cursor.executemany("INSERT INTO cards VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", card_rows)


def write_apkg(notes: Sequence[DeckNote], out: Path) -> None:
    """Write the deck to `out` atomically: a temporary file renamed into place only when complete.

    Nothing in the file depends on the clock or the machine: ids and times come from `notes`, zip entries
    have fixed times and order, media are sorted by name.
    """
    guids = [n.guid for n in notes]
    if len(set(guids)) != len(guids):
        dupes = sorted({g for g in guids if guids.count(g) > 1})
        raise ExportError(f"two cards share the GUID(s) {', '.join(dupes)}; this is a bug in note2anki")
    files = sorted({m.name: m for n in notes for m in n.card.media}.values(), key=lambda m: m.name)
    stamp = max((n.mod for n in notes), default=0)
    out = out.resolve()
    with tempfile.TemporaryDirectory(prefix="note2anki-") as work:
        db_path = Path(work) / "collection.anki2"
        conn = sqlite3.connect(db_path)
        try:
            _write_db(conn.cursor(), notes, stamp)
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
