"""The pipeline: discover -> parse -> extract -> render -> [identity -> export].

`run(root, config)` is `check` and `list`: it reads every note and returns a `Scan` (all cards, all problems)
and writes nothing. `run(root, config, out)` is `build`: it returns a `BuildResult` and takes one of three
ways to the same deck bytes:

- up to date: nothing changed since the last build, whose deck and state file are still on disk;
- incremental (`build/update.py`): few notes changed; only theirs are redone;
- whole: every note is read (from the cache when unchanged), identity assigned, the deck written.

Reading notes (cache, process pool) is `build/notes.py`; the last build's record `build/lastbuild.py`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import overload

from note2anki import identity, state
from note2anki.build import removed as removed_list
from note2anki.build.cache import NoteCache
from note2anki.build.job import Job, from_totals, frozen_message, order, remember_removed, write_state
from note2anki.build.lastbuild import LastBuild, Totals, bytes_sha, changes, note_records
from note2anki.build.lock import build_lock
from note2anki.build.notes import Sources, read_notes, read_sources
from note2anki.build.private import PRIVATE_DIR, private_dir, private_ok
from note2anki.build.update import INCREMENTAL_MAX, update
from note2anki.config import Config
from note2anki.discover import discover
from note2anki.errors import FallBack, FrozenStateError, StateError
from note2anki.export import build_time, check_output, remove_stale_work, write_apkg
from note2anki.media import MediaIndex
from note2anki.model import BuildResult, DeckNote, Diagnostic, Scan, Severity, Vault

Progress = Callable[[int, int], None]


@overload
def run(
    root: Path,
    config: Config,
    out: None = None,
    *,
    only: Collection[str] | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    cache: bool = True,
) -> Scan: ...


@overload
def run(
    root: Path,
    config: Config,
    out: Path,
    *,
    frozen: bool = False,
    split: str | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    cache: bool = True,
    record: bool = True,
) -> BuildResult: ...


def run(
    root: Path,
    config: Config,
    out: Path | None = None,
    *,
    frozen: bool = False,
    split: str | None = None,
    only: Collection[str] | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    cache: bool = True,
    record: bool = True,
) -> Scan | BuildResult:
    """Without `out`: read the vault at `root` and return what it holds (a `Scan`; nothing is written).
    With `out`: also give cards their identity from the vault's state file, write the deck to `out` (one per
    subject with `split="subject"`) and update the state file (a `BuildResult`).

    Problems in notes come back as diagnostics; a bad note never stops the others. `only` limits reading to
    those vault-relative note paths (pre-commit's staged files); `progress(done, total)` is called per note.
    Notes unchanged since the last build come from `.note2anki/cache` (written by builds only; `cache=False`
    ignores it); the others are read by `jobs` processes (default: one per CPU, for big vaults). When few
    notes changed since the last build, only their cards are redone; the result is the same either way.
    `record=False` writes the deck and nothing else (the state file, cache and last build stay as they were).
    """
    vault = discover(root, config)
    if only is not None:
        vault = dataclasses.replace(vault, notes=tuple(n for n in vault.notes if n.rel in only))
    problems = list(vault.problems)
    if cache and not private_ok(vault.root):
        cache = False
        problems.append(
            Diagnostic(
                PRIVATE_DIR,
                None,
                "N2A013",
                Severity.WARNING,
                "this folder (or one in it) is a link (symlink), so note2anki does not use its cache, which "
                "would be read and written outside the vault; delete the link (builds are slower until then)",
            )
        )
    if out is None:
        scan = _scan(vault, config, cache, progress, jobs)
        kept = problems if only is None else []
        return dataclasses.replace(scan, diagnostics=_finding(config, kept, scan.diagnostics))
    check_output(out, vault.root)  # before anything is written, the build lock included
    with build_lock(vault.root):
        store = NoteCache(vault, config, writable=record) if cache else None
        job = Job(vault, config, out, frozen, split, progress, jobs, store, _work_root(vault.root), record)
        result = _build(job)
    fresh = None if result.fresh is None else result.fresh | {d.path for d in problems}
    return dataclasses.replace(
        result, diagnostics=_finding(config, problems, result.diagnostics), fresh=fresh
    )


def _finding(config: Config, *groups: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Every diagnostic once, in report order, less the warnings the settings' `ignore` names."""
    skip = frozenset(config.ignore)
    found = {d for group in groups for d in group if d.severity is Severity.ERROR or d.code not in skip}
    return tuple(sorted(found, key=order))


def _scan(vault: Vault, config: Config, cache: bool, progress: Progress | None, jobs: int | None) -> Scan:
    """`check` and `list`: every note read (unchanged ones from the cache, which is never written here)."""
    store = NoteCache(vault, config, writable=False) if cache else None
    sources = read_sources(vault, config, store)
    results = read_notes(vault, config, sources, store, progress=progress, jobs=jobs)
    if store is not None:
        store.close()
    cards = [c for r in results for c in r.cards]
    return Scan(
        notes_read=sum(r.readable for r in results),
        cards=tuple(cards),
        diagnostics=(
            *_merge_problems(vault.root / state.STATE_FILE),
            *(d for r in results for d in r.diagnostics),
        ),
        media=tuple(sorted({m.name: m for c in cards for m in c.media}.values(), key=lambda m: m.name)),
        decks=tuple(sorted({c.deck for c in cards})),
    )


def _build(job: Job) -> BuildResult:
    """The deck of `job`: up to date, incremental or whole (see the module's docstring)."""
    options = {"out": str(job.out.resolve()), "split": job.split}
    last = (
        LastBuild(job.vault, job.store.fingerprint, options) if job.store is not None and job.record else None
    )
    old_bytes = state.read_bytes(job.state_path)
    manifest = last.load(old_bytes) if last is not None else None
    sources = read_sources(job.vault, job.config, job.store, manifest.key_and_stat if manifest else None)
    if last is None or manifest is None:
        del old_bytes
        return _whole(job, sources, last)
    changed, removed = changes(manifest, job.vault, sources, MediaIndex(job.vault))
    if not changed and not removed:  # the deck and state file on disk are what this build would write
        outputs = [Path(p) for p, _ in manifest.outputs]
        return dataclasses.replace(
            from_totals(job.vault, manifest.totals, outputs),
            up_to_date=True,
            fresh=frozenset(),
            removed=tuple(removed_list.load(job.vault.root)),
        )
    if job.split is None and len(changed) + len(removed) <= INCREMENTAL_MAX and last.collection_ok(manifest):
        try:
            return update(job, sources, last, manifest, (changed, removed), old_bytes)
        except FallBack:
            pass  # the kept collection is damaged, or the state file not as written: write it all
    # A big vault's state file and its entries are hundreds of megabytes in memory: they are read only
    # once the notes are, and each is let go as soon as it has been used.
    del old_bytes
    return _whole(job, sources, last)


def _whole(job: Job, sources: Sources, last: LastBuild | None) -> BuildResult:
    """Every note (from the cache when unchanged), identity for every card, every deck written."""
    vault = job.vault
    results = job.read(vault, sources)
    if job.store is not None and job.record:
        job.store.prune()
    cards = [c for r in results for c in r.cards]
    unreadable = [s.rel for s, r in zip(vault.notes, results, strict=True) if not r.readable]
    old_bytes = state.read_bytes(job.state_path)
    known = {s: s for c in cards for s in (c.prompt, c.excerpt, c.content_hash, c.answer_hash)}
    old, fixes = state.repair(state.parse_state(old_bytes, job.state_path, known), job.state_path)
    del known
    # a checkout with `core.autocrlf` has CRLF line ends: the same state
    old_digest = bytes_sha(old_bytes.replace(b"\r\n", b"\n") or state.format_state([]))
    as_written = bytes_sha(old_bytes) if old_bytes else ""
    del old_bytes
    identity.check_belongs(old, cards, job.state_path)
    notes, entries, report = identity.assign(
        cards, old, int(build_time()), keep_paths=unreadable, revivable=removed_list.load(vault.root)
    )
    del old
    # The state file's bytes are made only once the deck is written: a big vault's are tens of megabytes.
    digest = state.state_digest(entries)
    if job.frozen and digest != old_digest:
        raise FrozenStateError(frozen_message(job.state_path, report))
    if last is not None:
        last.forget()  # until this build has finished
    kept = last is not None and job.split is None
    decks = _decks(notes, job.out, job.split, vault.name)
    for path, _ in decks[1:] if job.split is None else decks:
        check_output(path, vault.root)
    outputs = []
    for path, group in decks:
        keep = last.collection if kept and last is not None else None
        write_apkg(group, path, keep=keep, work_root=job.work)
        outputs.append(path)
    if as_written == digest or not job.record:  # the file on disk is already this build's state
        changed_state = digest != old_digest
    else:
        changed_state = write_state(job.state_path, state.format_state(entries), b"", outputs)
    del entries
    records = note_records(vault, sources, results, notes, range(len(vault.notes)))
    totals = Totals.of(records)
    if last is not None:
        last.save({rel: r.to_json() for rel, r in records.items()}, totals, digest, outputs, kept=kept)
    result = from_totals(vault, totals, outputs)
    return dataclasses.replace(
        result,
        report=report,
        state_changed=changed_state,
        redone=tuple(cards),
        removed=remember_removed(vault, report) if job.record else (),
        diagnostics=(*(_repaired(fix) for fix in fixes), *result.diagnostics),
        fresh=frozenset(
            {state.STATE_FILE, *(s.rel for s, r in zip(vault.notes, results, strict=True) if not r.cached)}
        ),
    )


def _repaired(fix: str) -> Diagnostic:
    return Diagnostic(
        state.STATE_FILE,
        None,
        "N2A014",
        Severity.WARNING,
        f"repaired after a merge: {fix}; commit the rewritten {state.STATE_FILE}",
    )


def _merge_problems(path: Path) -> list[Diagnostic]:
    """What `build` would repair in (or refuse of) a merged state file, for `check`: read only when a scan
    of its ids finds one repeated."""
    try:
        data = state.read_bytes(path)
        if not state.duplicates(data):
            return []
        _, fixes = state.repair(state.parse_state(data, path), path)
    except StateError as exc:
        return [Diagnostic(state.STATE_FILE, None, "N2A015", Severity.ERROR, str(exc))]
    return [
        dataclasses.replace(d, message=d.message.replace("repaired after a merge", "the next build repairs"))
        for d in map(_repaired, fixes)
    ]


def _work_root(root: Path) -> Path | None:
    """`.note2anki/tmp` for the deck's temporary files, emptied of what killed builds left there (the caller
    holds the build lock); None when the vault cannot hold it (the system's temporary folder is used)."""
    try:
        folder = private_dir(root, "tmp")
    except OSError:
        return None
    remove_stale_work(folder)
    return folder


def _decks(
    notes: list[DeckNote], out: Path, split: str | None, fallback: str
) -> list[tuple[Path, list[DeckNote]]]:
    """One deck for all notes, or with `split="subject"` one per subject, named OUT-<subject>.apkg."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if split is None:
        return [(out, notes)]
    groups: dict[str, list[DeckNote]] = {}
    for n in notes:
        groups.setdefault(n.card.subject or fallback, []).append(n)
    return [
        (out.with_name(f"{out.stem}-{part}{out.suffix or '.apkg'}"), group)
        for part, group in _file_parts(sorted(groups.items()))
    ]


def _file_parts(groups: list[tuple[str, list[DeckNote]]]) -> list[tuple[str, list[DeckNote]]]:
    """Each subject as a safe part of a file name (at most 60 characters); subjects that come out the same
    (`A B` and `A_B`) get `-2`, `-3`, ... so that no deck overwrites another."""
    seen: dict[str, int] = {}
    out = []
    for subject, group in groups:
        part = re.sub(r'[\\/:*?"<>|\s\x00-\x1f]+', "_", subject)[:60].strip("._-") or "deck"
        key = part.casefold()
        seen[key] = seen.get(key, 0) + 1
        out.append((part if seen[key] == 1 else f"{part}-{seen[key]}", group))
    return out
