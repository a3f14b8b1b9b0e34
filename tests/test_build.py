"""End to end: the README's main job on samples/, the seed note, re-import, and broken notes."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from note2anki import Config, run
from note2anki.cli import cli
from tests.anki_collection import AnkiCollection, squash
from tests.conftest import ROOT

SAMPLES = ROOT / "samples"
SEED_DIR = ROOT.parent / "shared" / "seed"

CUE, SUMMARY, CLOZE = "note2anki Cue", "note2anki Summary", "note2anki Cloze"


def build_cli(vault: Path, out: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out), *args])
    return result.exit_code, result.stdout, result.stderr


def test_samples_build_and_import(tmp_path: Path, anki: AnkiCollection) -> None:
    vault = tmp_path / "samples"
    shutil.copytree(SAMPLES, vault)
    out = tmp_path / "samples.apkg"
    code, stdout, stderr = build_cli(vault, out, "--frozen")
    assert code == 0, stderr
    assert stdout == ""
    assert re.search(
        r"9 notes read, 29 cue cards, 8 summary cards, 5 cloze notes, 2 media files, 0 errors, 4 warnings",
        stderr,
    )

    log = anki.import_deck(out)
    assert (log.new, log.duplicate, log.conflicting) == (42, 0, 0)
    notes = anki.notes()
    assert anki.note_type_names() == [
        "Basic",
        "Basic (and reversed card)",
        "Basic (optional reversed card)",
        "Basic (type in the answer)",
        "Cloze",
        "Image Occlusion",
        CLOZE,
        CUE,
        SUMMARY,
    ]
    assert anki.card_count() == 42

    # a link back to the note in Obsidian, vault named after its folder
    tcp = next(n for n in notes if n.source == "Networking/TCP Handshake.md")
    assert tcp.source_link == "obsidian://open?vault=samples&file=Networking%2FTCP%20Handshake"

    per_note: dict[str, tuple[int, int]] = {}
    for n in notes:
        cue, summ = per_note.get(n.source, (0, 0))
        per_note[n.source] = (cue + (n.note_type == CUE), summ + (n.note_type == SUMMARY))
    assert per_note == {
        "AWS/IAM 권한.md": (3, 1),
        "AWS/S3 기초.md": (4, 1),
        "AWS/VPC Subnets.md": (3, 1),
        "Algorithms/시간 복잡도.md": (3, 1),
        "Algorithms/이분 탐색.md": (3, 1),
        "Algorithms/해시 테이블 (손으로 고친 노트).md": (6, 1),
        "Networking/DNS 조회 과정.md": (3, 1),
        "Networking/TCP Handshake.md": (4, 1),
    }
    decks = {n.source: n.decks for n in notes}
    assert decks["AWS/S3 기초.md"] == ("AWS::클라우드 입문 노트",)
    assert decks["AWS/VPC Subnets.md"] == ("AWS::Practical Cloud Networking",)
    assert decks["Networking/TCP Handshake.md"] == ("Networking::Computer Networks Field Guide",)
    assert decks["Algorithms/이분 탐색.md"] == ("Algorithms::코딩 테스트 필수 알고리즘",)
    s3 = next(n for n in notes if n.source == "AWS/S3 기초.md")
    assert sorted(s3.tags) == ["storage", "subject::AWS", "textbook::클라우드_입문_노트", "입문"]

    # Every image an answer references is in the collection's media folder, with the bytes from the vault.
    referenced = {
        src
        for n in notes
        for src in re.findall(r'<img src="([^"]+)"', n.fields["Answer"] if n.note_type == CUE else "")
    }
    assert len(referenced) == 2
    media_dir = Path(anki.col.media.dir())
    assert referenced <= anki.media_files()
    assert {(media_dir / name).read_bytes() for name in referenced} == {
        (SAMPLES / "attachments" / "image 1.png").read_bytes(),
        (SAMPLES / "Networking" / "handshake.png").read_bytes(),
    }


SEED_EXPECTED_SHAPES = ["<ol>", "<p>", "<p>", "<p>", "<p>", "<p><strong>", "<p>", "<p>", "<ol>"]


def assert_seed_shape(vault: Path, out: Path, anki: AnkiCollection) -> None:
    result = run(vault, Config(), out=out)
    assert result.errors == ()
    anki.import_deck(out)
    notes = anki.notes()
    cue = [n for n in notes if n.note_type == CUE]
    summary = [n for n in notes if n.note_type == SUMMARY]
    assert len(cue) == 9
    assert [
        squash(n.fields["Answer"])[: len(s)] for n, s in zip(cue, SEED_EXPECTED_SHAPES, strict=True)
    ] == SEED_EXPECTED_SHAPES
    assert "<strong>" in cue[-1].fields["Answer"] and "<li>" in cue[0].fields["Answer"]
    assert len(summary) == 1
    assert squash(summary[0].fields["Summary"]).count("<li>") == 5


def test_seed_shaped_fixture(tmp_path: Path, anki: AnkiCollection) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    shutil.copy(ROOT / "tests" / "cases" / "seed_shape.md", vault / "Section 04- ECS.md")
    assert_seed_shape(vault, tmp_path / "out.apkg", anki)


@pytest.mark.skipif(not SEED_DIR.is_dir(), reason="../shared/seed is not next to this clone")
def test_real_seed_note(tmp_path: Path, anki: AnkiCollection) -> None:
    vault = tmp_path / "seed"
    shutil.copytree(SEED_DIR, vault)  # a build writes the state file into the vault; never into ../shared
    assert_seed_shape(vault, tmp_path / "seed.apkg", anki)


def test_rebuild_reimport_updates_without_duplicates(
    write_vault, tmp_path: Path, anki: AnkiCollection, monkeypatch: pytest.MonkeyPatch
) -> None:
    note = (ROOT / "tests" / "cases" / "paragraph_answer.md").read_text(encoding="utf-8")
    vault = write_vault({"net/arp.md": note})
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1750000000")
    run(vault, Config(), out=tmp_path / "v1.apkg")
    run(vault, Config(), out=tmp_path / "v1-again.apkg")
    assert anki.import_deck(tmp_path / "v1.apkg").new == 2
    again = anki.import_deck(tmp_path / "v1-again.apkg")
    assert (again.new, len(anki.notes())) == (0, 2)
    ids = {n.guid: n.id for n in anki.notes()}

    (vault / "net/arp.md").write_text(note.replace("on the local link", "on the same LAN"), encoding="utf-8")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1750000100")
    run(vault, Config(), out=tmp_path / "v2.apkg")
    log = anki.import_deck(tmp_path / "v2.apkg")
    assert (log.new, log.updated) == (0, 1)  # only the edited card: the other one's source did not change
    notes = anki.notes()
    assert {n.guid: n.id for n in notes} == ids  # same notes, updated in place
    assert "on the same LAN" in notes[0].fields["Answer"]


def test_bad_yaml_is_reported_and_rest_still_builds(
    write_vault, tmp_path: Path, anki: AnkiCollection
) -> None:
    good = (ROOT / "tests" / "cases" / "paragraph_answer.md").read_text(encoding="utf-8")
    vault = write_vault(
        {
            "good.md": good,
            "broken.md": "---\n⭕과목: AWS\n⭕교재: [unclosed\n---\n### 단서 질문\n\n- Q?\n    A.\n",
        }
    )
    code, stdout, stderr = build_cli(vault, tmp_path / "out.apkg")
    assert code == 1
    assert stdout == ""
    assert re.search(
        r"^broken\.md:3: error N2A003: the frontmatter is not valid YAML \(.+\); fix the YAML", stderr, re.M
    )
    assert anki.import_deck(tmp_path / "out.apkg").new == 2
    assert {n.source for n in anki.notes()} == {"good.md"}


def test_missing_image_keeps_card_and_warns(write_vault, tmp_path: Path, anki: AnkiCollection) -> None:
    vault = write_vault({"n.md": "### 단서 질문\n\n- 그림은?\n\n    ![[gone.png]]\n\n    설명은 남는다.\n"})
    code, _, stderr = build_cli(vault, tmp_path / "out.apkg")
    assert code == 0
    assert "n.md:3: warning N2A301: image “gone.png” not found in the vault" in stderr
    anki.import_deck(tmp_path / "out.apkg")
    (note,) = anki.notes()
    assert "설명은 남는다." in note.fields["Answer"]
    assert note.decks == ("vault",)  # no subject or textbook: a deck named after the vault


def test_discover_skips_dot_folders_and_sorts(write_vault) -> None:
    from note2anki.discover import discover

    q = "### 단서 질문\n\n- Q?\n    A.\n"
    vault = write_vault(
        {
            "b.md": q,
            "a/z.md": q,
            "a/b.md": q,
            ".obsidian/x.md": q,
            ".trash/old.md": q,
            "sub/.hidden/y.md": q,
            "img.PNG": b"x",
        }
    )
    found = discover(vault, Config())
    assert [s.rel for s in found.notes] == ["a/b.md", "a/z.md", "b.md"]
    assert found.attachments == {"img.png": ("img.PNG",)}


def test_deck_override_and_version(write_vault, tmp_path: Path, anki: AnkiCollection) -> None:
    vault = write_vault(
        {"n.md": (ROOT / "tests" / "cases" / "paragraph_answer.md").read_text(encoding="utf-8")}
    )
    code, _, _ = build_cli(vault, tmp_path / "o.apkg", "--deck", "Exam::Week 1")
    assert code == 0
    anki.import_deck(tmp_path / "o.apkg")
    assert {n.decks for n in anki.notes()} == {("Exam::Week 1",)}
    version = CliRunner().invoke(cli, ["--version"])
    assert version.exit_code == 0 and re.fullmatch(r"note2anki, version \d+\.\d+\.\d+\n", version.stdout)


def test_usage_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "Directory" in result.stderr and "does not exist" in result.stderr
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "README.md").write_text("# A code repository, not a vault\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "code")
    result = CliRunner().invoke(cli, ["build"])
    assert result.exit_code == 2
    assert (
        "no VAULT given, and the current folder has no note2anki.toml and is not a vault (no .obsidian "
        "folder, no note2anki.lock)" in result.stderr
    )
    assert not (tmp_path / "code" / "note2anki.lock").exists()


def test_vault_defaults_to_the_current_folder_when_it_is_a_vault(
    write_vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anki: AnkiCollection
) -> None:
    note = (ROOT / "tests" / "cases" / "paragraph_answer.md").read_text(encoding="utf-8")
    vault = write_vault({"n.md": note, ".obsidian/app.json": "{}"}, name="Study")
    monkeypatch.chdir(vault)
    result = CliRunner().invoke(cli, ["build"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.endswith(f"-> {tmp_path / 'Study.apkg'}\n")
    assert anki.import_deck(tmp_path / "Study.apkg").new == len(anki.notes()) > 0


def test_every_command_help_has_an_example() -> None:
    for args in ([], ["build"]):
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0
        assert "Example:" in result.stdout and "note2anki build" in result.stdout


def test_default_output_is_named_after_vault(
    write_vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = write_vault({"n.md": "### 단서 질문\n\n- Q?\n    A.\n"}, name="My Vault")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(cli, ["build", str(vault)])
    assert result.exit_code == 0
    assert os.listdir(work) == ["My Vault.apkg"]


def test_cloze_can_be_turned_off_and_the_vault_name_set(
    write_vault, tmp_path: Path, anki: AnkiCollection
) -> None:
    note = "---\nsubject: Biology\n---\n## Summary\n\n- Cells make energy in the **mitochondria**.\n"
    vault = write_vault(
        {
            "note2anki.toml": 'cloze = false\nobsidian_vault = "My Study Vault"\n',
            "Cells/Energy.md": note,
        }
    )
    code, _, stderr = build_cli(vault, tmp_path / "bio.apkg")
    assert code == 0, stderr
    assert "0 cue cards, 1 summary card, 0 cloze notes" in stderr
    anki.import_deck(tmp_path / "bio.apkg")
    (only,) = anki.notes()
    assert only.note_type == SUMMARY
    assert only.source_link == "obsidian://open?vault=My%20Study%20Vault&file=Cells%2FEnergy"

    (vault / "note2anki.toml").write_text("cloze = 1\n", encoding="utf-8")
    code, _, stderr = build_cli(vault, tmp_path / "bio.apkg")
    assert code == 2
    assert "`cloze` must be true or false" in stderr
