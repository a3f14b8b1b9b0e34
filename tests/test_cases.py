"""One test per note shape: `tests/cases/<name>.md` is the note, `<name>.yml` the cards a student must get.

All cases are built into one deck and imported once into a real Anki collection; each case then checks the
notes that came from its file: question and answer HTML, summary items, deck, tags, media and warnings.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from note2anki import BuildResult, Config, run
from tests.anki_collection import AnkiCollection, ImportedNote, ImportLog, list_items, squash

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(p.stem for p in CASES_DIR.glob("*.md"))


@dataclass
class Built:
    result: BuildResult
    log: ImportLog
    notes: list[ImportedNote]
    media: set[str]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    vault = tmp_path_factory.mktemp("cases") / "vault"
    shutil.copytree(CASES_DIR, vault, ignore=shutil.ignore_patterns("*.yml"))
    out = vault.parent / "cases.apkg"
    result = run(vault, Config(), out=out)
    col = AnkiCollection(vault.parent / "anki")
    try:
        log = col.import_deck(out)
        yield Built(result, log, col.notes(), col.media_files())
    finally:
        col.close()


def media_name(file_name: str) -> str:
    """The content-addressed name note2anki gives an attachment of tests/cases/attachments."""
    data = (CASES_DIR / "attachments" / file_name).read_bytes()
    stem, suffix = file_name.rsplit(".", 1)
    return f"{stem.replace(' ', '_')}-{hashlib.sha256(data).hexdigest()[:12]}.{suffix}"


def expand(html: str) -> str:
    return re.sub(r"\{([^{}]+\.\w+)\}", lambda m: media_name(m.group(1)), html)


def test_every_case_has_expectations() -> None:
    assert CASES, "no fixture cases found"
    missing = [c for c in CASES if not (CASES_DIR / f"{c}.yml").exists()]
    assert missing == []


def test_import_is_clean(built: Built) -> None:
    assert built.log.duplicate == built.log.conflicting == built.log.missing_notetype == 0
    assert built.log.new == built.result.card_total == len(built.notes)


@pytest.mark.parametrize("case", CASES)
def test_case(case: str, built: Built) -> None:
    expected: dict[str, Any] = yaml.safe_load((CASES_DIR / f"{case}.yml").read_text(encoding="utf-8"))
    source = f"{case}.md"
    notes = [n for n in built.notes if n.source == source]
    cue = [n for n in notes if n.note_type == "note2anki Cue"]
    summary = [n for n in notes if n.note_type == "note2anki Summary"]
    cloze = [n for n in notes if n.note_type == "note2anki Cloze"]

    want_cue = [(c["q"], expand(c["a"])) for c in expected.get("cue", [])]
    assert [(squash(n.fields["Question"]), squash(n.fields["Answer"])) for n in cue] == want_cue

    if "summary" in expected:
        assert len(summary) == 1
        assert list_items(summary[0].fields["Summary"]) == expected["summary"]
        assert summary[0].fields["Title"] == case
    else:
        assert summary == []

    # cloze notes: the Text field, and one card per marked term
    assert [squash(n.fields["Text"]) for n in cloze] == expected.get("cloze", [])
    for note in cloze:
        assert note.card_count == len(set(re.findall(r"\{\{c(\d+)::", note.fields["Text"])))

    for note in notes:
        if note not in cloze:
            assert note.card_count == 1
        assert note.source_link == f"obsidian://open?vault=vault&file={quote(case)}"
        if "deck" in expected:
            assert set(note.decks) == {expected["deck"]}
        if "tags" in expected:
            assert sorted(note.tags) == sorted(expected["tags"])

    for file_name in expected.get("media", []):
        assert media_name(file_name) in built.media

    # `CODE` or `CODE:line` (the line the message names)
    want = sorted(expected.get("warnings", []))
    found = sorted(
        f"{d.code}:{d.line}" if f"{d.code}:{d.line}" in want else d.code
        for d in built.result.diagnostics
        if d.path == source
    )
    assert found == want
