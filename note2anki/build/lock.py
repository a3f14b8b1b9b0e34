"""One build at a time per vault: `.note2anki/build.lock`, held with an OS file lock (as git guards its
index).

Two builds of one vault share its state file, cache and the collection kept for the next build; a pre-commit
hook and an editor task can start them at once. The second waits a bounded time for the first, then stops with
a message naming it. The lock is the kernel's (`flock`, or `msvcrt.locking` on Windows), so a build that dies,
however it dies, releases it: a lock file left behind by a dead process is simply taken over. `check` and
`list` never take it: they only read, and every file a build writes is replaced atomically.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from note2anki.build.private import PRIVATE_DIR, private_dir
from note2anki.errors import BuildBusy

LOCK_FILE = f"{PRIVATE_DIR}/build.lock"
#: how long a build waits for another build of the same vault (NOTE2ANKI_LOCK_TIMEOUT overrides it)
WAIT_SECONDS = 60.0


def _timeout() -> float:
    try:
        return max(0.0, float(os.environ.get("NOTE2ANKI_LOCK_TIMEOUT", WAIT_SECONDS)))
    except ValueError:
        return WAIT_SECONDS


try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True


def holder(root: Path) -> str:
    """Who holds (or last held) the vault's lock, as the lock file says."""
    try:
        text = (root / LOCK_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "another process"
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    pid, host, since = fields.get("pid", "?"), fields.get("host", "?"), fields.get("since", "?")
    return f"process {pid} on {host}, since {since}"


@contextlib.contextmanager
def build_lock(root: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the vault's build lock while the block runs. A vault where the lock cannot even be created (a
    read-only vault) is built without it: nothing shared can be written there either."""
    try:
        private_dir(root, ".")
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError:
        yield
        return
    try:
        wait = _timeout() if timeout is None else timeout
        deadline = time.monotonic() + wait
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise BuildBusy(
                    f"another note2anki build of this vault is running ({holder(root)}); waited {wait:.0f} s "
                    "for it to finish. Run the build again when it is done (or set NOTE2ANKI_LOCK_TIMEOUT to "
                    "wait longer)"
                )
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            since = time.strftime("%Y-%m-%d %H:%M:%S")
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"pid={os.getpid()}\nhost={socket.gethostname()}\nsince={since}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock
