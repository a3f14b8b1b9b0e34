"""The Anki note types note2anki writes: fields, card templates and the one stylesheet (card.css).

Field and template names and their order are part of the contract with every collection that ever imported
a deck: changing them makes Anki import a "+" copy of the note type. Only the HTML inside templates and the
CSS may change, and then MODEL_MOD must be raised so Anki takes the new look on import.
"""

from __future__ import annotations

from importlib.resources import files

import genanki

from note2anki.model import CardKind

#: the note types' `mod`: raise it to a later time whenever a template or the CSS changes, so Anki takes the
#: new look on import (tests/test_identity.py fails until the fingerprint there is updated with it)
MODEL_MOD = 1796140800

CSS = files("note2anki").joinpath("card.css").read_text(encoding="utf-8")


class _Model(genanki.Model):  # type: ignore[misc]
    """A note type whose `mod` is fixed (MODEL_MOD), not the build time."""

    def to_json(self, timestamp: float, deck_id: int) -> dict[str, object]:
        data: dict[str, object] = super().to_json(MODEL_MOD, deck_id)
        return data


def _context(*names: str) -> str:
    """The small line above the question (note title, subject, textbook): each part only when the field has
    text; card.css puts the `·` between parts."""
    part = '{{#%s}}<span class="n2a-%s">{{%s}}</span>{{/%s}}'
    parts = "".join(part % (n, n.lower(), n, n) for n in names)
    return f'<div class="n2a-context">{parts}</div>'


_SOURCE = '{{#Source}}<div class="n2a-source">{{Source}}</div>{{/Source}}'


def _front(context: str, body: str) -> str:
    return f'<div class="n2a">{context}{body}</div>'


def _back(answer: str) -> str:
    """The front again, a rule, the answer, and the small link back to the note."""
    answer = f'<hr id="answer"><div class="n2a-answer">{answer}</div>'
    return f'{{{{FrontSide}}}}<div class="n2a">{answer}{_SOURCE}</div>'


_NOTE_CONTEXT = _context("Note", "Subject", "Textbook")


def _note_type(
    model_id: int, name: str, fields: tuple[str, ...], qfmt: str, afmt: str, cloze: bool = False
) -> _Model:
    """One note type with one card template (named after the type) and the shared stylesheet."""
    template = {"name": name.removeprefix("note2anki "), "qfmt": qfmt, "afmt": afmt}
    kind = genanki.Model.CLOZE if cloze else genanki.Model.FRONT_BACK
    return _Model(model_id, name, [{"name": f} for f in fields], [template], css=CSS, model_type=kind)


CUE_MODEL = _note_type(
    1607392319,
    "note2anki Cue",
    ("Question", "Answer", "Subject", "Textbook", "Note", "Source"),
    _front(_NOTE_CONTEXT, '<div class="n2a-question">{{Question}}</div>'),
    _back("{{Answer}}"),
)
SUMMARY_MODEL = _note_type(
    1607392320,
    "note2anki Summary",
    ("Title", "Summary", "Subject", "Textbook", "Source"),
    _front(_context("Subject", "Textbook"), '<div class="n2a-question">{{Title}}</div>'),
    _back("{{Summary}}"),
)
# a cloze card shows the sentence on both sides: no FrontSide copy, the term is revealed in place
CLOZE_MODEL = _note_type(
    1607392321,
    "note2anki Cloze",
    ("Text", "Subject", "Textbook", "Note", "Source"),
    _front(_NOTE_CONTEXT, '<div class="n2a-cloze">{{cloze:Text}}</div>'),
    _front(_NOTE_CONTEXT, f'<div class="n2a-cloze">{{{{cloze:Text}}}}</div>{_SOURCE}'),
    cloze=True,
)
MODELS = {CardKind.CUE: CUE_MODEL, CardKind.SUMMARY: SUMMARY_MODEL, CardKind.CLOZE: CLOZE_MODEL}
