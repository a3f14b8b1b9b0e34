"""What the CLI's commands share: exit codes, the VAULT and --config options, settings, the JSON report."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from note2anki.atomic import atomic_write
from note2anki.config import Workspace, workspace

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_PROBLEMS = 0, 1  # usage errors exit 2 through click


def vault_options(fn: F) -> F:
    fn = click.option(
        "--config",
        "config_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Settings file (default: note2anki.toml at the vault root, or in the current folder when VAULT "
        "is omitted).",
    )(fn)
    fn = click.argument(
        "vault", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
    )(fn)
    return fn


def workspace_for(vault: Path | None, config_path: Path | None, **overrides: Any) -> Workspace:
    ws = workspace(vault, config_path)
    config = dataclasses.replace(ws.config, **{k: v for k, v in overrides.items() if v is not None})
    return dataclasses.replace(ws, config=config)


def write_report(path: Path, data: object) -> None:
    try:
        with atomic_write(path) as f:
            f.write((json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode())
    except OSError as exc:
        raise click.ClickException(f"cannot write {path} ({exc.strerror or exc})") from exc
