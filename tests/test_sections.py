"""Section-only parsing (note2anki/sections.py) gives exactly what parsing the whole note gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.generate import generate
from note2anki import Config
from note2anki.cornell import CARD_ROLES, heading_role
from note2anki.discover import discover
from note2anki.extract import extract
from note2anki.media import MediaIndex
from note2anki.model import RenderedCard
from note2anki.parse import parse
from note2anki.render import render
from note2anki.sections import _plan
from tests.conftest import ROOT

CASES = ROOT / "tests" / "cases"
SEED = ROOT.parent / "shared" / "seed"


def cards(vault: Path, whole: bool) -> tuple[list[RenderedCard], list[str]]:
    config = Config()
    found = discover(vault, config)
    media = MediaIndex(found)
    out, problems = [], []
    for source in found.notes:
        note, diags = parse(source, config, whole=whole)
        problems += [d.format() for d in diags]
        if note is None:
            continue
        made, diags = extract(note, config)
        problems += [d.format() for d in diags]
        for card in made:
            rendered, diags = render(card, found, config, media)
            problems += [d.format() for d in diags]
            out.append(rendered)
    return out, problems


def generated_vault(tmp: Path, notes: int) -> Path:
    generate(tmp, notes, seed=7, main_bytes=3000)
    return tmp


VAULTS = {
    "fixture cases": lambda tmp: CASES,
    "samples": lambda tmp: ROOT / "samples",
    "generated": lambda tmp: generated_vault(tmp, 40),
    "seed": lambda tmp: SEED,
}


@pytest.mark.parametrize("name", list(VAULTS))
def test_same_cards_and_diagnostics_as_parsing_whole_notes(name: str, tmp_path: Path) -> None:
    vault = VAULTS[name](tmp_path / "vault")
    if not vault.is_dir():
        pytest.skip(f"{vault} is not here")
    fast, fast_problems = cards(vault, whole=False)
    full, full_problems = cards(vault, whole=True)
    assert fast, "no cards at all: the comparison would prove nothing"
    assert fast == full
    assert fast_problems == full_problems


def role_of(text: str) -> str | None:
    return heading_role(Config(), text)


SEED_LIKE = (
    "[[AWS]]\n\n### 단서 질문\n\n- Q?\n    - A.\n\n### 핵심 필기\n\n- notes\n\n### 핵심 요약\n\n- S.\n"
)


def test_the_line_scan_cuts_at_template_headings() -> None:
    plan = _plan(SEED_LIKE, role_of)
    assert plan is not None
    assert plan[1] == [(2, "cue"), (7, "other"), (11, "summary")]
    assert {"cue", "summary"} == CARD_ROLES


@pytest.mark.parametrize(
    "text",
    [
        "<!-- a comment\n### 핵심 요약\n-->\n",  # an HTML block can hold a heading
        "[ref]: https://example.org\n\n### 단서 질문\n\n- [Q][ref]\n    - A\n",  # references cross sections
        "- Q\n    ```\n    code\n```\n### 핵심 요약\n",  # a fence closed at another indent
        "```\n## 단서 질문\n```\n",  # a template heading inside code
        "  ### 핵심 요약\n- S\n",  # indented heading
        "핵심 요약\n---\n- S\n",  # setext heading
        "<div>\n### 핵심 요약\n</div>\n",  # heading right under an HTML line
    ],
)
def test_the_line_scan_gives_up_where_commonmark_could_disagree(text: str, tmp_path: Path) -> None:
    assert _plan(text, role_of) is None
    (tmp_path / "n.md").write_text(SEED_LIKE + text, encoding="utf-8")
    assert cards(tmp_path, whole=False) == cards(tmp_path, whole=True)
