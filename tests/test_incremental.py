"""Incremental builds (cache, only changed notes redone) give exactly what a full rebuild gives."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from note2anki import Config, load_config, run, state
from note2anki.build import cache as cache_module
from note2anki.build.private import CACHE_DIR
from tests.anki_collection import AnkiCollection
from tests.conftest import ROOT


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(vault: Path) -> None:
        path = vault / rel
        text = path.read_text(encoding="utf-8")
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return apply


def rename(rel: str, to: str) -> Callable[[Path], None]:
    return lambda vault: (vault / rel).rename(vault / to)


def delete(rel: str) -> Callable[[Path], None]:
    return lambda vault: (vault / rel).unlink()


def add(rel: str, text: str) -> Callable[[Path], None]:
    return lambda vault: (vault / rel).write_text(text, encoding="utf-8")


def touch_image(rel: str) -> Callable[[Path], None]:
    return lambda vault: (vault / rel).write_bytes((vault / rel).read_bytes() + b"\0")


NEW_NOTE = "---\n⭕과목: Networking\n⭕교재: 새 교재\n---\n### 단서 질문\n\n- 새 노트의 질문?\n    - 새 답.\n"
STEPS: list[tuple[str, Callable[[Path], None]]] = [
    ("edit an answer", edit("AWS/S3 기초.md", "버킷", "버킷(bucket)")),
    (
        "add a question",
        edit("Networking/DNS 조회 과정.md", "### 단서 질문\n", "### 단서 질문\n\n- 새 질문?\n    - 답.\n"),
    ),
    ("mark one more cloze term", edit("Algorithms/시간 복잡도.md", "상수 계수는", "**상수 계수**는")),
    ("add a note in a new deck", add("Networking/새 노트.md", NEW_NOTE)),
    ("rename a note", rename("AWS/IAM 권한.md", "AWS/IAM 권한 정리.md")),
    ("change an image", touch_image("attachments/image 1.png")),
    ("break a note's YAML", edit("Networking/TCP Handshake.md", "---\n", "---\nbroken: [\n")),
    ("delete a note", delete("Algorithms/이분 탐색.md")),
    ("nothing", lambda vault: None),
]


def test_every_incremental_build_equals_a_full_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anki: AnkiCollection
) -> None:
    vault = tmp_path / "samples"
    shutil.copytree(ROOT / "samples", vault, ignore=shutil.ignore_patterns(".note2anki"))
    out = tmp_path / "deck.apkg"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    run(vault, Config(), out=out)
    for n, (what, change) in enumerate(STEPS, 1):
        change(vault)
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(1790000000 + 100 * n))
        lock_before = (vault / "note2anki.lock").read_text(encoding="utf-8")
        # the reference: a copy of the vault before this build, without any cache, built whole
        reference = tmp_path / f"full-{n}" / "samples"
        shutil.copytree(vault, reference, ignore=shutil.ignore_patterns(".note2anki"))
        full = run(reference, Config(), out=tmp_path / f"full-{n}.apkg", cache=False)
        fast = run(vault, Config(), out=out)
        assert sha(out) == sha(tmp_path / f"full-{n}.apkg"), what
        assert (vault / "note2anki.lock").read_text(encoding="utf-8") == (
            reference / "note2anki.lock"
        ).read_text(encoding="utf-8"), what
        assert [d.format() for d in fast.diagnostics] == [d.format() for d in full.diagnostics], what
        assert fast.card_total == full.card_total, what
        assert fast.report is not None and full.report is not None
        assert fast.report.to_json() == full.report.to_json(), what
        if what == "nothing":
            assert fast.up_to_date and (vault / "note2anki.lock").read_text(encoding="utf-8") == lock_before
    log = anki.import_deck(out)
    assert (log.new, log.duplicate) == (fast.card_total, 0)


def cache_entries(vault: Path) -> dict[str, bytes]:
    with contextlib.closing(sqlite3.connect(vault / CACHE_DIR / "notes.sqlite")) as db:
        return dict(db.execute("SELECT key, data FROM entries ORDER BY key"))


def write_cache_entry(vault: Path, key: str, data: bytes) -> None:
    with contextlib.closing(sqlite3.connect(vault / CACHE_DIR / "notes.sqlite")) as db, db:
        db.execute("UPDATE entries SET data = ? WHERE key = ?", (data, key))


def test_a_damaged_cache_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    vault = tmp_path / "samples"
    shutil.copytree(ROOT / "samples", vault, ignore=shutil.ignore_patterns(".note2anki"))
    first = run(vault, Config(), out=tmp_path / "a.apkg")
    cache = vault / CACHE_DIR
    entries = cache_entries(vault)
    assert len(entries) == first.notes_read
    with_cards = [k for k, v in entries.items() if json.loads(v)["cards"]]
    write_cache_entry(vault, with_cards[0], b"{not json")  # damaged
    data = json.loads(entries[with_cards[1]])
    data["cards"][0]["fields"][1] = "<p>tampered</p>"  # well-formed but stale: its key no longer matches
    data["key"] = "0" * 64
    write_cache_entry(vault, with_cards[1], json.dumps(data).encode())
    (cache / "build.json").write_text("[]", encoding="utf-8")
    (cache / "collection.anki2").write_bytes(b"garbage")
    again = run(vault, Config(), out=tmp_path / "b.apkg")
    assert sha(tmp_path / "a.apkg") == sha(tmp_path / "b.apkg")
    assert [c.fields for c in again.redone] == [c.fields for c in first.redone]
    assert "tampered" not in (tmp_path / "b.apkg").read_bytes().decode("latin-1")
    assert cache_entries(vault) == entries  # both entries written again


def test_a_cache_file_that_is_not_a_database_is_replaced(tmp_path: Path) -> None:
    vault = tmp_path / "samples"
    shutil.copytree(ROOT / "samples", vault, ignore=shutil.ignore_patterns(".note2anki"))
    (vault / CACHE_DIR).mkdir(parents=True)
    (vault / CACHE_DIR / "notes.sqlite").write_bytes(b"not a database" * 100)
    first = run(vault, Config(), out=tmp_path / "a.apkg")
    assert len(cache_entries(vault)) == first.notes_read
    shutil.rmtree(vault / CACHE_DIR)  # a build without any cache gives the same deck
    assert run(vault, Config(), out=tmp_path / "b.apkg").redone == first.redone
    assert sha(tmp_path / "a.apkg") == sha(tmp_path / "b.apkg")


def test_a_cache_locked_by_another_build_is_done_without_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another build holding the cache: this one waits BUSY_SECONDS, builds without the cache, and neither
    deletes nor changes it."""
    vault = tmp_path / "samples"
    shutil.copytree(ROOT / "samples", vault, ignore=shutil.ignore_patterns(".note2anki"))
    first = run(vault, Config(), out=tmp_path / "a.apkg")
    entries = cache_entries(vault)
    (vault / "AWS" / "S3 기초.md").write_text(
        (vault / "AWS" / "S3 기초.md").read_text(encoding="utf-8").replace("버킷", "버킷(bucket)", 1),
        encoding="utf-8",
    )
    monkeypatch.setattr(cache_module, "BUSY_SECONDS", 0.1)
    with contextlib.closing(sqlite3.connect(vault / CACHE_DIR / "notes.sqlite")) as other:
        other.execute("BEGIN EXCLUSIVE")
        again = run(vault, Config(), out=tmp_path / "b.apkg")
        other.rollback()
    assert again.notes_read == first.notes_read and not again.up_to_date
    assert cache_entries(vault) == entries


