"""Card identity kept outside the notes, in the state file (state.py).

Between render and export, every card is given its Anki identity (GUID and note id) and its `mod` time:

- a card keeps its GUID when its answer changes, when its question is reworded (matched to the vanished
  card of the same note by answer and question similarity), when its note file is renamed or moved, and
  when cards are reordered;
- a note's `mod` is the time its rendered content last changed, so re-importing never overwrites a card whose
  source did not change (the student's own edits in Anki survive) and a changed card always updates.

The file is JSON Lines (one card a line, sorted), meant to be committed next to the notes.
"""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import genanki

from note2anki.cornell import heading_key
from note2anki.errors import StateError
from note2anki.model import CardKind, DeckNote, Entry, RemovedCard, RenderedCard, Report

#: a reworded card must be at least this similar (mean of question and answer similarity) to the vanished
#: card to keep its identity; an unchanged answer is always enough
REWORD_SIMILARITY = 0.6
#: share of a vanished note's cards found in a new note for the new note to count as the old one moved
MOVE_OVERLAP = 0.5


def card_guid(card: RenderedCard, ordinal: int = 0, key: str | None = None) -> str:
    """The GUID a card gets when the state file does not know it: note path + normalised question
    (+ ordinal for a repeated question), never the answer. `key` is `_key(card)` when already known."""
    parts: list[object] = [card.kind.value, card.source, _key(card) if key is None else key]
    if ordinal:
        parts.append(ordinal)
    return str(genanki.guid_for(*parts))


def _key(card: RenderedCard) -> str:
    return "" if card.kind is CardKind.SUMMARY else heading_key(card.prompt) or card.prompt


def check_belongs(old: Sequence[Entry], cards: Sequence[RenderedCard], path: Path) -> None:
    """Refuse a state file of another vault (copied in by mistake): none of its notes are here and none of
    its questions either. Building on would report every one of its cards as removed."""
    if not old or not cards:
        return
    paths = {c.source for c in cards}
    if any(e.path in paths for e in old):
        return
    keys = {_key(c) for c in cards}
    if any(e.key in keys for e in old if e.kind != CardKind.SUMMARY.value):
        return  # the whole vault was reorganised: its cards are still recognised
    raise StateError(
        f"{path} belongs to another vault: none of its {len(old):,} cards' notes (such as {old[0].path}) or "
        "questions are in this one. Restore this vault's own file (`git checkout -- note2anki.lock`), or "
        "delete it to give every card a new identity"
    )


def _signature(kind: str, key: str, answer: str) -> str:
    """What recognises a card in a moved note: its question (cue, cloze), or its content (a summary card's
    key is empty, one per note)."""
    return f"{kind}\0{answer if kind == CardKind.SUMMARY.value else key}"


def _moves(cards: Sequence[RenderedCard], keys: Sequence[str], old: Sequence[Entry]) -> dict[str, str]:
    """new path -> old path, for notes renamed or moved since the state was written: a new path takes the
    vanished path that shares the most of its cards (cue and cloze questions, summary content; at least
    MOVE_OVERLAP of the old note's).

    Linear in the number of cards: candidates come from an index of the vanished notes' questions."""
    mine: defaultdict[str, set[str]] = defaultdict(set)
    for c, key in zip(cards, keys, strict=True):
        mine[c.source].add(_signature(c.kind.value, key, c.answer_hash))
    theirs: defaultdict[str, set[str]] = defaultdict(set)
    for e in old:
        theirs[e.path].add(_signature(e.kind, e.key, e.answer))
    gone = {p for p in theirs if p not in mine}
    if not gone:
        return {}
    where: defaultdict[str, list[str]] = defaultdict(list)
    for path in sorted(gone):
        for key in theirs[path]:
            where[key].append(path)
    moves: dict[str, str] = {}
    for path in sorted(p for p in mine if p not in theirs):
        shared = Counter(
            old_path for key in mine[path] for old_path in where.get(key, ()) if old_path in gone
        )
        ranked = sorted(shared.items(), key=lambda kv: (-kv[1] / len(theirs[kv[0]]), kv[0]))
        if ranked and ranked[0][1] / len(theirs[ranked[0][0]]) >= MOVE_OVERLAP:
            moves[path] = ranked[0][0]
            gone.discard(ranked[0][0])
    return moves


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _similarity(card: RenderedCard, key: str, answer: str, excerpt: str, entry: Entry) -> float:
    if entry.kind != card.kind.value:
        return 0.0
    if entry.answer == answer:
        return 1.0
    return (_ratio(entry.key, key) + _ratio(entry.excerpt, excerpt)) / 2


def _same(prev: Entry, card: RenderedCard, h: str, changed: int, answer: str, excerpt: str) -> bool:
    """True when the card's line of the state file would be `prev`'s, field for field."""
    return (
        prev.hash == h
        and prev.changed == changed
        and prev.path == card.source
        and prev.kind == card.kind.value
        and prev.question == card.prompt
        and prev.answer == answer
        and prev.excerpt == excerpt
    )


