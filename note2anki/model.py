"""The records passed between pipeline stages, and the records note2anki saves.

discover -> Vault of SourceFile, parse -> ParsedNote, extract -> Card, render -> RenderedCard, identity ->
DeckNote (with the state file's Entry), export -> the deck. `run` returns a Scan (check, list) or a
BuildResult (build). Every record is frozen; problems found in the user's notes travel as Diagnostic values,
never as exceptions. A record that is saved (in the cache or the last build's record) has its one JSON
encoder (`to_json`) and decoder (`from_json`) here, next to its type.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from note2anki.cornell import heading_key

#: A mistune 3 token (a JSON-like dict). Tokens are created by parse, read by extract and render, and
#: never leave those modules except wrapped in a :class:`Fragment`.
Token = Mapping[str, Any]


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A problem in the user's vault: where it is, a stable code, and how to fix it."""

    path: str  # vault-relative, POSIX separators
    line: int | None
    code: str
    severity: Severity
    message: str

    def format(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.severity.value} {self.code}: {self.message}"

    def to_json(self) -> list[object]:
        return [self.path, self.line, self.code, self.severity.value, self.message]

    @classmethod
    def from_json(cls, data: Any) -> Diagnostic:
        path, line, code, severity, message = data
        number = None if line is None else int(line)
        return cls(str(path), number, str(code), Severity(severity), str(message))


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    rel: str  # vault-relative, POSIX separators

    @property
    def title(self) -> str:
        return Path(self.rel).stem

    @property
    def root(self) -> Path:
        """The vault folder the note was found in."""
        return self.path.parents[self.rel.count("/")]


@dataclass(frozen=True)
class VaultSettings:
    """What the vault's `.obsidian/` folder (or note2anki.toml) says about how its notes look."""

    #: a single newline inside a paragraph is a line break (Obsidian's "Strict line breaks" off, its default)
    breaks: bool = True
    #: vault-relative folders holding Obsidian templates (their notes are skipped unless `read_templates`)
    template_folders: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vault:
    root: Path
    name: str
    notes: tuple[SourceFile, ...]
    #: every non-note file, keyed by case-folded file name, for Obsidian-style lookup by name
    attachments: Mapping[str, tuple[str, ...]]
    #: what the walk could not use (unreadable folders, badly named files, folder links), reported by
    #: every command
    problems: tuple[Diagnostic, ...] = ()
    settings: VaultSettings = VaultSettings()
    #: vault path (NFC, as every path note2anki compares or records) -> the name on disk, for the files whose
    #: names the file system gave in another normalisation (macOS: Hangul decomposed, NFD)
    on_disk: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def file(self, rel: str) -> Path:
        """The file at vault path `rel` (NFC), as the file system names it."""
        return self.root / self.on_disk.get(rel, rel)


@dataclass(frozen=True)
class NoteMeta:
    subject: str | None
    textbook: str | None
    #: tags exactly as the note gives them (frontmatter `tags`, tag links); export normalises them
    tags: tuple[str, ...]
    #: tag links from the note's first lines (`[[AWS]] [[Book]]`), used when frontmatter says nothing
    topics: tuple[str, ...] = ()
    #: warning codes this note does not want reported (frontmatter `note2anki-ignore`)
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedNote:
    source: SourceFile
    meta: NoteMeta
    body: str  # the Markdown after the frontmatter
    body_line: int  # 1-based line of the file where `body` starts
    blocks: tuple[Token, ...]  # mistune AST of `body`


@dataclass(frozen=True)
class Fragment:
    """A piece of a note's Markdown AST: inline tokens (`inline=True`) or block tokens."""

    tokens: tuple[Token, ...]
    inline: bool = False


class CardKind(str, enum.Enum):
    CUE = "cue"
    SUMMARY = "summary"
    CLOZE = "cloze"  # one summary item whose marked terms are hidden


@dataclass(frozen=True)
class Card:
    """One Anki note to be: a cue question with its answer, or a note's summary items."""

    kind: CardKind
    note: ParsedNote
    #: plain text of the question (cue) or the note title (summary); identity is derived from it
    prompt: str
    line: int | None
    question: Fragment | None = None  # cue cards: the question's inline Markdown
    answer: Fragment | None = None  # cue cards: the answer's block Markdown
    items: tuple[Fragment, ...] = ()  # summary cards: one fragment per item; cloze cards: the item


@dataclass(frozen=True)
class MediaFile:
    path: Path  # absolute, inside the vault
    name: str  # name inside the deck (content-addressed)


