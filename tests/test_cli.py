"""`check`, `list` and `note2anki.toml`, through click's CliRunner: exit codes and exact messages."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from note2anki.cli import cli
from tests.anki_collection import AnkiCollection

GOOD = "---\n⭕과목: AWS\n⭕교재: Cloud Basics\n---\n### 단서 질문\n\n- What is S3?\n    - Object storage.\n"
NO_ANSWER = "### 단서 질문\n\n- 답이 없는 질문?\n"
BROKEN = "---\ntitle: [oops\n---\n### 단서 질문\n"


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args))


def test_check_clean_vault_exits_0_with_empty_stdout(write_vault) -> None:
    vault = write_vault({"a.md": GOOD})
    result = invoke("check", str(vault))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "note2anki: 1 note checked, 0 errors, 0 warnings\n"


def test_check_warnings_exit_0_unless_strict(write_vault) -> None:
    vault = write_vault({"a.md": GOOD, "b.md": NO_ANSWER})
    result = invoke("check", str(vault))
    assert result.exit_code == 0
    assert result.stdout == (
        "b.md:3: warning N2A201: “답이 없는 질문?” has no answer, so no card is made; "
        "write the answer indented under the question\n"
    )
    assert invoke("check", str(vault), "--strict").exit_code == 1


def test_check_errors_exit_1_and_name_file_and_line(write_vault) -> None:
    vault = write_vault({"a.md": GOOD, "sub/broken.md": BROKEN})
    result = invoke("check", str(vault), "-q")
    assert result.exit_code == 1
    assert result.stdout.startswith("sub/broken.md:2: error N2A003: the frontmatter is not valid YAML (")
    assert result.stderr == ""


def test_check_json(write_vault) -> None:
    vault = write_vault({"a.md": GOOD, "b.md": NO_ANSWER})
    result = invoke("check", str(vault), "--format", "json")
    data = json.loads(result.stdout)
    assert data["notes"] == 2 and data["cards"] == {"cue": 1, "summary": 0, "cloze": 0}
    assert data["diagnostics"] == [
        {
            "path": "b.md",
            "line": 3,
            "code": "N2A201",
            "severity": "warning",
            "message": "“답이 없는 질문?” has no answer, so no card is made; "
            "write the answer indented under the question",
        }
    ]


def test_check_github_annotations_use_paths_from_the_working_directory(
    write_vault, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    vault = write_vault({"notes/b.md": NO_ANSWER}, name="repo/vault")
    monkeypatch.chdir(tmp_path / "repo")
    result = CliRunner().invoke(cli, ["check", "vault", "--format", "github"])
    assert result.stdout == (
        "::warning file=vault/notes/b.md,line=3,title=N2A201::“답이 없는 질문?” has no answer, "
        "so no card is made; write the answer indented under the question\n"
    )
    assert vault.exists()


def test_list_table_and_json(write_vault) -> None:
    vault = write_vault({"a.md": GOOD})
    table = invoke("list", str(vault))
    assert table.exit_code == 0
    assert table.stdout.splitlines() == [
        "kind  note  question     answer           tags                                 deck",
        "cue   a.md  What is S3?  Object storage.  subject::AWS textbook::Cloud_Basics  AWS::Cloud Basics",
    ]
    data = json.loads(invoke("list", str(vault), "--format", "json").stdout)
    assert data == [
        {
            "kind": "cue",
            "note": "a.md",
            "question": "What is S3?",
            "answer": "<ul>\n<li>Object storage.</li>\n</ul>",
            "tags": ["subject::AWS", "textbook::Cloud_Basics"],
            "deck": "AWS::Cloud Basics",
            "line": 7,
        }
    ]


def test_config_renames_sections_and_filters_files(write_vault, tmp_path: Path, anki: AnkiCollection) -> None:
    vault = write_vault(
        {
            "note2anki.toml": 'cue_headings = ["Flashcards"]\nexclude = ["drafts/**"]\n'
            'deck = "Study::{subject}"\ntags = ["s::{subject}"]\n',
            "a.md": "---\nsubject: Biology\n---\n## Flashcards\n\n- Cell?\n    - Unit of life.\n",
            "drafts/b.md": "## Flashcards\n\n- Draft?\n    - Not built.\n",
        }
    )
    result = invoke("build", str(vault), "-o", str(tmp_path / "o.apkg"), "-q")
    assert result.exit_code == 0, result.stderr
    anki.import_deck(tmp_path / "o.apkg")
    (note,) = anki.notes()
    assert (note.fields["Question"], note.decks, note.tags) == ("Cell?", ("Study::Biology",), ("s::Biology",))


def test_config_unknown_key_is_a_usage_error_listing_allowed_keys(write_vault) -> None:
    vault = write_vault({"note2anki.toml": 'cue_heading = ["Q"]\n', "a.md": GOOD})
    result = invoke("check", str(vault))
    assert result.exit_code == 2
    allowed = "allowed keys are: cloze, cue_headings, deck, default_deck,"
    assert f"unknown key(s) cue_heading; {allowed}" in result.stderr


def test_config_option_points_at_another_file(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"a.md": "## Karten\n\n- Frage?\n    - Antwort.\n"})
    cfg = tmp_path / "other.toml"
    cfg.write_text('cue_headings = ["Karten"]\n', encoding="utf-8")
    result = invoke("list", str(vault), "--config", str(cfg), "--format", "json")
    assert [c["question"] for c in json.loads(result.stdout)] == ["Frage?"]
    bad = tmp_path / "bad.toml"
    bad.write_text("cue_headings = [", encoding="utf-8")
    result = invoke("list", str(vault), "--config", str(bad))
    assert result.exit_code == 2 and "not valid TOML" in result.stderr


def test_unreadable_encoding_is_an_error_and_rest_still_checks(write_vault) -> None:
    vault = write_vault({"a.md": GOOD, "latin1.md": "## Cue questions\n\n- Caf\xe9?\n".encode("latin-1")})
    result = invoke("check", str(vault), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["cards"] == {"cue": 1, "summary": 0, "cloze": 0}
    assert [(d["path"], d["line"], d["code"], d["severity"]) for d in data["diagnostics"]] == [
        ("latin1.md", 3, "N2A002", "error")
    ]
