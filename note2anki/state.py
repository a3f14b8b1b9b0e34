"""The card state file, `note2anki.lock`: one JSON line per card (its identity and what it last was),
sorted, meant to be committed next to the notes. Reading it whole or in part, writing it, and repairing what
a git merge can do to it. How cards get their identity from it is identity.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from note2anki.atomic import Staged
from note2anki.errors import NotSorted, StateError
from note2anki.model import Entry

STATE_FILE = "note2anki.lock"
_HEADER = (
    "# note2anki card state v1: commit this file. It keeps each card's identity (guid, nid) and the time\n"
    "# its content last changed, so re-imports update cards instead of duplicating them. Do not edit.\n"
)


# --- the file ------------------------------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    """The state file as written (b"" when there is none yet)."""
    if not path.exists():
        return b""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path}: cannot read the card state file ({exc.strerror or exc})") from exc


def parse_state(data: bytes, path: Path, known: dict[str, str] | None = None) -> list[Entry]:
    """Every entry of the state file's bytes (read line by line: the file can be tens of megabytes).

    `known` maps strings the caller already holds (the new cards' questions, excerpts and hashes) to
    themselves: an unchanged card's entry then shares them instead of holding a second copy (a big vault's
    state is a hundred thousand entries)."""
    entries = []
    shared: dict[str, str] = {}  # a note's cards share one copy of its path, all cards one of each kind
    known = known or {}
    for number, line in enumerate(io.BytesIO(data), 1):  # one line at a time, no list of them
        if not line.strip() or line.startswith(b"#"):
            continue
        try:
            fields = json.loads(line)
            for name in ("path", "kind"):
                value = fields.get(name) if isinstance(fields, dict) else None
                if isinstance(value, str):
                    fields[name] = shared.setdefault(value, value)
            if known:
                for name in ("question", "excerpt", "hash", "answer"):
                    value = fields.get(name)
                    if isinstance(value, str):
                        fields[name] = known.get(value, value)
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


def state_digest(entries: Iterable[Entry]) -> str:
    """sha256 of `format_state(entries)`, without holding its bytes (tens of megabytes in a big vault) while
    the deck is written."""
    h = hashlib.sha256(_HEADER.encode())
    for e in sorted(entries):
        h.update(_line(e))
    return h.hexdigest()


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


def write_state(path: Path, data: bytes, current: bytes | None = None, tmp_dir: Path | None = None) -> bool:
    """Write atomically (temporary file + rename); returns False when the file already holds `data`
    (`current`, when the caller has just read it)."""
    with stage_state(path, data, current, tmp_dir) as commit:
        return commit()


def _cannot_write(path: Path, exc: OSError) -> StateError:
    return StateError(f"{path}: cannot write the card state file ({exc.strerror or exc})")


@contextlib.contextmanager
def stage_state(
    path: Path, data: bytes, current: bytes | None = None, tmp_dir: Path | None = None
) -> Iterator[Callable[[], bool]]:
    """`write_state` in two steps: the new file is written (and flushed to disk) on entry, and put in place
    by the function yielded, which returns what `write_state` does; not called, `path` is left as it was."""
    try:
        if current is None and path.exists():
            current = path.read_bytes()
    except OSError:
        pass
    if current == data:
        yield lambda: False
        return
    try:
        staged = Staged(path, tmp_dir=tmp_dir)
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    with staged:
        try:
            staged.file.write(data)
            staged.close()
        except OSError as exc:
            raise _cannot_write(path, exc) from exc

        def commit() -> bool:
            try:
                staged.commit()
            except OSError as exc:
                raise _cannot_write(path, exc) from exc
            return True

        yield commit