@dataclass(frozen=True)
class RenderedCard:
    kind: CardKind
    source: str  # vault-relative path of the note
    line: int | None
    prompt: str
    fields: tuple[str, ...]  # HTML, in note-type field order
    deck: str
    tags: tuple[str, ...]  # normalised: NFC, no whitespace
    subject: str | None  # for `build --split subject`
    media: tuple[MediaFile, ...]
    # identity material for the state file, made once with the card (render.identity_material)
    content_hash: str = ""  # fields, tags, deck: what decides that the card changed
    answer_hash: str = ""  # the answer alone: recognises a reworded question
    excerpt: str = ""  # the start of the answer as plain text

    @property
    def answer(self) -> str:
        """The field that holds what is learned: the answer, the summary, or the cloze text."""
        return self.fields[0 if self.kind is CardKind.CLOZE else 1]

    def to_json(self, root: Path) -> dict[str, Any]:
        """As a cache entry holds it; media paths relative to the vault at `root`."""
        return {
            "kind": self.kind.value,
            "source": self.source,
            "line": self.line,
            "prompt": self.prompt,
            "fields": list(self.fields),
            "deck": self.deck,
            "tags": list(self.tags),
            "subject": self.subject,
            "media": [[m.path.relative_to(root).as_posix(), m.name] for m in self.media],
            "hashes": [self.content_hash, self.answer_hash, self.excerpt],
        }

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], root: Path, shared: dict[str, str], checked: Callable[[object], str]
    ) -> RenderedCard:
        """The card `to_json` gave; `shared` keeps one copy of strings a note's cards repeat, and `checked`
        vets each media path read back (it raises ValueError for one that leaves the vault)."""

        def one(value: object) -> str:
            text = str(value)
            return shared.setdefault(text, text)

        content, answer, excerpt = data["hashes"]
        return cls(
            kind=CardKind(data["kind"]),
            source=one(data["source"]),
            line=data["line"],
            prompt=str(data["prompt"]),
            fields=tuple(one(f) for f in data["fields"]),
            deck=one(data["deck"]),
            tags=tuple(one(t) for t in data["tags"]),
            subject=data["subject"],
            media=tuple(MediaFile(path=root / checked(rel), name=str(name)) for rel, name in data["media"]),
            content_hash=str(content),
            answer_hash=str(answer),
            excerpt=str(excerpt),
        )


@dataclass(frozen=True, slots=True)  # slots: one per card of a big vault
class DeckNote:
    """A rendered card with its Anki identity: what export writes."""

    card: RenderedCard
    guid: str
    nid: int  # note id; also the card id, so a removed card can be found with `nid:`
    mod: int  # seconds: when the card's content last changed


@dataclass(frozen=True)
class MultiCard:
    """A note with more than one card (a cloze note), where card ids are handed out in deck order."""

    deck: str
    source: str  # vault path of the note it came from
    position: int  # of the card among that note's cards
    nid: int
    count: int  # cards

    def to_json(self) -> list[object]:
        return [self.deck, self.source, self.position, self.nid, self.count]

    @classmethod
    def from_json(cls, data: Any) -> MultiCard:
        deck, source, position, nid, count = data
        return cls(str(deck), str(source), int(position), int(nid), int(count))


@dataclass(frozen=True)
class MediaDep:
    """An image a card looked up: the link as written, the vault file it found ("" when none) and that
    file's size and modification time."""

    target: str
    rel: str
    stamp: str
    #: the file's content-addressed name in the deck: when the stamp differs (a fresh checkout gives every
    #: file a new time) but the content is the same, the entry is still good
    name: str = ""

    def to_json(self) -> list[str]:
        return [self.target, self.rel, self.stamp, self.name]

    @classmethod
    def from_json(cls, data: Any) -> MediaDep:
        target, rel, stamp, name = data
        return cls(str(target), str(rel), str(stamp), str(name))


@dataclass(frozen=True)
class NoteResult:
    """Everything one note contributes to a build."""

    cards: tuple[RenderedCard, ...]
    diagnostics: tuple[Diagnostic, ...]
    readable: bool  # False: the note could not be read or parsed (its cards keep their identity)
    media: tuple[MediaDep, ...] = ()
    cached: bool = False  # from the cache: the note did not change since a build read it (never stored)


