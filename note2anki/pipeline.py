"""The pipeline: discover -> parse -> extract -> render -> [identity -> export].

`build` runs all of it; `check` and `list` stop before identity and export, so they never write anything
(they read `.note2anki/cache` but never write it). Reading notes (cache, process pool) is incremental.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from note2anki import removed as removed_list
from note2anki import state
from note2anki.buildlock import build_lock
from note2anki.cache import PRIVATE_DIR, NoteCache, NoteResult, private_dir, private_ok
from note2anki.config import Config
from note2anki.discover import discover
from note2anki.export import (
    MultiCard,
    StaleCollection,
    build_time,
    card_ids,
    check_output,
    finish_apkg,
    remove_stale_work,
    update_collection,
    write_apkg,
)
from note2anki.incremental import (
    LastBuild,
    Manifest,
    Sources,
    Totals,
    bytes_sha,
    changes,
    note_records,
    read_notes,
    read_sources,
    unignored,
)
from note2anki.model import (
    BuildResult,
    CardKind,
    DeckNote,
    Diagnostic,
    MediaFile,
    RemovedCard,
    RenderedCard,
    Severity,
    Vault,
)
from note2anki.render import MediaIndex


class FrozenStateError(Exception):
    """`--frozen` was given and the build would change the card state file."""


def run(
    root: Path,
    config: Config,
    out: Path | None = None,
    *,
    frozen: bool = False,
    split: str | None = None,
    only: Collection[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
    cache: bool = True,
) -> BuildResult:
    """Read the vault at `root`; with `out`, also give cards their identity from the vault's state file,
    write the deck to `out` (one per subject with `split="subject"`) and update the state file.

    Problems in notes come back as diagnostics; a bad note never stops the others. `only` limits reading to
    those vault-relative note paths (pre-commit's staged files); `progress(done, total)` is called per note.
    Notes unchanged since the last build come from `.note2anki/cache` (written by builds only; `cache=False`
    ignores it); the others are read by `jobs` processes (default: one per CPU, for big vaults). When few
    notes changed since the last build, only their cards are redone; the result is the same either way.
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
    problems = unignored(problems, config.ignore)
    if out is not None:
        check_output(out, vault.root)  # before anything is written, the lock included
    with build_lock(vault.root) if out is not None else contextlib.nullcontext():
        result = _run(vault, config, out, frozen, split, progress, jobs, cache)
    if not problems or only is not None:
        return result
    diagnostics = sorted({*problems, *result.diagnostics}, key=_order)
    fresh = None if result.fresh is None else result.fresh | {d.path for d in problems}
    return dataclasses.replace(result, diagnostics=tuple(diagnostics), fresh=fresh)


def _run(
    vault: Vault,
    config: Config,
    out: Path | None,
    frozen: bool,
    split: str | None,
    progress: Callable[[int, int], None] | None,
    jobs: int | None,
    cache: bool,
) -> BuildResult:
    if out is not None:
        work = _work_root(vault.root)
    store = NoteCache(vault, config, writable=out is not None) if cache else None
    if out is None:
        sources = read_sources(vault, config, store)
        results = read_notes(vault, config, sources, store, progress=progress, jobs=jobs)
        if store is not None:
            store.close()
        result = _result(vault, results)
        merged = _merge_problems(vault.root / state.STATE_FILE)
        return dataclasses.replace(result, diagnostics=(*merged, *result.diagnostics)) if merged else result

    state_path = vault.root / state.STATE_FILE
    last = LastBuild(vault, store.fingerprint, {"out": str(out.resolve()), "split": split}) if store else None
    old_bytes = state.read_bytes(state_path)
    manifest = last.load(old_bytes) if last is not None else None
    sources = read_sources(vault, config, store, manifest)
    if last is not None and manifest is not None:
        index = MediaIndex(vault)
        changed, removed = changes(manifest, vault, sources, index)
        if not changed and not removed:  # the deck and state file on disk are what this build would write
            result = _from_totals(vault, manifest.totals, (), (Path(p) for p, _ in manifest.outputs))
            return dataclasses.replace(result, removed=tuple(removed_list.load(vault.root)))
        if split is None and len(changed) + len(removed) <= INCREMENTAL_MAX and last.collection_ok(manifest):
            try:
                return _incremental(
                    vault,
                    config,
                    out,
                    frozen,
                    sources,
                    store,
                    last,
                    manifest,
                    changed,
                    removed,
                    old_bytes,
                    progress,
                    jobs,
                )
            except (StaleCollection, state.NotSorted):
                pass  # the kept collection is damaged, or the state file not as written: write it all

    # A big vault's state file and its entries are hundreds of megabytes in memory: they are read only once
    # the notes are, and each is let go as soon as it has been used.
    del old_bytes
    results = read_notes(vault, config, sources, store, progress=progress, jobs=jobs)
    if store is not None:
        store.prune()
    result = _result(vault, results)
    unreadable = [s.rel for s, r in zip(vault.notes, results, strict=True) if not r.readable]
    old_bytes = state.read_bytes(state_path)
    old, fixes = state.repair(state.parse_state(old_bytes, state_path), state_path)
    # a checkout with `core.autocrlf` has CRLF line ends: the same state
    old_digest = bytes_sha(old_bytes.replace(b"\r\n", b"\n") or state.format_state([]))
    as_written = bytes_sha(old_bytes) if old_bytes else ""
    del old_bytes
    state.check_belongs(old, result.cards, state_path)
    notes, entries, report = state.assign(result.cards, old, int(build_time()), keep_paths=unreadable)
    del old
    data = state.format_state(entries)
    del entries
    digest = bytes_sha(data)
    if frozen and digest != old_digest:
        raise FrozenStateError(_frozen_message(state_path, report))
    if last is not None:
        last.forget()  # until this build has finished
    kept = last is not None and split is None
    outputs = []
    decks = _decks(notes, out, split, vault.name)
    for path, _ in decks:
        check_output(path, vault.root)
    for path, group in decks:
        write_apkg(group, path, keep=last.collection if kept and last is not None else None, work_root=work)
        outputs.append(path)
    # the file on disk is given as `data` when it holds exactly that, so that it is neither read nor written
    changed_state = _write_state(state_path, data, data if as_written == digest else b"", outputs)
    if last is not None:
        records = note_records(vault, sources, results, notes, range(len(vault.notes)))
        raw = {rel: r.to_json() for rel, r in records.items()}
        last.save(raw, Totals.of(records), data, outputs, kept=kept)
    pending = _remember_removed(vault, report)
    return dataclasses.replace(
        result,
        report=report,
        state_changed=changed_state,
        outputs=tuple(outputs),
        removed=pending,
        diagnostics=(*(_repaired(fix) for fix in fixes), *result.diagnostics),
        fresh=result.fresh | {state.STATE_FILE} if result.fresh is not None else None,
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
    except state.StateError as exc:
        return [Diagnostic(state.STATE_FILE, None, "N2A015", Severity.ERROR, str(exc))]
    return [
        dataclasses.replace(d, message=d.message.replace("repaired after a merge", "the next build repairs"))
        for d in map(_repaired, fixes)
    ]


def _remember_removed(vault: Vault, report: state.Report) -> tuple[RemovedCard, ...]:
    """The vault's list of removed cards after this build (removed.py)."""
    known = removed_list.load(vault.root)
    gone = [RemovedCard(e.nid, e.guid, e.path, e.question) for e in report.removed]
    pending = removed_list.update(known, gone, (e.guid for e in report.added))
    if pending != known:
        removed_list.save(vault.root, pending)
    return tuple(pending)


#: an incremental build redoes at most this many changed or removed notes; more, and the whole deck is
#: written again (as fast, and simpler)
INCREMENTAL_MAX = 500


def _incremental(
    vault: Vault,
    config: Config,
    out: Path,
    frozen: bool,
    sources: Sources,
    store: NoteCache | None,
    last: LastBuild,
    manifest: Manifest,
    changed: list[int],
    removed: list[str],
    old_bytes: bytes,
    progress: Callable[[int, int], None] | None,
    jobs: int | None,
) -> BuildResult:
    """Only the changed notes: their cards, their lines of the state file, their rows of the collection."""
    state_path = vault.root / state.STATE_FILE
    part = dataclasses.replace(vault, notes=tuple(vault.notes[i] for i in changed))
    part_sources = Sources([sources.keys[i] for i in changed], [sources.stats[i] for i in changed])
    results = read_notes(part, config, part_sources, store, progress=progress, jobs=jobs)
    cards = [c for r in results for c in r.cards]
    paths = {s.rel for s in part.notes} | set(removed)
    partial = state.read_partial(old_bytes, paths)
    unreadable = [s.rel for s, r in zip(part.notes, results, strict=True) if not r.readable]
    notes, entries, report = state.assign(
        cards,
        partial.entries,
        int(build_time()),
        keep_paths=unreadable,
        taken_guids=partial.guids,
        taken_nids=partial.nids,
    )
    data = state.splice_state(partial, entries)
    if frozen and data != old_bytes:
        raise FrozenStateError(_frozen_message(state_path, report))
    totals = manifest.totals
    for rel in paths:
        if rel in manifest.raw:
            totals.add(rel, manifest.record(rel), sign=-1)
    fresh_records = note_records(part, part_sources, results, notes, range(len(part.notes)))
    for rel, record in fresh_records.items():
        totals.add(rel, record)
    gone = {e.nid for e in partial.entries}
    nids = (partial.nids - gone) | {n.nid for n in notes}
    multi = [MultiCard(d, rel, p, nid, n) for d, rel, p, nid, n in totals.multi]
    last.forget()  # until this build has finished
    update_collection(
        last.collection,
        remove=sorted(gone),
        add=notes,
        pairs={(deck, CardKind(kind)) for deck, kind in totals.pairs},
        ids=card_ids(nids, multi),
    )
    media = [MediaFile(vault.root / rel, name) for rel, name in totals.media]
    # Rebuilding and zipping the collection (SQLite and zlib release the GIL) overlaps the bookkeeping below.
    # The state file is written only once the deck is: a deck that fails leaves both as they were.
    with ThreadPoolExecutor(1) as pool:
        deck = pool.submit(finish_apkg, last.collection, media, out, _work_root(vault.root))
        raw = {
            s.rel: fresh_records[s.rel].to_json() if s.rel in fresh_records else manifest.raw[s.rel]
            for s in vault.notes
        }
        if store is not None:
            store.used.update(str(r[0]) for r in raw.values())
            store.prune()
        deck.result()  # its error, if any, is this build's
    changed_state = _write_state(state_path, data, old_bytes, [out])
    last.save(raw, totals, data, [out], kept=True)
    result = _from_totals(vault, totals, tuple(cards), [out])
    return dataclasses.replace(
        result,
        removed=_remember_removed(vault, report),
        report=report,
        state_changed=changed_state,
        up_to_date=False,
        fresh=frozenset(s.rel for s in part.notes),
    )


def _work_root(root: Path) -> Path | None:
    """`.note2anki/tmp` for the deck's temporary files, emptied of what killed builds left there (the caller
    holds the build lock); None when the vault cannot hold it (the system's temporary folder is used)."""
    try:
        folder = private_dir(root, "tmp")
    except OSError:
        return None
    remove_stale_work(folder)
    return folder


def _write_state(path: Path, data: bytes, current: bytes, decks: Sequence[Path]) -> bool:
    """The state file, written after the decks; when it cannot be, the message says the decks were."""
    try:
        return state.write_state(path, data, current)
    except state.StateError as exc:
        written = ", ".join(str(d) for d in decks)
        raise state.StateError(
            f"{exc}. The deck was written ({written}), but until {state.STATE_FILE} can be saved the next "
            "build cannot tell which cards are new: make the vault writable and build again"
        ) from exc


def _result(vault: Vault, results: list[NoteResult]) -> BuildResult:
    cards = [c for r in results for c in r.cards]
    return BuildResult(
        fresh=frozenset(s.rel for s, r in zip(vault.notes, results, strict=True) if not r.cached),
        notes_read=len(vault.notes),
        cards=tuple(cards),
        diagnostics=tuple(sorted({d for r in results for d in r.diagnostics}, key=_order)),
        media=tuple(sorted({m.name: m for c in cards for m in c.media}.values(), key=lambda m: m.name)),
        decks=tuple(sorted({c.deck for c in cards})),
    )


def _from_totals(
    vault: Vault, totals: Totals, cards: tuple[RenderedCard, ...], outputs: Iterable[Path]
) -> BuildResult:
    """A build result told by the notes' totals: `cards` holds only the cards that were redone."""
    counts: dict[CardKind, int] = dict.fromkeys(CardKind, 0)
    for kind, n in totals.counts.items():
        counts[CardKind(kind)] += n
    media = {name: MediaFile(vault.root / rel, name) for rel, name in totals.media}
    return BuildResult(
        notes_read=len(vault.notes),
        cards=cards,
        diagnostics=tuple(sorted(set(totals.diagnostics), key=_order)),
        media=tuple(media[name] for name in sorted(media)),
        decks=tuple(sorted({deck for deck, _ in totals.pairs})),
        report=state.Report(),
        outputs=tuple(outputs),
        up_to_date=True,
        counts=counts,
        fresh=frozenset(),
    )


def _frozen_message(state_path: Path, report: state.Report) -> str:
    return (
        f"{state_path} would change ({len(report.added)} added, {len(report.changed)} changed, "
        f"{len(report.removed)} removed); run `note2anki build` locally and commit {state.STATE_FILE}"
    )


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


def _order(d: Diagnostic) -> tuple[str, int, str, str]:
    return (d.path, d.line or 0, d.code, d.message)
