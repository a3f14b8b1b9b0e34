"""Stage 1: find the notes and attachments of a vault, in an order that never depends on the file system."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections import defaultdict
from pathlib import Path

from note2anki.config import Config
from note2anki.model import SourceFile, Vault


@functools.lru_cache(maxsize=32)
def _pattern(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # fnmatch's `*` also crosses `/`, so `**/x` only needs its `**/` made optional for top-level files.
    alternatives = []
    for p in patterns:
        alternatives.append(fnmatch.translate(p))
        if p.startswith("**/"):
            alternatives.append(fnmatch.translate(p[3:]))
    return re.compile("|".join(alternatives) or "(?!)")


def discover(root: Path, config: Config) -> Vault:
    """List every note (`*.md` matching the include/exclude globs) and attachment under `root`.

    Dot-folders (`.obsidian`, `.git`, `.trash`, ...) and dot-files are skipped. Symlinked folders are not
    followed, so the walk cannot leave the vault or loop.
    """
    root = root.resolve()
    notes: list[SourceFile] = []
    attachments: defaultdict[str, list[str]] = defaultdict(list)
    include, exclude = _pattern(config.include), _pattern(config.exclude)
    top = str(root)
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        prefix = os.path.relpath(folder, top).replace(os.sep, "/") + "/" if folder != top else ""
        base = Path(folder)
        for name in sorted(files):
            if name.startswith("."):
                continue
            rel = prefix + name
            if name.lower().endswith(".md"):
                if include.match(rel) and not exclude.match(rel):
                    notes.append(SourceFile(path=base / name, rel=rel))
            else:
                attachments[name.casefold()].append(rel)
    notes.sort(key=lambda s: s.rel)
    return Vault(
        root=root,
        name=root.name,
        notes=tuple(notes),
        attachments={k: tuple(sorted(v)) for k, v in sorted(attachments.items())},
    )
