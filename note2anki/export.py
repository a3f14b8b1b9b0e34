"""Stage 5: write rendered cards as an `.apkg` with genanki, byte-for-byte reproducibly.

The export contract with Anki (see README "How identity works"):
- note types (notetypes.py) have fixed ids and frozen field/template names and order, so Anki never imports
  a "+" copy;
- a note's GUID comes from its note's vault path and its normalised prompt, never from the answer;
- the zip has fixed entry times and order, so identical input gives identical bytes.

A deck is written either whole (`write_apkg`) or, when few notes changed, by editing the collection of the
last build (`update_collection`, then `finish_apkg`). Both end the same way: the collection is rebuilt by
SQLite's `VACUUM INTO`, whose output depends only on the rows, so both give the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import genanki

from note2anki.atomic import atomic_write
from note2anki.errors import ExportError, OutputRefused, StaleCollection
from note2anki.model import CardKind, DeckNote, MediaFile, MultiCard, RenderedCard
from note2anki.notetypes import MODELS

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: zlib level for the collection: level 1 is three times faster than the default on a 100 MB collection and
#: costs about a third more bytes; builds run on every commit
ZIP_LEVEL = 1


def build_time() -> float:
    """`SOURCE_DATE_EPOCH` when set (reproducible builds), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return float(epoch) if epoch.isdigit() else time.time()


def deck_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:6], "big") + (1 << 50)


_CLOZE_NUMBER = re.compile(r"{{c(\d+)::.+?}}", re.DOTALL)  # as genanki and Anki count cloze cards


def ords(card: RenderedCard) -> list[int]:
    """The card numbers (ords) a note gets: one card, or one per cloze number."""
    if card.kind is not CardKind.CLOZE:
        return [0]
    return sorted({int(n) - 1 for n in _CLOZE_NUMBER.findall(card.fields[0]) if int(n) > 0}) or [0]


def card_ids(nids: Iterable[int], multi: Iterable[MultiCard]) -> dict[int, list[int]]:
    """Card ids of multi-card notes (note id -> ids in card order). The first card has the note's id
    (stable, so `cid:`/`nid:` searches agree); further cards take the next ids not used by any note, in
    deck order. Anki matches an existing note's cards by note and card number on import, so these ids never
    decide identity."""
    used = set(nids)
    out: dict[int, list[int]] = {}
    for m in sorted(multi, key=lambda m: (m.deck, m.source, m.position)):
        cids = [m.nid]
        candidate = m.nid
        for _ in range(m.count - 1):
            candidate += 1
            while candidate in used:
                candidate += 1
            used.add(candidate)
            cids.append(candidate)
        out[m.nid] = cids
    return out


def multi_cards(notes: Sequence[DeckNote]) -> list[MultiCard]:
    out = []
    position: dict[str, int] = {}
    for n in notes:
        index = position.get(n.card.source, 0)
        position[n.card.source] = index + 1
        count = len(ords(n.card))
        if count > 1:
            out.append(MultiCard(n.card.deck, n.card.source, index, n.nid, count))
    return out


def _write_col(cursor: sqlite3.Cursor, pairs: Iterable[tuple[str, CardKind]]) -> None:
    """Schema, decks and note types, by genanki: one deck per name, each with the note types it uses."""
    used: dict[str, set[int]] = {}
    for deck, kind in pairs:
        used.setdefault(deck, set()).add(MODELS[kind].model_id)
    by_id = {m.model_id: m for m in MODELS.values()}
    decks = []
    for name in sorted(used):
        deck = genanki.Deck(deck_id(name), name)
        for model_id in sorted(used[name]):
            deck.add_model(by_id[model_id])
        decks.append(deck)
    genanki.Package(decks).write_to_db(cursor, 0, iter(()))


def _insert(cursor: sqlite3.Cursor, notes: Sequence[DeckNote], ids: dict[int, list[int]]) -> None:
    """Notes and cards with the row values genanki writes, one statement each (a genanki object per note
    costs more than the rest of a big build)."""

    def note_rows() -> Iterator[tuple[object, ...]]:  # rows are made as SQLite takes them: no list of all
        for n in notes:
            card = n.card
            tags = " " + " ".join(card.tags) + " "
            # id, guid, mid, mod, usn, tags, flds, sfld, csum, flags, data
            yield (n.nid, n.guid, MODELS[card.kind].model_id, n.mod, -1, tags, "\x1f".join(card.fields),
                   card.fields[0], 0, 0, "")  # fmt: skip

    def card_rows() -> Iterator[tuple[object, ...]]:
        for n in notes:
            did = deck_id(n.card.deck)
            for ord_, cid in zip(ords(n.card), ids.get(n.nid, [n.nid]), strict=True):
                yield (cid, n.nid, did, ord_, n.mod, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "")

    cursor.executemany("INSERT INTO notes VALUES(?,?,?,?,?,?,?,?,?,?,?)", note_rows())
    cursor.executemany("INSERT INTO cards VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", card_rows())