def test_settings_and_images_invalidate_cached_notes(tmp_path: Path) -> None:
    vault = tmp_path / "samples"
    shutil.copytree(ROOT / "samples", vault, ignore=shutil.ignore_patterns(".note2anki"))
    run(vault, Config(), out=tmp_path / "a.apkg")
    changed = run(vault, Config(obsidian_vault="Other"), out=tmp_path / "a.apkg")
    assert not changed.up_to_date and "vault=Other" in changed.redone[0].fields[-1]
    (vault / "attachments" / "image 1.png").unlink()
    gone = run(vault, Config(obsidian_vault="Other"), out=tmp_path / "a.apkg")
    assert any(d.code == "N2A301" and "image 1.png" in d.message for d in gone.diagnostics)


def test_one_process_or_two_give_the_same_deck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_sections import generated_vault

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    vault = generated_vault(tmp_path / "vault", 240)  # enough notes for the process pool
    one = run(vault, Config(), out=tmp_path / "one.apkg", jobs=1, cache=False)
    (vault / "note2anki.lock").unlink()
    two = run(vault, Config(), out=tmp_path / "two.apkg", jobs=2, cache=False)
    assert one.card_total == two.card_total > 2000
    assert sha(tmp_path / "one.apkg") == sha(tmp_path / "two.apkg")
    assert [d.format() for d in one.diagnostics] == [d.format() for d in two.diagnostics]


