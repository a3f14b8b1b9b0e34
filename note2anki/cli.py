"""Command line: parse options, run the pipeline, print, pick the exit code (0 ok, 1 problems, 2 usage).

Results go to stdout; diagnostics, summaries and errors go to stderr.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from note2anki import __version__, listing
from note2anki import check as check_module
from note2anki.config import Config, ConfigError, load_config
from note2anki.export import ExportError
from note2anki.model import BuildResult, CardKind
from note2anki.pipeline import FrozenStateError, run
from note2anki.state import STATE_FILE, StateError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _vault_options(fn: F) -> F:
    fn = click.option(
        "--config",
        "config_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Settings file (default: note2anki.toml at the vault root, if present).",
    )(fn)
    fn = click.argument("vault", type=click.Path(exists=True, file_okay=False, path_type=Path))(fn)
    return fn


def _config(vault: Path, config_path: Path | None, **overrides: Any) -> Config:
    try:
        config = load_config(vault, config_path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


def _report(result: BuildResult, quiet: bool) -> None:
    for d in result.diagnostics:
        if not quiet or d.severity.value == "error":
            click.echo(d.format(), err=True)
    if quiet:
        return
    summary = (
        f"note2anki: {result.notes_read} notes read, {result.count(CardKind.CUE)} cue cards, "
        f"{result.count(CardKind.SUMMARY)} summary cards, {len(result.media)} media files, "
        f"{len(result.errors)} errors, {len(result.warnings)} warnings"
    )
    if result.report is not None:
        r = result.report
        summary += (
            f"; since last build: {len(r.added)} added, {len(r.changed)} changed, "
            f"{len(r.rekeyed)} re-keyed, {len(r.removed)} removed"
        )
    if result.output is not None:
        summary += f" -> {result.output}"
    click.echo(summary, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="note2anki")
def cli() -> None:
    """Turn a vault of Markdown Cornell notes into Anki decks.

    \b
    Example:
        note2anki build ~/Obsidian/Study -o study.apkg
    """


@cli.command()
@_vault_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the deck (default: <vault folder name>.apkg in the current folder).",
)
@click.option("--deck", help="Put every card in this deck instead of <subject>::<textbook>.")
@click.option(
    "--frozen",
    is_flag=True,
    help=f"Fail (exit 1, nothing written) if {STATE_FILE} would change. For CI.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write what changed since the last build (added, changed, re-keyed, removed) as JSON.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print errors only.")
def build(
    vault: Path,
    config_path: Path | None,
    output: Path | None,
    deck: str | None,
    frozen: bool,
    report_path: Path | None,
    quiet: bool,
) -> None:
    """Build an Anki deck (.apkg) from the notes in VAULT.

    Every cue question with an answer becomes a card; each note's summary becomes one more.
    Importing the deck again updates cards instead of duplicating them.

    \b
    Example:
        note2anki build samples -o samples.apkg
    """
    config = _config(vault, config_path, deck=deck)
    out = output or Path(f"{vault.resolve().name}.apkg")
    try:
        result = run(vault, config, out=out, frozen=frozen)
    except (ExportError, StateError, FrozenStateError) as exc:
        raise click.ClickException(str(exc)) from exc
    _report(result, quiet)
    if result.report is not None:
        if report_path is not None:
            report_path.write_text(
                json.dumps(result.report.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
        if result.report.removed and not quiet:
            click.echo(
                f"note2anki: {len(result.report.removed)} cards were removed from your notes; an .apkg "
                "cannot delete them, so find and delete them in Anki's browser with: "
                f"{result.report.removed_search()}",
                err=True,
            )
    sys.exit(EXIT_PROBLEMS if result.errors else EXIT_OK)


@cli.command()
@_vault_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(check_module.FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for tools, github for GitHub Actions annotations.",
)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too, not only on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
def check(vault: Path, config_path: Path | None, fmt: str, strict: bool, quiet: bool) -> None:
    """Report what to fix in the notes of VAULT, without writing a deck.

    Each finding names the file, line, a stable code and how to fix it. Exit status: 0 when there are
    no errors (warnings such as missing images are allowed), 1 on errors or, with --strict, on warnings.

    \b
    Example:
        note2anki check ~/Obsidian/Study --format github
    """
    result = run(vault, _config(vault, config_path))
    if fmt == "json":
        click.echo(check_module.format_json(result), nl=False)
    elif fmt == "github":
        click.echo(check_module.format_github(result, vault), nl=False)
    else:
        click.echo(check_module.format_text(result), nl=False)
    if not quiet:
        click.echo(
            f"note2anki: {result.notes_read} notes checked, {len(result.errors)} errors, "
            f"{len(result.warnings)} warnings",
            err=True,
        )
    sys.exit(check_module.exit_status(result, strict))


@cli.command(name="list")
@_vault_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for tools.",
)
def list_cards(vault: Path, config_path: Path | None, fmt: str) -> None:
    """List the cards a build of VAULT would make: kind, note, question, first words of the answer,
    tags and deck.

    \b
    Example:
        note2anki list samples --format json
    """
    result = run(vault, _config(vault, config_path))
    out = listing.format_json(result.cards) if fmt == "json" else listing.format_table(result.cards)
    click.echo(out, nl=False)
    for d in result.errors:
        click.echo(d.format(), err=True)
    sys.exit(EXIT_PROBLEMS if result.errors else EXIT_OK)


def main() -> None:
    cli()
