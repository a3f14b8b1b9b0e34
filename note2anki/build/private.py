"""The vault's private folder, `.note2anki/`: note2anki's cache, temporary files and records, never committed.

Nothing in it is trusted blindly: a shared vault could hold anything there, so a folder that is a link
(symlink) is never read or written through.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

PRIVATE_DIR = ".note2anki"
CACHE_DIR = f"{PRIVATE_DIR}/cache"
_GITIGNORE = "# Written by note2anki: its cache and temporary files. Never commit them.\n*\n"


def private_dir(root: Path, sub: str) -> Path:
    """`.note2anki/<sub>` in the vault at `root`, created with a `.gitignore` that keeps all of
    `.note2anki/` out of git. Raises OSError when it cannot be created or when a part of it is a link
    (symlink): a shared vault must not be able to point note2anki's writes elsewhere."""
    base = root / PRIVATE_DIR
    part = root
    for name in (PRIVATE_DIR, *PurePosixPath(sub).parts):
        part = part / name
        if part.is_symlink():
            raise OSError(f"{part} is a link (symlink)")
    folder = base / sub
    folder.mkdir(parents=True, exist_ok=True)
    ignore = base / ".gitignore"
    if not ignore.exists():
        ignore.write_text(_GITIGNORE, encoding="utf-8")
    return folder


def private_ok(root: Path) -> bool:
    """False when `.note2anki` or a folder in it is a link (symlink): its cache is then not used at all,
    since reading it could mean reading, and pruning it deleting, files outside the vault."""
    base = root / PRIVATE_DIR
    return not any(p.is_symlink() for p in (base, base / "cache", base / "cache" / "notes", base / "tmp"))