def test_a_damaged_kept_collection_means_a_whole_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    vault = tmp_path / "samples"
    shutil.copytree(ROOT / "samples", vault, ignore=shutil.ignore_patterns(".note2anki"))
    out = tmp_path / "deck.apkg"
    run(vault, Config(), out=out)
    kept = vault / CACHE_DIR / "collection.anki2"
    st = kept.stat()
    kept.write_bytes(b"x" * st.st_size)  # same size and time: only SQLite can tell
    os.utime(kept, ns=(st.st_atime_ns, st.st_mtime_ns))
    edit("AWS/S3 기초.md", "버킷", "버킷(bucket)")(vault)
    run(vault, Config(), out=out)
    reference = tmp_path / "ref" / "samples"
    shutil.copytree(vault, reference, ignore=shutil.ignore_patterns(".note2anki"))
    run(reference, Config(), out=tmp_path / "ref.apkg", cache=False)
    assert sha(out) == sha(tmp_path / "ref.apkg")


def _entry(path: str, n: int) -> state.Entry:
    guid = hashlib.sha256(path.encode()).hexdigest()[:8] + str(n)  # GUIDs are ASCII
    return state.Entry(path, "cue", guid, int(guid[:6], 16) * 10 + n, "h", "a", 1, f"질문 {n}?", "답")


PATHS = ["AWS/a.md", "AWS/a b.md", 'AWS/"quoted" \\ 백슬래시.md', "Networking/망.md", "z.md"]


@pytest.mark.parametrize(
    "asked",
    [
        ["AWS/a.md"],
        ["AWS/a b.md", "z.md"],
        ['AWS/"quoted" \\ 백슬래시.md'],
        ["0 first.md"],
        ["zz last.md"],
        ["AWS/a c.md", "Networking/0.md", "Networking/망.md"],
    ],
)
def test_a_state_file_read_in_part_splices_to_what_writing_it_whole_gives(asked: list[str]) -> None:
    """read_partial finds a note's lines by binary search over the bytes and splice_state puts the new
    lines back: the same bytes as format_state of the whole new state, wherever the notes sort (paths that
    are prefixes of others, escaped quotes, Korean, before the first and after the last line)."""
    old = [_entry(p, n) for p in PATHS for n in range(3)]
    data = state.format_state(old)
    partial = state.read_partial(data, asked)
    assert sorted(partial.entries) == sorted(e for e in old if e.path in asked)
    assert partial.guids == {e.guid for e in old if e.path not in asked}
    assert partial.nids == {e.nid for e in old}
    new = [_entry(p, n) for p in asked for n in (5, 6)]
    kept = [e for e in old if e.path not in asked]
    assert state.splice_state(partial, new) == state.format_state(kept + new)
    assert state.splice_state(partial, []) == state.format_state(kept)


def test_a_state_file_out_of_order_next_to_a_note_is_not_read_in_part() -> None:
    """Only a state file whose bytes are the ones the last build wrote (sorted) is read in part (the
    manifest keeps its sha256); read_partial still checks the lines next to each note's and refuses."""
    lines = state.format_state([_entry("b.md", 1), _entry("c.md", 1)]).split(b"\n")
    data = b"\n".join([lines[0], lines[1], lines[3], lines[2], *lines[4:]])
    with pytest.raises(state.NotSorted):
        state.read_partial(data, ["c.md"])


