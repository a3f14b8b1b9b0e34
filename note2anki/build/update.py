"""An incremental build: only the notes that changed since the last build are redone.

Their cards are read, their lines of the state file replaced (the rest of it is never parsed), and their rows
of the collection kept from the last build edited; the deck is then the one a whole build would write, byte
for byte. The state file is written only once the deck is, so a deck that fails leaves both as they were.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

from note2anki import identity, state
from note2anki.build import removed as removed_list
from note2anki.build.job import Job, from_totals, frozen_message, remember_removed, stage_state
from note2anki.build.lastbuild import LastBuild, Manifest, bytes_sha, note_records
from note2anki.build.notes import Sources
from note2anki.errors import FrozenStateError, StateError
from note2anki.export import build_time, card_ids, finish_apkg, update_collection
from note2anki.model import BuildResult, CardKind, MediaFile

#: an incremental build redoes at most this many changed or removed notes; more, and the whole deck is
#: written again (as fast, and simpler)
INCREMENTAL_MAX = 500


def update(
    job: Job,
    sources: Sources,
    last: LastBuild,
    manifest: Manifest,
    changes: tuple[list[int], list[str]],
    old_bytes: bytes,
) -> BuildResult:
    """Redo the notes at indexes `changes[0]` (vault order) and drop the notes gone (`changes[1]`), given
    the last build's `manifest` and the state file's bytes as it left them. Raises FallBack when this
    cannot be done (the caller builds the whole deck)."""
    vault = job.vault
    changed, removed = changes
    part = dataclasses.replace(vault, notes=tuple(vault.notes[i] for i in changed))
    part_sources = Sources([sources.keys[i] for i in changed], [sources.stats[i] for i in changed])
    results = job.read(part, part_sources)
    cards = [c for r in results for c in r.cards]
    paths = {s.rel for s in part.notes} | set(removed)
    partial = state.read_partial(old_bytes, paths)
    unreadable = [s.rel for s, r in zip(part.notes, results, strict=True) if not r.readable]
    notes, entries, report = identity.assign(
        cards,
        partial.entries,
        int(build_time()),
        keep_paths=unreadable,
        taken_guids=partial.guids,
        taken_nids=partial.nids,
        revivable=removed_list.load(vault.root),
    )
    # the new state file; unless it is to be checked first (--frozen), made while the deck is written
    data = state.splice_state(partial, entries) if job.frozen else None
    if data is not None and data != old_bytes:
        raise FrozenStateError(frozen_message(job.state_path, report))
    totals = manifest.totals
    for rel in paths:
        if rel in manifest.raw:
            totals.add(rel, manifest.record(rel), sign=-1)
    fresh_records = note_records(part, part_sources, results, notes, range(len(part.notes)))
    for rel, record in fresh_records.items():
        totals.add(rel, record)
    gone = {e.nid for e in partial.entries}
    nids = (partial.nids - gone) | {n.nid for n in notes}
    last.forget()  # until this build has finished
    update_collection(
        last.collection,
        remove=sorted(gone),
        add=notes,
        pairs={(deck, CardKind(kind)) for deck, kind in totals.pairs},
        ids=card_ids(nids, totals.multi),
    )
    media = [MediaFile(vault.root / rel, name) for rel, name in totals.media]
    # Rebuilding and zipping the collection (SQLite and zlib release the GIL) overlaps the bookkeeping below:
    # the state file and the last build's record are written meanwhile, and put in place once the deck is.
    with ThreadPoolExecutor(1) as pool:
        deck = pool.submit(finish_apkg, last.collection, media, job.out, job.work)
        if data is None:
            data = state.splice_state(partial, entries)
        raw = {
            s.rel: fresh_records[s.rel].to_json() if s.rel in fresh_records else manifest.raw[s.rel]
            for s in vault.notes
        }
        if job.store is not None:
            job.store.used.update(str(r["key"]) for r in raw.values())
            job.store.prune()
        pending = last.prepare(raw, totals, bytes_sha(data), kept=True)
        try:
            with stage_state(job.state_path, data, old_bytes, [job.out]) as commit:
                deck.result()  # its error, if any, is this build's
                changed_state = commit()
        except StateError:
            deck.result()  # a deck that failed is the error to report
            raise
    pending.save([job.out])
    return dataclasses.replace(
        from_totals(vault, totals, [job.out]),
        report=report,
        state_changed=changed_state,
        redone=tuple(cards),
        removed=remember_removed(vault, report),
        fresh=frozenset(s.rel for s in part.notes),
    )
