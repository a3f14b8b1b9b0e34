"""What the pre-commit hooks need beyond the pipeline: which staged files are notes, and whether the state
file the build rewrote is staged (the usual pre-commit contract for files a hook rewrites)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path


def notes_in_vault(files: Iterable[str], vault: Path, cwd: Path | None = None) -> set[str]:
    """Vault-relative paths of the Markdown files among `files` (paths relative to `cwd`)."""
    root = vault.resolve()
    out = set()
    for name in files:
        path = ((cwd or Path.cwd()) / name).resolve()
        if path.suffix.lower() == ".md" and path.is_relative_to(root):
            out.add(path.relative_to(root).as_posix())
    return out


def unstaged(path: Path) -> bool:
    """True when `path` differs from its staged copy (or is not staged at all). Outside a git work tree
    nothing can be staged, so nothing is reported."""
    folder = path.parent
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    rel = path.resolve().relative_to(Path(top).resolve()).as_posix()
    staged = subprocess.run(["git", "show", f":{rel}"], cwd=top, capture_output=True, check=False)
    return staged.returncode != 0 or staged.stdout != path.read_bytes()