@dataclass(frozen=True, order=True)
class RemovedCard:
    """A card that left the vault and may still be in Anki (removed.py keeps the list)."""

    nid: int
    guid: str
    path: str  # the note it came from
    question: str
    kind: str = CardKind.CUE.value

    def to_json(self) -> dict[str, object]:
        return {
            "nid": self.nid,
            "guid": self.guid,
            "path": self.path,
            "question": self.question,
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, data: object) -> RemovedCard:
        if not isinstance(data, dict):
            raise ValueError("not an object")
        kind = str(data.get("kind", CardKind.CUE.value))
        return cls(int(data["nid"]), str(data["guid"]), str(data["path"]), str(data["question"]), kind)


@dataclass(frozen=True, order=True, slots=True)  # slots: a big vault has a hundred thousand of them
class Entry:
    """One card's line of the state file (`note2anki.lock`): its identity and what it was last time."""

    path: str
    kind: str
    guid: str
    nid: int
    hash: str  # of the rendered card: fields, tags, deck
    answer: str  # hash of the answer alone, to recognise a reworded question
    changed: int  # seconds since the epoch when `hash` last changed
    question: str  # as shown; for summary cards the note title
    excerpt: str  # the start of the answer as plain text

    @property
    def key(self) -> str:
        """The normalised question (empty for summary cards: one per note, whatever its title)."""
        return "" if self.kind == CardKind.SUMMARY.value else heading_key(self.question) or self.question


@dataclass(frozen=True)
class Report:
    """What a build changed in the state file."""

    added: tuple[Entry, ...] = ()
    changed: tuple[Entry, ...] = ()
    rekeyed: tuple[tuple[Entry, Entry], ...] = ()  # (before, after): reworded or moved
    removed: tuple[Entry, ...] = ()

    def removed_search(self) -> str:
        """An Anki search that finds the removed cards' notes (an .apkg cannot delete them)."""
        return "nid:" + ",".join(str(e.nid) for e in self.removed) if self.removed else ""

    def to_json(self) -> dict[str, object]:
        def short(e: Entry) -> dict[str, object]:
            return {"path": e.path, "kind": e.kind, "question": e.question, "guid": e.guid, "nid": e.nid}

        return {
            "added": [short(e) for e in self.added],
            "changed": [short(e) for e in self.changed],
            "rekeyed": [{"before": short(a), "after": short(b)} for a, b in self.rekeyed],
            "removed": [short(e) for e in self.removed],
            "removed_search": self.removed_search(),
        }


class _Findings:
    """What both results have: the problems found in the notes."""

    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


@dataclass(frozen=True)
class Scan(_Findings):
    """What `check` and `list` saw: every card the vault makes, and every problem in it (nothing written)."""

    notes_read: int  # notes that could be read
    cards: tuple[RenderedCard, ...]  # all of them, in vault order
    diagnostics: tuple[Diagnostic, ...]
    media: tuple[MediaFile, ...] = ()
    decks: tuple[str, ...] = ()

    def count(self, kind: CardKind) -> int:
        return sum(1 for c in self.cards if c.kind is kind)


@dataclass(frozen=True)
class BuildResult(_Findings):
    """What a build did: the deck(s) it wrote, what they hold, and what changed since the last build."""

    notes_read: int  # notes that could be read
    counts: Mapping[CardKind, int]  # cards in the deck, by kind
    diagnostics: tuple[Diagnostic, ...]
    outputs: tuple[Path, ...]  # decks written (or already right, when `up_to_date`)
    media: tuple[MediaFile, ...] = ()
    decks: tuple[str, ...] = ()
    report: Report = Report()
    state_changed: bool = False
    #: nothing changed since the last build: the deck on disk was already right
    up_to_date: bool = False
    #: the cards made this time: all of them on a whole build, those of the changed notes on an incremental
    #: one, none when up to date (`counts` always covers the whole deck)
    redone: tuple[RenderedCard, ...] = ()
    #: vault paths of the notes read this time (the others are unchanged since a build read them);
    #: None: every note was read
    fresh: frozenset[str] | None = None
    #: cards removed from the vault since the list was last cleared (`note2anki removed --clear`)
    removed: tuple[RemovedCard, ...] = ()

    def is_new(self, d: Diagnostic) -> bool:
        """True for an error, or a diagnostic of a note read this time or of the vault's walk."""
        return self.fresh is None or d.severity is Severity.ERROR or d.path in self.fresh

    def count(self, kind: CardKind) -> int:
        return self.counts.get(kind, 0)

    @property
    def card_total(self) -> int:
        return sum(self.counts.values())
