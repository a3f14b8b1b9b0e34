"""`note2anki sync`: the vault's cards put straight into Anki, without a manual import.

- `local`: into a collection file on this machine (`--collection PATH`, `--profile NAME`), with Anki closed;
- `profiles`: where Anki keeps a profile's collection;
- `deck`: what a built deck holds, read back for the comparison.

The official `anki` package is an optional extra (`pip install 'note2anki[sync]'`); it is imported only here,
only when a sync runs, so `build` stays light.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from note2anki.config import Workspace
from note2anki.model import BuildResult
from note2anki.pipeline import Progress, run
from note2anki.sync.deck import Deck, read_deck
from note2anki.sync.local import (
    Plan,
    RemovedCards,
    apply,
    changes_anything,
    guard,
    need_anki,
    open_collection,
    plan,
)
from note2anki.sync.profiles import backup_folder
from note2anki.sync.server import Client, Server, SyncFailed, open_working_copy, work_dir


@dataclass(frozen=True)
class Target:
    """The collection to sync into."""

    path: Path
    profile: bool = False  # found through --profile: backups go to the profile's backups folder


@dataclass(frozen=True)
class SyncResult:
    build: BuildResult
    plan: Plan
    collection: str  # the file, or the server
    written: bool  # False: nothing to do (or --dry-run); the collection was not changed
    backup: Path | None = None


def vault_key(ws: Workspace) -> str:
    """The name the collection knows this vault's cards by (two vaults in one collection need two names)."""
    return ws.config.obsidian_vault or ws.vault.resolve().name


@contextlib.contextmanager
def _deck(
    ws: Workspace, dry_run: bool, progress: Progress | None
) -> Iterator[tuple[BuildResult, Path, Deck]]:
    """The vault built into a temporary deck (the state file updated, unless `dry_run`), and what it holds."""
    need_anki()
    with tempfile.TemporaryDirectory(prefix="note2anki-sync-") as tmp:
        apkg = Path(tmp) / "deck.apkg"
        built = run(ws.vault, ws.config, apkg, progress=progress, record=not dry_run)
        yield built, apkg, read_deck(apkg)


def sync_local(
    ws: Workspace,
    target: Target,
    removed: RemovedCards = RemovedCards.SUSPEND,
    *,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> SyncResult:
    """Build the vault's deck, then put it into the collection at `target` (see local.py). With `dry_run`,
    nothing is written: not the collection, not the state file."""
    with _deck(ws, dry_run, progress) as (built, apkg, deck), open_collection(target.path) as col:
        p = plan(col, deck, vault_key(ws), removed)
        guard(p, removed, force)
        if dry_run or not changes_anything(p, removed):
            return SyncResult(built, p, str(target.path), written=False)
        folder = backup_folder(target.path, target.profile)
        folder.mkdir(parents=True, exist_ok=True)
        col.create_backup(backup_folder=str(folder), force=True, wait_for_completion=True)
        backup = max(folder.glob("backup-*.colpkg"), key=lambda f: f.stat().st_mtime, default=None)
        apply(col, apkg, deck, p, vault_key(ws), removed)
    return SyncResult(built, p, str(target.path), written=True, backup=backup)


def sync_server(
    ws: Workspace,
    server: Server,
    removed: RemovedCards = RemovedCards.SUSPEND,
    *,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> SyncResult:
    """Build the vault's deck, then sync it through AnkiWeb or a self-hosted server (see server.py)."""
    need_anki()  # before the build: without the package there is nothing to sync with
    from anki.sync_pb2 import SyncCollectionResponse as Required

    full = (Required.FULL_SYNC, Required.FULL_DOWNLOAD)
    folder = work_dir(ws.vault.resolve())
    with _deck(ws, dry_run, progress) as (built, apkg, deck):
        col = open_working_copy(folder)
        try:
            client = Client(col, folder, server)
            client.login()
            if client.sync() in full:  # a first run, a lost working copy, or the server says so
                client.download()
            p = plan(col, deck, vault_key(ws), removed)
            guard(p, removed, force)
            if dry_run:
                return SyncResult(built, p, server.shown, written=False)
            written = changes_anything(p, removed)
            if written:
                apply(col, apkg, deck, p, vault_key(ws), removed)
            required = client.sync(media=True)
            if required in full:  # never a full upload over the server's collection: download, apply again
                client.download()
                p = plan(col, deck, vault_key(ws), removed)
                guard(p, removed, force)
                if changes_anything(p, removed):
                    apply(col, apkg, deck, p, vault_key(ws), removed)
                if client.sync(media=True) in full:
                    raise SyncFailed(
                        f"{server.shown} asks for a full sync in both directions; note2anki never replaces "
                        "the server's collection. Sync Anki on one of your devices (choosing the side to "
                        "keep), then run note2anki again"
                    )
            elif required == Required.FULL_UPLOAD:  # the server holds no cards at all: nothing to lose
                client.upload_to_empty_server()
                client.sync(media=True)
            client.wait_for_media()
        finally:
            col.close()
    return SyncResult(built, p, server.shown, written=written)
