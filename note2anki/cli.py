"""Command line: parse options, run the pipeline, print, pick the exit code (0 ok, 1 problems, 2 usage).

Results go to stdout; diagnostics, summaries and errors go to stderr.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from note2anki import check as check_module
from note2anki import listing, summary
from note2anki._version import __version__
from note2anki.build import removed as removed_list
from note2anki.build.removed import search as removed_search
from note2anki.config import CONFIG_FILE, Workspace
from note2anki.errors import Note2AnkiError, UsageError
from note2anki.export import check_report
from note2anki.model import BuildResult, Scan
from note2anki.options import EXIT_OK, EXIT_PROBLEMS, vault_options, workspace_for, write_report
from note2anki.pipeline import run
from note2anki.precommit import notes_in_vault, unstaged
from note2anki.state import STATE_FILE
from note2anki.summary import plural
from note2anki.sync.command import sync_command
from note2anki.workflow import WORKFLOW_PATH, default_install, layout, workflow

F = TypeVar("F", bound=Callable[..., Any])


class _Commands(click.Group):
    """The one place where note2anki's errors become exit codes: a `UsageError` (bad option, setting or
    path) exits 2, every other `Note2AnkiError` exits 1; both print only their message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            raise click.UsageError(str(exc)) from exc
        except Note2AnkiError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="note2anki")
def cli() -> None:
    """Turn a vault of Markdown Cornell notes into Anki decks.

    \b
    Example:
        note2anki build ~/Obsidian/Study -o study.apkg
    """


