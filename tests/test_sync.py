"""`note2anki sync --collection`: cards straight into a real Anki collection (the official `anki` package),
removed cards suspended or deleted, and only this vault's cards ever touched (issue 17)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from anki.collection import Collection
from click.testing import CliRunner

from note2anki.cli import cli

NET = """---
⭕과목: Networking
⭕교재: 네트워크 첫걸음
---
### 단서 질문

- TCP와 UDP의 차이는?
    1. TCP는 연결을 맺는다.
    2. UDP는 맺지 않는다.
- What does DNS do?
    - It turns names into addresses.
- 서브넷 마스크의 역할은?
    - 네트워크 부분과 호스트 부분을 나눈다. ![[topology.png|200]]
{extra}
### 핵심 필기

- 본문은 카드가 되지 않는다.

### 핵심 요약

- 전송 계층은 **포트 번호**로 프로세스를 구분한다.
- 라우터는 네트워크 사이를 잇는다.
"""
PNG = b"\x89PNG\r\n\x1a\n" + b"topology" * 8


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def student_collection(path: Path) -> Path:
    """A collection with the student's own deck, one note and a review of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    col = Collection(str(path))
    try:
        own_note(col, "내가 만든 카드", "손으로 쓴 답", "내 단어장")
    finally:
        col.close()
    return path


def own_note(col: Collection, front: str, back: str, deck: str) -> None:
    """A note the student made by hand, studied once."""
    note = col.new_note(col.models.by_name("Basic"))
    note["Front"], note["Back"] = front, back
    col.add_note(note, col.decks.id(deck))
    review(col, note.cards()[0].id)


def review(col: Collection, cid: int) -> None:
    card = col.get_card(cid)
    card.start_timer()
    col.sched.answerCard(card, 3)


def sync(vault: Path, col: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["sync", str(vault), "--collection", str(col), *args])
    return result.exit_code, result.stderr


def notes(path: Path) -> dict[str, dict[str, object]]:
    """Every note of the collection by its first field (question, title or cloze text): deck, tags, queue
    of its cards, reviews."""
    col = Collection(str(path))
    try:
        out = {}
        for nid in col.find_notes(""):
            note = col.get_note(nid)
            cards = note.cards()
            out[note.fields[0]] = {
                "type": note.note_type()["name"],
                "decks": {col.decks.name(c.did) for c in cards},
                "tags": set(note.tags),
                "suspended": all(c.queue == -1 for c in cards),
                "reps": sum(c.reps for c in cards),
                "fields": list(note.fields),
                "guid": note.guid,
            }
        return out
    finally:
        col.close()


def count(path: Path) -> int:
    col = Collection(str(path))
    try:
        return len(col.find_notes(""))
    finally:
        col.close()


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return write(
        tmp_path / "Study", {"Networking/TCP.md": NET.format(extra=""), "Networking/topology.png": PNG}
    )


def test_a_first_sync_adds_cards_and_leaves_the_students_own_alone(vault: Path, tmp_path: Path) -> None:
    col = student_collection(tmp_path / "anki" / "collection.anki2")
    code, stderr = sync(vault, col)
    assert code == 0, stderr
    assert (
        "note2anki: sync: 5 added, 0 updated, 0 unchanged, 0 removed (suspended), 0 restored, 0 moved, "
        in stderr
    )
    assert "1 media file new" in stderr and "(backup: " in stderr
    got = notes(col)
    assert got["내가 만든 카드"]["decks"] == {"내 단어장"} and got["내가 만든 카드"]["reps"] == 1
    assert got["TCP와 UDP의 차이는?"]["decks"] == {"Networking::네트워크 첫걸음"}
    assert got["TCP와 UDP의 차이는?"]["tags"] == {"subject::Networking", "textbook::네트워크_첫걸음"}
    assert len(got) == 1 + 3 + 1 + 1  # own, cue, summary, cloze
    media = Path(str(col).replace(".anki2", ".media"))
    assert next(p.name for p in media.iterdir() if p.suffix == ".png").startswith("topology-")
    assert list(col.parent.glob("backup-*.colpkg"))


