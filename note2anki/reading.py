"""Stage 2a: a note file's bytes and text, read safely.

Only regular files inside the vault are opened, and never more than `max_note_mb` of them: a link (symlink)
that loops, dangles or leaves the vault, a named pipe (which would block the build forever), a device or a
huge file is an error naming the file, and the rest of the vault still builds. UTF-8 with or without a byte
order mark is read silently; UTF-16 and UTF-32 with one are read with a warning.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat

from note2anki.model import Diagnostic, Severity, SourceFile

_BOMS = (  # UTF-32 first: its little-endian mark starts like UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_LOOP = "the file is a link (symlink) that loops; fix or delete it"
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def _error(source: SourceFile, line: int | None, code: str, message: str) -> Diagnostic:
    return Diagnostic(source.rel, line, code, Severity.ERROR, message)


def read_note(source: SourceFile, max_bytes: int) -> bytes | Diagnostic:
    """The note file's bytes, or the error that says why it is not read."""
    path = source.path
    try:
        if path.is_symlink():
            try:
                real = path.resolve(strict=True)
            except RuntimeError:  # a loop, as Python < 3.13 reports it
                return _error(source, None, "N2A009", _LOOP)
            if not real.is_relative_to(source.root):
                return _error(
                    source,
                    None,
                    "N2A009",
                    "the file is a link (symlink) to a file outside the vault, which note2anki never reads; "
                    "copy the note into the vault instead",
                )
        # non-blocking: opening a named pipe waits for a writer otherwise; what it is is checked below
        with os.fdopen(os.open(path, _FLAGS), "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                return _error(
                    source,
                    None,
                    "N2A008",
                    "this is not a regular file (a named pipe, a device or a socket) and is not read; "
                    "remove it or rename it so that it does not end in .md",
                )
            data = b""
            if info.st_size <= max_bytes:
                # what the size says, and one byte more to see a file that grew meanwhile (asking for
                # the limit itself would allocate that much for every note)
                data = f.read(info.st_size + 1)
                if len(data) > info.st_size:
                    data += f.read(max_bytes + 1 - len(data))
            if info.st_size <= max_bytes and len(data) <= max_bytes:
                return data
            size = max(info.st_size, len(data)) / 1_000_000
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _error(source, None, "N2A009", _LOOP)
        if exc.errno == errno.ENOENT and path.is_symlink():
            return _error(
                source,
                None,
                "N2A009",
                f"the file is a link (symlink) to “{os.readlink(path)}”, which does not exist; fix or "
                "delete it",
            )
        return _error(source, None, "N2A001", f"cannot read the file ({exc.strerror}); check its permissions")
    return _error(
        source,
        None,
        "N2A005",
        f"the file is {size:,.1f} MB, over the {max_bytes // 1_000_000} MB limit for a note, so it is not "
        "read; split it, remove pasted data (base64 images) or raise `max_note_mb` in note2anki.toml",
    )


def decode(source: SourceFile, raw: bytes) -> tuple[str | None, list[Diagnostic]]:
    """The note's text (None when it cannot be decoded) and what to tell the user about its encoding."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                message = f"the file starts like {encoding.upper()} but is not; re-save it as UTF-8"
                return None, [_error(source, None, "N2A002", message)]
            warning = Diagnostic(
                source.rel,
                None,
                "N2A006",
                Severity.WARNING,
                f"the file is saved as {encoding.upper()}; it is read, but Obsidian and git expect UTF-8, so "
                "re-save it as UTF-8 in your editor",
            )
            return text.lstrip("\ufeff"), [warning]
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        message = (
            f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x} on this line); re-save it as UTF-8 in "
            "your editor"
        )
        return None, [_error(source, line, "N2A002", message)]
