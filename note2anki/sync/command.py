"""The `note2anki sync` command (registered by cli.py)."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import click

from note2anki import summary
from note2anki.export import check_report
from note2anki.options import EXIT_OK, EXIT_PROBLEMS, vault_options, workspace_for, write_report
from note2anki.sync.local import RemovedCards, need_anki
from note2anki.sync.profiles import profile_collection


@click.command(name="sync")
@vault_options
@click.option(
    "--collection",
    "collection_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Anki collection file to sync into (collection.anki2).",
)
@click.option(
    "--server",
    "ankiweb",
    is_flag=True,
    help="Sync through AnkiWeb, or the server ANKI_ENDPOINT names (user name and password from "
    "ANKI_USERNAME, ANKI_PASSWORD).",
)
@click.option(
    "--endpoint",
    metavar="URL",
    help="Sync through this self-hosted Anki sync server instead (python -m anki.syncserver).",
)
@click.option(
    "--profile", help="Sync into this Anki profile's collection (Anki's data folder, or ANKI_BASE)."
)
@click.option(
    "--removed",
    "removed_mode",
    type=click.Choice([m.value for m in RemovedCards]),
    default=RemovedCards.SUSPEND.value,
    show_default=True,
    help="What happens to cards whose question left the notes: suspended and tagged note2anki::removed "
    "(reviews kept, reversible), deleted, or kept as they are.",
)
@click.option(
    "--force", is_flag=True, help="Sync even when it would remove most or all of this vault's cards."
)
@click.option("--dry-run", is_flag=True, help="Print what the sync would do; write nothing.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write what the sync did as JSON.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print errors only.")
def sync_command(
    vault: Path | None,
    config_path: Path | None,
    collection_path: Path | None,
    ankiweb: bool,
    endpoint: str | None,
    profile: str | None,
    removed_mode: str,
    force: bool,
    dry_run: bool,
    report_path: Path | None,
    quiet: bool,
) -> None:
    """Put the cards of VAULT straight into an Anki collection, with Anki closed: build the deck, then import
    it the way Anki's importer does, and suspend (or delete) the cards whose question left the notes. Only
    cards this vault put there are ever touched. A backup of the collection is made first.

    \b
    Example:
        note2anki sync ~/Obsidian/Study --profile "User 1" --dry-run
    """
    from note2anki.sync import Target, sync_local, sync_server
    from note2anki.sync.server import Server

    chosen = [collection_path is not None, profile is not None, ankiweb, endpoint is not None]
    if sum(chosen) != 1:
        raise click.UsageError(
            "name one place to sync to: --collection PATH or --profile NAME (a collection file, Anki "
            "closed), or --server (AnkiWeb) or --endpoint URL (a self-hosted sync server)"
        )
    need_anki()
    if ankiweb and endpoint is None:  # --server: AnkiWeb, or the self-hosted server ANKI_ENDPOINT names
        endpoint = os.environ.get("ANKI_ENDPOINT", "").strip() or None
    ws = workspace_for(vault, config_path)
    if report_path is not None:
        check_report(report_path, ws.vault)
    with summary.progress(quiet) as progress:
        mode = RemovedCards(removed_mode)
        if ankiweb or endpoint:
            done = sync_server(ws, Server(endpoint), mode, force=force, dry_run=dry_run, progress=progress)
        else:
            target = (
                Target(profile_collection(profile), profile=True)
                if profile is not None
                else Target(collection_path or Path())
            )
            done = sync_local(ws, target, mode, force=force, dry_run=dry_run, progress=progress)
    summary.report(dataclasses.replace(done.build, outputs=()), quiet)  # the deck was a temporary file
    if not quiet:
        summary.report_sync(done, RemovedCards(removed_mode), dry_run)
    if report_path is not None:
        data = {"collection": str(done.collection), "dry_run": dry_run, **done.plan.to_json()}
        data["backup"] = str(done.backup) if done.backup else None
        write_report(report_path, data)
    sys.exit(EXIT_PROBLEMS if done.build.errors else EXIT_OK)
