"""`note2anki check`: the build pipeline without the write step; its findings for people and tools."""

from __future__ import annotations

import json
import os
from pathlib import Path

from note2anki.model import CardKind, Diagnostic, Scan

FORMATS = ("text", "json", "github")


def exit_status(result: Scan, strict: bool) -> int:
    """1 when the vault has errors (or, with `strict`, warnings), else 0."""
    return 1 if result.errors or (strict and result.warnings) else 0


def format_text(result: Scan) -> str:
    return "".join(d.format() + "\n" for d in result.diagnostics)


def format_json(result: Scan) -> str:
    data = {
        "notes": result.notes_read,
        "cards": {kind.value: result.count(kind) for kind in CardKind},
        "errors": len(result.errors),
        "warnings": len(result.warnings),
        "diagnostics": [
            {
                "path": d.path,
                "line": d.line,
                "code": d.code,
                "severity": d.severity.value,
                "message": d.message,
            }
            for d in result.diagnostics
        ],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _escape_github(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def github_annotation(d: Diagnostic, vault: Path, cwd: Path | None = None) -> str:
    """A GitHub Actions workflow command; the file path is relative to the working directory (the
    repository root in CI), so annotations land on the right lines even when the vault is a subfolder."""
    path = os.path.relpath(vault / d.path, cwd or Path.cwd())
    props = f"file={_escape_github(Path(path).as_posix(), True)}"
    if d.line is not None:
        props += f",line={d.line}"
    props += f",title={_escape_github(d.code, True)}"
    return f"::{d.severity.value} {props}::{_escape_github(d.message)}"


def format_github(result: Scan, vault: Path) -> str:
    return "".join(github_annotation(d, vault) + "\n" for d in result.diagnostics)
