"""The last build's record, `.note2anki/cache/build.json`: what each note gave it and what it left on disk, so
that a build where nothing (or little) changed does nothing (or little)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from note2anki.atomic import atomic_write
from note2anki.build.cache import FORMAT, fresh, stamp, vault_rel
from note2anki.build.notes import Sources
from note2anki.build.private import CACHE_DIR, private_dir
from note2anki.export import multi_cards
from note2anki.media import MediaIndex
from note2anki.model import DeckNote, Diagnostic, MediaDep, MultiCard, NoteResult, Vault


@dataclass(frozen=True)
class NoteRecord:
    """What one note gave the last build, kept so that the next build can skip the note."""

    key: str
    stat: str  # stamp of the bytes `key` was made from ("" when not to be trusted)
    readable: bool  # False: the note could not be read (it adds no cards)
    media_deps: tuple[MediaDep, ...]
    counts: dict[str, int]  # cards by kind
    pairs: tuple[tuple[str, str], ...]  # (deck, kind) of its cards
    media: tuple[tuple[str, str], ...]  # (vault path, deck name) of the files its cards show
    diagnostics: tuple[Diagnostic, ...]
    multi: tuple[MultiCard, ...]  # its notes with more than one card

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "stat": self.stat,
            "readable": self.readable,
            "media_deps": [m.to_json() for m in self.media_deps],
            "counts": self.counts,
            "pairs": [list(p) for p in self.pairs],
            "media": [list(m) for m in self.media],
            "diagnostics": [d.to_json() for d in self.diagnostics],
            "multi": [m.to_json() for m in self.multi],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NoteRecord:
        return cls(
            key=str(data["key"]),
            stat=str(data["stat"]),
            readable=bool(data["readable"]),
            media_deps=tuple(MediaDep.from_json(m) for m in data["media_deps"]),
            counts={str(k): int(v) for k, v in data["counts"].items()},
            pairs=tuple((str(d), str(k)) for d, k in data["pairs"]),
            media=tuple((str(r), str(n)) for r, n in data["media"]),
            diagnostics=tuple(Diagnostic.from_json(d) for d in data["diagnostics"]),
            multi=tuple(MultiCard.from_json(m) for m in data["multi"]),
        )


def note_records(
    vault: Vault, sources: Sources, results: list[NoteResult], notes: Iterable[DeckNote], only: Iterable[int]
) -> dict[str, NoteRecord]:
    """Records of the notes at indexes `only` (vault order), from their results and deck notes."""
    multi: dict[str, list[MultiCard]] = {}
    for m in multi_cards(list(notes)):
        multi.setdefault(m.source, []).append(m)
    out = {}
    for i in only:
        source, result = vault.notes[i], results[i]
        counts: dict[str, int] = {}
        for card in result.cards:
            counts[card.kind.value] = counts.get(card.kind.value, 0) + 1
        out[source.rel] = NoteRecord(
            key=sources.keys[i],
            stat=sources.stats[i],
            readable=result.readable,
            media_deps=result.media,
            counts=counts,
            pairs=tuple(sorted({(c.deck, c.kind.value) for c in result.cards})),
            media=tuple(
                sorted(
                    {
                        (m.path.relative_to(vault.root).as_posix(), m.name)
                        for c in result.cards
                        for m in c.media
                    }
                )
            ),
            diagnostics=result.diagnostics,
            multi=tuple(multi.get(source.rel, ())),
        )
    return out


def bytes_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


@dataclass
class Totals:
    """What all notes of a build add up to, so that a build that redoes a few notes can report on the whole
    vault without reading every note's record: counts by kind, notes per (deck, kind) pair and per media
    file, every diagnostic, and the multi-card notes (for card ids)."""

    counts: dict[str, int]
    pairs: dict[tuple[str, str], int]
    media: dict[tuple[str, str], int]
    diagnostics: list[Diagnostic]
    multi: list[MultiCard]
    unreadable: int = 0  # notes that could not be read

    @classmethod
    def of(cls, records: dict[str, NoteRecord]) -> Totals:
        totals = cls({}, {}, {}, [], [])
        for rel, record in records.items():
            totals.add(rel, record)
        return totals

    def add(self, rel: str, record: NoteRecord, sign: int = 1) -> None:
        self.unreadable += sign * (not record.readable)
        for kind, n in record.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + sign * n
        for pair in record.pairs:
            self.pairs[pair] = self.pairs.get(pair, 0) + sign
        for item in record.media:
            self.media[item] = self.media.get(item, 0) + sign
        if sign > 0:
            self.diagnostics.extend(record.diagnostics)
            self.multi.extend(record.multi)
        else:
            self.diagnostics = [d for d in self.diagnostics if d.path != rel]
            self.multi = [m for m in self.multi if m.source != rel]
        self.pairs = {k: v for k, v in self.pairs.items() if v > 0}
        self.media = {k: v for k, v in self.media.items() if v > 0}

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "pairs": [[d, k, n] for (d, k), n in sorted(self.pairs.items())],
            "media": [[r, name, n] for (r, name), n in sorted(self.media.items())],
            "diagnostics": [d.to_json() for d in self.diagnostics],
            "multi": [m.to_json() for m in self.multi],
            "unreadable": self.unreadable,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Totals:
        return cls(
            counts={str(k): int(v) for k, v in data["counts"].items()},
            pairs={(str(d), str(k)): int(n) for d, k, n in data["pairs"]},
            media={(vault_rel(r), str(name)): int(n) for r, name, n in data["media"]},
            diagnostics=[Diagnostic.from_json(d) for d in data["diagnostics"]],
            multi=[MultiCard.from_json(m) for m in data["multi"]],
            unreadable=int(data["unreadable"]),
        )


@dataclass
class Manifest:
    """The last build: each note's record as written (JSON, parsed only for the notes that changed), the
    totals, and what it left on disk."""

    raw: dict[str, dict[str, Any]]  # note path -> NoteRecord.to_json()
    totals: Totals
    state: str  # sha256 of the state file it left
    outputs: list[tuple[str, str]]  # deck files and their sha256
    collection: str  # size and time of the collection kept for the next build ("" when none)
    attachments: str  # attachments_digest of the vault
    images: dict[str, str]  # every image file a card shows -> its size and time

    def record(self, rel: str) -> NoteRecord:
        return NoteRecord.from_json(self.raw[rel])

    def key_and_stat(self, rel: str) -> tuple[str, str] | None:
        raw = self.raw.get(rel)
        return (str(raw["key"]), str(raw["stat"])) if raw else None


class LastBuild:
    """`.note2anki/cache/build.json`: what the last build read (every note's cache key and images) and
    wrote (state file, decks, the collection kept in the cache), with what each note gave. A build whose
    notes all match has nothing to do; a build where few notes changed redoes only those (update.py)."""

    def __init__(self, vault: Vault, fingerprint: str, options: dict[str, Any]) -> None:
        self.path = vault.root / CACHE_DIR / "build.json"
        self.collection = vault.root / CACHE_DIR / "collection.anki2"
        self.vault = vault
        self.header = {"format": FORMAT, "fingerprint": fingerprint, "options": options}

    def load(self, state: bytes) -> Manifest | None:
        """The last build's manifest, when its state file and decks are still exactly as it left them."""
        try:
            data = json.loads(self.path.read_bytes())
            if {k: data.get(k) for k in self.header} != self.header:
                return None
            raw = data["notes"]
            if not all(isinstance(r, dict) for r in raw.values()):
                return None
            manifest = Manifest(
                raw=raw,
                totals=Totals.from_json(data["totals"]),
                state=str(data["state"]),
                outputs=[(str(p), str(h)) for p, h in data["outputs"]],
                collection=str(data["collection"]),
                attachments=str(data["attachments"]),
                images={str(k): str(v) for k, v in data["images"].items()},
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None
        if manifest.state != bytes_sha(state):
            return None
        if any(not Path(p).is_file() or _sha(Path(p)) != h for p, h in manifest.outputs):
            return None
        return manifest

    def collection_ok(self, manifest: Manifest) -> bool:
        return bool(manifest.collection) and stamp(self.collection) == manifest.collection

    def save(
        self,
        raw: dict[str, dict[str, Any]],
        totals: Totals,
        state_sha: str,
        outputs: Iterable[Path],
        kept: bool,
    ) -> None:
        """Record this build; `raw` holds every note's record (NoteRecord.to_json) in vault order."""
        self.prepare(raw, totals, state_sha, kept).save(outputs)

    def prepare(self, raw: dict[str, dict[str, Any]], totals: Totals, state_sha: str, kept: bool) -> Record:
        """`save` in two steps: everything but the decks' digests is encoded now (most of the work, done
        while a deck is still being written), and `.save(outputs)` writes the record once they are done.
        The kept collection must be as this build leaves it."""
        images: dict[str, str] = {}
        for rel, _ in totals.media:
            images[rel] = stamp(self.vault.root / rel)
        data = {
            **self.header,
            "notes": raw,
            "totals": totals.to_json(),
            "state": state_sha,
            "collection": stamp(self.collection) if kept else "",
            "attachments": attachments_digest(self.vault),
            "images": images,
        }
        return Record(self, json.dumps(data, ensure_ascii=False))

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


class Record:
    """A last-build record with everything in it but the decks it wrote (see LastBuild.prepare)."""

    def __init__(self, last: LastBuild, encoded: str) -> None:
        self.last, self.encoded = last, encoded

    def save(self, outputs: Iterable[Path]) -> None:
        decks = json.dumps([[str(p), _sha(p)] for p in outputs], ensure_ascii=False)
        text = f'{self.encoded[:-1]}, "outputs": {decks}}}'  # the encoded object, one key more
        try:
            private_dir(self.last.vault.root, "cache")
            with atomic_write(self.last.path, durable=False) as f:
                f.write(text.encode())
        except OSError:
            pass


def attachments_digest(vault: Vault) -> str:
    """Which attachments the vault has: image lookups give the same answers while this is unchanged."""
    names = sorted(rel for rels in vault.attachments.values() for rel in rels)
    return hashlib.sha256("\0".join(names).encode()).hexdigest()


def changes(
    manifest: Manifest, vault: Vault, sources: Sources, index: MediaIndex
) -> tuple[list[int], list[str]]:
    """Indexes (vault order) of the notes that differ from the last build, and the paths of notes gone.

    While the vault's list of attachments is the one the last build saw and no image a card shows has
    changed size or time, every image lookup gives what it gave then: only notes whose bytes changed are
    redone. Otherwise each note's image lookups are checked again."""
    images_same = manifest.attachments == attachments_digest(vault) and all(
        stamp(vault.root / rel) == mark for rel, mark in manifest.images.items()
    )
    changed = []
    for i, source in enumerate(vault.notes):
        known = manifest.key_and_stat(source.rel)
        if (
            known is None
            or not sources.keys[i]
            or known[0] != sources.keys[i]
            or (
                not images_same
                and not fresh(manifest.record(source.rel).media_deps, source.rel, vault, index)
            )
        ):
            changed.append(i)
    present = {s.rel for s in vault.notes}
    return changed, sorted(rel for rel in manifest.raw if rel not in present)