def _check_guids(notes: Sequence[DeckNote]) -> None:
    counts = Counter(n.guid for n in notes)
    if len(counts) != len(notes):
        dupes = sorted(g for g, c in counts.items() if c > 1)
        raise ExportError(f"two cards share the GUID(s) {', '.join(dupes)}; this is a bug in note2anki")


def write_apkg(
    notes: Sequence[DeckNote], out: Path, keep: Path | None = None, work_root: Path | None = None
) -> None:
    """Write the deck to `out` atomically: a temporary file renamed into place only when complete; with
    `keep`, also leave the collection there for the next build to edit (`update_collection`).

    Nothing in the file depends on the clock or the machine: ids and times come from `notes`, zip entries
    have fixed times and order, media are sorted by name.
    """
    _check_guids(notes)
    with _workdir(work_root) as work:
        media = {m.name: m for n in notes for m in n.card.media}
        if keep is not None:
            try:
                keep.parent.mkdir(parents=True, exist_ok=True)
                keep.unlink(missing_ok=True)
                _write_db(keep, notes)
            except (
                OSError,
                sqlite3.Error,
            ):  # no kept collection (a full disk): only the next build is slower
                with contextlib.suppress(OSError):
                    keep.unlink(missing_ok=True)
            else:
                _finish(keep, media.values(), out, work)
                return
        db_path = work / "collection.anki2"
        try:
            _write_db(db_path, notes)
        except sqlite3.Error as exc:
            raise ExportError(f"cannot write the deck's collection in {work} ({exc})") from exc
        _finish(db_path, media.values(), out, work)


def _write_db(db_path: Path, notes: Sequence[DeckNote]) -> None:
    conn = sqlite3.connect(db_path)
    try:
        cursor = conn.cursor()
        _write_col(cursor, {(n.card.deck, n.card.kind) for n in notes})
        by_deck = sorted(range(len(notes)), key=lambda i: notes[i].card.deck)  # stable: note order kept
        ordered = [notes[i] for i in by_deck]
        _insert(cursor, ordered, card_ids((n.nid for n in notes), multi_cards(ordered)))
        conn.commit()
    finally:
        conn.close()


@contextlib.contextmanager
def _workdir(root: Path | None) -> Iterator[Path]:
    """A temporary folder for one deck, in `root` (the vault's `.note2anki/tmp`, cleaned by the next build
    should this one be killed) or the system's; a folder that cannot be made is an ExportError."""
    try:
        holder = tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=root)
    except OSError as exc:
        where = root or tempfile.gettempdir()
        raise ExportError(f"cannot make a temporary folder in {where} ({exc.strerror or exc})") from exc
    with holder as work:
        yield Path(work)


#: the temporary folders of deck writes are named so (`remove_stale_work` removes those of killed builds)
WORK_PREFIX = "note2anki-"


