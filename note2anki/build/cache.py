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
import sqlite3
from collections.abc import Iterable
from dataclasses import fields
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from note2anki._version import __version__
from note2anki.build.private import CACHE_DIR, private_dir
from note2anki.config import Config
from note2anki.media import MediaIndex
from note2anki.model import Diagnostic, MediaDep, NoteResult, RenderedCard, Vault

#: the format of cache entries and of the last build's record; raise it whenever either changes (readers
#: of another format ignore the file)
FORMAT = 5
_LIBRARIES = ("mistune", "nh3", "pygments", "pyyaml", "python-frontmatter", "genanki")


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
    h = hashlib.sha256(f"{FORMAT}:{__version__}".encode())
    package = Path(__file__).resolve().parent.parent
    for path in [*sorted(package.rglob("*.py")), package / "card.css"]:
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    for name in _LIBRARIES:
        try:
            h.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            h.update(name.encode())
    return h.hexdigest()


#: settings that decide which notes are read or where the deck goes, not what a note's cards are: changing
#: them never throws the cache away
_NOT_CARD_SETTINGS = frozenset({"include", "exclude", "vault", "output", "read_templates", "ignore"})


def card_settings(config: Config) -> str:
    """The settings that shape a note's cards and diagnostics, as text."""
    values = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in _NOT_CARD_SETTINGS}
    return repr(sorted(values.items()))


def fingerprint(config: Config, vault: Vault) -> str:
    parts = (_tool_fingerprint(), card_settings(config), str(vault.root), vault.name, repr(vault.settings))
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


def encode_entry(key: str, result: NoteResult, root: Path) -> bytes:
    """A note's cache entry, as stored."""
    data = {"format": FORMAT, "key": key, **_data(result, root)}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _data(result: NoteResult, root: Path) -> dict[str, Any]:
    return {
        "readable": result.readable,
        "cards": [c.to_json(root) for c in result.cards],
        "diagnostics": [d.to_json() for d in result.diagnostics],
        "media": [m.to_json() for m in result.media],
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
    shared: dict[str, str] = {}  # the note's cards repeat subject, textbook, title, deck: one copy each
    cards = tuple(RenderedCard.from_json(c, root, shared, vault_rel) for c in data["cards"])
    diagnostics = tuple(Diagnostic.from_json(d) for d in data["diagnostics"])
    media = tuple(MediaDep.from_json(m) for m in data["media"])
    return NoteResult(cards, diagnostics, bool(data["readable"]), media, cached=True)


def fresh(deps: Iterable[MediaDep], note_rel: str, vault: Vault, index: MediaIndex) -> bool:
    """Every image lookup still finds the same file, unchanged (by its stamp, else by its content)."""
    for dep in deps:
        rel = index.find(dep.target, note_rel) or ""
        if rel != dep.rel:
            return False
        if rel and stamp(vault.file(rel)) != dep.stamp:
            found = index.media(rel) if dep.name else None
            if found is None or found.name != dep.name:
                return False
    return True