def assign(
    cards: Sequence[RenderedCard],
    old: Sequence[Entry],
    now: int,
    keep_paths: Iterable[str] = (),
    *,
    taken_guids: Iterable[str] = (),
    taken_nids: Iterable[int] = (),
    revivable: Iterable[RemovedCard] = (),
) -> tuple[list[DeckNote], list[Entry], Report]:
    """Give every card its identity and mod time; return the deck notes, the new state and what changed.

    `keep_paths` are notes that could not be read this time: their entries are carried over untouched
    rather than reported as removed. An incremental build passes only the cards of changed notes and the
    entries of changed and removed notes, plus the GUIDs of the unchanged notes' cards and every note id
    of the state file (`taken_*`): the result for those notes is then the same as for the whole vault.
    `revivable` are cards removed from the notes earlier (build/removed.py): a card whose question comes
    back in the same note takes its old identity again, so Anki's suspended card returns instead of a
    new one appearing beside it.
    """
    keep = set(keep_paths)
    carried = [e for e in old if e.path in keep]
    old = [e for e in old if e.path not in keep]
    keys = [_key(c) for c in cards]  # normalised questions, each made once
    moves = _moves(cards, keys, old)
    unmatched: defaultdict[tuple[str, str, str], list[Entry]] = defaultdict(list)
    for e in sorted(old, key=lambda e: (e.nid, e.guid)):
        unmatched[(e.path, e.kind, e.key)].append(e)
    answers = [c.answer_hash for c in cards]
    excerpts = [c.excerpt for c in cards]
    matched: list[Entry | None] = [None] * len(cards)

    # 1. same note (or its old path), same question
    for i, card in enumerate(cards):
        path = moves.get(card.source, card.source)
        bucket = unmatched.get((path, card.kind.value, keys[i]))
        if bucket:
            matched[i] = bucket.pop(0)
    # 2. reworded questions: best remaining match in the same note
    leftovers: defaultdict[str, list[Entry]] = defaultdict(list)
    for bucket in unmatched.values():
        for e in bucket:
            leftovers[e.path].append(e)
    pairs = []
    for i, card in enumerate(cards):
        if matched[i] is None:
            for e in leftovers.get(moves.get(card.source, card.source), []):
                score = _similarity(card, keys[i], answers[i], excerpts[i], e)
                if score >= REWORD_SIMILARITY:
                    pairs.append((-score, i, e.nid, e))
    used: set[int] = set()
    for _, i, _, e in sorted(pairs, key=lambda p: p[:3]):
        if matched[i] is None and e.nid not in used:
            matched[i] = e
            used.add(e.nid)
    guids_in_use = {e.guid for e in matched if e is not None} | {e.guid for e in carried} | set(taken_guids)
    nids_in_use = {e.nid for e in old} | {e.nid for e in carried} | set(taken_nids)
    # 3. questions that come back: the identity they had before they were removed
    back: dict[tuple[str, str, str], list[RemovedCard]] = defaultdict(list)
    for r in sorted(revivable):
        if r.guid not in guids_in_use and r.nid not in nids_in_use:
            back[
                (
                    r.path,
                    r.kind,
                    "" if r.kind == CardKind.SUMMARY.value else heading_key(r.question) or r.question,
                )
            ].append(r)
    revived: dict[int, RemovedCard] = {}
    for i, card in enumerate(cards):
        candidates = back.get((card.source, card.kind.value, keys[i])) if matched[i] is None else None
        if candidates:
            r = candidates.pop(0)
            revived[i] = r
            guids_in_use.add(r.guid)
            nids_in_use.add(r.nid)

    notes: list[DeckNote] = []
    entries: list[Entry] = list(carried)
    added, changed, rekeyed = [], [], []
    next_nid = now * 1000
    ordinals: defaultdict[tuple[str, str, str], int] = defaultdict(int)
    for i, card in enumerate(cards):
        h = card.content_hash
        prev = matched[i]
        if prev is None and i in revived:
            guid, nid, changed_at = revived[i].guid, revived[i].nid, now
        elif prev is None:
            slot = (card.kind.value, card.source, keys[i])
            guid = card_guid(card, ordinals[slot], keys[i])
            while guid in guids_in_use:
                ordinals[slot] += 1
                guid = card_guid(card, ordinals[slot], keys[i])
            ordinals[slot] += 1
            guids_in_use.add(guid)
            while next_nid in nids_in_use:
                next_nid += 1
            nid = next_nid
            nids_in_use.add(nid)
            changed_at = now
        else:
            guid, nid = prev.guid, prev.nid
            # strictly newer than before, so Anki's "update if newer" always takes a changed card
            changed_at = prev.changed if prev.hash == h else max(now, prev.changed + 1)
        if prev is not None and _same(prev, card, h, changed_at, answers[i], excerpts[i]):
            entry = prev  # an unchanged card: its line as it was (a big vault's state is 100k of them)
        else:
            entry = Entry(
                path=card.source,
                kind=card.kind.value,
                guid=guid,
                nid=nid,
                hash=h,
                answer=answers[i],
                changed=changed_at,
                question=card.prompt,
                excerpt=excerpts[i],
            )
        entries.append(entry)
        notes.append(DeckNote(card=card, guid=guid, nid=nid, mod=changed_at))
        if prev is None:
            added.append(entry)
        else:
            if (prev.path, prev.key) != (entry.path, entry.key):
                rekeyed.append((prev, entry))
            if prev.hash != h:
                changed.append(entry)
    matched_nids = {e.nid for e in matched if e is not None}
    removed = tuple(sorted(e for e in old if e.nid not in matched_nids))
    report = Report(tuple(added), tuple(changed), tuple(rekeyed), removed)
    return notes, entries, report
