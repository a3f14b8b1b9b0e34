"""`note2anki list`: the cards a build would make, as a table for people or JSON for tools."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence

from note2anki.model import RenderedCard
from note2anki.render import html_to_text


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _fit(text: str, limit: int) -> str:
    """Cut `text` to `limit` terminal columns (Korean characters take two)."""
    if _width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        w = _width(ch)
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _fit_start(text: str, limit: int) -> str:
    """Cut `text` to `limit` columns from the left: note paths differ at their end (`…/03 - Lambda.md`)."""
    if _width(text) <= limit:
        return text
    return _fit(text[::-1], limit)[::-1]


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _row(card: RenderedCard) -> dict[str, str]:
    return {
        "kind": card.kind.value,
        "note": card.source,
        "question": card.prompt,
        "answer": card.answer,
        "tags": " ".join(card.tags),
        "deck": card.deck,
    }


COLUMNS = (("kind", 7), ("note", 32), ("question", 36), ("answer", 30), ("tags", 40), ("deck", 30))


def format_table(cards: Sequence[RenderedCard]) -> str:
    rows = []
    for card in cards:
        row = _row(card)
        row["answer"] = html_to_text(row["answer"])
        rows.append(
            [
                (_fit_start if name == "note" else _fit)(" ".join(row[name].split()), limit)
                for name, limit in COLUMNS
            ]
        )
    header = [name for name, _ in COLUMNS]
    widths = [max([_width(h)] + [_width(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = [
        "  ".join(_pad(c, w) for c, w in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *rows]
    ]
    return "\n".join(lines) + "\n"


def format_json(cards: Sequence[RenderedCard]) -> str:
    data = [{**_row(c), "line": c.line, "tags": list(c.tags)} for c in cards]
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
