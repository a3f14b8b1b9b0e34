"""Where Anki keeps a profile's collection: its data folder on Linux, macOS and Windows, or `ANKI_BASE`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from note2anki.errors import UsageError

COLLECTION_FILE = "collection.anki2"


def anki_base(env: dict[str, str] | None = None, platform: str | None = None) -> Path:
    """Anki's data folder (the one holding a folder per profile), as Anki itself finds it."""
    env = dict(os.environ) if env is None else env
    platform = platform or sys.platform
    if env.get("ANKI_BASE"):
        return Path(env["ANKI_BASE"]).expanduser()
    home = Path(env.get("HOME") or Path.home())
    if platform.startswith("win"):
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "Anki2"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "Anki2"
    return Path(env.get("XDG_DATA_HOME") or home / ".local" / "share") / "Anki2"


def profile_collection(name: str, env: dict[str, str] | None = None, platform: str | None = None) -> Path:
    """The collection of Anki profile `name`; a profile that does not exist is a usage error that names the
    profiles there are."""
    base = anki_base(env, platform)
    path = base / name / COLLECTION_FILE
    if not path.is_file():
        found = sorted(p.parent.name for p in base.glob(f"*/{COLLECTION_FILE}")) if base.is_dir() else []
        known = f"profiles there: {', '.join(found)}" if found else "no profiles there"
        raise UsageError(
            f"--profile {name}: no collection at {path} ({known}); open Anki once with that profile, or name "
            "the file with --collection"
        )
    return path


def backup_folder(collection: Path, profile: bool) -> Path:
    """Where the backup goes: the profile's `backups` folder (as Anki's own), or next to the file."""
    return collection.parent / "backups" if profile else collection.parent