def test_a_week_of_study_edits_renames_and_deletions(vault: Path, tmp_path: Path) -> None:
    col = student_collection(tmp_path / "anki" / "collection.anki2")
    assert sync(vault, col)[0] == 0
    c = Collection(str(col))
    try:
        for cid in c.find_cards("deck:Networking*"):
            review(c, cid)  # the student studies every card
        dns = c.get_note(c.find_notes('"What does DNS do?"')[0])
        dns["Answer"] = dns["Answer"].replace("addresses", "IP addresses (my note)")  # edited in Anki
        c.update_note(dns)
    finally:
        c.close()
    time.sleep(1.1)  # the next edit is a later second than the last build
    note = vault / "Networking/TCP.md"
    text = note.read_text(encoding="utf-8")
    text = text.replace("2. UDP는 맺지 않는다.", "2. UDP는 연결 없이 보낸다.")  # an answer edited
    text = text.replace("서브넷 마스크의 역할은?", "서브넷 마스크는 무엇을 나누는가?")  # a question reworded
    text = text.replace(
        "- TCP와 UDP의 차이는?",
        "- ARP는 무엇을 하는가?\n    - IP 주소로 MAC 주소를 찾는다.\n- TCP와 UDP의 차이는?",
    )
    note.write_text(text, encoding="utf-8")
    code, stderr = sync(vault, col)
    assert code == 0, stderr
    assert "1 added, 2 updated, 3 unchanged, 0 removed" in stderr
    got = notes(col)
    assert len(got) == 1 + 4 + 1 + 1  # no duplicates
    assert got["TCP와 UDP의 차이는?"]["reps"] == 1 and "연결 없이" in str(
        got["TCP와 UDP의 차이는?"]["fields"][1]
    )
    assert got["서브넷 마스크는 무엇을 나누는가?"]["reps"] == 1  # reworded: same card, reviews kept
    assert "(my note)" in str(got["What does DNS do?"]["fields"][1])  # unchanged in the notes: the edit stays
    assert got["ARP는 무엇을 하는가?"]["reps"] == 0

    # the file renamed: every card's link back to the note changes, no card is duplicated or loses reviews
    note.unlink()
    (vault / "Networking/TCP와 UDP.md").write_text(text, encoding="utf-8")
    code, stderr = sync(vault, col)
    assert code == 0 and "0 added, 6 updated, 0 unchanged, 0 removed" in stderr, stderr
    got = notes(col)
    assert len(got) == 1 + 4 + 1 + 1
    assert all(n["reps"] == 1 for q, n in got.items() if q != "ARP는 무엇을 하는가?")

    # a question deleted: suspended and tagged, reviews kept
    (vault / "Networking/TCP와 UDP.md").write_text(
        text.replace("- What does DNS do?\n    - It turns names into addresses.\n", ""), encoding="utf-8"
    )
    code, stderr = sync(vault, col)
    assert code == 0 and "1 removed (suspended)" in stderr
    dns_note = notes(col)["What does DNS do?"]
    assert dns_note["suspended"] and "note2anki::removed" in dns_note["tags"] and dns_note["reps"] == 1
    # restored: unsuspended and untagged
    (vault / "Networking/TCP와 UDP.md").write_text(text, encoding="utf-8")
    code, stderr = sync(vault, col)
    assert code == 0 and "1 restored" in stderr
    dns_note = notes(col)["What does DNS do?"]
    assert not dns_note["suspended"] and "note2anki::removed" not in dns_note["tags"]
    # deleted for good with --removed delete
    (vault / "Networking/TCP와 UDP.md").write_text(
        text.replace("- What does DNS do?\n    - It turns names into addresses.\n", ""), encoding="utf-8"
    )
    code, stderr = sync(vault, col, "--removed", "delete")
    assert code == 0 and "1 removed (deleted)" in stderr
    assert "What does DNS do?" not in notes(col)
    assert notes(col)["내가 만든 카드"]["reps"] == 1  # the student's own card, untouched throughout


def test_nothing_changed_writes_nothing(vault: Path, tmp_path: Path) -> None:
    col = student_collection(tmp_path / "anki" / "collection.anki2")
    assert sync(vault, col)[0] == 0
    before = (col.stat().st_mtime_ns, col.read_bytes())
    backups = sorted(col.parent.glob("backup-*"))
    code, stderr = sync(vault, col)
    assert code == 0 and "(already up to date: the collection was not changed)" in stderr
    assert (col.stat().st_mtime_ns, col.read_bytes()) == before
    assert sorted(col.parent.glob("backup-*")) == backups


def test_dry_run_writes_nothing(vault: Path, tmp_path: Path) -> None:
    col = student_collection(tmp_path / "anki" / "collection.anki2")
    before = col.read_bytes()
    code, stderr = sync(vault, col, "--dry-run")
    assert code == 0
    assert (
        "note2anki: sync would do: 5 added, 0 updated," in stderr
        and "(dry run: nothing was written)" in stderr
    )
    assert col.read_bytes() == before
    assert not (vault / "note2anki.lock").exists()  # nor the state file
    assert not list(col.parent.glob("backup-*"))


def test_two_vaults_in_one_collection_never_remove_each_others_cards(tmp_path: Path) -> None:
    col = student_collection(tmp_path / "anki" / "collection.anki2")
    one = write(tmp_path / "Networking", {"TCP.md": NET.format(extra="")})
    other = NET.replace("Networking", "Operating Systems").replace("TCP와 UDP", "프로세스와 스레드")
    other = other.replace("What does DNS do?", "What does a scheduler do?").replace("서브넷", "페이지")
    two = write(tmp_path / "OS", {"Process.md": other.format(extra="")})
    assert sync(one, col)[0] == 0
    assert sync(two, col)[0] == 0
    assert count(col) == 1 + 5 + 5
    (one / "TCP.md").write_text(
        NET.format(extra="").replace("- What does DNS do?\n    - It turns names into addresses.\n", ""),
        encoding="utf-8",
    )
    code, stderr = sync(one, col)
    assert code == 0 and "1 removed (suspended)" in stderr
    code, stderr = sync(two, col, "--removed", "delete")
    assert code == 0 and "0 removed (deleted)" in stderr
    got = notes(col)
    assert got["What does DNS do?"]["suspended"]  # the first vault's, suspended by the first vault only
    assert sum(1 for n in got.values() if n["suspended"]) == 1


