"""Incremental builds: what each note gave last time, under `.note2anki/cache/` in the vault.

An entry is found by a key made of the note's bytes, its path, the settings, the vault's place and name,
and note2anki itself (its source files and the versions of the libraries that shape a card), so a changed
note, setting or tool never finds an old entry. An entry also lists the images its cards resolved, with their
size and modification time; a moved, changed, added or deleted image makes the entry stale. Entries are JSON
(never pickle: the folder sits in a shared vault) and are checked when read; anything unreadable, of another
format or stale is ignored and rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

import note2anki
from note2anki.config import Config
from note2anki.model import CardKind, Diagnostic, MediaFile, RenderedCard, Severity, Vault

PRIVATE_DIR = ".note2anki"
CACHE_DIR = f"{PRIVATE_DIR}/cache"
_GITIGNORE = "# Written by note2anki: its cache and temporary files. Never commit them.\n*\n"


def private_dir(root: Path, sub: str) -> Path:
    """`.note2anki/<sub>` in the vault at `root`, created with a `.gitignore` that keeps all of
    `.note2anki/` out of git. Raises OSError when it cannot be created or when a part of it is a link
    (symlink): a shared vault must not be able to point note2anki's writes elsewhere."""
    base = root / PRIVATE_DIR
    part = root
    for name in (PRIVATE_DIR, *PurePosixPath(sub).parts):
        part = part / name
        if part.is_symlink():
            raise OSError(f"{part} is a link (symlink)")
    folder = base / sub
    folder.mkdir(parents=True, exist_ok=True)
    ignore = base / ".gitignore"
    if not ignore.exists():
        ignore.write_text(_GITIGNORE, encoding="utf-8")
    return folder


def private_ok(root: Path) -> bool:
    """False when `.note2anki` or a folder in it is a link (symlink): its cache is then not used at all,
    since reading it could mean reading, and pruning it deleting, files outside the vault."""
    base = root / PRIVATE_DIR
    return not any(p.is_symlink() for p in (base, base / "cache", base / "cache" / "notes", base / "tmp"))


FORMAT = 3
#: entries of older versions, one file each: only files so named are removed (`<2 hex>/<64 hex>.json`)
_SHARD, _ENTRY = re.compile(r"[0-9a-f]{2}"), re.compile(r"[0-9a-f]{64}\.json")
_LIBRARIES = ("mistune", "nh3", "pygments", "pyyaml", "python-frontmatter", "genanki")


@dataclass(frozen=True)
class MediaDep:
    """An image a card looked up: the link as written, the vault file it found ("" when none) and that
    file's size and modification time."""

    target: str
    rel: str
    stamp: str


@dataclass(frozen=True)
class NoteResult:
    """Everything one note contributes to a build."""

    cards: tuple[RenderedCard, ...]
    diagnostics: tuple[Diagnostic, ...]
    readable: bool  # False: the note could not be read or parsed (its cards keep their identity)
    media: tuple[MediaDep, ...] = ()
    cached: bool = False  # from the cache: the note did not change since a build read it (never stored)