@cli.command()
@vault_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the deck (default: `output` in note2anki.toml, else <vault folder name>.apkg in "
    "the current folder).",
)
@click.option("--deck", help="Put every card in this deck instead of <subject>::<textbook>.")
@click.option(
    "--split",
    type=click.Choice(["subject"]),
    help="One deck per subject (OUTPUT-<subject>.apkg) instead of one for the whole vault.",
)
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
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Processes that read changed notes (default: one per CPU, for vaults of 200+ changed notes).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Read every note again instead of reusing .note2anki/cache (which is still refreshed).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print errors only; no summary, no progress bar.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Print every warning, also those of notes unchanged since the last build (counted in one line "
    "otherwise).",
)
def build(
    vault: Path | None,
    config_path: Path | None,
    output: Path | None,
    deck: str | None,
    split: str | None,
    frozen: bool,
    report_path: Path | None,
    jobs: int | None,
    no_cache: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Build an Anki deck (.apkg) from the notes in VAULT (default: `vault` in ./note2anki.toml, else the
    current folder when it is a vault: it has .obsidian/ or note2anki.lock).

    Every cue question with an answer becomes a card; each note's summary becomes one more.
    Importing the deck again updates cards instead of duplicating them.

    \b
    Example:
        note2anki build samples -o samples.apkg
    """
    ws = workspace_for(vault, config_path, deck=deck)
    out = output or ws.default_output
    if not out.suffix:  # `-o mydeck`: Anki only imports files named .apkg
        out = out.with_name(out.name + ".apkg")
    if report_path is not None:
        check_report(report_path, ws.vault)
    result = _build(
        ws, out, split=split, frozen=frozen, quiet=quiet, jobs=jobs, cache=not no_cache, verbose=verbose
    )
    if report_path is not None:
        write_report(report_path, {"cards": result.card_total, **result.report.to_json()})
    sys.exit(EXIT_PROBLEMS if result.errors else EXIT_OK)


def _build(ws: Workspace, out: Path, quiet: bool, verbose: bool = False, **options: Any) -> BuildResult:
    """`build`'s work: run the pipeline (`options`: run's frozen, split, jobs, cache) and report."""
    with summary.progress(quiet) as progress:
        result = run(ws.vault, ws.config, out, progress=progress, **options)
    summary.report(result, quiet, verbose)
    if not quiet:
        summary.report_removed(result.removed)
    return result


@cli.command()
@vault_options
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
def check(vault: Path | None, config_path: Path | None, fmt: str, strict: bool, quiet: bool) -> None:
    """Report what to fix in the notes of VAULT, without writing a deck.

    Each finding names the file, line, a stable code and how to fix it. Exit status: 0 when there are
    no errors (warnings such as missing images are allowed), 1 on errors or, with --strict, on warnings.

    \b
    Example:
        note2anki check ~/Obsidian/Study --format github
    """
    ws = workspace_for(vault, config_path)
    result = run(ws.vault, ws.config)
    _print_check(result, ws, fmt, quiet)
    sys.exit(check_module.exit_status(result, strict))


def _print_check(result: Scan, ws: Workspace, fmt: str, quiet: bool) -> None:
    if fmt == "json":
        click.echo(check_module.format_json(result), nl=False)
    elif fmt == "github":
        click.echo(check_module.format_github(result, ws.vault), nl=False)
    else:
        click.echo(check_module.format_text(result), nl=False)
    if not quiet:
        click.echo(
            f"note2anki: {plural(result.notes_read, 'note')} checked, {plural(len(result.errors), 'error')}, "
            f"{plural(len(result.warnings), 'warning')}",
            err=True,
        )


@cli.command(name="list")
@vault_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for tools.",
)
def list_cards(vault: Path | None, config_path: Path | None, fmt: str) -> None:
    """List the cards a build of VAULT would make: kind, note, question, first words of the answer,
    tags and deck.

    \b
    Example:
        note2anki list samples --format json
    """
    ws = workspace_for(vault, config_path)
    result = run(ws.vault, ws.config)
    out = listing.format_json(result.cards) if fmt == "json" else listing.format_table(result.cards)
    click.echo(out, nl=False)
    for d in result.errors:
        click.echo(d.format(), err=True)
    sys.exit(EXIT_PROBLEMS if result.errors else EXIT_OK)


@cli.command(name="init-ci")
@click.option("--force", is_flag=True, help="Overwrite an existing workflow file.")
@click.option(
    "--install",
    metavar="REQUIREMENT",
    help="What the workflow installs with pip (default: the git URL this note2anki came from, else this "
    "version from PyPI; the repository variable NOTE2ANKI_INSTALL overrides it in CI).",
)
@click.option(
    "--vault",
    help="The vault folder, relative to the repository root (default: what note2anki.toml at the root says, "
    "else the root).",
)
@click.option(
    "--sync",
    "with_sync",
    is_flag=True,
    help="Also sync the deck to Anki through AnkiWeb (or the server the variable ANKI_ENDPOINT names) on "
    "every push to the default branch, with the secrets ANKI_USERNAME and ANKI_PASSWORD.",
)
def init_ci(force: bool, install: str | None, vault: str | None, with_sync: bool) -> None:
    """Write a GitHub Actions workflow (.github/workflows/anki.yml) into the repository in the current
    folder: it keeps note2anki's cache between runs, checks the notes (annotations on the changed lines),
    builds the deck with --frozen using the same note2anki.toml, vault and lock file as your own builds,
    uploads it as an artifact and attaches it to a release when a tag is pushed.

    \b
    Example:
        cd ~/Obsidian/Study && note2anki init-ci && git add .github && git commit -m "Build my deck in CI"
    """
    target = Path.cwd() / WORKFLOW_PATH
    if target.exists() and not force:
        raise click.ClickException(f"{WORKFLOW_PATH} already exists; pass --force to overwrite it")
    text = workflow(install, layout(Path.cwd(), vault), sync=with_sync)
    if install is None:
        _, note = default_install()
        if note:
            click.echo(f"note2anki: {note}", err=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    click.echo(str(target))


@cli.command(name="removed")
@vault_options
@click.option("--clear", is_flag=True, help="Forget the list (after deleting the cards in Anki).")
def removed_cards(vault: Path | None, config_path: Path | None, clear: bool) -> None:
    """List the cards removed from the notes of VAULT that may still be in Anki, and print one Anki search
    that finds them all (stdout). An .apkg cannot delete cards: search in Anki's browser, delete them, then
    clear the list.

    \b
    Example:
        note2anki removed samples && note2anki removed samples --clear
    """
    ws = workspace_for(vault, config_path)
    root = ws.vault.resolve()
    cards = removed_list.load(root)
    if clear:
        removed_list.save(root, [])
        click.echo(f"note2anki: forgot {plural(len(cards), 'removed card')}", err=True)
        return
    for card in cards:
        click.echo(f"{card.path}: {card.question} (nid:{card.nid})", err=True)
    if cards:
        click.echo(removed_search(cards))
    click.echo(f"note2anki: {plural(len(cards), 'removed card')} may still be in Anki", err=True)


@cli.group()
def hook() -> None:
    """Entry points for the pre-commit hooks in .pre-commit-hooks.yaml.

    They read note2anki.toml in the repository root (`vault`, `output`).

    \b
    Example:
        note2anki hook check notes/lambda.md
    """


@hook.command(name="check")
@click.argument("files", nargs=-1)
def hook_check(files: tuple[str, ...]) -> None:
    """Check the staged notes FILES; exit 1 on errors.

    \b
    Example:
        note2anki hook check notes/lambda.md notes/s3.md
    """
    ws = _hookworkspace_for()
    result = run(ws.vault, ws.config, only=notes_in_vault(files, ws.vault))
    _print_check(result, ws, "text", quiet=True)
    sys.exit(EXIT_PROBLEMS if result.errors else EXIT_OK)


@hook.command(name="build")
def hook_build() -> None:
    """Rebuild the deck and the card state file; exit 1 on errors or while the rewritten state file is
    not staged.

    \b
    Example:
        note2anki hook build
    """
    ws = _hookworkspace_for()
    result = _build(ws, ws.default_output, quiet=True)
    lock = ws.vault / STATE_FILE
    if lock.exists() and unstaged(lock):
        shown = Path(os.path.relpath(lock)).as_posix()
        click.echo(f"note2anki: {shown} was updated; stage it (git add {shown}) and commit again", err=True)
        sys.exit(EXIT_PROBLEMS)
    sys.exit(EXIT_PROBLEMS if result.errors else EXIT_OK)


def _hookworkspace_for() -> Workspace:
    # A repository without note2anki.toml is itself the vault.
    return workspace_for(None if (Path.cwd() / CONFIG_FILE).is_file() else Path.cwd(), None)


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM (a CI runner's cancel, `kill`) unwinds like Ctrl-C: temporary files are removed and worker
    processes stopped on the way out; nothing half-written is left."""
    raise SystemExit(128 + signum)


cli.add_command(sync_command)


def main() -> None:
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _terminate)
    cli()
