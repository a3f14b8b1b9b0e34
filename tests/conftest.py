from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.anki_collection import AnkiCollection

ROOT = Path(__file__).resolve().parent.parent

# Settings a machine's environment may carry that change what note2anki does: a CI runner sets CI (no sync
# session is kept there), a developer may have ANKI_BASE or SOURCE_DATE_EPOCH set. Each test starts from a
# student's machine without them, and sets the ones it is about.
OUTSIDE = (
    "CI",
    "GITHUB_ACTIONS",
    "SOURCE_DATE_EPOCH",
    "ANKI_BASE",
    "ANKI_USERNAME",
    "ANKI_PASSWORD",
    "ANKI_ENDPOINT",
    "NOTE2ANKI_LOCK_TIMEOUT",
    "NOTE2ANKI_INSTALL",
)


@pytest.fixture(autouse=True)
def _a_students_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OUTSIDE:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def anki(tmp_path: Path) -> Iterator[AnkiCollection]:
    """A fresh, empty Anki collection."""
    col = AnkiCollection(tmp_path / "anki")
    yield col
    col.close()


@pytest.fixture
def write_vault(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write {relative path: text or bytes} into a new vault folder and return the folder."""

    def write(files: dict[str, str | bytes], name: str = "vault") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return root

    return write
