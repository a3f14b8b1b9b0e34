"""Import built decks into a real Anki collection (the official `anki` package); read back the result."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from anki.collection import Collection
from anki.import_export_pb2 import (
    ImportAnkiPackageOptions,
    ImportAnkiPackageRequest,
    ImportAnkiPackageUpdateCondition,
)

IF_NEWER = ImportAnkiPackageUpdateCondition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_IF_NEWER


@dataclass(frozen=True)
class ImportedNote:
    id: int
    guid: str
    note_type: str
    fields: dict[str, str]
    tags: tuple[str, ...]
    decks: tuple[str, ...]  # one entry per card
    mod: int

    @property
    def card_count(self) -> int:
        return len(self.decks)

    @property
    def source(self) -> str:
        """The note's vault path: the text of the Source field's link back to Obsidian."""
        return re.sub(r"<[^>]+>", "", self.fields.get("Source", ""))

    @property
    def source_link(self) -> str:
        m = re.search(r'href="([^"]+)"', self.fields.get("Source", ""))
        return m.group(1).replace("&amp;", "&") if m else ""


@dataclass(frozen=True)
class ImportLog:
    new: int
    updated: int
    duplicate: int
    conflicting: int
    first_field_match: int
    missing_notetype: int


class AnkiCollection:
    """A fresh collection in `folder`; `import_deck` runs Anki's own .apkg importer."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.col = Collection(str(folder / "collection.anki2"))

    def close(self) -> None:
        self.col.close()

    def import_deck(self, apkg: Path) -> ImportLog:
        request = ImportAnkiPackageRequest(
            package_path=str(apkg),
            options=ImportAnkiPackageOptions(
                with_scheduling=False, update_notes=IF_NEWER, update_notetypes=IF_NEWER
            ),
        )
        log = self.col.import_anki_package(request).log
        return ImportLog(
            new=len(log.new),
            updated=len(log.updated),
            duplicate=len(log.duplicate),
            conflicting=len(log.conflicting),
            first_field_match=len(log.first_field_match),
            missing_notetype=len(log.missing_notetype),
        )

    def notes(self) -> list[ImportedNote]:
        out = []
        for nid in self.col.find_notes(""):
            note = self.col.get_note(nid)
            out.append(
                ImportedNote(
                    id=int(nid),
                    guid=note.guid,
                    note_type=str(note.note_type()["name"]),  # type: ignore[index]
                    fields=dict(note.items()),
                    tags=tuple(note.tags),
                    decks=tuple(self.col.decks.name(card.did) for card in note.cards()),
                    mod=note.mod,
                )
            )
        return sorted(out, key=lambda n: (n.source, n.id))

    def note_type_names(self) -> list[str]:
        return sorted(m.name for m in self.col.models.all_names_and_ids())

    def media_files(self) -> set[str]:
        return {p.name for p in Path(self.col.media.dir()).iterdir() if p.is_file()}

    def card_count(self) -> int:
        return int(self.col.card_count())


def squash(html: str) -> str:
    """HTML with the line breaks between tags removed (not inside <pre>), for readable exact comparisons."""
    parts = re.split(r"(<pre\b.*?</pre>)", html.strip(), flags=re.S)
    return "".join(p if p.startswith("<pre") else re.sub(r">\s*\n\s*", ">", p) for p in parts)


def list_items(html: str) -> list[str]:
    """The inner HTML of each top-level <li> of the first list in `html` (squashed)."""
    html = squash(html)
    items: list[str] = []
    depth = 0
    start = 0
    for m in re.finditer(r"<(/?)(ul|ol|li)\b[^>]*>", html):
        closing, tag = m.group(1) == "/", m.group(2)
        if tag in ("ul", "ol"):
            depth += -1 if closing else 1
        elif depth == 1 and not closing:
            start = m.end()
        elif depth == 1 and closing:
            items.append(html[start : m.start()])
    return items