def test_settings_that_do_not_shape_cards_keep_the_cache(tmp_path: Path) -> None:
    vault = tmp_path / "samples"
    shutil.copytree(ROOT / "samples", vault, ignore=shutil.ignore_patterns(".note2anki"))
    run(vault, Config(), out=tmp_path / "a.apkg")
    for setting in ('output = "../x.apkg"\n', 'ignore = ["N2A201"]\n', 'exclude = ["nothing/**"]\n'):
        (vault / "note2anki.toml").write_text(setting, encoding="utf-8")
        result = run(vault, load_config(vault), out=tmp_path / "b.apkg")
        assert result.fresh is not None and result.fresh <= {"note2anki.lock"}, setting  # from the cache
    (vault / "note2anki.toml").write_text("cloze = false\n", encoding="utf-8")
    result = run(vault, load_config(vault), out=tmp_path / "c.apkg")
    assert result.fresh is not None and len(result.fresh) > 9  # a setting that shapes cards: all read again


# The cache's entry format and its version go together: changing how an entry or the last build's record is
# written without raising FORMAT would make a new note2anki trust an old file. Update both together.
ENTRY = ("924b42a3f9bfb979", 5)


def test_a_change_of_the_cache_format_raises_its_version(tmp_path: Path) -> None:
    from note2anki.build.cache import FORMAT, encode_entry
    from note2anki.build.lastbuild import NoteRecord, Totals
    from note2anki.model import (
        CardKind,
        Diagnostic,
        MediaDep,
        MediaFile,
        MultiCard,
        NoteResult,
        RenderedCard,
        Severity,
    )

    card = RenderedCard(
        CardKind.CUE, "a.md", 3, "Q?", ("q", "a"), "D", ("t",), "S",
        (MediaFile(tmp_path / "i.png", "i-0.png"),), "h1", "h2", "ex",
    )  # fmt: skip
    problem = Diagnostic("a.md", 3, "N2A201", Severity.WARNING, "m")
    dep = MediaDep("i.png", "i.png", "1:2:3:4")
    result = NoteResult((card,), (problem,), True, (dep,))
    record = NoteRecord("k", "s", True, (dep,), {"cue": 1}, (("D", "cue"),), (("i.png", "i-0.png"),),
                        (problem,), (MultiCard("D", "a.md", 0, 1, 2),))  # fmt: skip
    blob = encode_entry("k", result, tmp_path) + json.dumps(record.to_json()).encode()
    blob += json.dumps(Totals.of({"a.md": record}).to_json()).encode()
    assert (hashlib.sha256(blob).hexdigest()[:16], FORMAT) == ENTRY
    assert NoteRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    # an entry of another format is never read back: the note is read again
    vault = tmp_path / "samples"
    shutil.copytree(ROOT / "samples", vault, ignore=shutil.ignore_patterns(".note2anki"))
    run(vault, Config(), out=tmp_path / "a.apkg")
    key, data = next(iter(cache_entries(vault).items()))
    older = json.loads(data)
    older["format"] = FORMAT - 1
    write_cache_entry(vault, key, json.dumps(older).encode())
    (vault / CACHE_DIR / "build.json").unlink()
    again = run(vault, Config(), out=tmp_path / "b.apkg")
    assert again.fresh is not None and len(again.fresh) == 2  # that note, and the lock
    assert sha(tmp_path / "a.apkg") == sha(tmp_path / "b.apkg")


def test_notes_that_cannot_be_read_are_not_counted_as_read(write_vault, tmp_path: Path) -> None:
    vault = write_vault(
        {"good.md": "## Cue questions\n\n- Q?\n    - A.\n", "bad.md": "---\nx: [\n---\n## Cue questions\n"}
    )
    result = run(vault, Config(), out=tmp_path / "a.apkg")
    assert result.notes_read == 1 and len(result.errors) == 1
    assert run(vault, Config(), out=tmp_path / "a.apkg").notes_read == 1  # up to date: from the record
    assert run(vault, Config()).notes_read == 1
