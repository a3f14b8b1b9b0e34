"""Write a file so that readers see the old content or the new, never a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: a temporary file this old was left by a build that was killed: the next write of the same file removes it
STALE_SECONDS = 60
#: of the file's name, at most this much is in its temporary file's name (a name near the file system's limit
#: of 255 bytes must still leave room for the rest)
_NAME_IN_TEMP = 40

# The process's umask, read once at import (reading it means setting it, which is not thread safe later).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _mode_for(path: Path) -> int:
    """The mode the written file gets: the existing file's, else what the umask gives a new file."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


class Staged:
    """A new version of `path`, written into a temporary file (in `tmp_dir`, default `path`'s folder; it
    must be on the same file system) through `.file`, and put in place by `commit()`. Left uncommitted (an
    error, or the caller's choice), the temporary file is removed and `path` is left as it was. OSError
    propagates for the caller to explain. `durable=False` skips the flush to disk (for cache files, which
    are checked when read and cheap to lose). A build killed mid-write (no chance to clean up) leaves only
    its temporary file, which the next durable write of `path` removes.

    Written and committed at once, it is `atomic_write`; with work between the two, the slow part (writing)
    overlaps that work and only the rename waits for it (the state file is put in place after its deck)."""

    def __init__(self, path: Path, durable: bool = True, tmp_dir: Path | None = None) -> None:
        folder = tmp_dir or path.parent
        prefix = f".{path.name[:_NAME_IN_TEMP]}."
        if durable:
            _remove_stale(folder, prefix)
        fd, self.tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
        self.path, self.durable, self.done = path, durable, False
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def close(self) -> None:
        """The temporary file complete (and on disk): what `commit` will put in place."""
        if self.file.closed:
            return
        try:
            self.file.flush()
            if self.durable:
                os.fsync(self.file.fileno())
        finally:
            self.file.close()
        with contextlib.suppress(OSError):  # mkstemp makes files only the owner can read
            os.chmod(self.tmp, _mode_for(self.path))

    def commit(self) -> None:
        self.close()
        os.replace(self.tmp, self.path)
        self.done = True

    def __enter__(self) -> Staged:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.done:
            with contextlib.suppress(OSError):
                self.file.close()
            Path(self.tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: Path, durable: bool = True, tmp_dir: Path | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces `path`, on any failure it is removed and `path` is left
    as it was (see Staged)."""
    with Staged(path, durable, tmp_dir) as staged:
        yield staged.file
        staged.commit()


def _remove_stale(folder: Path, prefix: str) -> None:
    cutoff = time.time() - STALE_SECONDS
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
