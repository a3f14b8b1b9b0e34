"""Reading a vault's notes fast: from `.note2anki/cache` when nothing they depend on changed, else in a
pool of processes; and recognising a build whose inputs and outputs are exactly as the last build left them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from note2anki.atomic import atomic_write
from note2anki.cache import CACHE_DIR, FORMAT, MediaDep, NoteCache, NoteResult, stamp
from note2anki.config import Config
from note2anki.extract import extract
from note2anki.model import CardKind, Diagnostic, MediaFile, Severity, SourceFile, Vault
from note2anki.parse import parse
from note2anki.render import MediaIndex, render

#: below this many notes to read, a process pool costs more than it saves
POOL_MIN_NOTES = 200


@dataclass(frozen=True)
class Sources:
    """Every note's bytes (None when unreadable) and cache key ("" without a cache), in vault order."""

    data: list[bytes | None]
    keys: list[str]


def read_sources(vault: Vault, store: NoteCache | None) -> Sources:
    data: list[bytes | None] = []
    keys: list[str] = []
    for source in vault.notes:
        try:
            raw: bytes | None = source.path.read_bytes()
        except OSError:
            raw = None  # parse reports it
        data.append(raw)
        keys.append(store.key(source.rel, raw) if store is not None and raw is not None else "")
    return Sources(data, keys)


def process_note(
    source: SourceFile, data: bytes | None, vault: Vault, config: Config, index: MediaIndex
) -> NoteResult:
    """parse -> extract -> render for one note: its cards, its problems, and the images it looked up."""
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
    deps = tuple(
        MediaDep(target, rel, stamp(vault.root / rel) if rel else "")
        for target, rel in dict.fromkeys(lookups)
    )
    return NoteResult(tuple(cards), tuple(diagnostics), readable=True, media=deps)


def fresh(deps: Iterable[MediaDep], note_rel: str, vault: Vault, index: MediaIndex) -> bool:
    """Every image lookup still finds the same file, unchanged."""
    for dep in deps:
        rel = index.find(dep.target, note_rel) or ""
        if rel != dep.rel or (rel and stamp(vault.root / rel) != dep.stamp):
            return False
    return True


_WORKER: tuple[Vault, Config, MediaIndex] | None = None


def _init_worker(vault: Vault, config: Config) -> None:
    global _WORKER
    _WORKER = (vault, config, MediaIndex(vault))


def _work(item: tuple[SourceFile, bytes | None]) -> NoteResult:
    assert _WORKER is not None
    vault, config, index = _WORKER
    return process_note(item[0], item[1], vault, config, index)


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
    work = [(vault.notes[i], sources.data[i]) for i in todo]
    workers = min(jobs or default_jobs(), len(todo))
    computed: Iterable[NoteResult]
    if workers > 1 and len(todo) >= POOL_MIN_NOTES:
        # fork: workers start with everything imported; results come back in submission order
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
        with ProcessPoolExecutor(
            workers, context, initializer=_init_worker, initargs=(vault, config)
        ) as pool:
            computed = pool.map(_work, work, chunksize=max(1, min(32, len(work) // (workers * 8))))
            done = _collect(todo, computed, results, store, sources, vault, progress, done)
    else:
        computed = (process_note(s, d, vault, config, index) for s, d in work)
        done = _collect(todo, computed, results, store, sources, vault, progress, done)
    return [r for r in results if r is not None]


def _collect(
    todo: list[int],
    computed: Iterable[NoteResult],
    results: list[NoteResult | None],
    store: NoteCache | None,
    sources: Sources,
    vault: Vault,
    progress: Callable[[int, int], None] | None,
    done: int,
) -> int:
    for i, result in zip(todo, computed, strict=True):
        results[i] = result
        if store is not None and sources.keys[i]:
            store.put(sources.keys[i], result, vault.root)
        done += 1
        if progress is not None:
            progress(done, len(results))
    return done


# --- the last build ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What a build reported, kept so that a build with nothing to do can report it again."""

    counts: dict[str, int]
    decks: tuple[str, ...]
    media: tuple[MediaFile, ...]
    diagnostics: tuple[Diagnostic, ...]
    outputs: tuple[Path, ...]


def _sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


class LastBuild:
    """`.note2anki/cache/build.json`: the inputs (note keys, images, state file) and outputs (deck files and
    their hashes) of the last build. When all are unchanged, the deck on disk is already what this build
    would write, byte for byte, and the build has nothing to do."""

    def __init__(self, vault: Vault, fingerprint: str, options: dict[str, Any]) -> None:
        self.path = vault.root / CACHE_DIR / "build.json"
        self.vault = vault
        self.header = {"format": FORMAT, "fingerprint": fingerprint, "options": options}

    def unchanged(self, sources: Sources, state_file: Path, index: MediaIndex) -> Summary | None:
        try:
            data = json.loads(self.path.read_bytes())
            if {k: data.get(k) for k in self.header} != self.header:
                return None
            if data["notes"] != [[s.rel, k] for s, k in zip(self.vault.notes, sources.keys, strict=True)]:
                return None
            if data["state"] != _sha(state_file):
                return None
            if any(not Path(p).is_file() or _sha(Path(p)) != h for p, h in data["outputs"]):
                return None
            for note_rel, target, rel, mark in data["media"]:
                if not fresh([MediaDep(target, rel, mark)], note_rel, self.vault, index):
                    return None
            s = data["summary"]
            return Summary(
                counts={str(k): int(v) for k, v in s["counts"].items()},
                decks=tuple(s["decks"]),
                media=tuple(MediaFile(self.vault.root / rel, name) for rel, name in s["media"]),
                diagnostics=tuple(
                    Diagnostic(p, line, code, Severity(sev), msg)
                    for p, line, code, sev, msg in s["diagnostics"]
                ),
                outputs=tuple(Path(p) for p, _ in data["outputs"]),
            )
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def record(self, sources: Sources, results: list[NoteResult], state_file: Path, summary: Summary) -> None:
        if any(not k for k in sources.keys):
            return  # an unreadable note: never skip the next build
        data = {
            **self.header,
            "notes": [[s.rel, k] for s, k in zip(self.vault.notes, sources.keys, strict=True)],
            "media": [
                [s.rel, m.target, m.rel, m.stamp]
                for s, r in zip(self.vault.notes, results, strict=True)
                for m in r.media
            ],
            "state": _sha(state_file),
            "outputs": [[str(p), _sha(p)] for p in summary.outputs],
            "summary": {
                "counts": summary.counts,
                "decks": list(summary.decks),
                "media": [[m.path.relative_to(self.vault.root).as_posix(), m.name] for m in summary.media],
                "diagnostics": [
                    [d.path, d.line, d.code, d.severity.value, d.message] for d in summary.diagnostics
                ],
            },
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(self.path) as f:
                f.write(json.dumps(data, ensure_ascii=False).encode())
        except OSError:
            pass

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def kind_counts(counts: dict[str, int]) -> dict[CardKind, int]:
    return {CardKind(k): v for k, v in counts.items()}
