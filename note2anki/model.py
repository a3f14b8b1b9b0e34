"""The records passed between pipeline stages.

discover -> SourceFile, parse -> ParsedNote, extract -> Card, render -> RenderedCard, export -> BuildResult.
Every record is frozen; problems found in the user's notes travel as Diagnostic values, never as exceptions.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from note2anki.state import Report

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
    # identity material for the state file, computed once where the card is rendered (render.digests)
    content_hash: str = ""  # fields, tags, deck: what decides that the card changed
    answer_hash: str = ""  # the answer alone: recognises a reworded question
    excerpt: str = ""  # the start of the answer as plain text

    @property
    def answer(self) -> str:
        """The field that holds what is learned: the answer, the summary, or the cloze text."""
        return self.fields[0 if self.kind is CardKind.CLOZE else 1]


@dataclass(frozen=True, slots=True)  # slots: one per card of a big vault
class DeckNote:
    """A rendered card with its Anki identity: what export writes."""

    card: RenderedCard
    guid: str
    nid: int  # note id; also the card id, so a removed card can be found with `nid:`
    mod: int  # seconds: when the card's content last changed


@dataclass(frozen=True, order=True)
class RemovedCard:
    """A card that left the vault and may still be in Anki (removed.py keeps the list)."""

    nid: int
    guid: str
    path: str  # the note it came from
    question: str

    @classmethod
    def from_json(cls, data: object) -> RemovedCard:
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return cls(int(data["nid"]), str(data["guid"]), str(data["path"]), str(data["question"]))


@dataclass(frozen=True)
class BuildResult:
    notes_read: int
    cards: tuple[RenderedCard, ...]
    diagnostics: tuple[Diagnostic, ...]
    outputs: tuple[Path, ...] = ()  # decks written (build only)
    media: tuple[MediaFile, ...] = ()
    decks: tuple[str, ...] = ()
    report: Report | None = None  # what changed since the last build (build only)
    state_changed: bool = False
    #: nothing changed since the last build: the deck on disk is already right, and `cards` is empty
    #: (the counts below still say what it holds)
    up_to_date: bool = False
    counts: Mapping[CardKind, int] | None = None  # card counts when `cards` is not loaded
    #: vault paths of the notes read this time (the others are unchanged since a build read them);
    #: None: every note was read
    fresh: frozenset[str] | None = None
    #: cards removed from the vault since the list was last cleared (`note2anki removed --clear`)
    removed: tuple[RemovedCard, ...] = ()

    def is_new(self, d: Diagnostic) -> bool:
        """True for an error, or a diagnostic of a note read this time or of the vault's walk."""
        return self.fresh is None or d.severity is Severity.ERROR or d.path in self.fresh

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)

    def count(self, kind: CardKind) -> int:
        if self.counts is not None:
            return self.counts.get(kind, 0)
        return sum(1 for c in self.cards if c.kind is kind)

    @property
    def card_total(self) -> int:
        return sum(self.count(kind) for kind in CardKind)
