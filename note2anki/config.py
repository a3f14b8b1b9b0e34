"""Settings: built-in defaults that cover the Cornell template, optionally overridden by `note2anki.toml`."""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from note2anki.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILE = "note2anki.toml"


@dataclass(frozen=True)
class Config:
    # Section headings, compared after dropping emoji, symbols, emphasis markers, case and spaces
    # (cornell.heading_key). A trailing `*` matches any heading that starts with the name
    # (`단서 질문*` covers `단서 질문 및 답변`); without it the heading must be exactly the name.
    cue_headings: tuple[str, ...] = ("단서 질문*", "Cue questions", "Questions")
    summary_headings: tuple[str, ...] = ("핵심 요약*", "Summary")
    #: other template headings: each ends a cue or summary section whatever its level
    other_headings: tuple[str, ...] = ("핵심 필기*", "복습알림*", "Notes", "Main notes", "Review")
    #: toggle and label bullets whose children are the real content (Notion toggles, summary labels)
    wrappers: tuple[str, ...] = ("핵심 요약 접기", "전체 내용 접기", "AI 요약", "직접 요약")
    #: template text that is never a question or a summary item
    placeholders: tuple[str, ...] = ("질문1", "학습내용을 몇문장으로 압축하여 정리한다.")
    #: sub-headings in a cue section that close it off rather than ask something: no card
    non_question_headings: tuple[str, ...] = (
        "결론",
        "정리",
        "마무리",
        "참고",
        "참고 자료",
        "Conclusion",
        "Takeaways",
        "References",
        "Wrap-up",
    )
    subject_keys: tuple[str, ...] = ("과목", "subject")
    textbook_keys: tuple[str, ...] = ("교재", "textbook", "book")
    include: tuple[str, ...] = ("**/*.md",)
    exclude: tuple[str, ...] = ()
    #: deck name; a `::` part whose placeholders are all empty is dropped; nothing left -> default_deck
    deck: str = "{subject}::{textbook}"
    #: tag templates; a tag whose placeholder is empty is left out
    tags: tuple[str, ...] = ("subject::{subject}", "textbook::{textbook}")
    #: deck for notes with neither subject nor textbook; empty means the vault's folder name
    default_deck: str = ""
    #: where the notes are, relative to this file (for `note2anki build` run without VAULT, and the hooks)
    vault: str = "."
    #: Obsidian's name for the vault, used in the cards' `obsidian://open?vault=…` links; empty means the
    #: vault's folder name (set it when the folder is checked out under another name)
    obsidian_vault: str = ""
    #: summary bullets with **bold** or ==highlighted== terms also become cloze notes, one card per term
    cloze: bool = True
    #: where `build` writes the deck when `-o` is not given, relative to this file; empty means
    #: `<vault folder name>.apkg` in the current folder
    output: str = ""
    #: notes larger than this many megabytes are skipped with an error (a pasted base64 image, an export
    #: gone wrong); raise it for a vault that really has such notes
    max_note_mb: int = 10
    #: images on the web (`![](https://…)`) are shown as links, because Anki would fetch them every time a
    #: card is shown (a tracker, a dead link, no network); `true` lets them load
    remote_images: bool = False
    #: a single newline inside a paragraph stays a space (Obsidian's "Strict line breaks" on); unset means
    #: what the vault's `.obsidian/app.json` says, and without it Obsidian's default: a line break
    strict_line_breaks: bool | None = None
    #: notes in the Obsidian templates folder (as `.obsidian/` names it) are read too; by default they are
    #: skipped, since a template is not study material
    read_templates: bool = False
    #: diagnostic codes not to report (`ignore = ["N2A202"]`); a note can add its own in its frontmatter
    #: (`note2anki-ignore: [N2A202]`)
    ignore: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str) -> Config:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"{origin}: unknown key(s) {', '.join(unknown)}; allowed keys are: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            default = getattr(cls(), key)
            if key in _OPTIONAL_BOOLS:
                if not isinstance(value, bool):
                    raise ConfigError(f"{origin}: `{key}` must be true or false")
                values[key] = value
            elif isinstance(default, tuple):
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"{origin}: `{key}` must be a list of strings")
                values[key] = tuple(value)
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{origin}: `{key}` must be true or false")
                values[key] = value
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigError(f"{origin}: `{key}` must be a whole number of at least 1")
                values[key] = value
            elif not isinstance(value, str):
                raise ConfigError(f"{origin}: `{key}` must be a string")
            else:
                values[key] = value
        bad = [c for c in values.get("ignore", ()) if not _CODE.fullmatch(c)]
        if bad:
            raise ConfigError(
                f'{origin}: `ignore` takes diagnostic codes such as "N2A202", not {", ".join(map(repr, bad))}'
            )
        return dataclasses.replace(cls(), **values)


#: settings that are true, false or not set (None: decided elsewhere)
_OPTIONAL_BOOLS = frozenset({"strict_line_breaks"})
_CODE = re.compile(r"N2A\d{3}")


@dataclass(frozen=True)
class Workspace:
    """The vault to read, its settings, and where the deck goes unless `-o` says otherwise."""

    vault: Path
    config: Config
    default_output: Path


def workspace(vault: Path | None, config_path: Path | None, cwd: Path | None = None) -> Workspace:
    """VAULT given: its `note2anki.toml` (or `config_path`). VAULT omitted: `note2anki.toml` in the current
    folder (or `config_path`), whose `vault` key says where the notes are; else the current folder.
    Paths in the file are relative to the file."""
    cwd = cwd or Path.cwd()
    if vault is None:
        path = config_path or (cwd / CONFIG_FILE if (cwd / CONFIG_FILE).is_file() else None)
        if path is None and looks_like_vault(cwd):
            return workspace(cwd, None, cwd)
        if path is None:  # never walk an arbitrary folder (a home directory) by accident
            raise ConfigError(
                f"no VAULT given, and the current folder has no {CONFIG_FILE} and is not a vault (no "
                f".obsidian folder, no note2anki.lock); name the vault folder "
                f'(`note2anki build PATH`) or add a {CONFIG_FILE} with `vault = "."`'
            )
        config = load_config(cwd, path)
        base = path.parent
        vault = base / config.vault
        if not vault.is_dir():
            raise ConfigError(f"{path}: `vault = {config.vault!r}` is not a folder")
    else:
        config = load_config(vault, config_path)
        found = config_path or vault / CONFIG_FILE
        base = found.parent if found.is_file() else vault
    root = vault.resolve()
    # never into the vault itself (pipeline refuses that): next to it when run from inside it
    here = root.parent if cwd.resolve().is_relative_to(root) else cwd
    output = base / config.output if config.output else here / f"{root.name}.apkg"
    return Workspace(vault=vault, config=config, default_output=output)


def looks_like_vault(folder: Path) -> bool:
    """A folder note2anki may read without being told to: an Obsidian vault (`.obsidian/`) or one it built
    before (`note2anki.lock`). A folder that merely holds Markdown (a code repository's README) is not."""
    here = folder.resolve()
    return (here / ".obsidian").is_dir() or (here / "note2anki.lock").is_file()


def load_config(vault: Path, path: Path | None = None) -> Config:
    """Read `path`, or `note2anki.toml` at the vault root when it exists, else use the defaults."""
    if path is None:
        candidate = vault / CONFIG_FILE
        if not candidate.is_file():
            return Config()
        path = candidate
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return Config.from_mapping(data, str(path))