def stamp(path: Path | str) -> str:
    """What tells that a file changed without reading it: size, modification time, and the inode's change
    time and number, which a copy that restores the old time (`cp -p`, `rsync -t`) or a rename still
    changes."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return stat_mark(st)


def stat_mark(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


@functools.lru_cache(maxsize=1)
def _tool_fingerprint() -> str:
    h = hashlib.sha256(f"{FORMAT}:{note2anki.__version__}".encode())
    package = Path(note2anki.__file__).parent
    for path in [*sorted(package.glob("*.py")), package / "card.css"]:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in _LIBRARIES:
        try:
            h.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            h.update(name.encode())
    return h.hexdigest()


def fingerprint(config: Config, vault: Vault) -> str:
    parts = (_tool_fingerprint(), repr(config), str(vault.root), vault.name, repr(vault.settings))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def note_key(fingerprint: str, rel: str, data: bytes) -> str:
    h = hashlib.sha256(fingerprint.encode())
    h.update(rel.encode() + b"\0")
    h.update(data)
    return h.hexdigest()


#: how long a build waits for another build that is writing the cache before it does without
BUSY_SECONDS = 10.0
_TABLE = "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, data BLOB)"


class NoteCache:
    """Read (and, when `writable`, write) cache entries of one vault under one fingerprint.

    Entries live in one SQLite file, `.note2anki/cache/notes.sqlite` (key -> JSON): ten thousand small files
    cost seconds to create, one transaction a fraction of that. A damaged or foreign file is not trusted:
    reads then miss, and the first write starts a new file. `prune()` or `close()` commits what was written;
    a build that fails before then leaves the file as it was."""

    def __init__(self, vault: Vault, config: Config, writable: bool) -> None:
        self.root = vault.root
        self.path = vault.root / CACHE_DIR / "notes.sqlite"
        self.fingerprint = fingerprint(config, vault)
        self.writable = writable
        self.used: set[str] = set()
        self._db: sqlite3.Connection | None = None
        self._broken = False  # the file cannot be used: no more reads, writes start a new one

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._db is not None or self._broken:
            return self._db
        if any(p.is_symlink() for p in (self.path, self.path.with_name(self.path.name + "-journal"))):
            self._broken = True  # never read or write through a link a shared vault may have planted
            return None
        try:
            if not self.path.exists():
                if not create:
                    return None
                private_dir(self.root, "cache")
            if not self.writable:  # `check` and `list` never write, not even a table
                db = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, isolation_level=None)
            else:
                db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
                db.execute("PRAGMA synchronous = OFF")  # a cache: a machine crash may lose it, not a build
                db.execute(_TABLE)
        except (OSError, sqlite3.Error) as exc:
            self._fail(exc)
            return None
        self._db = db
        return db

    def _fail(self, exc: Exception) -> None:
        """The file cannot be used: this build does without it. A damaged file (or one that is not a
        database) is removed, so that a writable cache starts a new one; one that another build holds locked
        too long, or that cannot be opened, is left alone."""
        self._broken = True
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        damaged = isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)
        if self.writable and damaged:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._broken = False

    def exists(self) -> bool:
        """False when there is no cache file yet: every lookup would miss."""
        return self.path.exists()

    def get(self, key: str, root: Path) -> NoteResult | None:
        self.used.add(key)
        db = self._connect(create=False)
        if db is None:
            return None
        try:
            row = db.execute("SELECT data FROM entries WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            self._fail(exc)
            return None
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            if data.get("format") != FORMAT or data.get("key") != key:
                return None
            return _result(data, root)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # damaged: rebuilt by the caller

    def put(self, key: str, entry: bytes) -> None:
        """Store `entry` (from `encode_entry`, made in the worker that read the note)."""
        self.used.add(key)
        if not self.writable:
            return
        db = self._connect(create=True)
        if db is None:
            return
        try:
            if not db.in_transaction:
                db.execute("BEGIN")
            db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?)", (key, entry))
        except sqlite3.Error as exc:
            self._fail(exc)  # a cache that cannot be written only makes the next build slower

    def prune(self) -> None:
        """Remove entries this build did not use (older versions of notes, deleted notes), and commit."""
        if self.writable:
            self._remove_legacy()
            db = self._connect(create=False)
            if db is not None:
                try:
                    if not db.in_transaction:
                        db.execute("BEGIN")
                    db.execute("CREATE TEMP TABLE IF NOT EXISTS used (key TEXT PRIMARY KEY) WITHOUT ROWID")
                    db.execute("DELETE FROM used")
                    db.executemany("INSERT OR IGNORE INTO used VALUES (?)", ((k,) for k in self.used))
                    db.execute("DELETE FROM entries WHERE key NOT IN (SELECT key FROM used)")
                except sqlite3.Error as exc:
                    self._fail(exc)
        self.close()

    def close(self) -> None:
        if self._db is None:
            return
        try:
            if self._db.in_transaction:
                self._db.execute("COMMIT")
            self._db.close()
        except sqlite3.Error as exc:
            self._fail(exc)
        self._db = None

    def _remove_legacy(self) -> None:
        """Entries of earlier note2anki versions were one file each, `notes/<2 hex>/<64 hex>.json`: removed
        (only files so named, and the folders they leave empty)."""
        legacy = self.root / CACHE_DIR / "notes"
        if legacy.is_symlink() or not legacy.is_dir():
            return
        with contextlib.suppress(OSError):
            for sub in os.scandir(legacy):
                if not (_SHARD.fullmatch(sub.name) and sub.is_dir(follow_symlinks=False)):
                    continue
                for entry in os.scandir(sub.path):
                    if _ENTRY.fullmatch(entry.name):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                with contextlib.suppress(OSError):
                    os.rmdir(sub.path)
            os.rmdir(legacy)


def encode_entry(key: str, result: NoteResult, root: Path) -> bytes:
    """A note's cache entry, as stored."""
    data = {"format": FORMAT, "key": key, **_data(result, root)}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _data(result: NoteResult, root: Path) -> dict[str, Any]:
    return {
        "readable": result.readable,
        "cards": [_card_data(c, root) for c in result.cards],
        "diagnostics": [[d.path, d.line, d.code, d.severity.value, d.message] for d in result.diagnostics],
        "media": [[m.target, m.rel, m.stamp] for m in result.media],
    }


