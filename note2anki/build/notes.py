"""Reading a vault's notes fast: from `.note2anki/cache` when nothing they depend on changed, else in a
pool of processes; and recognising a build whose inputs and outputs are exactly as the last build left them.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from note2anki.build.cache import NoteCache, encode_entry, fresh, note_key, stamp, stat_mark
from note2anki.config import Config
from note2anki.extract import extract
from note2anki.media import MediaIndex
from note2anki.model import Diagnostic, MediaDep, NoteResult, Severity, SourceFile, Vault
from note2anki.parse import parse
from note2anki.reading import read_note
from note2anki.render import render

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


#: what the last build knew of a note: its cache key and stamp, or None
Known = Callable[[str], "tuple[str, str] | None"]


def read_sources(vault: Vault, config: Config, store: NoteCache | None, last: Known | None = None) -> Sources:
    """Keys of every note. A note whose size and modification time are those the last build recorded for
    it (`last`) keeps that build's key without being read again; the others are read and hashed. With
    neither a last build nor a cache to look keys up in (a first build), no note is read here: each is
    read once, where it is processed, and its key taken then."""
    fp = store.fingerprint if store is not None else ""
    if last is None and (store is None or not store.exists()):
        return Sources([""] * len(vault.notes), [""] * len(vault.notes))
    keys, stats = [], []
    for s in vault.notes:
        known = last(s.rel) if last is not None and fp else None
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
        return NoteResult((), tuple(diagnostics), readable=False)
    found, problems = extract(note, config)
    diagnostics.extend(problems)
    cards = []
    lookups: list[tuple[str, str]] = []
    for card in found:
        rendered, problems = render(card, vault, config, index, lookups)
        diagnostics.extend(problems)
        cards.append(rendered)
    deps = tuple(_dep(target, rel, vault, index) for target, rel in dict.fromkeys(lookups))
    # the note's own `note2anki-ignore` (the settings' `ignore` applies to the whole run, in pipeline.run)
    return NoteResult(
        tuple(cards), tuple(unignored(diagnostics, note.meta.ignore)), readable=True, media=deps
    )


def _dep(target: str, rel: str, vault: Vault, index: MediaIndex) -> MediaDep:
    found = index.media(rel) if rel else None
    return MediaDep(target, rel, stamp(vault.file(rel)) if rel else "", found.name if found else "")


def unignored(diagnostics: Iterable[Diagnostic], codes: Iterable[str]) -> list[Diagnostic]:
    """The diagnostics whose code is not ignored; errors are always kept (the note is not in the deck)."""
    skip = frozenset(codes)
    return [d for d in diagnostics if d.severity is Severity.ERROR or d.code not in skip]


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
            for _ in _collect(todo, computed, results, sources, store):
                done += 1
                if progress is not None:
                    progress(done, total)
        except BaseException:  # an error, Ctrl-C or SIGTERM: the workers end now, not after their queue
            _stop(pool)
            raise
        pool.shutdown()
    else:
        computed = (_compute(s, vault, config, index, fp, keep) for s in work)
        for _ in _collect(todo, computed, results, sources, store):
            done += 1
            if progress is not None:
                progress(done, total)
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
    sources: Sources,
    store: NoteCache | None,
) -> Iterator[int]:
    """Put each computed note in its place (and in the cache); yields after each one (for progress)."""
    for i, (key, mark, result, entry) in zip(todo, computed, strict=True):
        results[i] = result
        sources.keys[i] = key  # of the bytes actually read, should the note have changed meanwhile
        sources.stats[i] = mark
        if store is not None and key:
            store.put(key, entry)
        yield i
