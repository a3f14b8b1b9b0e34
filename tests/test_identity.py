"""Re-import never duplicates and never loses a review; identical input gives identical bytes.

Every check here goes through the real Anki importer.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from note2anki import Config, run
from note2anki.cli import cli
from note2anki.model import CardKind
from note2anki.notetypes import CLOZE_MODEL, CSS, CUE_MODEL, MODEL_MOD, SUMMARY_MODEL
from note2anki.render import identity_material
from tests.anki_collection import AnkiCollection
from tests.conftest import ROOT

FM = "---\n⭕과목: Networking\n⭕교재: Packets by Hand\n---\n"
ROUTING = (
    FM
    + """### 단서 질문

- What does a router do?
    - Forwards packets between networks.
- What is a default route?
    - The route used when nothing more specific matches.
- 라우팅 테이블에는 무엇이 있나?
    - 목적지, 다음 홉, 인터페이스.
- What is TTL for?
    - It stops packets looping forever.

### 핵심 요약

- 라우터는 네트워크 사이에서 패킷을 전달한다.
"""
)
SWITCHING = (
    FM
    + """### 단서 질문

- What does a switch learn?
    - Which MAC address is behind which port.
- What is a broadcast domain?
    - All hosts that receive each other's broadcasts.
"""
)


def build(vault: Path, out: Path, epoch: int, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict:  # type: ignore[type-arg]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(epoch))
    report = out.with_suffix(".json")
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out), "--report", str(report), *args])
    assert result.exit_code == 0, result.stderr
    return json.loads(report.read_text(encoding="utf-8"))


def study(anki: AnkiCollection, count: int) -> dict[int, int]:
    """Answer `count` new cards 'Good'; returns {card id: review count}."""
    col = anki.col
    col.decks.select(col.decks.id("Networking::Packets by Hand"))
    answered: dict[int, int] = {}
    for _ in range(count):
        card = col.sched.getCard()
        assert card is not None
        card.start_timer()
        col.sched.answerCard(card, 3)
        answered[card.id] = answered.get(card.id, 0) + 1
    return answered


def reviews(anki: AnkiCollection, cid: int) -> int:
    return int(anki.col.db.scalar("select count() from revlog where cid = ?", cid))


def by_question(anki: AnkiCollection) -> dict[str, object]:
    return {n.fields.get("Question", n.fields.get("Title")): n for n in anki.notes()}


def test_edit_reword_rename_reorder_delete_add(
    write_vault, tmp_path: Path, anki: AnkiCollection, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = write_vault({"net/routing.md": ROUTING, "net/switching.md": SWITCHING})
    first = build(vault, tmp_path / "v1.apkg", int(time.time()) - 2 * 86400, monkeypatch)
    assert len(first["added"]) == 7 and first["removed"] == []
    assert anki.import_deck(tmp_path / "v1.apkg").new == 7
    studied = study(anki, 7)
    v1 = by_question(anki)

    # The student edits, in Anki, a card whose source will not change.
    student = anki.col.get_note(v1["What is a broadcast domain?"].id)  # type: ignore[attr-defined]
    student["Answer"] = "Edited by me in Anki."
    anki.col.update_note(student)

    # In the vault: edit an answer, reword a question, delete one, add one, reorder, rename a file.
    routing = (
        ROUTING.replace("Forwards packets between networks.", "Forwards packets between IP networks.")
        .replace("What is a default route?", "What is the default route?")
        .replace("- What is TTL for?\n    - It stops packets looping forever.\n", "")
        .replace("### 핵심 요약", "- What is ECMP?\n    - Several equal-cost next hops.\n\n### 핵심 요약")
    )
    lines = routing.split("\n")
    start = lines.index("- 라우팅 테이블에는 무엇이 있나?")
    block = lines[start : start + 2]
    del lines[start : start + 2]
    q1 = lines.index("- What does a router do?")
    lines[q1:q1] = block  # the Korean question moves to the top
    (vault / "net/routing.md").write_text("\n".join(lines), encoding="utf-8")
    (vault / "net/switching.md").rename(vault / "l2 switching.md")

    second = build(vault, tmp_path / "v2.apkg", int(time.time()) + 5, monkeypatch)
    log = anki.import_deck(tmp_path / "v2.apkg")
    notes = anki.notes()
    assert len(notes) == 8  # 7 + 1 added; the deleted card stays in Anki until the student deletes it
    # Anki's log calls notes it found unchanged "duplicate": they are matched by GUID and left alone
    assert (log.new, log.updated, log.duplicate, log.conflicting) == (1, 4, 2, 0)
    v2 = by_question(anki)

    # edited and reworded cards: same notes and cards, new text, reviews kept
    assert v2["What does a router do?"].id == v1["What does a router do?"].id  # type: ignore[attr-defined]
    assert "between IP networks" in v2["What does a router do?"].fields["Answer"]  # type: ignore[attr-defined]
    assert v2["What is the default route?"].id == v1["What is a default route?"].id  # type: ignore[attr-defined]
    for cid, count in studied.items():
        assert reviews(anki, cid) == count  # every answered card still has its review history
    assert anki.col.db.scalar("select count() from cards where type != 0") == len(studied)

    # renamed file: same notes, new Source
    moved = v2["What does a switch learn?"]
    assert moved.id == v1["What does a switch learn?"].id  # type: ignore[attr-defined]
    assert moved.source == "l2 switching.md"  # type: ignore[attr-defined]
    # The student's edit was on a card whose file then moved: the Source field changed after the edit, so the
    # newer source wins (test_student_edit_survives_when_source_unchanged shows the other side).
    assert v2["What is a broadcast domain?"].source == "l2 switching.md"  # type: ignore[attr-defined]
    assert v2["What is ECMP?"].fields["Answer"] == "<ul>\n<li>Several equal-cost next hops.</li>\n</ul>"  # type: ignore[attr-defined]

    assert [e["question"] for e in second["added"]] == ["What is ECMP?"]
    assert [e["question"] for e in second["removed"]] == ["What is TTL for?"]
    removed_nid = second["removed"][0]["nid"]
    assert second["removed_search"] == f"nid:{removed_nid}"
    assert anki.col.find_notes(second["removed_search"]) == [v1["What is TTL for?"].id]  # type: ignore[attr-defined]
    rekeyed = {(r["before"]["question"], r["after"]["question"]) for r in second["rekeyed"]}
    assert ("What is a default route?", "What is the default route?") in rekeyed
    assert ("What does a switch learn?", "What does a switch learn?") in rekeyed  # moved


def test_student_edit_survives_when_source_unchanged(
    write_vault, tmp_path: Path, anki: AnkiCollection, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = write_vault({"routing.md": ROUTING})
    build(vault, tmp_path / "v1.apkg", int(time.time()) - 86400, monkeypatch)
    anki.import_deck(tmp_path / "v1.apkg")
    target = by_question(anki)["What is TTL for?"]
    note = anki.col.get_note(target.id)  # type: ignore[attr-defined]
    note["Answer"] = "My own mnemonic."
    anki.col.update_note(note)

    # another card changes; this one does not
    (vault / "routing.md").write_text(ROUTING.replace("Forwards packets", "Moves packets"), encoding="utf-8")
    report = build(vault, tmp_path / "v2.apkg", int(time.time()) + 5, monkeypatch)
    assert [e["question"] for e in report["changed"]] == ["What does a router do?"]
    log = anki.import_deck(tmp_path / "v2.apkg")
    assert (log.new, log.updated) == (0, 1)
    after = by_question(anki)
    assert after["What is TTL for?"].fields["Answer"] == "My own mnemonic."  # type: ignore[attr-defined]
    assert "Moves packets" in after["What does a router do?"].fields["Answer"]  # type: ignore[attr-defined]


def test_same_vault_twice_and_from_a_fresh_copy_gives_identical_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "a" / "samples"
    shutil.copytree(ROOT / "samples", vault)
    lock_before = (vault / "note2anki.lock").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")  # "now" differs from the lock's times
    run(vault, Config(), out=tmp_path / "1.apkg")
    monkeypatch.delenv("SOURCE_DATE_EPOCH")  # and then the real clock
    run(vault, Config(), out=tmp_path / "2.apkg")
    clone = tmp_path / "b" / "samples"
    shutil.copytree(vault, clone)
    run(clone, Config(), out=tmp_path / "3.apkg")
    digests = {hashlib.sha256((tmp_path / f"{i}.apkg").read_bytes()).hexdigest() for i in (1, 2, 3)}
    assert len(digests) == 1
    assert (vault / "note2anki.lock").read_bytes() == lock_before
    with zipfile.ZipFile(tmp_path / "1.apkg") as zf:
        assert [i.filename for i in zf.infolist()][:2] == ["collection.anki2", "media"]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_first_build_without_state_is_stable_and_creates_it(write_vault, tmp_path: Path) -> None:
    a = write_vault({"routing.md": ROUTING}, name="a")
    b = write_vault({"routing.md": ROUTING}, name="b")
    run(a, Config(), out=tmp_path / "a.apkg")
    run(b, Config(), out=tmp_path / "b.apkg")
    guids = [
        [
            json.loads(line)["guid"]
            for line in (v / "note2anki.lock").read_text().splitlines()
            if line[0] == "{"
        ]
        for v in (a, b)
    ]
    assert guids[0] == guids[1] and len(guids[0]) == 5


def test_same_name_images_in_different_folders_both_arrive(
    write_vault, tmp_path: Path, anki: AnkiCollection
) -> None:
    red, blue = b"\x89PNG red", b"\x89PNG blue"
    q = "### 단서 질문\n\n- {q}\n\n    ![[image 1.png]]\n"
    vault = write_vault(
        {
            "a/first.md": q.format(q="First?"),
            "a/image 1.png": red,
            "b/second.md": q.format(q="Second?"),
            "b/image 1.png": blue,
        }
    )
    run(vault, Config(), out=tmp_path / "o.apkg")
    anki.import_deck(tmp_path / "o.apkg")
    media = Path(anki.col.media.dir())
    shown = {n.fields["Question"]: n.fields["Answer"] for n in anki.notes()}
    for question, data in (("First?", red), ("Second?", blue)):
        name = shown[question].split('src="')[1].split('"')[0]
        assert (media / name).read_bytes() == data


def test_frozen_refuses_to_change_the_state_file(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"routing.md": ROUTING})
    out = tmp_path / "o.apkg"
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out), "--frozen"])
    assert result.exit_code == 1
    assert "note2anki.lock would change (5 added, 0 changed, 0 removed)" in result.stderr
    assert not out.exists() and not (vault / "note2anki.lock").exists()
    assert CliRunner().invoke(cli, ["build", str(vault), "-o", str(out)]).exit_code == 0
    assert CliRunner().invoke(cli, ["build", str(vault), "-o", str(out), "--frozen"]).exit_code == 0


def test_damaged_state_file_stops_the_build_with_a_fix(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"routing.md": ROUTING, "note2anki.lock": "<<<<<<< HEAD\n{}\n"})
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "o.apkg")])
    assert result.exit_code == 1
    assert (
        "note2anki.lock:1: the card state file is damaged; it holds git merge-conflict markers"
        in result.stderr
    )


def test_unreadable_note_keeps_its_cards_identity(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"routing.md": ROUTING})
    run(vault, Config(), out=tmp_path / "1.apkg")
    before = (vault / "note2anki.lock").read_text()
    (vault / "routing.md").write_text("---\nbad: [yaml\n---\n" + ROUTING, encoding="utf-8")
    result = run(vault, Config(), out=tmp_path / "2.apkg")
    assert result.report is not None and result.report.removed == ()
    assert (vault / "note2anki.lock").read_text() == before


# Field and template names are frozen (a change makes Anki import a "+" copy); the look may change only with
# a newer MODEL_MOD. Update this fingerprint together with MODEL_MOD.
LOOK = ("6b39fab17a35791c", 1796140800)


def test_note_types_are_frozen() -> None:
    assert [f["name"] for f in CUE_MODEL.fields] == [
        "Question",
        "Answer",
        "Subject",
        "Textbook",
        "Note",
        "Source",
    ]
    assert [f["name"] for f in SUMMARY_MODEL.fields] == ["Title", "Summary", "Subject", "Textbook", "Source"]
    assert [t["name"] for t in CUE_MODEL.templates] == ["Cue"]
    assert [f["name"] for f in CLOZE_MODEL.fields] == ["Text", "Subject", "Textbook", "Note", "Source"]
    assert [t["name"] for t in SUMMARY_MODEL.templates] == ["Summary"]
    assert [t["name"] for t in CLOZE_MODEL.templates] == ["Cloze"]
    ids = (CUE_MODEL.model_id, SUMMARY_MODEL.model_id, CLOZE_MODEL.model_id)
    assert ids == (1607392319, 1607392320, 1607392321)
    models = (CUE_MODEL, SUMMARY_MODEL, CLOZE_MODEL)
    templates = [(t["name"], t["qfmt"], t["afmt"]) for m in models for t in m.templates]
    look = json.dumps([templates, CSS], ensure_ascii=False)
    assert (hashlib.sha256(look.encode()).hexdigest()[:16], MODEL_MOD) == LOOK


def test_characters_anki_cannot_store_are_stripped(write_vault, tmp_path: Path, anki: AnkiCollection) -> None:
    vault = write_vault(
        {"ctl.md": "### 단서 질문\n\n- Unit\x1fseparator?\n    - Bell\x07 and NUL\x00 gone.\n"}
    )
    run(vault, Config(), out=tmp_path / "o.apkg")
    assert anki.import_deck(tmp_path / "o.apkg").new == 1
    (note,) = anki.notes()
    assert (note.fields["Question"], note.fields["Answer"]) == (
        "Unitseparator?",
        "<ul>\n<li>Bell and NUL gone.</li>\n</ul>",
    )


def test_failed_write_leaves_previous_deck_intact(write_vault, tmp_path: Path) -> None:
    from note2anki.export import ExportError, write_apkg
    from note2anki.model import DeckNote, MediaFile

    vault = write_vault({"routing.md": ROUTING})
    out = tmp_path / "deck.apkg"
    good = run(vault, Config(), out=out)
    before = out.read_bytes()
    card = good.redone[0]
    gone = MediaFile(path=tmp_path / "vanished.png", name="vanished-0.png")
    broken = [DeckNote(card=type(card)(**{**card.__dict__, "media": (gone,)}), guid="g", nid=1, mod=1)]
    with pytest.raises(ExportError, match="cannot read the image"):
        write_apkg(broken, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


CLOZE_NOTE = (
    FM
    + """### 핵심 요약