def remove_stale_work(root: Path) -> None:
    """Remove the temporary folders that killed builds left in `root`. Only call it holding the vault's
    build lock: then no other build is using one."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if entry.name.startswith(WORK_PREFIX) and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)


def update_collection(
    base: Path,
    *,
    remove: Iterable[int],
    add: Sequence[DeckNote],
    pairs: Iterable[tuple[str, CardKind]],
    ids: dict[int, list[int]],
) -> None:
    """Edit the collection of the last build, kept at `base`, in place: the notes `remove` taken out and
    `add` put in; `pairs` are the (deck, kind) pairs of the whole new deck and `ids` the card ids of every
    multi-card note (see `card_ids`). `finish_apkg(base, ...)` then gives the bytes `write_apkg` would.
    The caller no longer trusts `base` until the build has finished."""
    _check_guids(add)
    try:
        conn = sqlite3.connect(base)
        try:
            cursor = conn.cursor()
            gone = [(nid,) for nid in remove]
            cursor.executemany("DELETE FROM cards WHERE nid = ?", gone)
            cursor.executemany("DELETE FROM notes WHERE id = ?", gone)
            fresh = sqlite3.connect(":memory:")
            _write_col(fresh.cursor(), pairs)
            decks, models = fresh.execute("SELECT decks, models FROM col").fetchone()
            fresh.close()
            cursor.execute("UPDATE col SET decks = ?, models = ?", (decks, models))
            _renumber(cursor, ids)
            by_deck = sorted(range(len(add)), key=lambda i: add[i].card.deck)
            _insert(cursor, [add[i] for i in by_deck], ids)
            conn.commit()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StaleCollection(str(exc)) from exc


def finish_apkg(db_path: Path, media: Iterable[MediaFile], out: Path, work_root: Path | None = None) -> None:
    """The deck `out` from a collection and its media (see `_finish`)."""
    with _workdir(work_root) as work:
        _finish(db_path, media, out, work)


def _renumber(cursor: sqlite3.Cursor, ids: dict[int, list[int]]) -> None:
    """Give the cards of multi-card notes the ids `ids` says (another note's change can move them)."""
    moves: list[tuple[int, int]] = []
    for nid, cids in ids.items():
        rows = cursor.execute("SELECT id FROM cards WHERE nid = ? ORDER BY ord", (nid,)).fetchall()
        if rows and [r[0] for r in rows] != cids[: len(rows)]:
            moves.extend(zip((r[0] for r in rows), cids, strict=False))
    # through negative ids, so that no id is taken twice on the way
    cursor.executemany("UPDATE cards SET id = ? WHERE id = ?", [(-new, old) for old, new in moves])
    cursor.executemany("UPDATE cards SET id = ? WHERE id = ?", [(new, -new) for _, new in moves])


def _finish(db_path: Path, media: Iterable[MediaFile], out: Path, work: Path) -> None:
    """Rebuild the collection with `VACUUM INTO` (its bytes then depend on its rows only; the collection
    kept for the next build keeps the schema cookie of a new one), zip it with the media, and rename the
    zip into place."""
    files = sorted({m.name: m for m in media}.values(), key=lambda m: m.name)
    final = work / "final.anki2"
    try:
        conn = sqlite3.connect(db_path)
        try:
            # The copy is a scratch file, zipped and deleted next (the deck is written atomically): no fsync
            # of it. Half the time of a big deck's VACUUM; its bytes are the same.
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("VACUUM INTO ?", (str(final),))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ExportError(f"cannot write the deck's collection in {work} ({exc})") from exc
    out = out.resolve()
    try:
        with atomic_write(out) as raw, zipfile.ZipFile(raw, "w") as zf:
            _add_file(zf, "collection.anki2", final)
            _add(zf, "media", json.dumps({str(i): m.name for i, m in enumerate(files)}).encode())
            for i, m in enumerate(files):
                _add(zf, str(i), _media_bytes(m))
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from exc


def _media_bytes(media: MediaFile) -> bytes:
    try:
        return media.path.read_bytes()
    except OSError as exc:
        raise ExportError(
            f"cannot read the image {media.path} ({exc.strerror or exc}); it changed during the build, so "
            "build again"
        ) from exc


_ZIP_MAGIC = b"PK\x03\x04"


def check_report(path: Path, vault_root: Path) -> None:
    """The build report goes where a deck may go: never inside the vault, never over a note."""
    if _inside(path, vault_root) or path.suffix.lower() == ".md":
        raise OutputRefused(
            f"--report {path}: note2anki writes nothing inside the vault or over a note but its state "
            "file and cache; write the report outside the vault"
        )


def _inside(path: Path, vault_root: Path) -> bool:
    return path.resolve().is_relative_to(vault_root.resolve())


def check_output(out: Path, vault_root: Path) -> None:
    """Refuse a deck path inside the vault (the deck would be synced and committed with the notes, or
    overwrite one) or one that would replace something that is not an Anki deck."""
    target, root = out.resolve(), vault_root.resolve()
    if _inside(target, root):
        raise OutputRefused(
            f"{out} is inside the vault {root}; note2anki writes nothing there but its state file and cache, "
            f"so the deck is never synced, committed or written over a note. Write it outside the vault, "
            f"for example -o {root.parent / (root.name + '.apkg')}"
        )
    if not target.exists():
        return
    if not target.is_file():
        raise OutputRefused(f"{out} exists and is not a file; give the deck a file name such as deck.apkg")
    try:
        with target.open("rb") as f:
            head = f.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise OutputRefused(f"cannot read {out} ({exc.strerror or exc}); choose another deck path") from exc
    if head and head != _ZIP_MAGIC:
        raise OutputRefused(
            f"{out} exists and is not an Anki deck (.apkg), so note2anki will not overwrite it; choose "
            "another name or delete it first"
        )


def _add_file(zf: zipfile.ZipFile, name: str, path: Path) -> None:
    """A big file into the zip in pieces, never whole in memory."""
    info = _info(name)
    info.file_size = path.stat().st_size  # lets zipfile choose zip64 only when needed
    with path.open("rb") as src, zf.open(info, "w") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    for attr in ("compress_level", "_compresslevel"):  # what zf.open reads the level from (3.13: public)
        with contextlib.suppress(AttributeError):
            setattr(info, attr, ZIP_LEVEL)
    info.external_attr = 0o644 << 16
    return info


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL)
