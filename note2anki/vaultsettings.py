"""What the vault's own `.obsidian/` folder says about its notes: line breaks, the templates folder.

Obsidian keeps these in JSON files the student never edits by hand. Each is read defensively: a missing,
unreadable or odd file means Obsidian's default, never an error.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

from note2anki.config import Config
from note2anki.model import VaultSettings

#: the files Obsidian and its Templater plugin keep their templates folder in
_TEMPLATE_SOURCES = (
    (".obsidian/templates.json", "folder"),
    (".obsidian/plugins/templater-obsidian/data.json", "templates_folder"),
)
_MAX_BYTES = 1_000_000


def _json(root: Path, rel: str) -> dict[str, Any]:
    path = root / rel
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _folder(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    rel = posixpath.normpath(value.strip().replace("\\", "/").strip("/"))
    if not rel or rel == "." or rel.startswith("..") or posixpath.isabs(rel):
        return None
    return rel


def vault_settings(root: Path, config: Config) -> VaultSettings:
    """The settings that shape this vault's cards: note2anki.toml first, then `.obsidian/`, then Obsidian's
    defaults."""
    strict = config.strict_line_breaks
    if strict is None:
        strict = _json(root, ".obsidian/app.json").get("strictLineBreaks") is True
    folders: list[str] = []
    if not config.read_templates:
        for rel, key in _TEMPLATE_SOURCES:
            folder = _folder(_json(root, rel).get(key))
            if folder is not None and folder not in folders:
                folders.append(folder)
    return VaultSettings(breaks=not strict, template_folders=tuple(folders))