- A router picks the **next hop** from its **routing table**.
- 라우터는 패킷을 전달한다.
"""
)


def test_cloze_note_keeps_its_reviews_when_a_term_is_added(
    write_vault, tmp_path: Path, anki: AnkiCollection, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = write_vault({"cloze.md": CLOZE_NOTE})
    build(vault, tmp_path / "v1.apkg", int(time.time()) - 86400, monkeypatch)
    log = anki.import_deck(tmp_path / "v1.apkg")
    assert log.new == 2  # the summary note and one cloze note with two cards
    cloze = next(n for n in anki.notes() if n.note_type == "note2anki Cloze")
    assert cloze.card_count == 2
    answered = study(anki, 3)
    assert len(answered) == 3

    # a third term is marked, and a new note arrives whose ids follow the cloze note's
    edited = CLOZE_NOTE.replace("its **routing table**", "its **routing table** by **longest prefix**")
    (vault / "cloze.md").write_text(edited, encoding="utf-8")
    (vault / "new.md").write_text(ROUTING, encoding="utf-8")
    report = build(vault, tmp_path / "v2.apkg", int(time.time()) + 5, monkeypatch)
    assert sorted(e["kind"] for e in report["changed"]) == ["cloze", "summary"]
    log = anki.import_deck(tmp_path / "v2.apkg")
    assert (log.updated, log.duplicate, log.conflicting) == (2, 0, 0)
    after = next(n for n in anki.notes() if n.note_type == "note2anki Cloze")
    assert after.id == cloze.id and after.card_count == 3
    assert "{{c3::<strong>longest prefix</strong>}}" in after.fields["Text"]
    # every review stays with its card
    assert all(reviews(anki, cid) == count for cid, count in answered.items())
    assert anki.card_count() == 1 + 3 + 5  # summary, cloze (3 terms), new note: 4 cue + 1 summary


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_FIELD = st.one_of(_TEXT, _TEXT.map(lambda t: f'<a href="obsidian://open?vault={t}&file=x">{t}</a>'))


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(list(CardKind)),
    fields=st.lists(_FIELD, min_size=2, max_size=6).map(tuple),
    deck=_TEXT,
    tags=st.lists(_TEXT, max_size=3).map(tuple),
)
def test_identity_hashes_are_those_of_the_json_text(
    kind: CardKind, fields: tuple[str, ...], deck: str, tags: tuple[str, ...]
) -> None:
    """The lock's hashes are sha256 of `json.dumps(parts, ensure_ascii=False)`: put together by hand for
    speed, the text must stay exactly that, or every card of every vault would read as changed."""

    def digest(*parts: object) -> str:
        return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:20]

    got = identity_material(kind, fields, deck, tags)
    without_vault = [re.sub(r"(obsidian://open\?vault=)[^&\"]*", r"\1", f) for f in fields]
    answer = fields[0 if kind is CardKind.CLOZE else 1]
    assert got["content_hash"] == digest(kind.value, without_vault, tags, deck)
    assert got["answer_hash"] == digest(answer)