def _card_data(card: RenderedCard, root: Path) -> dict[str, Any]:
    return {
        "kind": card.kind.value,
        "source": card.source,
        "line": card.line,
        "prompt": card.prompt,
        "fields": list(card.fields),
        "deck": card.deck,
        "tags": list(card.tags),
        "subject": card.subject,
        "media": [[m.path.relative_to(root).as_posix(), m.name] for m in card.media],
        "hashes": [card.content_hash, card.answer_hash, card.excerpt],
    }


def vault_rel(rel: object) -> str:
    """A vault-relative path read back from `.note2anki/`; one that points elsewhere (a tampered cache in a
    shared vault) raises ValueError, so the entry is not used and a build never reads outside the vault."""
    text = str(rel)
    path = PurePosixPath(text)
    if not text or path.is_absolute() or ".." in path.parts or "\\" in text or ":" in text[:2]:
        raise ValueError(f"cache entry names a file outside the vault: {text!r}")
    return text


def _result(data: dict[str, Any], root: Path) -> NoteResult:
    cards = []
    shared: dict[str, str] = {}  # the note's cards repeat subject, textbook, title, deck: one copy each
    for c in data["cards"]:
        content, answer, excerpt = c["hashes"]
        cards.append(
            RenderedCard(
                kind=CardKind(c["kind"]),
                source=shared.setdefault(str(c["source"]), str(c["source"])),
                line=c["line"],
                prompt=str(c["prompt"]),
                fields=tuple(shared.setdefault(str(f), str(f)) for f in c["fields"]),
                deck=shared.setdefault(str(c["deck"]), str(c["deck"])),
                tags=tuple(shared.setdefault(str(t), str(t)) for t in c["tags"]),
                subject=c["subject"],
                media=tuple(
                    MediaFile(path=root / vault_rel(rel), name=str(name)) for rel, name in c["media"]
                ),
                content_hash=str(content),
                answer_hash=str(answer),
                excerpt=str(excerpt),
            )
        )
    diagnostics = tuple(
        Diagnostic(str(p), line, str(code), Severity(sev), str(msg))
        for p, line, code, sev, msg in data["diagnostics"]
    )
    media = tuple(MediaDep(str(t), str(r), str(s)) for t, r, s in data["media"])
    return NoteResult(tuple(cards), diagnostics, bool(data["readable"]), media, cached=True)
