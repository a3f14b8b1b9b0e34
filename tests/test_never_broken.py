"""Never a broken deck, never a dead end (issue 15): builds at once, merged lock files, macOS file names,
renamed summary-only notes, SIGTERM, and the smaller ways a deck and its lock could disagree."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from note2anki.build.lock import build_lock
from note2anki.cli import cli
from tests.anki_collection import AnkiCollection
from tests.conftest import ROOT
from tests.test_ci import HAS_GIT, git

POSIX = os.name == "posix"
SAMPLE_NOTES = 42  # notes in a deck of samples/


def n2a(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "note2anki", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def imported(deck: Path, folder: Path) -> int:
    col = AnkiCollection(folder)
    try:
        log = col.import_deck(deck)
        assert log.duplicate == log.conflicting == 0
        return log.new
    finally:
        col.close()


def test_two_first_builds_at_once_never_leave_a_broken_deck(tmp_path: Path) -> None:
    outcomes = []
    for race in range(20):
        vault = tmp_path / f"v{race}" / "samples"
        shutil.copytree(ROOT / "samples", vault)
        same = race % 2 == 0
        decks = [tmp_path / f"v{race}" / "a.apkg", tmp_path / f"v{race}" / ("a.apkg" if same else "b.apkg")]
        extra = [[], [] if same else ["--deck", "Other"]]
        first = n2a("build", str(vault), "-o", str(decks[0]), *extra[0])
        time.sleep((race % 5) * 0.05)  # 0 to 0.2 s apart
        second = n2a("build", str(vault), "-o", str(decks[1]), *extra[1])
        for i, proc in enumerate((first, second)):
            _, stderr = proc.communicate(timeout=120)
            if proc.returncode == 0:
                assert imported(decks[i], tmp_path / f"v{race}" / f"anki{i}") == SAMPLE_NOTES, stderr
                outcomes.append("built")
            else:
                assert proc.returncode == 1, stderr
                assert "another note2anki build of this vault is running" in stderr
                outcomes.append("refused")
        # and the deck left on disk is sound: a later build calls it up to date only when it is
        after = CliRunner().invoke(cli, ["build", str(vault), "-o", str(decks[1]), *extra[1]])
        assert after.exit_code == 0, after.stderr
        assert imported(decks[1], tmp_path / f"v{race}" / "anki-after") == SAMPLE_NOTES
    assert outcomes.count("built") >= 20  # the second build waits for the first rather than failing


def test_a_build_that_waits_too_long_names_the_other_process(tmp_path: Path) -> None:
    vault = tmp_path / "samples"
    shutil.copytree(ROOT / "samples", vault)
    with build_lock(vault.resolve()):
        proc = n2a("build", str(vault), "-o", str(tmp_path / "d.apkg"), env={"NOTE2ANKI_LOCK_TIMEOUT": "0.3"})
        _, stderr = proc.communicate(timeout=60)
        check = n2a("check", str(vault))  # check never waits
        check.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"another note2anki build of this vault is running (process {os.getpid()} on " in stderr
    assert "waited 0 s for it to finish. Run the build again when it is done" in stderr
    assert not (tmp_path / "d.apkg").exists()
    assert check.returncode == 0
    # a lock file left by a process that is gone is simply taken over
    (vault / ".note2anki" / "build.lock").write_text("pid=999999\nhost=x\nsince=then\n", encoding="utf-8")
    assert CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "d.apkg")]).exit_code == 0


NOTE = "---\nsubject: Databases\n---\n## Cue questions\n\n- {q}\n    - {a}\n"


@pytest.mark.skipif(not HAS_GIT, reason="needs git")
def test_a_merged_lock_file_is_repaired_the_same_way_everywhere(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "notes").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "note2anki.toml").write_text('vault = "notes"\n', encoding="utf-8")
    (repo / "notes/m.md").write_text(NOTE.format(q="What is an index?", a="A sorted copy."), encoding="utf-8")
    epoch = {"SOURCE_DATE_EPOCH": "1767000000"}

    def build(*args: str, cwd: Path = repo) -> subprocess.CompletedProcess[str]:
        proc = n2a("build", *args, cwd=cwd, env=epoch)
        out, err = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def commit(message: str) -> None:
        git(repo, "add", "-A")
        assert git(repo, "commit", "-qm", message).returncode == 0

    assert build("-o", str(tmp_path / "main.apkg")).returncode == 0
    commit("main")
    for branch, name, question in (("one", "b.md", "What is a key?"), ("two", "z.md", "What is a join?")):
        git(repo, "checkout", "-q", "-b", branch, "main")
        (repo / "notes" / name).write_text(NOTE.format(q=question, a="See the notes."), encoding="utf-8")
        assert build("-o", str(tmp_path / f"{branch}.apkg")).returncode == 0
        commit(branch)
    merged = git(repo, "merge", "-q", "one", "-m", "merge")
    assert merged.returncode == 0, merged.stdout + merged.stderr  # git merged the lock without a conflict
    lock = (repo / "notes/note2anki.lock").read_text(encoding="utf-8")
    assert lock.count('"nid": 1767000000001') == 2  # both branches gave their new card the same note id

    check = n2a("check", cwd=repo)
    out, err = check.communicate(timeout=60)
    assert check.returncode == 0, err
    assert (
        "note2anki.lock: warning N2A014: the next build repairs: the card “What is a join?” (z.md) shared "
        "note id 1767000000001; it is now 1767000000002" in out
    )
    frozen = build("--frozen", "-o", str(tmp_path / "f.apkg"))
    assert frozen.returncode == 1 and "would change" in frozen.stderr  # CI says: build and commit
    built = build("-o", str(tmp_path / "merged.apkg"))
    assert built.returncode == 0, built.stderr
    assert "warning N2A014: repaired after a merge" in built.stderr
    col = AnkiCollection(tmp_path / "anki")
    try:
        for deck in ("one", "two", "merged"):  # the student imported each branch's deck, then the merge's
            col.import_deck(tmp_path / f"{deck}.apkg")
        questions = sorted(n.fields["Question"] for n in col.notes())
    finally:
        col.close()
    assert questions == ["What is a join?", "What is a key?", "What is an index?"]  # each exactly once
    commit("repaired lock")
    clone = tmp_path / "clone"
    assert git(tmp_path, "clone", "-q", str(repo), str(clone)).returncode == 0
    again = build("--frozen", "-o", str(tmp_path / "ci.apkg"), cwd=clone)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "ci.apkg").read_bytes() == (tmp_path / "merged.apkg").read_bytes()


def test_a_lock_line_merged_twice_plus_a_similar_question(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"a.md": NOTE.format(q="What is a key?", a="It identifies a row.")})
    assert CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "1.apkg")]).exit_code == 0
    lock = vault / "note2anki.lock"
    lines = lock.read_text(encoding="utf-8").splitlines(keepends=True)
    lock.write_text("".join([*lines, lines[-1]]), encoding="utf-8")  # a line both sides added
    (vault / "a.md").write_text(
        NOTE.format(q="What is a key?", a="It identifies a row.") + "- What is a keys?\n    - Plural.\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "2.apkg")])
    assert result.exit_code == 0, result.stderr
    assert "N2A014: repaired after a merge: 1 repeated line(s) kept once" in result.stderr
    assert imported(tmp_path / "2.apkg", tmp_path / "anki") == 2


def test_two_different_cards_with_one_guid_are_refused_with_the_lines(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"a.md": NOTE.format(q="What is a key?", a="Row id.") + "- Why?\n    - Because.\n"})
    assert CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "1.apkg")]).exit_code == 0
    lock = vault / "note2anki.lock"
    first, second = lock.read_text(encoding="utf-8").splitlines()[-2:]
    guid = first.split('"guid": "')[1].split('"')[0]
    other = second.split('"guid": "')[1].split('"')[0]
    lock.write_text(lock.read_text(encoding="utf-8").replace(other, guid), encoding="utf-8")
    for command in (["build", str(vault), "-o", str(tmp_path / "2.apkg")], ["check", str(vault)]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1
        assert f"two different cards share the GUID {guid}:" in result.stderr + result.stdout
        assert "delete one of the two lines" in result.stderr + result.stdout


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems do not keep NFD and NFC apart")
def test_a_lock_built_with_nfd_file_names_verifies_with_nfc_names(
    write_vault, tmp_path: Path, anki: AnkiCollection
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"1" * 32
    note = NOTE.format(q="그림은?", a="![[네트워크 그림.png]]")
    vault = write_vault({nfd("네트워크/라우팅 기초.md"): note, nfd("네트워크/네트워크 그림.png"): png})
    assert os.listdir(vault) == [nfd("네트워크")]  # the file system keeps what it was given
    first = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "1.apkg")])
    assert first.exit_code == 0, first.stderr
    assert "N2A301" not in first.stderr  # the NFD image is found from its NFC link
    assert '"path": "네트워크/라우팅 기초.md"' in (vault / "note2anki.lock").read_text(encoding="utf-8")
    # the same vault as Linux checks it out: every name NFC
    for path in sorted(vault.rglob("*"), key=lambda p: -len(p.parts)):
        if ".note2anki" not in path.parts and path.name != unicodedata.normalize("NFC", path.name):
            path.rename(path.with_name(unicodedata.normalize("NFC", path.name)))
    shutil.rmtree(vault / ".note2anki")
    frozen = CliRunner().invoke(cli, ["build", str(vault), "--frozen", "-o", str(tmp_path / "2.apkg")])
    assert frozen.exit_code == 0, frozen.stderr
    assert (tmp_path / "1.apkg").read_bytes() == (tmp_path / "2.apkg").read_bytes()
    anki.import_deck(tmp_path / "2.apkg")
    assert len(anki.media_files()) == 1


SUMMARY_ONLY = (
    "---\n⭕과목: OS\n---\n### 핵심 요약\n\n"
    "- 스케줄러는 **문맥 교환** 비용을 줄인다.\n- 교착 상태는 피할 수 있다.\n"
)


def test_renamed_and_moved_summary_and_cloze_notes_keep_their_cards(
    write_vault, tmp_path: Path, anki: AnkiCollection
) -> None:
    vault = write_vault({"os/스케줄링.md": SUMMARY_ONLY})
    assert CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "1.apkg")]).exit_code == 0
    anki.import_deck(tmp_path / "1.apkg")
    before = {n.note_type: n.guid for n in anki.notes()}
    assert set(before) == {"note2anki Summary", "note2anki Cloze"}
    cids = list(anki.col.find_cards(""))
    for cid in cids:  # study every card
        card = anki.col.get_card(cid)
        card.start_timer()
        anki.col.sched.answerCard(card, 3)
    (vault / "archive").mkdir()
    (vault / "os/스케줄링.md").rename(vault / "archive/CPU 스케줄링.md")  # renamed and moved
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "2.apkg")])
    assert result.exit_code == 0, result.stderr
    assert "0 added, 2 changed, 2 re-keyed, 0 removed" in result.stderr
    log = anki.import_deck(tmp_path / "2.apkg")
    assert (log.new, log.updated) == (0, 2)
    after = {n.note_type: n.guid for n in anki.notes()}
    assert after == before
    assert all(anki.col.get_card(cid).reps == 1 for cid in cids)  # reviews kept
    assert {n.source for n in anki.notes()} == {"archive/CPU 스케줄링.md"}


def child_pids(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found |= {int(p) for p in task.read_text().split()}
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_during_a_pooled_build_leaves_no_process_and_no_damage(tmp_path: Path) -> None:
    from tests.test_sections import generated_vault

    vault = generated_vault(tmp_path / "killed" / "vault", 400)
    clean = generated_vault(tmp_path / "clean" / "vault", 400)
    env = {"SOURCE_DATE_EPOCH": "1767000000"}
    reference = n2a("build", str(clean), "-o", str(tmp_path / "ref.apkg"), "--jobs", "2", env=env)
    assert reference.wait(timeout=300) == 0
    proc = n2a("build", str(vault), "-o", str(tmp_path / "d.apkg"), "--jobs", "2", env=env)
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline:
        workers |= child_pids(proc.pid)
        time.sleep(0.02)
    assert len(workers) >= 2, "the build never started its workers"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    time.sleep(2)
    assert [p for p in {proc.pid, *workers} if alive(p)] == []
    assert proc.returncode in (143, -signal.SIGTERM)
    assert not (tmp_path / "d.apkg").exists()
    again = n2a("build", str(vault), "-o", str(tmp_path / "d.apkg"), "--jobs", "2", env=env)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert (tmp_path / "d.apkg").read_bytes() == (tmp_path / "ref.apkg").read_bytes()
    assert list((vault / ".note2anki" / "tmp").glob("note2anki-*")) == []


@pytest.mark.skipif(not POSIX, reason="POSIX file modes")
def test_rewritten_deck_and_lock_keep_their_mode(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"a.md": NOTE.format(q="What is a key?", a="Row id.")})
    deck, lock = tmp_path / "d.apkg", vault / "note2anki.lock"
    assert CliRunner().invoke(cli, ["build", str(vault), "-o", str(deck)]).exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (deck.stat().st_mode & 0o777, lock.stat().st_mode & 0o777) == (0o666 & ~umask,) * 2
    deck.chmod(0o640)
    lock.chmod(0o664)
    (vault / "a.md").write_text(NOTE.format(q="What is a key?", a="A row id."), encoding="utf-8")
    assert CliRunner().invoke(cli, ["build", str(vault), "-o", str(deck)]).exit_code == 0
    assert (deck.stat().st_mode & 0o777, lock.stat().st_mode & 0o777) == (0o640, 0o664)


def test_a_deck_name_near_the_file_name_limit(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"a.md": NOTE.format(q="What is a key?", a="Row id.")})
    deck = tmp_path / ("d" * 250 + ".apkg")
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(deck)])
    assert result.exit_code == 0, result.stderr
    assert deck.is_file()


def test_an_edit_whose_time_was_restored_is_seen(write_vault, tmp_path: Path, anki: AnkiCollection) -> None:
    vault = write_vault({"a.md": NOTE.format(q="What is a key?", a="Row id 1.")})
    note = vault / "a.md"
    assert CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "d.apkg")]).exit_code == 0
    stat = note.stat()
    time.sleep(2.1)  # past the window in which a file's time is not trusted
    assert CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "d.apkg")]).exit_code == 0
    edited = tmp_path / "edited.md"
    edited.write_text(NOTE.format(q="What is a key?", a="Row id 2."), encoding="utf-8")  # same size
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    shutil.copy2(edited, note)  # as `cp -p` does: the old modification time
    assert note.stat().st_mtime_ns == stat.st_mtime_ns and note.stat().st_size == stat.st_size
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "d.apkg")])
    assert "0 added, 1 changed" in result.stderr
    anki.import_deck(tmp_path / "d.apkg")
    assert "Row id 2." in anki.notes()[0].fields["Answer"]


def test_a_lock_from_another_vault_is_refused(write_vault, tmp_path: Path) -> None:
    other = write_vault({"x.md": NOTE.format(q="What is a key?", a="Row id.")}, name="other")
    assert CliRunner().invoke(cli, ["build", str(other), "-o", str(tmp_path / "o.apkg")]).exit_code == 0
    vault = write_vault({"y.md": NOTE.format(q="What is a cache?", a="A copy.")}, name="mine")
    shutil.copy(other / "note2anki.lock", vault / "note2anki.lock")
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "m.apkg")])
    assert result.exit_code == 1
    assert (
        "note2anki.lock belongs to another vault: none of its 1 cards' notes (such as x.md) or questions are "
        "in this one" in result.stderr
    )
    assert not (tmp_path / "m.apkg").exists()


@pytest.mark.skipif(not POSIX or os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_vault_says_the_deck_was_written(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"a.md": NOTE.format(q="What is a key?", a="Row id.")})
    vault.chmod(0o555)
    try:
        result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "d.apkg")])
    finally:
        vault.chmod(0o755)
    assert result.exit_code == 1
    assert f"The deck was written ({tmp_path / 'd.apkg'})" in result.stderr


def test_a_kept_collection_that_cannot_be_written_is_done_without(
    write_vault, tmp_path: Path, anki: AnkiCollection
) -> None:
    vault = write_vault({"a.md": NOTE.format(q="What is a key?", a="Row id.")})
    (vault / ".note2anki" / "cache" / "collection.anki2").mkdir(parents=True)  # in the way, unwritable
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "d.apkg")])
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert anki.import_deck(tmp_path / "d.apkg").new == 1


def test_a_huge_removal_prints_no_huge_line(capsys: pytest.CaptureFixture[str]) -> None:
    from note2anki import summary
    from note2anki.model import RemovedCard

    cards = [RemovedCard(1_700_000_000_000 + i, f"g{i}", "a.md", f"Q{i}?") for i in range(50_000)]
    summary.report_removed(cards)
    line = capsys.readouterr().err
    assert len(line) < 400
    assert "50,000 cards removed from your notes may still be in Anki" in line
    assert "`note2anki removed` prints the Anki search that finds them all" in line


def _edited_vault(write_vault, tmp_path: Path) -> tuple[Path, Path, bytes, bytes]:
    """A vault built once (with its kept collection) and then edited: the next build is incremental.
    Returns the vault, the deck, and the deck's and the lock's bytes as the first build left them."""
    vault = write_vault(
        {
            "keys.md": NOTE.format(q="What is a key?", a="Row id."),
            "index.md": NOTE.format(q="What is an index?", a="A sorted copy."),
        }
    )
    out = tmp_path / "d.apkg"
    first = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out)])
    assert first.exit_code == 0, first.stderr
    assert (vault / ".note2anki/cache/collection.anki2").is_file()
    before = out.read_bytes(), (vault / "note2anki.lock").read_bytes()
    (vault / "keys.md").write_text(NOTE.format(q="What is a foreign key?", a="A row id of another table."))
    return vault, out, *before


def _no_scratch_left(vault: Path) -> None:
    assert not [p.name for p in (vault / ".note2anki" / "tmp").iterdir() if p.suffix == ".tmp"]


def test_an_incremental_deck_that_fails_leaves_lock_and_deck_as_they_were(
    write_vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state file is written while the deck is zipped, but put in place only once the deck is: a deck
    that fails (a full disk) leaves both files as the last build did, and the next build does it all."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767000000")
    vault, out, deck, lock = _edited_vault(write_vault, tmp_path)
    import note2anki.export

    real = note2anki.export._add

    def full_disk(zf: object, name: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(note2anki.export, "_add", full_disk)
    failed = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out)])
    assert failed.exit_code == 1 and "No space left on device" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert out.read_bytes() == deck and (vault / "note2anki.lock").read_bytes() == lock
    _no_scratch_left(vault)

    monkeypatch.setattr(note2anki.export, "_add", real)
    again = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out)])
    assert again.exit_code == 0, again.stderr
    assert "1 added" in again.stderr and "1 removed" in again.stderr  # the change is not lost
    assert imported(out, tmp_path / "anki") == 2


def test_an_incremental_lock_that_cannot_be_written_says_the_deck_was(
    write_vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767000000")
    vault, out, deck, lock = _edited_vault(write_vault, tmp_path)
    import note2anki.atomic

    real = note2anki.atomic.Staged

    class Refused(real):  # type: ignore[misc,valid-type]
        def __init__(self, path: Path, *args: object, **kwargs: object) -> None:
            if path.name == "note2anki.lock":
                raise OSError(28, "No space left on device")
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(note2anki.atomic, "Staged", Refused)
    monkeypatch.setattr("note2anki.state.Staged", Refused)
    failed = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out)])
    assert failed.exit_code == 1
    assert f"The deck was written ({out})" in failed.stderr and "No space left on device" in failed.stderr
    assert out.read_bytes() != deck and (vault / "note2anki.lock").read_bytes() == lock
    assert imported(out, tmp_path / "anki") == 2  # the new deck is whole
    _no_scratch_left(vault)

    monkeypatch.undo()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767000000")
    again = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out)])
    assert again.exit_code == 0, again.stderr
    assert "1 added" in again.stderr  # the lock still has to learn of the new card
    assert (vault / "note2anki.lock").read_bytes() != lock
