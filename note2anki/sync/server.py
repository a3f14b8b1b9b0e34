"""`note2anki sync --server` / `--endpoint URL`: the vault's cards reach the student's collection through
AnkiWeb or a self-hosted Anki sync server, from any machine (a CI runner) and with Anki open elsewhere.

note2anki is one more Anki client. It keeps a working copy of the collection in `.note2anki/sync/`, so each
run is a normal, incremental sync: download what the phone did, apply the vault's cards with the rules of the
local sync (local.py), upload. It never replaces the server's collection with its own: when the server asks
for a full sync, note2anki downloads the server's collection and applies the vault again; a full upload
happens only to a server that holds no cards at all.

The user name and password come only from the environment (ANKI_USERNAME, ANKI_PASSWORD) and are never
printed or written. The session key the server returns is kept in `.note2anki/sync/session.json` (mode 600;
not on CI, where the password is at hand) so later runs need no password round trip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from note2anki.build.private import private_dir
from note2anki.errors import Note2AnkiError, UsageError

WORK_DIR = "sync"
COLLECTION = "collection.anki2"
SESSION = "session.json"
#: seconds a request to the server may stall before the sync gives up (Anki's own default is longer)
IO_TIMEOUT = 60
#: how long the media upload may take after the collection is synced
MEDIA_SECONDS = 600


class SyncFailed(Note2AnkiError):
    """The server could not be reached, refused the login, or would not sync; nothing was half-written."""


@dataclass(frozen=True)
class Server:
    endpoint: str | None  # None: AnkiWeb

    @property
    def shown(self) -> str:
        return self.endpoint or "AnkiWeb"


def credentials() -> tuple[str, str]:
    user, password = os.environ.get("ANKI_USERNAME", ""), os.environ.get("ANKI_PASSWORD", "")
    if not user or not password:
        raise UsageError(
            "set ANKI_USERNAME and ANKI_PASSWORD in the environment (in CI: repository secrets); note2anki "
            "never takes them as options"
        )
    return user, password


def work_dir(root: Path) -> Path:
    return private_dir(root, WORK_DIR)


def _load_session(folder: Path, server: Server) -> dict[str, str] | None:
    try:
        data = json.loads((folder / SESSION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("server") != server.shown or not data.get("hkey"):
        return None
    return {"hkey": str(data["hkey"]), "endpoint": str(data.get("endpoint") or "")}


def _save_session(folder: Path, server: Server, auth: Any) -> None:
    if os.environ.get("CI"):  # a CI cache is readable by other workflows of the repository: keep no key there
        return
    path = folder / SESSION
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"server": server.shown, "hkey": auth.hkey, "endpoint": auth.endpoint}, f)
        os.chmod(path, 0o600)


def _forget_session(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / SESSION).unlink()


def _explain(exc: Exception, server: Server) -> SyncFailed:
    from anki.errors import NetworkError, SyncError, SyncErrorKind

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "FileTooNew" in first:  # the backend's words for a collection of a newer schema than it knows
        from anki.buildinfo import version

        return SyncFailed(
            f"the collection on {server.shown} was made by a newer version of Anki than the `anki` package "
            f"note2anki syncs with ({version}); upgrade it (pip install -U anki) and run note2anki again"
        )
    if isinstance(exc, SyncError) and exc.kind is SyncErrorKind.AUTH:
        return SyncFailed(
            f"{server.shown} refused the login: check ANKI_USERNAME and ANKI_PASSWORD ({first})"
        )
    if isinstance(exc, NetworkError):
        return SyncFailed(f"cannot reach {server.shown}: {first} (check the address and your connection)")
    if isinstance(exc, SyncError):
        return SyncFailed(f"{server.shown} would not sync: {first}")
    return SyncFailed(f"syncing with {server.shown} failed: {first}")


def open_working_copy(folder: Path) -> Any:
    """The working copy; a missing or damaged one starts empty (the first sync then downloads it)."""
    from anki.collection import Collection
    from anki.errors import DBError

    path = folder / COLLECTION
    try:
        return Collection(str(path))
    except DBError as exc:
        if "already open" in str(exc):
            raise SyncFailed(f"another note2anki sync of this vault is running ({path} is open)") from exc
    for leftover in folder.glob("collection.*"):  # damaged: start again from the server's copy
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    return Collection(str(path))


class Client:
    """One run's conversation with the server about the working copy `col`."""

    def __init__(self, col: Any, folder: Path, server: Server) -> None:
        self.col, self.folder, self.server = col, folder, server
        self.auth: Any = None

    def login(self) -> None:
        from anki.sync_pb2 import SyncAuth

        known = _load_session(self.folder, self.server)
        if known is not None:
            self.auth = SyncAuth(
                hkey=known["hkey"], endpoint=known["endpoint"] or None, io_timeout_secs=IO_TIMEOUT
            )
            return
        user, password = credentials()
        try:
            auth = self.col.sync_login(user, password, self.server.endpoint)
        except Exception as exc:
            raise _explain(exc, self.server) from exc
        self.auth = SyncAuth(hkey=auth.hkey, endpoint=auth.endpoint or None, io_timeout_secs=IO_TIMEOUT)
        _save_session(self.folder, self.server, self.auth)

    def sync(self, media: bool = False) -> int:
        """A normal sync (the backend merges both sides); returns what the server still requires."""
        from anki.errors import SyncError, SyncErrorKind

        try:
            out = self.col.sync_collection(self.auth, media)
        except SyncError as exc:
            if exc.kind is SyncErrorKind.AUTH and _load_session(self.folder, self.server) is not None:
                _forget_session(self.folder)  # an expired key: log in with the password once
                self.login()
                return self.sync(media)
            raise _explain(exc, self.server) from exc
        except Exception as exc:
            raise _explain(exc, self.server) from exc
        if out.HasField("new_endpoint") and out.new_endpoint:
            self.auth.endpoint = out.new_endpoint
            _save_session(self.folder, self.server, self.auth)
        self.server_usn = out.server_media_usn
        return int(out.required)

    def download(self) -> None:
        """Replace the working copy (never the server's collection) with the server's."""
        self._full(upload=False)

    def upload_to_empty_server(self) -> None:
        """The server holds no cards at all (a new account): the working copy becomes its collection."""
        self._full(upload=True)

    def _full(self, upload: bool) -> None:
        try:
            self.col.close_for_full_sync()
            self.col.full_upload_or_download(auth=self.auth, server_usn=self.server_usn, upload=upload)
        except Exception as exc:
            raise _explain(exc, self.server) from exc
        finally:
            self.col.reopen(after_full_sync=True)

    def wait_for_media(self) -> None:
        deadline = time.monotonic() + MEDIA_SECONDS
        try:
            while self.col.media_sync_status().active:
                if time.monotonic() > deadline:
                    self.col.abort_media_sync()
                    raise SyncFailed(
                        f"the media upload to {self.server.shown} took over {MEDIA_SECONDS} s and was "
                        "stopped; the cards are synced, the images follow on the next run"
                    )
                time.sleep(0.1)
        except SyncFailed:
            raise
        except Exception as exc:
            raise _explain(exc, self.server) from exc
