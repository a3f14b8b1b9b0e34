"""Stage 1: find the notes and attachments of a vault, in an order that never depends on the file system."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

from note2anki.config import Config
from note2anki.model import Diagnostic, Severity, SourceFile, Vault
from note2anki.vaultsettings import vault_settings

#: characters a file name may not have to be read: control characters (a newline would break every
#: `file:line:` report) and undecodable bytes (Python shows them as lone surrogates)
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_SHOWN_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown(rel: str) -> str:
    """A path as it can be printed on one line: undecodable bytes as `\\xff`, control characters escaped."""
    text = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _SHOWN_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


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

    Paths are NFC: a vault checked out on macOS (which names files in NFD) and on Linux gives the same paths,
    so the state file, cache and image links agree; `Vault.file` gives the name on disk.

    Dot-folders (`.obsidian`, `.git`, `.trash`, `.note2anki`, ...) and dot-files are skipped. Folder links
    (symlinks) are not followed, so the walk cannot leave the vault or loop; they are reported, as are
    folders that cannot be read and note files whose names cannot be shown. Whether a note file can be
    read (a link leaving the vault, a named pipe, a huge file) is decided when it is read (reading.read_note).
    """
    root = root.resolve()
    settings = vault_settings(root, config)
    templates = tuple(f"{folder}/" for folder in settings.template_folders)
    notes: list[SourceFile] = []
    attachments: defaultdict[str, list[str]] = defaultdict(list)
    on_disk: dict[str, str] = {}
    problems: list[Diagnostic] = []
    include, exclude = _pattern(config.include), _pattern(config.exclude)
    top = str(root)

    def problem(rel: str, severity: Severity, code: str, message: str) -> None:
        problems.append(Diagnostic(shown(rel), None, code, severity, message))

    def walk_error(exc: OSError) -> None:
        rel = os.path.relpath(str(exc.filename), top).replace(os.sep, "/")
        problem(
            rel,
            Severity.ERROR,
            "N2A012",
            f"cannot read this folder ({exc.strerror}); the notes in it are not in the deck. Check its "
            "permissions",
        )

    for folder, dirs, files in os.walk(top, onerror=walk_error):
        prefix = os.path.relpath(folder, top).replace(os.sep, "/") + "/" if folder != top else ""
        kept = []
        for d in sorted(dirs):
            if d.startswith("."):
                continue
            if os.path.islink(os.path.join(folder, d)):
                problem(
                    prefix + d,
                    Severity.WARNING,
                    "N2A011",
                    "a folder link (symlink) is not followed, so the notes behind it are not read; move "
                    "the folder into the vault",
                )
                continue
            if d.lower().endswith(".md") and include.match(prefix + d) and not exclude.match(prefix + d):
                problem(
                    prefix + d,
                    Severity.WARNING,
                    "N2A007",
                    "this is a folder named like a note, not a note; the notes inside it are read as usual "
                    "(rename it if it should be a note)",
                )
            kept.append(d)
        dirs[:] = kept
        base = Path(folder)
        for name in sorted(files):
            if name.startswith("."):
                continue
            disk = prefix + name
            rel = unicodedata.normalize("NFC", disk)
            if _BAD_NAME.search(rel):
                if name.lower().endswith(".md"):
                    problem(
                        rel,
                        Severity.ERROR,
                        "N2A010",
                        "the file name has bytes that are not UTF-8 or control characters (a newline, a "
                        "tab), so it is not read; rename it",
                    )
                continue  # an attachment named so cannot be linked from a note either
            if rel != disk:
                on_disk[rel] = disk
            if name.lower().endswith(".md"):
                if include.match(rel) and not exclude.match(rel) and not rel.startswith(templates):
                    notes.append(SourceFile(path=base / name, rel=rel))
            else:
                attachments[unicodedata.normalize("NFC", name).casefold()].append(rel)
    notes.sort(key=lambda s: s.rel)
    return Vault(
        root=root,
        name=root.name,
        notes=tuple(notes),
        attachments={k: tuple(sorted(v)) for k, v in sorted(attachments.items())},
        problems=tuple(sorted(problems)),
        settings=settings,
        on_disk=on_disk,
    )
