"""Images: found in the vault as Obsidian finds them, never outside it, and named by content in the deck."""

from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata
from pathlib import PurePosixPath

from note2anki.model import MediaFile, Vault

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp", ".avif"})

#: where Obsidian's Digital Garden plugin puts the vault's files on the published site (it rewrites links so)
DIGITAL_GARDEN = "/img/user/"


class MediaIndex:
    """Finds attachments the way Obsidian does and names them by content inside the deck."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.files = frozenset(rel for rels in vault.attachments.values() for rel in rels)
        self._named: dict[str, MediaFile | None] = {}
        #: attachments that are links (symlinks) to files outside the vault: never read
        self.outside: set[str] = set()

    def find(self, target: str, note_rel: str) -> str | None:
        """Vault-relative path of `target` as linked from note `note_rel`, or None."""
        if outside(target, note_rel):
            return None
        target = unicodedata.normalize("NFC", target.strip().replace("\\", "/"))
        if not target:
            return None
        note_dir = posixpath.dirname(note_rel)
        for base in (note_dir, ""):
            candidate = posixpath.normpath(posixpath.join(base, target))
            if candidate in self.files:
                return candidate
        matches = self.vault.attachments.get(PurePosixPath(target).name.casefold(), ())
        if "/" in target:
            matches = tuple(m for m in matches if m.casefold().endswith(target.casefold())) or matches

        def distance(rel: str) -> tuple[int, int, str]:
            common = posixpath.commonpath([note_dir, posixpath.dirname(rel)]) if note_dir else ""
            shared = len(PurePosixPath(common).parts) if common else 0
            return (-shared, len(PurePosixPath(rel).parts), rel)

        return min(matches, key=distance) if matches else None

    def from_root(self, target: str) -> str | None:
        """A vault-absolute path (`/image/x.png`, or `/img/user/image/x.png` as Obsidian's Digital Garden
        plugin writes them) that names a file of the vault exactly, else None (it points outside)."""
        target = unicodedata.normalize("NFC", target.strip().replace("\\", "/"))
        if not target.startswith("/") or target.startswith("//"):
            return None
        for prefix in ("/", DIGITAL_GARDEN):
            if target.startswith(prefix):
                rel = posixpath.normpath(target[len(prefix) :])
                if rel in self.files:
                    return rel
        return None

    def media(self, rel: str) -> MediaFile | None:
        if rel not in self._named:
            self._named[rel] = self._make(rel)
        return self._named[rel]

    def _make(self, rel: str) -> MediaFile | None:
        path = self.vault.file(rel)
        try:
            real = path.resolve(strict=True)
            if not real.is_relative_to(self.vault.root):  # a symlink that leaves the vault
                self.outside.add(rel)
                return None
            if not real.is_file() or real.stat().st_size > MAX_MEDIA_BYTES:
                return None
            digest = hashlib.sha256(real.read_bytes()).hexdigest()[:12]
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
            return None
        return MediaFile(path=real, name=media_name(rel, digest))


#: an image larger than this is not packaged (Anki's own limit for a media file is 100 MB)
MAX_MEDIA_BYTES = 100_000_000


def media_name(rel: str, digest: str) -> str:
    """The file's name inside the deck: NFC, only letters, digits, `.`, `-` and `_`, at most 60
    characters of the original name, no leading dot or dash, and the content hash. Content-addressed: two
    `image 1.png` in different folders never collide, a changed image gets a new name (so it arrives), an
    unchanged one keeps its name."""
    p = PurePosixPath(unicodedata.normalize("NFC", rel))
    stem = re.sub(r"[^\w.-]+", "_", p.stem).strip("._-")[:60].strip("._-") or "media"
    suffix = p.suffix.lower() if p.suffix.lower() in IMAGE_SUFFIXES else ""
    return f"{stem}-{digest}{suffix}"


_DRIVE = re.compile(r"^[a-zA-Z]:[\\/]")


def outside(target: str, note_rel: str) -> str:
    """Why a file reference in note `note_rel` points outside the vault, or "" when it does not."""
    target = target.strip().replace("\\", "/")
    if target.lower().startswith("file:"):
        return "a file:// URL"
    if target.startswith(("/", "~")) or _DRIVE.match(target):
        return "an absolute path"
    path = posixpath.normpath(posixpath.join(posixpath.dirname(note_rel), target))
    if path == ".." or path.startswith("../"):
        return "a `..` path that climbs out of the vault"
    return ""
