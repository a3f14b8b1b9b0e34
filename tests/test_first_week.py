"""A student's first week: line breaks as Obsidian shows them, warnings that can be quieted, removed cards
that stay findable, templates skipped, and the small things a new user trips on (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from note2anki.cli import cli
from tests.anki_collection import AnkiCollection

NOTE = """---
⭕과목: Networking
⭕교재: 라우팅 입문
---
### 단서 질문

- 라우팅의 두 방식은?
    정적 라우팅: 관리자가 입력한다.
    동적 라우팅: 라우터가 배운다.
- What is a default route?
    - The route used when nothing more specific matches.
{extra}
### 핵심 요약

- 라우팅 표는 **목적지**마다 다음 홉을 적는다.
"""
PLACEHOLDER = "- 질문1\n    - 답\n"


def build(vault: Path, out: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out), *args])
    return result.exit_code, result.stderr


def answers(col: AnkiCollection) -> dict[str, str]:
    return {n.fields["Question"]: n.fields["Answer"] for n in col.notes() if "Question" in n.fields}


BREAK = "<p>정적 라우팅: 관리자가 입력한다.<br>\n동적 라우팅: 라우터가 배운다.</p>"
JOINED = "<p>정적 라우팅: 관리자가 입력한다.\n동적 라우팅: 라우터가 배운다.</p>"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, BREAK),  # Obsidian's default: "Strict line breaks" off
        ({".obsidian/app.json": '{"strictLineBreaks": true}'}, JOINED),
        ({".obsidian/app.json": '{"strictLineBreaks": false}'}, BREAK),
        ({".obsidian/app.json": "not json"}, BREAK),
        (
            {
                ".obsidian/app.json": '{"strictLineBreaks": true}',
                "note2anki.toml": "strict_line_breaks = false",
            },
            BREAK,
        ),
        ({"note2anki.toml": "strict_line_breaks = true"}, JOINED),
    ],
    ids=["default", "obsidian-strict", "obsidian-not-strict", "obsidian-damaged", "toml-wins", "toml-strict"],
)
def test_single_line_breaks_follow_obsidian(
    files: dict[str, str], expected: str, write_vault, tmp_path: Path, anki: AnkiCollection
) -> None:
    vault = write_vault({"route.md": NOTE.format(extra=""), **files})
    code, stderr = build(vault, tmp_path / "d.apkg")
    assert code == 0, stderr
    anki.import_deck(tmp_path / "d.apkg")
    assert answers(anki)["라우팅의 두 방식은?"] == expected


def test_turning_line_breaks_on_updates_cards_in_place(
    write_vault, tmp_path: Path, anki: AnkiCollection
) -> None:
    vault = write_vault(
        {"route.md": NOTE.format(extra=""), ".obsidian/app.json": '{"strictLineBreaks": true}'}
    )
    assert build(vault, tmp_path / "1.apkg")[0] == 0
    first = anki.import_deck(tmp_path / "1.apkg")
    ids = sorted(n.guid for n in anki.notes())
    (vault / ".obsidian/app.json").write_text('{"strictLineBreaks": false}', encoding="utf-8")
    code, stderr = build(vault, tmp_path / "2.apkg")
    assert code == 0 and "0 added, 1 changed, 0 re-keyed, 0 removed" in stderr
    second = anki.import_deck(tmp_path / "2.apkg")
    assert (first.new, second.new, second.updated) == (4, 0, 1)
    assert sorted(n.guid for n in anki.notes()) == ids
    assert answers(anki)["라우팅의 두 방식은?"] == BREAK


def test_ignore_in_settings_and_in_a_notes_frontmatter(write_vault, tmp_path: Path) -> None:
    vault = write_vault(
        {
            "a.md": NOTE.format(extra=PLACEHOLDER),
            "b.md": NOTE.format(extra=PLACEHOLDER).replace(
                "---\n###", "note2anki-ignore: [N2A202]\n---\n###", 1
            ),
        }
    )
    check = CliRunner().invoke(cli, ["check", str(vault)])
    assert [line.split(":")[0] for line in check.stdout.splitlines()] == ["a.md"]
    (vault / "note2anki.toml").write_text('ignore = ["N2A202"]\n', encoding="utf-8")
    check = CliRunner().invoke(cli, ["check", str(vault)])
    assert (check.exit_code, check.stdout) == (0, "")
    code, stderr = build(vault, tmp_path / "d.apkg")
    assert code == 0 and "0 warnings" in stderr and "질문1" not in stderr
    bad = CliRunner().invoke(cli, ["check", str(vault), "--config", str(write_bad(tmp_path))])
    assert bad.exit_code == 2
    assert "`ignore` takes diagnostic codes such as \"N2A202\", not 'placeholders'" in bad.stderr


def write_bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text('ignore = ["placeholders"]\n', encoding="utf-8")
    return path


def test_warnings_of_unchanged_notes_are_summarised_in_one_line(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"a.md": NOTE.format(extra=PLACEHOLDER), "b.md": NOTE.format(extra=PLACEHOLDER)})
    code, first = build(vault, tmp_path / "d.apkg")
    assert code == 0
    assert "a.md:12: warning N2A202" in first and "b.md:12: warning N2A202" in first
    (vault / "b.md").write_text(NOTE.format(extra=PLACEHOLDER + "- New?\n    - Yes.\n"), encoding="utf-8")
    code, second = build(vault, tmp_path / "d.apkg")
    assert code == 0
    assert "a.md:12" not in second and "b.md:12: warning N2A202" in second
    assert (
        "note2anki: 1 warning in 1 unchanged note not shown again (`note2anki check` or `build --verbose` "
        "lists them)\n" in second
    )
    assert "2 warnings;" in second  # the summary still counts every warning
    code, same = build(vault, tmp_path / "d.apkg")
    assert "note2anki: 2 warnings in 2 unchanged notes not shown again" in same
    assert "already up to date" in same
    code, verbose = build(vault, tmp_path / "d.apkg", "--verbose")
    assert "a.md:12: warning N2A202" in verbose and "not shown again" not in verbose
    check = CliRunner().invoke(cli, ["check", str(vault)])
    assert len(check.stdout.splitlines()) == 2


def test_removed_cards_stay_listed_until_cleared(write_vault, tmp_path: Path, anki: AnkiCollection) -> None:
    extra = "- 삭제될 질문은?\n    - 곧 지운다.\n"
    vault = write_vault({"a.md": NOTE.format(extra=extra)})
    assert build(vault, tmp_path / "d.apkg")[0] == 0
    anki.import_deck(tmp_path / "d.apkg")
    gone = next(n for n in anki.notes() if n.fields.get("Question") == "삭제될 질문은?")
    (vault / "a.md").write_text(NOTE.format(extra=""), encoding="utf-8")
    message = (
        "note2anki: 1 card removed from your notes may still be in Anki (an .apkg cannot delete them); "
        f"find them in Anki's browser with: nid:{gone.id}, delete them there, then run "
        "`note2anki removed --clear`\n"
    )
    for _ in range(2):  # the build after the deletion, and every build after it
        code, stderr = build(vault, tmp_path / "d.apkg")
        assert code == 0 and stderr.endswith(message)
    assert anki.col.find_notes(f"nid:{gone.id}") == [gone.id]  # the search finds it in Anki
    listed = CliRunner().invoke(cli, ["removed", str(vault)])
    assert listed.exit_code == 0
    assert listed.stdout == f"nid:{gone.id}\n"
    assert f"a.md: 삭제될 질문은? (nid:{gone.id})" in listed.stderr
    cleared = CliRunner().invoke(cli, ["removed", str(vault), "--clear"])
    assert (cleared.exit_code, cleared.stderr) == (0, "note2anki: forgot 1 removed card\n")
    code, stderr = build(vault, tmp_path / "d.apkg")
    assert code == 0 and "may still be in Anki" not in stderr
    # a question that comes back leaves the list by itself
    (vault / "a.md").write_text(NOTE.format(extra="- Temporary?\n    - Yes.\n"), encoding="utf-8")
    build(vault, tmp_path / "d.apkg")
    (vault / "a.md").write_text(NOTE.format(extra=""), encoding="utf-8")
    assert "1 card removed" in build(vault, tmp_path / "d.apkg")[1]
    (vault / "a.md").write_text(NOTE.format(extra="- Temporary?\n    - Yes.\n"), encoding="utf-8")
    assert "may still be in Anki" not in build(vault, tmp_path / "d.apkg")[1]
    assert CliRunner().invoke(cli, ["removed", str(vault)]).stdout == ""


def test_obsidian_templates_folder_is_skipped(write_vault, tmp_path: Path) -> None:
    vault = write_vault(
        {
            "a.md": NOTE.format(extra=""),
            "05 - Template/Cornell.md": NOTE.format(extra=PLACEHOLDER),
            ".obsidian/templates.json": json.dumps({"folder": "05 - Template"}),
        }
    )
    code, stderr = build(vault, tmp_path / "d.apkg")
    assert code == 0 and "1 note read" in stderr and "Template" not in stderr
    (vault / "note2anki.toml").write_text("read_templates = true\n", encoding="utf-8")
    code, stderr = build(vault, tmp_path / "d.apkg")
    assert "2 notes read" in stderr and "05 - Template/Cornell.md:12: warning N2A202" in stderr


def test_templater_plugin_folder_is_skipped(write_vault, tmp_path: Path) -> None:
    vault = write_vault(
        {
            "a.md": NOTE.format(extra=""),
            "Templates/T.md": NOTE.format(extra=""),
            ".obsidian/plugins/templater-obsidian/data.json": json.dumps({"templates_folder": "/Templates"}),
        }
    )
    result = CliRunner().invoke(cli, ["list", str(vault), "--format", "json"])
    assert {c["note"] for c in json.loads(result.stdout)} == {"a.md"}


def test_a_deck_name_without_suffix_gets_apkg(write_vault, tmp_path: Path, anki: AnkiCollection) -> None:
    vault = write_vault({"a.md": NOTE.format(extra="")})
    code, stderr = build(vault, tmp_path / "mydeck")
    assert code == 0 and stderr.endswith(f"-> {tmp_path / 'mydeck.apkg'}\n")
    assert not (tmp_path / "mydeck").exists()
    assert anki.import_deck(tmp_path / "mydeck.apkg").new == 4
    assert (
        "1 note read, 2 cue cards, 1 summary card, 1 cloze note, 0 media files, 0 errors, 0 warnings"
        in stderr
    )


def test_list_shows_where_note_paths_differ(write_vault) -> None:
    folder = "Cloud Certification/Section 09 - Lambda for SysOps Administrators/"
    vault = write_vault(
        {
            f"{folder}03 - Lambda 동시성.md": NOTE.format(extra=""),
            f"{folder}04 - Lambda 버전.md": NOTE.format(extra=""),
        }
    )
    table = CliRunner().invoke(cli, ["list", str(vault)]).stdout.splitlines()
    assert len(table) == 9  # header + 4 cards of each note
    assert sum("…" in line and "03 - Lambda 동시성.md" in line for line in table) == 4
    assert sum("…" in line and "04 - Lambda 버전.md" in line for line in table) == 4


def test_vault_absolute_image_paths(write_vault, tmp_path: Path, anki: AnkiCollection) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 16
    extra = "- 그림은?\n    - ![](/image/route.png) ![](/img/user/image/route.png)\n"
    vault = write_vault({"notes/a.md": NOTE.format(extra=extra), "image/route.png": png})
    code, stderr = build(vault, tmp_path / "d.apkg")
    assert code == 0 and "warning" not in stderr.split("note2anki:")[0], stderr
    anki.import_deck(tmp_path / "d.apkg")
    assert len(anki.media_files()) == 1
    assert answers(anki)["그림은?"].count("<img src=") == 2
