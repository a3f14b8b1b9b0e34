"""Cards removed from the notes that may still be in Anki: kept in `.note2anki/removed.json` until cleared.

An `.apkg` can add and update cards but never delete one, so every build reports the cards that left the vault
since the list was last cleared (`note2anki removed --clear`), with one Anki search that finds them all. A
card whose question comes back (same GUID) leaves the list by itself.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path

from note2anki.atomic import atomic_write
from note2anki.build.private import PRIVATE_DIR, private_dir
from note2anki.model import RemovedCard

REMOVED_FILE = f"{PRIVATE_DIR}/removed.json"
FORMAT = 1


def search(cards: Iterable[RemovedCard]) -> str:
    """One Anki search that finds every card of `cards` (`nid:1,2,3`)."""
    nids = sorted({c.nid for c in cards})
    return "nid:" + ",".join(map(str, nids)) if nids else ""


def load(root: Path) -> list[RemovedCard]:
    """The list (empty when there is none, or it cannot be read: it is a reminder, not a record of truth)."""
    path = root / REMOVED_FILE
    try:
        if path.is_symlink():
            return []
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return []
        return sorted({RemovedCard.from_json(c) for c in data["cards"]})
    except (OSError, ValueError, TypeError, KeyError):
        return []


def save(root: Path, cards: Iterable[RemovedCard]) -> None:
    """Write the list (an empty list removes the file). A list that cannot be written is not an error: the
    build it belongs to still succeeded."""
    items = sorted(set(cards))
    path = root / REMOVED_FILE
    with contextlib.suppress(OSError):
        if not items:
            if path.exists() and not path.is_symlink():
                path.unlink()
            return
        private_dir(root, ".")
        data = {"format": FORMAT, "cards": [c.to_json() for c in items]}
        with atomic_write(path, durable=False) as f:
            f.write((json.dumps(data, ensure_ascii=False, indent=1) + "\n").encode())


def update(
    known: Iterable[RemovedCard], removed: Iterable[RemovedCard], present: Iterable[str]
) -> list[RemovedCard]:
    """The list after a build: `known` plus the cards it `removed`, less those whose GUID is `present` in
    the vault again (a restored question)."""
    back = set(present)
    return sorted({c for c in (*known, *removed) if c.guid not in back})