def test_the_removal_guard_refuses_to_empty_a_deck(vault: Path, tmp_path: Path) -> None:
    col = student_collection(tmp_path / "anki" / "collection.anki2")
    assert sync(vault, col)[0] == 0
    before = col.read_bytes()
    (vault / "Networking").rename(tmp_path / "moved-away")  # a failed checkout, a wrong folder
    code, stderr = sync(vault, col)
    assert code == 1
    assert (
        "Error: this sync would remove 5 of this vault's 5 cards from the collection; nothing was changed. "
        "If the notes really are gone, sync again with --force" in stderr
    )
    assert col.read_bytes() == before
    code, stderr = sync(vault, col, "--force")
    assert code == 0 and "5 removed (suspended)" in stderr


def test_a_collection_open_elsewhere_is_never_written(vault: Path, tmp_path: Path) -> None:
    col = student_collection(tmp_path / "anki" / "collection.anki2")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from anki.collection import Collection; "
         "c = Collection(sys.argv[1]); print('open', flush=True); sys.stdin.read()", str(col)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        before = col.read_bytes()
        start = time.monotonic()
        code, stderr = sync(vault, col)
        assert time.monotonic() - start < 30  # never waits
        assert code == 1
        assert f"Error: {col} is open in Anki (or another program): close Anki and sync again" in stderr
        assert col.read_bytes() == before
    finally:
        holder.communicate("", timeout=30)


def test_a_changed_subject_moves_cards_and_removes_the_emptied_deck(vault: Path, tmp_path: Path) -> None:
    col = student_collection(tmp_path / "anki" / "collection.anki2")
    assert sync(vault, col)[0] == 0
    note = vault / "Networking/TCP.md"
    note.write_text(
        note.read_text(encoding="utf-8").replace("⭕교재: 네트워크 첫걸음", "⭕교재: 컴퓨터 네트워크"),
        encoding="utf-8",
    )
    code, stderr = sync(vault, col)
    assert code == 0 and "5 moved" in stderr
    c = Collection(str(col))
    try:
        names = {d.name for d in c.decks.all_names_and_ids()}
    finally:
        c.close()
    assert "Networking::컴퓨터 네트워크" in names and "Networking::네트워크 첫걸음" not in names
    assert "내 단어장" in names
    assert {d for n in notes(col).values() for d in n["decks"]} == {
        "Networking::컴퓨터 네트워크",
        "내 단어장",
    }


def test_profiles_and_usage_errors(vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "Anki2"
    student_collection(base / "User 1" / "collection.anki2")
    monkeypatch.setenv("ANKI_BASE", str(base))
    result = CliRunner().invoke(cli, ["sync", str(vault), "--profile", "User 1"])
    assert result.exit_code == 0, result.stderr
    assert list((base / "User 1" / "backups").glob("backup-*.colpkg"))  # where Anki keeps its own
    missing = CliRunner().invoke(cli, ["sync", str(vault), "--profile", "Nobody"])
    assert missing.exit_code == 2
    assert (
        f"--profile Nobody: no collection at {base / 'Nobody' / 'collection.anki2'} (profiles there: User 1)"
        in missing.stderr
    )
    neither = CliRunner().invoke(cli, ["sync", str(vault)])
    assert (
        neither.exit_code == 2
        and "name one place to sync to: --collection PATH or --profile NAME" in neither.stderr
    )
    nofile = CliRunner().invoke(cli, ["sync", str(vault), "--collection", str(tmp_path / "none.anki2")])
    assert nofile.exit_code == 2 and "no such file (give an existing collection.anki2)" in nofile.stderr
    monkeypatch.setitem(sys.modules, "anki.collection", None)  # as if the sync extra were not installed
    absent = CliRunner().invoke(cli, ["sync", str(vault), "--profile", "User 1"])
    assert absent.exit_code == 2
    assert (
        "`note2anki sync` needs the official anki package, which is not installed; install it with "
        "pip install 'note2anki[sync]'" in absent.stderr
    )


def test_report_json(vault: Path, tmp_path: Path) -> None:
    import json

    col = student_collection(tmp_path / "anki" / "collection.anki2")
    code, _ = sync(vault, col, "--report", str(tmp_path / "r.json"))
    assert code == 0
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert (data["added"], data["removed"], data["dry_run"]) == (5, 0, False) and data["backup"]
    assert os.path.isfile(data["backup"])
