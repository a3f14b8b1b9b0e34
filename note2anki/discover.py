"""Stage 1: find the notes and attachments of a vault, in an order that never depends on the file system."""

from __future__ import annotations

import fnmatch
import os
from collections import defaultdict
from pathlib import Path

from note2anki.config import Config
from note2anki.model import SourceFile, Vault


def _matches(rel: str, patterns: tuple[str, ...]) -> bool:
    # fnmatch's `*` also crosses `/`, so `**/x` only needs its `**/` made optional for top-level files.
    return any(
        fnmatch.fnmatchcase(rel, p) or (p.startswith("**/") and fnmatch.fnmatchcase(rel, p[3:]))
        for p in patterns
    )


def discover(root: Path, config: Config) -> Vault:
    """List every note (`*.md` matching the include/exclude globs) and attachment under `root`.

    Dot-folders (`.obsidian`, `.git`, `.trash`, ...) and dot-files are skipped. Symlinked folders are not
    followed, so the walk cannot leave the vault or loop.
    """
    root = root.resolve()
    notes: list[SourceFile] = []
    attachments: defaultdict[str, list[str]] = defaultdict(list)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = base / name
            rel = path.relative_to(root).as_posix()
            if name.lower().endswith(".md"):
                if _matches(rel, config.include) and not _matches(rel, config.exclude):
                    notes.append(SourceFile(path=path, rel=rel))
            else:
                attachments[name.casefold()].append(rel)
    notes.sort(key=lambda s: s.rel)
    return Vault(
        root=root,
        name=root.name,
        notes=tuple(notes),
        attachments={k: tuple(sorted(v)) for k, v in sorted(attachments.items())},
    )
