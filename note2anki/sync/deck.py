"""What a deck note2anki built holds, read back from the `.apkg`: each note's GUID, modification time and
deck, and the media names. Syncing compares this with the student's collection."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from note2anki.notetypes import MODELS

#: the note types note2anki writes: only notes of these types are ever suspended, moved or deleted
NOTE_TYPE_IDS = frozenset(m.model_id for m in MODELS.values())


@dataclass(frozen=True)
class DeckNote:
    guid: str
    mod: int
    deck: str  # where its cards go


@dataclass(frozen=True)
class Deck:
    notes: dict[str, DeckNote]  # by GUID
    media: tuple[str, ...]  # file names inside the deck (content-addressed)


def read_deck(apkg: Path) -> Deck:
    with zipfile.ZipFile(apkg) as zf, tempfile.TemporaryDirectory(prefix="note2anki-deck-") as tmp:
        db_path = Path(tmp) / "collection.anki2"
        db_path.write_bytes(zf.read("collection.anki2"))
        media = tuple(sorted(json.loads(zf.read("media")).values()))
        conn = sqlite3.connect(db_path)
        try:
            decks_json = conn.execute("SELECT decks FROM col").fetchone()[0]
            names = {int(did): str(d["name"]) for did, d in json.loads(decks_json).items()}
            deck_of = dict(conn.execute("SELECT nid, min(did) FROM cards GROUP BY nid").fetchall())
            notes = {
                str(guid): DeckNote(str(guid), int(mod), names[int(deck_of[nid])])
                for nid, guid, mod in conn.execute("SELECT id, guid, mod FROM notes")
            }
        finally:
            conn.close()
    return Deck(notes, media)
