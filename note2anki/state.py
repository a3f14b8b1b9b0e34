"""Card identity kept outside the notes: the `note2anki.lock` state file.

Between render and export, every card is given its Anki identity (GUID and note id) and its `mod` time:

- a card keeps its GUID when its answer changes, when its question is reworded (matched to the vanished
  card of the same note by answer and question similarity), when its note file is renamed or moved, and
  when cards are reordered;
- a note's `mod` is the time its rendered content last changed, so re-importing never overwrites a card whose
  source did not change (the student's own edits in Anki survive) and a changed card always updates.

The file is JSON Lines (one card a line, sorted), meant to be committed next to the notes.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import genanki

from note2anki.atomic import atomic_write
from note2anki.build.private import private_dir
from note2anki.cornell import heading_key
from note2anki.errors import NotSorted, StateError
from note2anki.model import CardKind, DeckNote, Entry, RenderedCard, Report

STATE_FILE = "note2anki.lock"
_HEADER = (
    "# note2anki card state v1: commit this file. It keeps each card's identity (guid, nid) and the time\n"
    "# its content last changed, so re-imports update cards instead of duplicating them. Do not edit.\n"
)
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


# --- the file ------------------------------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    """The state file as written (b"" when there is none yet)."""
    if not path.exists():
        return b""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path}: cannot read the card state file ({exc.strerror or exc})") from exc


def parse_state(data: bytes, path: Path) -> list[Entry]:
    """Every entry of the state file's bytes (read line by line: the file can be tens of megabytes)."""
    entries = []
    shared: dict[str, str] = {}  # a note's cards share one copy of its path, all cards one of each kind
    for number, line in enumerate(io.BytesIO(data), 1):  # one line at a time, no list of them
        if not line.strip() or line.startswith(b"#"):
            continue
        try:
            fields = json.loads(line)
            for name in ("path", "kind"):
                value = fields.get(name) if isinstance(fields, dict) else None
                if isinstance(value, str):
                    fields[name] = shared.setdefault(value, value)
            entries.append(Entry(**fields))
        except (ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
            hint = (
                "it holds git merge-conflict markers: keep both sides' lines and delete the markers"
                if line.startswith((b"<<<<<<<", b"=======", b">>>>>>>"))
                else "restore it from git (`git checkout -- note2anki.lock`)"
            )
            raise StateError(f"{path}:{number}: the card state file is damaged; {hint}") from exc
    return entries


def repair(entries: list[Entry], path: Path) -> tuple[list[Entry], list[str]]:
    """The entries of a state file that git merged (two branches that each added cards, built with the same
    clock, as `SOURCE_DATE_EPOCH` makes them), made usable again, and what was done, one line each.

    The repair depends only on the file, so every machine makes the same one and `--frozen` agrees:
    - a line that is there twice is kept once;
    - two lines for the same card (same GUID, note, kind and question) are merged: the newer is kept;
    - cards that share a note id keep their GUIDs (Anki matches cards by GUID), and all but the first (in
      file order) get new note ids after the largest one in the file.
    Two *different* cards with the same GUID cannot be told apart safely: StateError names both lines."""
    fixes: list[str] = []
    unique = sorted(set(entries))
    if len(unique) < len(entries):
        fixes.append(f"{len(entries) - len(unique)} repeated line(s) kept once")
    by_guid: dict[str, Entry] = {}
    for e in unique:
        other = by_guid.get(e.guid)
        if other is None:
            by_guid[e.guid] = e
        elif (other.path, other.kind, other.key) == (e.path, e.kind, e.key):
            by_guid[e.guid] = max(other, e, key=lambda x: (x.changed, -x.nid))
            fixes.append(f"two lines for the card “{e.question[:60]}” ({e.path}) merged")
        else:
            raise StateError(
                f"{path}: two different cards share the GUID {e.guid}: “{other.question[:60]}” "
                f"({other.path}) and “{e.question[:60]}” ({e.path}), probably from a merge; delete one of "
                "the two lines (its card is then added to Anki as a new card) and build again"
            )
    kept = sorted(by_guid.values())
    top = max((e.nid for e in kept), default=0)
    seen: set[int] = set()
    out = []
    for e in kept:
        if e.nid in seen:
            top += 1
            fixes.append(f"the card “{e.question[:60]}” ({e.path}) shared note id {e.nid}; it is now {top}")
            e = dataclasses.replace(e, nid=top)
        seen.add(e.nid)
        out.append(e)
    return out, fixes


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


def duplicates(data: bytes) -> bool:
    """True when the state file's bytes repeat a GUID or a note id (a merge); scanned, not parsed."""
    guids, nids = set(), set()
    for guid, nid in _IDS.findall(data):
        if guid in guids or nid in nids:
            return True
        guids.add(guid)
        nids.add(nid)
    return False


_FIELDS = tuple(f.name for f in fields(Entry))
_DUMPS = json.JSONEncoder(ensure_ascii=False).encode


def _line(e: Entry) -> bytes:
    return _DUMPS({name: getattr(e, name) for name in _FIELDS}).encode() + b"\n"


def format_state(entries: Iterable[Entry]) -> bytes:
    """The state file's bytes: the header, then one JSON line per card, sorted. Written line by line into
    one buffer: a big vault's file is tens of megabytes, and a list of its lines would double that."""
    out = io.BytesIO()
    out.write(_HEADER.encode())
    for e in sorted(entries):
        out.write(_line(e))
    return out.getvalue()


_PATH_AT = len(b'{"path": ')
_DECODER = json.JSONDecoder()
_IDS = re.compile(rb'"guid": "([^"\\]*)", "nid": (\d+)')


def entry_path(line: bytes) -> str | None:
    """The note path of one line of the state file, read without parsing the rest of the line."""
    if not line.startswith(b'{"path": "'):
        return None
    end = line.find(b'", "kind": ', _PATH_AT + 1)
    try:
        if end > 0 and b"\\" not in line[_PATH_AT:end]:  # no escapes: the path is what the quotes hold
            return line[_PATH_AT + 1 : end].decode("utf-8")
        path, _ = _DECODER.raw_decode(line.decode("utf-8"), _PATH_AT)
    except ValueError:  # UnicodeDecodeError too
        return None
    return path if isinstance(path, str) else None


@dataclass(frozen=True)
class Partial:
    """A state file read for an incremental build: the entries of some notes, what all notes use, and where
    the lines of those notes are (or would go) in the file's bytes."""

    entries: list[Entry]  # of the notes asked for
    guids: set[str]  # of the other notes' cards
    nids: set[int]  # of every card
    data: bytes  # the file as read
    body: int  # where its first entry starts (after the header)
    spans: list[tuple[str, int, int]]  # (path, start, end): the bytes of each note asked for, in file order


def read_partial(data: bytes, paths: Collection[str]) -> Partial:
    """Entries of `paths` only; of the other notes, only their GUIDs and note ids.

    `data` must be a state file exactly as note2anki wrote it, sorted by path (`format_state`,
    `splice_state`); the pipeline reads in part only a file whose sha256 is the one the last build wrote.
    Each note's lines are then found by binary search over the bytes, and the rest of the file is only
    scanned by one regular expression, never split into lines (a big vault's file is tens of megabytes).
    The lines next to each note's are checked: when they are out of order, NotSorted is raised."""
    body = 0
    if data.startswith(b"#"):  # the entries start after the header (none: the header alone)
        body = data.find(b"\n{") + 1 or len(data)

    def line(start: int) -> tuple[str, int]:
        """The note path of the line at `start` and where the next line starts."""
        end = data.find(b"\n", start) + 1 or len(data)
        found = entry_path(data[start:end])
        if found is None:
            raise NotSorted("a line of the state file is not an entry")
        return found, end

    def first_line(path: str) -> int:
        """Where the first line whose path is not before `path` starts (binary search over bytes)."""
        lo, hi = body, len(data)  # lines starting before lo come before `path`; those from hi on do not
        while lo < hi:
            start = data.rfind(b"\n", lo, (lo + hi) // 2) + 1 or lo
            found, end = line(start)
            if found < path:
                lo = end
            else:
                hi = start
        return lo

    entries: list[Entry] = []
    spans: list[tuple[str, int, int]] = []
    for path in sorted(paths):
        start = end = first_line(path)
        while end < len(data):
            found, after = line(end)
            if found != path:
                if found < path:
                    raise NotSorted("the state file is not sorted by note path")
                break
            entries.append(Entry(**json.loads(data[end:after])))
            end = after
        if start > body and line(data.rfind(b"\n", body, start - 1) + 1 or body)[0] >= path:
            raise NotSorted("the state file is not sorted by note path")
        spans.append((path, start, end))
    guids: set[str] = set()
    nids = {e.nid for e in entries}
    at = body
    for _, start, end in [*spans, ("", len(data), len(data))]:
        for guid, nid in _IDS.findall(data, at, start):
            guids.add(guid.decode("ascii", "replace"))
            nids.add(int(nid))
        at = end
    return Partial(entries, guids, nids, data, body, spans)


def splice_state(partial: Partial, entries: Iterable[Entry]) -> bytes:
    """The state file read into `partial` with the lines of the notes it was asked for replaced by `entries`:
    the bytes `format_state` gives for the whole new state."""
    lines: dict[str, list[bytes]] = defaultdict(list)
    for e in sorted(entries):
        lines[e.path].append(_line(e))
    data, at = partial.data, partial.body
    out = [_HEADER.encode()]
    for path, start, end in partial.spans:
        out.append(data[at:start])
        out.extend(lines.pop(path, ()))
        at = end
    out.append(data[at:])
    if lines:
        raise ValueError(f"entries of notes the state file was not read for: {sorted(lines)}")
    return b"".join(out)


def write_state(path: Path, data: bytes, current: bytes | None = None) -> bool:
    """Write atomically (temporary file + rename); returns False when the file already holds `data`
    (`current`, when the caller has just read it)."""
    try:
        if current is None and path.exists():
            current = path.read_bytes()
        if current == data:
            return False
    except OSError:
        pass
    try:
        tmp_dir: Path | None = private_dir(path.parent, "tmp")  # a killed build leaves nothing in sight
    except OSError:
        tmp_dir = None
    try:
        with atomic_write(path, tmp_dir=tmp_dir) as f:
            f.write(data)
    except OSError as exc:
        raise StateError(f"{path}: cannot write the card state file ({exc.strerror or exc})") from exc
    return True


# --- identity --------------------------------------------------------------------------------------


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


def assign(
    cards: Sequence[RenderedCard],
    old: Sequence[Entry],
    now: int,
    keep_paths: Iterable[str] = (),
    *,
    taken_guids: Iterable[str] = (),
    taken_nids: Iterable[int] = (),
) -> tuple[list[DeckNote], list[Entry], Report]:
    """Give every card its identity and mod time; return the deck notes, the new state and what changed.

    `keep_paths` are notes that could not be read this time: their entries are carried over untouched
    rather than reported as removed. An incremental build passes only the cards of changed notes and the
    entries of changed and removed notes, plus the GUIDs of the unchanged notes' cards and every note id
    of the state file (`taken_*`): the result for those notes is then the same as for the whole vault.
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

    notes: list[DeckNote] = []
    entries: list[Entry] = list(carried)
    added, changed, rekeyed = [], [], []
    next_nid = now * 1000
    ordinals: defaultdict[tuple[str, str, str], int] = defaultdict(int)
    for i, card in enumerate(cards):
        h = card.content_hash
        prev = matched[i]
        if prev is None:
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
