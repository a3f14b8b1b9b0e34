"""Every diagnostic code note2anki reports, in one registry: its severity and what it means.

Codes are stable (students list them in `ignore`, tools match on them); README's table of codes is this
registry, checked by a test. A code is never reused for another meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from note2anki.model import Severity


@dataclass(frozen=True)
class Code:
    severity: Severity
    meaning: str  # as README's table says it


CODES: Mapping[str, Code] = MappingProxyType(
    {
        "N2A001": Code(Severity.ERROR, "the file cannot be read"),
        "N2A002": Code(Severity.ERROR, "the file is not UTF-8"),
        "N2A003": Code(Severity.ERROR, "the frontmatter is not valid YAML (the note is skipped)"),
        "N2A004": Code(Severity.ERROR, "the frontmatter is not `key: value` lines"),
        "N2A005": Code(
            Severity.ERROR, "the note is larger than `max_note_mb` (default 10 MB); it is not read"
        ),
        "N2A006": Code(
            Severity.WARNING,
            "the note is saved as UTF-16 or UTF-32 (with a byte order mark); it is read, re-save it as UTF-8",
        ),
        "N2A007": Code(Severity.WARNING, "a folder is named like a note (`x.md/`); it is read as a folder"),
        "N2A008": Code(
            Severity.ERROR, "a `.md` entry is not a regular file (a named pipe, a device); it is not opened"
        ),
        "N2A009": Code(
            Severity.ERROR,
            "a note is a link (symlink) that loops, dangles or leaves the vault; it is not read",
        ),
        "N2A010": Code(
            Severity.ERROR,
            "a note's file name has bytes that are not UTF-8 or control characters (a newline); rename it",
        ),
        "N2A011": Code(Severity.WARNING, "a folder link (symlink) is not followed"),
        "N2A012": Code(
            Severity.ERROR, "a folder cannot be read (permissions); the notes in it are not in the deck"
        ),
        "N2A013": Code(
            Severity.WARNING,
            "`.note2anki` (or a folder in it) is a link (symlink); its cache is not used, so nothing is read or written through it",
        ),
        "N2A014": Code(
            Severity.WARNING,
            "`note2anki.lock` was repaired after a git merge (repeated lines, shared note ids); commit the rewritten file",
        ),
        "N2A015": Code(
            Severity.ERROR,
            "`note2anki.lock` gives two different cards one GUID (after a merge); delete one of the two lines it names",
        ),
        "N2A099": Code(
            Severity.ERROR,
            "note2anki itself failed on this note (a bug; please report it); the rest of the vault is built",
        ),
        "N2A201": Code(Severity.WARNING, "a question has no answer under it"),
        "N2A202": Code(Severity.WARNING, "the template placeholder `질문1` is still there"),
        "N2A203": Code(Severity.WARNING, "the summary placeholder is still there"),
        "N2A204": Code(Severity.WARNING, "the same question appears twice in a note"),
        "N2A205": Code(Severity.WARNING, "a cue section has content but no question with an answer"),
        "N2A206": Code(
            Severity.WARNING,
            "a `%%` comment is never closed, so the rest of the note is hidden (as in Obsidian)",
        ),
        "N2A207": Code(
            Severity.WARNING,
            "past a limit: lists or quotes nested over 20 levels (deeper levels become text), a line over 100,000 characters, a frontmatter value over 200 characters (cut)",
        ),
        "N2A208": Code(
            Severity.WARNING,
            "a summary bullet is marked (bold or highlight) almost as a whole, so no cloze card is made from it",
        ),
        "N2A209": Code(
            Severity.WARNING,
            "a heading looks like a misspelt cue or summary heading (`### 단서 잘문`), so nothing under it becomes a card",
        ),
        "N2A210": Code(
            Severity.WARNING,
            "a `%%` comment would run past a template heading; it is ended before the heading, so no card takes another section's text",
        ),
        "N2A301": Code(
            Severity.WARNING,
            "an image in a card is not in the vault, or is not an image (the card is kept without it; images in the main notes are not checked, as they never reach a card)",
        ),
        "N2A302": Code(
            Severity.WARNING,
            "an image points outside the vault (`..`, an absolute path, `file://`, a symlink leaving the vault); it is never read",
        ),
        "N2A303": Code(
            Severity.WARNING,
            "a web image is shown as a link (`remote_images = true` loads it), or a pasted `data:` image is dropped",
        ),
    }
)
