"""Reading a vault's notes fast: from `.note2anki/cache` when nothing they depend on changed, else in a
pool of processes; and recognising a build whose inputs and outputs are exactly as the last build left them.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from note2anki.atomic import atomic_write
from note2anki.cache import (
    CACHE_DIR,
    FORMAT,
    MediaDep,
    NoteCache,
    NoteResult,
    encode_entry,
    note_key,
    private_dir,
    stamp,
    stat_mark,
    vault_rel,
)
from note2anki.config import Config
from note2anki.export import multi_cards
from note2anki.extract import extract
from note2anki.model import DeckNote, Diagnostic, Severity, SourceFile, Vault
from note2anki.parse import parse
from note2anki.reading import read_note
from note2anki.render import MediaIndex, render

#: below this many notes to read, a process pool costs more than it saves
POOL_MIN_NOTES = 200


@dataclass(frozen=True)
class Sources:
    """Every note's cache key in vault order ("" for a note that cannot be read, or without a cache), and
    the file's size and modification time taken just before it was read ("" when too recent to trust).
    The bytes are not kept (a big vault's notes would all sit in memory): a note that is redone is read
    again, and its key is then taken from what was read."""

    keys: list[str]
    stats: list[str]


#: a file modified less than this long before it was read may change again within the clock's resolution
#: without its modification time changing (git's "racy" files): its size and time are not trusted later
_RACY_NS = 2_000_000_000


def _read(source: SourceFile, config: Config) -> tuple[bytes | Diagnostic, str]:
    """The file's bytes (or why they cannot be read) and its trustworthy stamp (see Sources)."""
    try:
        st = os.stat(source.path)
    except OSError:
        st = None
    data = read_note(source, config.max_note_mb * 1_000_000)
    if st is None or isinstance(data, Diagnostic) or time.time_ns() - st.st_mtime_ns <= _RACY_NS:
        return data, ""
    return data, stat_mark(st)


def read_sources(
    vault: Vault, config: Config, store: NoteCache | None, last: Manifest | None = None
) -> Sources:
    """Keys of every note. A note whose size and modification time are those the last build recorded for
    it (`last`) keeps that build's key without being read again; the others are read and hashed. With
    neither a last build nor a cache to look keys up in (a first build), no note is read here: each is
    read once, where it is processed, and its key taken then."""
    fp = store.fingerprint if store is not None else ""
    if last is None and (store is None or not store.exists()):
        return Sources([""] * len(vault.notes), [""] * len(vault.notes))
    keys, stats = [], []
    for s in vault.notes:
        known = last.key_and_stat(s.rel) if last is not None and fp else None
        if known is not None and known[1] and known[1] == stamp(str(s.path)):
            keys.append(known[0])
            stats.append(known[1])
            continue
        data, mark = _read(s, config)
        keys.append(_key(fp, s.rel, data))
        stats.append(mark)
    return Sources(keys, stats)


def _key(fingerprint: str, rel: str, data: bytes | Diagnostic) -> str:
    return note_key(fingerprint, rel, data) if fingerprint and isinstance(data, bytes) else ""


def process_note(
    source: SourceFile, data: bytes | Diagnostic, vault: Vault, config: Config, index: MediaIndex
) -> NoteResult:
    """parse -> extract -> render for one note: its cards, its problems, and the images it looked up.
    Never raises: an unexpected failure is this note's error, and the rest of the vault still builds."""
    try:
        return _process_note(source, data, vault, config, index)
    except Exception as exc:  # a bug in note2anki or a library, on this note only
        message = (
            f"note2anki failed on this note ({type(exc).__name__}: {str(exc)[:200]}); the rest of the vault "
            "was built. Please report this bug to note2anki's issue tracker with the note attached"
        )
        return NoteResult(
            (), (Diagnostic(source.rel, None, "N2A099", Severity.ERROR, message),), readable=False
        )


def _process_note(
    source: SourceFile, data: bytes | Diagnostic, vault: Vault, config: Config, index: MediaIndex
) -> NoteResult:
    note, problems = parse(source, config, data=data)
    diagnostics = list(problems)
    if note is None:
        return NoteResult((), tuple(unignored(diagnostics, config.ignore)), readable=False)
    found, problems = extract(note, config)
    diagnostics.extend(problems)
    cards = []
    lookups: list[tuple[str, str]] = []
    for card in found:
        rendered, problems = render(card, vault, config, index, lookups)
        diagnostics.extend(problems)
        cards.append(rendered)
    deps = tuple(
        MediaDep(target, rel, stamp(vault.file(rel)) if rel else "") for target, rel in dict.fromkeys(lookups)
    )
    ignored = (*config.ignore, *note.meta.ignore)
    return NoteResult(tuple(cards), tuple(unignored(diagnostics, ignored)), readable=True, media=deps)


def unignored(diagnostics: Iterable[Diagnostic], codes: Iterable[str]) -> list[Diagnostic]:
    """The diagnostics whose code is not ignored; errors are always kept (the note is not in the deck)."""
    skip = frozenset(codes)
    return [d for d in diagnostics if d.severity is Severity.ERROR or d.code not in skip]


def fresh(deps: Iterable[MediaDep], note_rel: str, vault: Vault, index: MediaIndex) -> bool:
    """Every image lookup still finds the same file, unchanged."""
    for dep in deps:
        rel = index.find(dep.target, note_rel) or ""
        if rel != dep.rel or (rel and stamp(vault.file(rel)) != dep.stamp):
            return False
    return True


def _compute(
    source: SourceFile, vault: Vault, config: Config, index: MediaIndex, fingerprint: str, store: bool
) -> tuple[str, str, NoteResult, bytes]:
    """Read one note (once) and process it: its cache key, stamp, result and (when `store`) cache entry,
    encoded here so that a pool's workers share that work too."""
    data, mark = _read(source, config)
    key = _key(fingerprint, source.rel, data)
    result = process_note(source, data, vault, config, index)
    return key, mark, result, encode_entry(key, result, vault.root) if store and key else b""


_WORKER: tuple[Vault, Config, MediaIndex, str, bool] | None = None


def _init_worker(vault: Vault, config: Config, fingerprint: str, store: bool) -> None:
    global _WORKER
    _WORKER = (vault, config, MediaIndex(vault), fingerprint, store)
    # A worker ends with the build: on SIGTERM at once (not through the handler the CLI gave its parent),
    # and on Linux when the parent dies, however it dies.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    _die_with_parent()


def _die_with_parent() -> None:
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _work(source: SourceFile) -> tuple[str, str, NoteResult, bytes]:
    assert _WORKER is not None
    return _compute(source, *_WORKER)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def read_notes(
    vault: Vault,
    config: Config,
    sources: Sources,
    store: NoteCache | None,
    *,
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
) -> list[NoteResult]:
    """Every note's result, in the vault's order: from the cache when the note, the settings, the tool and
    the images it shows are unchanged, else computed (in `jobs` processes when many notes changed). Results
    do not depend on which way they were made."""
    index = MediaIndex(vault)
    total = len(vault.notes)
    results: list[NoteResult | None] = [None] * total
    todo: list[int] = []
    done = 0
    for i, source in enumerate(vault.notes):
        key = sources.keys[i]
        hit = store.get(key, vault.root) if key and store is not None else None
        if hit is not None and fresh(hit.media, source.rel, vault, index):
            results[i] = hit
            done += 1
            if progress is not None:
                progress(done, total)
        else:
            todo.append(i)
    work = [vault.notes[i] for i in todo]
    fp = store.fingerprint if store is not None else ""
    keep = store is not None and store.writable
    workers = min(jobs or default_jobs(), len(todo))
    computed: Iterable[tuple[str, str, NoteResult, bytes]]
    if workers > 1 and len(todo) >= POOL_MIN_NOTES:
        # fork: workers start with everything imported; results come back in submission order
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
        pool = ProcessPoolExecutor(
            workers, context, initializer=_init_worker, initargs=(vault, config, fp, keep)
        )
        try:
            computed = pool.map(_work, work, chunksize=max(1, min(32, len(work) // (workers * 8))))
            done = _collect(todo, computed, results, store, sources, vault, progress, done)
        except BaseException:  # an error, Ctrl-C or SIGTERM: the workers end now, not after their queue
            _stop(pool)
            raise
        pool.shutdown()
    else:
        computed = (_compute(s, vault, config, index, fp, keep) for s in work)
        done = _collect(todo, computed, results, store, sources, vault, progress, done)
    return [r for r in results if r is not None]


def _stop(pool: ProcessPoolExecutor) -> None:
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=1)


def _collect(
    todo: list[int],
    computed: Iterable[tuple[str, str, NoteResult, bytes]],
    results: list[NoteResult | None],
    store: NoteCache | None,
    sources: Sources,
    vault: Vault,
    progress: Callable[[int, int], None] | None,
    done: int,
) -> int:
    for i, (key, mark, result, entry) in zip(todo, computed, strict=True):
        results[i] = result
        sources.keys[i] = key  # of the bytes actually read, should the note have changed meanwhile
        sources.stats[i] = mark
        if store is not None and key:
            store.put(key, entry)
        done += 1
        if progress is not None:
            progress(done, len(results))
    return done


# --- the last build ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteRecord:
    """What one note gave the last build, kept so that the next build can skip the note."""

    key: str
    stat: str  # size and modification time of the bytes `key` was made from ("" when not to be trusted)
    media_deps: tuple[MediaDep, ...]
    counts: dict[str, int]  # cards by kind
    pairs: tuple[tuple[str, str], ...]  # (deck, kind) of its cards
    media: tuple[tuple[str, str], ...]  # (vault path, deck name) of the files its cards show
    diagnostics: tuple[Diagnostic, ...]
    multi: tuple[tuple[str, int, int, int], ...]  # (deck, position, note id, cards) of multi-card notes

    def to_json(self) -> list[Any]:
        return [
            self.key,
            self.stat,
            [[m.target, m.rel, m.stamp] for m in self.media_deps],
            self.counts,
            [list(p) for p in self.pairs],
            [list(m) for m in self.media],
            [[d.path, d.line, d.code, d.severity.value, d.message] for d in self.diagnostics],
            [list(m) for m in self.multi],
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> NoteRecord:
        key, stat, deps, counts, pairs, media, diagnostics, multi = data
        return cls(
            key=str(key),
            stat=str(stat),
            media_deps=tuple(MediaDep(str(t), str(r), str(s)) for t, r, s in deps),
            counts={str(k): int(v) for k, v in counts.items()},
            pairs=tuple((str(d), str(k)) for d, k in pairs),
            media=tuple((str(r), str(n)) for r, n in media),
            diagnostics=tuple(
                Diagnostic(str(p), n, str(c), Severity(s), str(m)) for p, n, c, s, m in diagnostics
            ),
            multi=tuple((str(d), int(p), int(n), int(c)) for d, p, n, c in multi),
        )


def note_records(
    vault: Vault, sources: Sources, results: list[NoteResult], notes: Iterable[DeckNote], only: Iterable[int]
) -> dict[str, NoteRecord]:
    """Records of the notes at indexes `only` (vault order), from their results and deck notes."""
    multi: dict[str, list[tuple[str, int, int, int]]] = {}
    for m in multi_cards(list(notes)):
        multi.setdefault(m.source, []).append((m.deck, m.position, m.nid, m.count))
    out = {}
    for i in only:
        source, result = vault.notes[i], results[i]
        counts: dict[str, int] = {}
        for card in result.cards:
            counts[card.kind.value] = counts.get(card.kind.value, 0) + 1
        out[source.rel] = NoteRecord(
            key=sources.keys[i],
            stat=sources.stats[i],
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


def _rel(path: Path, vault: Vault) -> str:
    return path.relative_to(vault.root).as_posix()


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
    multi: list[tuple[str, str, int, int, int]]  # (deck, note path, position, note id, cards)

    @classmethod
    def of(cls, records: dict[str, NoteRecord]) -> Totals:
        totals = cls({}, {}, {}, [], [])
        for rel, record in records.items():
            totals.add(rel, record)
        return totals

    def add(self, rel: str, record: NoteRecord, sign: int = 1) -> None:
        for kind, n in record.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + sign * n
        for pair in record.pairs:
            self.pairs[pair] = self.pairs.get(pair, 0) + sign
        for item in record.media:
            self.media[item] = self.media.get(item, 0) + sign
        if sign > 0:
            self.diagnostics.extend(record.diagnostics)
            self.multi.extend((d, rel, p, nid, n) for d, p, nid, n in record.multi)
        else:
            self.diagnostics = [d for d in self.diagnostics if d.path != rel]
            self.multi = [m for m in self.multi if m[1] != rel]
        self.pairs = {k: v for k, v in self.pairs.items() if v > 0}
        self.media = {k: v for k, v in self.media.items() if v > 0}

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "pairs": [[d, k, n] for (d, k), n in sorted(self.pairs.items())],
            "media": [[r, name, n] for (r, name), n in sorted(self.media.items())],
            "diagnostics": [[d.path, d.line, d.code, d.severity.value, d.message] for d in self.diagnostics],
            "multi": [list(m) for m in self.multi],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Totals:
        return cls(
            counts={str(k): int(v) for k, v in data["counts"].items()},
            pairs={(str(d), str(k)): int(n) for d, k, n in data["pairs"]},
            media={(vault_rel(r), str(name)): int(n) for r, name, n in data["media"]},
            diagnostics=[
                Diagnostic(str(p), n, str(c), Severity(s), str(m)) for p, n, c, s, m in data["diagnostics"]
            ],
            multi=[(str(d), str(r), int(p), int(nid), int(n)) for d, r, p, nid, n in data["multi"]],
        )


@dataclass
class Manifest:
    """The last build: each note's record as written (JSON, parsed only for the notes that changed), the
    totals, and what it left on disk."""

    raw: dict[str, list[Any]]  # note path -> NoteRecord.to_json()
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
        return (str(raw[0]), str(raw[1])) if raw else None


class LastBuild:
    """`.note2anki/cache/build.json`: what the last build read (every note's cache key and images) and
    wrote (state file, decks, the collection kept in the cache), with what each note gave. A build whose
    notes all match has nothing to do; a build where few notes changed redoes only those (pipeline.py)."""

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
            if not all(isinstance(r, list) and len(r) == 8 for r in raw.values()):
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
        raw: dict[str, list[Any]],
        totals: Totals,
        state: bytes,
        outputs: Iterable[Path],
        kept: bool,
    ) -> None:
        """Record this build; `raw` holds every note's record (NoteRecord.to_json) in vault order."""
        images: dict[str, str] = {}
        for rel, _ in totals.media:
            images[rel] = stamp(self.vault.root / rel)
        data = {
            **self.header,
            "notes": raw,
            "totals": totals.to_json(),
            "state": bytes_sha(state),
            "outputs": [[str(p), _sha(p)] for p in outputs],
            "collection": stamp(self.collection) if kept else "",
            "attachments": attachments_digest(self.vault),
            "images": images,
        }
        try:
            private_dir(self.vault.root, "cache")
            with atomic_write(self.path, durable=False) as f:
                f.write(json.dumps(data, ensure_ascii=False).encode())
        except OSError:
            pass

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


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
