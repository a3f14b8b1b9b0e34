"""Hostile and broken input: one test per broken file, path and output case.

Each test builds a vault holding two good notes (Korean and English) and one broken thing, imports the deck
into a real Anki collection, and checks the message that names the broken thing and that the good notes'
cards are there. Every build also checks that nothing was written inside the vault but `note2anki.lock` and
`.note2anki/`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from note2anki.cli import cli
from note2anki.state import parse_state
from tests.anki_collection import AnkiCollection, ImportedNote, squash
from tests.conftest import ROOT

KO_NOTE = """---
⭕과목: 네트워크
⭕교재: 패킷으로 배우는 네트워크
---
### 단서 질문

- TCP 연결은 어떻게 시작되는가?
    1. SYN을 보낸다.
    2. SYN-ACK를 받는다.
    3. ACK로 끝낸다.

### 핵심 요약

- 연결은 **3단계**로 시작된다.
"""

EN_NOTE = """---
subject: Cloud
textbook: Storage by Example
---
## Cue questions

- What does object storage keep?
    - Objects: bytes plus metadata, addressed by key.
"""

GOOD = {"네트워크/TCP.md": KO_NOTE, "Cloud/Object storage.md": EN_NOTE}
GOOD_QUESTIONS = {"TCP 연결은 어떻게 시작되는가?", "What does object storage keep?"}
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
POSIX = os.name == "posix"


@dataclass
class Built:
    code: int
    stderr: str
    notes: list[ImportedNote]
    media: set[str]

    @property
    def questions(self) -> set[str]:
        return {n.fields["Question"] for n in self.notes if "Question" in n.fields}

    def answer(self, question: str) -> str:
        return next(squash(n.fields["Answer"]) for n in self.notes if n.fields.get("Question") == question)


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root` (links not followed) with what it is: a file's hash, a link's target."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = os.fsencode(path.relative_to(root)).decode("utf-8", "backslashreplace")
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                out[rel] = "link:" + os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                try:
                    out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
                except OSError:
                    out[rel] = f"unreadable:{info.st_mtime_ns}"
            else:
                out[rel] = f"mode:{stat.S_IFMT(info.st_mode)}"
    return out


def written_in_vault(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What a build changed inside the vault, apart from the state file and `.note2anki/`."""
    allowed = re.compile(r"^(note2anki\.lock|\.note2anki(/.*)?)$")
    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k) and not allowed.match(k))


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    root = tmp_path / "vault"
    for rel, text in GOOD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Callable[..., Built]]:
    """Build the vault with the CLI (in this process), import the deck into a fresh collection."""
    collections: list[AnkiCollection] = []

    def run(root: Path, *args: str) -> Built:
        out = tmp_path / "out" / "deck.apkg"
        before = snapshot(root)
        result = CliRunner().invoke(cli, ["build", str(root), "-o", str(out), *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert written_in_vault(before, snapshot(root)) == []
        assert out.exists(), result.stderr
        col = AnkiCollection(tmp_path / f"anki{len(collections)}")
        collections.append(col)
        log = col.import_deck(out)
        assert log.duplicate == log.conflicting == log.missing_notetype == 0
        return Built(result.exit_code, result.stderr, col.notes(), col.media_files())

    yield run
    for col in collections:
        col.close()


def line_of(stderr: str, prefix: str) -> str:
    found = [line for line in stderr.splitlines() if line.startswith(prefix)]
    assert len(found) == 1, stderr
    return found[0]


# --- broken files ----------------------------------------------------------------------------------


def test_invalid_utf8(vault: Path, build: Callable[..., Built]) -> None:
    (vault / "깨진 파일.md").write_bytes(b"## Questions\n\n- Latin-1 \xe9t\xe9?\n    - answer\n")
    built = build(vault)
    assert built.code == 1
    assert line_of(built.stderr, "깨진 파일.md").startswith(
        "깨진 파일.md:3: error N2A002: the file is not valid UTF-8 (byte 0xe9 on this line); re-save it as "
        "UTF-8"
    )
    assert built.questions == GOOD_QUESTIONS


def test_utf16_with_bom_is_read_with_a_warning(vault: Path, build: Callable[..., Built]) -> None:
    (vault / "windows.md").write_bytes(EN_NOTE.replace("object storage", "block storage").encode("utf-16"))
    built = build(vault)
    assert built.code == 0
    assert line_of(built.stderr, "windows.md") == (
        "windows.md: warning N2A006: the file is saved as UTF-16; it is read, but Obsidian and git expect "
        "UTF-8, so re-save it as UTF-8 in your editor"
    )
    assert built.questions == GOOD_QUESTIONS | {"What does block storage keep?"}


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("utf8-bom.md", lambda t: b"\xef\xbb\xbf" + t.encode()),
        ("crlf.md", lambda t: t.replace("\n", "\r\n").encode()),
        ("lone-cr.md", lambda t: t.replace("\n", "\r").encode()),
    ],
)
def test_bom_and_line_endings_read_like_plain_utf8(
    name: str, encode: Callable[[str], bytes], vault: Path, build: Callable[..., Built]
) -> None:
    (vault / name).write_bytes(encode(KO_NOTE.replace("TCP", "QUIC")))
    built = build(vault)
    assert (built.code, name in built.stderr) == (0, False), built.stderr
    assert built.questions == GOOD_QUESTIONS | {"QUIC 연결은 어떻게 시작되는가?"}
    # the frontmatter was read (deck) and the nested answer kept its shape
    note = next(n for n in built.notes if n.source == name and "Question" in n.fields)
    assert set(note.decks) == {"네트워크::패킷으로 배우는 네트워크"}
    assert built.answer("QUIC 연결은 어떻게 시작되는가?") == built.answer("TCP 연결은 어떻게 시작되는가?")


def test_a_50_mb_note(vault: Path, build: Callable[..., Built]) -> None:
    with (vault / "pasted export.md").open("wb") as f:
        f.write(b"## Questions\n\n- Huge?\n    - " + b"A" * (50 * 1024 * 1024) + b"\n")
    built = build(vault)
    assert built.code == 1
    assert line_of(built.stderr, "pasted export.md") == (
        "pasted export.md: error N2A005: the file is 52.4 MB, over the 10 MB limit for a note, so it is not "
        "read; split it, remove pasted data (base64 images) or raise `max_note_mb` in note2anki.toml"
    )
    assert built.questions == GOOD_QUESTIONS


def test_a_folder_named_like_a_note(vault: Path, build: Callable[..., Built]) -> None:
    inner = vault / "Lecture 3.md" / "inner.md"
    inner.parent.mkdir()
    inner.write_text(EN_NOTE.replace("object storage", "a bucket"), encoding="utf-8")
    built = build(vault)
    assert built.code == 0
    assert line_of(built.stderr, "Lecture 3.md:") == (
        "Lecture 3.md: warning N2A007: this is a folder named like a note, not a note; the notes inside it "
        "are read as usual (rename it if it should be a note)"
    )
    assert built.questions == GOOD_QUESTIONS | {"What does a bucket keep?"}


def _deny(monkeypatch: pytest.MonkeyPatch, path: Path, call: str) -> None:
    """Make `path` unreadable. chmod is enough for a normal user; root reads anything, so there the
    operating system's answer (EACCES) is injected into the call note2anki makes."""
    path.chmod(0)
    if not AS_ROOT:
        return
    real = getattr(os, call)

    def denied(target: object, *args: object, **kwargs: object) -> object:
        if isinstance(target, (str, os.PathLike)) and os.fspath(target) == str(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(target, *args, **kwargs)

    monkeypatch.setattr(os, call, denied)


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
@pytest.mark.parametrize(
    ("rel", "call", "expected"),
    [
        (
            "locked.md",
            "open",
            "locked.md: error N2A001: cannot read the file (Permission denied); check its permissions",
        ),
        (
            "private/diary.md",
            "scandir",
            "private: error N2A012: cannot read this folder (Permission denied); the notes in it are not in "
            "the deck. Check its permissions",
        ),
    ],
)
def test_an_unreadable_note_or_folder(
    rel: str,
    call: str,
    expected: str,
    vault: Path,
    build: Callable[..., Built],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    note = vault / rel
    note.parent.mkdir(exist_ok=True)
    note.write_text(EN_NOTE.replace("object storage", "a diary"), encoding="utf-8")
    denied = note if call == "open" else note.parent
    _deny(monkeypatch, denied, call)
    try:
        built = build(vault)
    finally:
        denied.chmod(0o755)
    assert built.code == 1
    assert line_of(built.stderr, expected.split(":")[0]) == expected
    assert built.questions == GOOD_QUESTIONS


@pytest.mark.skipif(not POSIX, reason="symbolic links")
def test_symlink_loop_and_dangling_link(vault: Path, build: Callable[..., Built]) -> None:
    (vault / "a.md").symlink_to("b.md")
    (vault / "b.md").symlink_to("a.md")
    (vault / "gone.md").symlink_to("deleted/note.md")
    built = build(vault)
    assert built.code == 1
    for name in ("a.md", "b.md"):
        assert line_of(built.stderr, name) == (
            f"{name}: error N2A009: the file is a link (symlink) that loops; fix or delete it"
        )
    assert line_of(built.stderr, "gone.md") == (
        "gone.md: error N2A009: the file is a link (symlink) to “deleted/note.md”, which does not exist; fix "
        "or delete it"
    )
    assert built.questions == GOOD_QUESTIONS


@pytest.mark.skipif(not POSIX, reason="symbolic links")
def test_symlinked_note_and_folder_leaving_the_vault(
    vault: Path, build: Callable[..., Built], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "private.md").write_text(EN_NOTE.replace("object storage", "my password"), encoding="utf-8")
    (vault / "linked.md").symlink_to(elsewhere / "private.md")
    (vault / "linked folder").symlink_to(elsewhere, target_is_directory=True)
    (vault / "inside.md").symlink_to("Cloud/Object storage.md")  # a link inside the vault is read
    built = build(vault)
    assert built.code == 1
    assert line_of(built.stderr, "linked.md") == (
        "linked.md: error N2A009: the file is a link (symlink) to a file outside the vault, which note2anki "
        "never reads; copy the note into the vault instead"
    )
    assert line_of(built.stderr, "linked folder") == (
        "linked folder: warning N2A011: a folder link (symlink) is not followed, so the notes behind it are "
        "not read; move the folder into the vault"
    )
    assert "my password" not in str([n.fields for n in built.notes])
    assert built.questions == GOOD_QUESTIONS
    assert sorted(n.source for n in built.notes if "Question" in n.fields)[:2] == [
        "Cloud/Object storage.md",
        "inside.md",
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_named_pipe_never_blocks_the_build(vault: Path, build: Callable[..., Built]) -> None:
    os.mkfifo(vault / "pipe.md")
    built = build(vault)
    assert built.code == 1
    assert line_of(built.stderr, "pipe.md") == (
        "pipe.md: error N2A008: this is not a regular file (a named pipe, a device or a socket) and is not "
        "read; remove it or rename it so that it does not end in .md"
    )
    assert built.questions == GOOD_QUESTIONS


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux allows such names")
def test_file_names_that_cannot_be_shown(vault: Path, build: Callable[..., Built]) -> None:
    (vault / os.fsdecode(b"latin1 \xe9t\xe9.md")).write_text(EN_NOTE, encoding="utf-8")
    (vault / "two\nlines.md").write_text(EN_NOTE, encoding="utf-8")
    built = build(vault)
    assert built.code == 1
    message = (
        "error N2A010: the file name has bytes that are not UTF-8 or control characters (a newline, a tab), "
        "so it is not read; rename it"
    )
    assert line_of(built.stderr, "latin1 ") == f"latin1 \\xe9t\\xe9.md: {message}"
    assert line_of(built.stderr, "two\\x0alines.md") == f"two\\x0alines.md: {message}"
    assert built.questions == GOOD_QUESTIONS


@pytest.mark.parametrize(
    ("frontmatter", "expected"),
    [
        (
            "date: 2024-13-45\n",
            ":2: error N2A003: the frontmatter is not valid YAML (month must be in 1..12); `2024-13-45` "
            "reads as a date but is not one; quote it",
        ),
        ("[1, 2]\n", ":1: error N2A004: the frontmatter is not a set of `key: value` lines"),
        ("? [a, b]\n: c\n", ":2: error N2A003: the frontmatter is not valid YAML (found unhashable key)"),
        (
            "a: !!python/object:os.system echo\n",
            ":2: error N2A003: the frontmatter is not valid YAML (could not",
        ),
    ],
)
def test_frontmatter_that_is_not_usable(
    frontmatter: str, expected: str, vault: Path, build: Callable[..., Built]
) -> None:
    (vault / "bad yaml.md").write_text(
        f"---\n{frontmatter}---\n" + EN_NOTE.split("---\n", 2)[2], encoding="utf-8"
    )
    built = build(vault)
    assert built.code == 1
    assert line_of(built.stderr, "bad yaml.md").startswith("bad yaml.md" + expected)
    assert built.questions == GOOD_QUESTIONS


def test_frontmatter_aliases_and_huge_values_stay_small(vault: Path, build: Callable[..., Built]) -> None:
    laughs = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        laughs.append(f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    frontmatter = "\n".join([*laughs, "subject: *i", "tags: *i", f"textbook: {'책' * 5000}"])
    (vault / "laughs.md").write_text(
        f"---\n{frontmatter}\n---\n" + EN_NOTE.split("---\n", 2)[2], encoding="utf-8"
    )
    built = build(vault)
    assert built.code == 0
    warnings = [line for line in built.stderr.splitlines() if line.startswith("laughs.md")]
    assert [w.split(" characters long")[0] for w in warnings] == [
        "laughs.md:11: warning N2A207: the value of `subject` is 498",
        "laughs.md:13: warning N2A207: the value of `textbook` is 5,000",
    ]
    assert warnings[1].endswith("only the first 200 are used for the deck name and tags (shorten it)")
    note = next(n for n in built.notes if n.source == "laughs.md")
    (deck,) = set(note.decks)
    subject, textbook = deck.split("::")
    assert subject.startswith("lol, lol") and len(subject) <= 200
    assert textbook == "책" * 200
    assert len(note.tags) <= 110
    assert built.questions == GOOD_QUESTIONS


# --- paths -----------------------------------------------------------------------------------------

PATHS_NOTE = """---
subject: Cloud
---
## Cue questions

- Which picture is this?
    {link}
"""


@pytest.mark.parametrize(
    ("link", "why"),
    [
        ("![[../../secret.png]]", "a `..` path that climbs out of the vault"),
        ("![diagram](../../../secret.png)", "a `..` path that climbs out of the vault"),
        ("![[/etc/secret.png]]", "an absolute path"),
        ("![](C:/Users/me/secret.png)", "an absolute path"),
        ("![](file:///etc/secret.png)", "a file:// URL"),
        ("![[linked.png]]", "a link (symlink) to a file outside the vault"),
    ],
)
def test_links_outside_the_vault_are_never_read(
    link: str, why: str, vault: Path, build: Callable[..., Built], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nSECRET")
    (vault / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\nvault copy")  # `..` never falls back to a name
    if POSIX:
        (vault / "linked.png").symlink_to(secret)
    elif "linked" in link:
        pytest.skip("symbolic links")
    (vault / "paths.md").write_text(PATHS_NOTE.format(link=link), encoding="utf-8")
    built = build(vault)
    assert built.code == 0
    target = re.search(r"\[\[(.+?)\]\]|\]\((.+?)\)", link)
    assert target is not None
    shown = target.group(1) or target.group(2)
    assert line_of(built.stderr, "paths.md") == (
        f"paths.md:6: warning N2A302: “{shown}” points outside the vault ({why}); note2anki never reads or "
        "packages such files, so the card is kept without it (copy the file into the vault and link that)"
    )
    assert built.media == set()
    assert "secret.png" not in str(built.media)
    assert built.questions == GOOD_QUESTIONS | {"Which picture is this?"}


def test_opt_ins_remote_images_and_max_note_mb(vault: Path, build: Callable[..., Built]) -> None:
    (vault / "note2anki.toml").write_text("remote_images = true\nmax_note_mb = 1\n", encoding="utf-8")
    web = '![diagram](https://example.org/d.png) <img src="https://example.org/raw.png">'
    (vault / "web.md").write_text(PATHS_NOTE.format(link=web), encoding="utf-8")
    (vault / "big.md").write_bytes(b"## Questions\n\n- Big?\n    - " + b"B" * 1_500_000 + b"\n")
    built = build(vault)
    assert built.code == 1
    assert "N2A303" not in built.stderr
    assert built.answer("Which picture is this?") == (
        '<p><img src="https://example.org/d.png" alt="diagram"> <img src="https://example.org/raw.png"></p>'
    )
    assert line_of(built.stderr, "big.md").startswith(
        "big.md: error N2A005: the file is 1.5 MB, over the 1 MB limit for a note, so it is not read"
    )
    assert built.questions == GOOD_QUESTIONS | {"Which picture is this?"}


def test_media_names_in_the_deck_are_safe(vault: Path, build: Callable[..., Built]) -> None:
    names = [
        'a<b>:c?*"d.PNG' if POSIX else "a b.PNG",
        unicodedata.normalize("NFD", "한글 그림.png"),
        "x" * 200 + ".png",
        "-.leading dots.png",
        "no-suffix.png.exe.png",
    ]
    links = []
    for name in names:
        (vault / "img").mkdir(exist_ok=True)
        (vault / "img" / name).write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode())
        links.append(f"![[{name}]]")
    (vault / "pictures.md").write_text(PATHS_NOTE.format(link=" ".join(links)), encoding="utf-8")
    built = build(vault)
    assert built.code == 0, built.stderr
    assert len(built.media) == len(names)
    for media in built.media:
        assert re.fullmatch(r"[\w][\w.-]{0,59}-[0-9a-f]{12}\.png", media), media
        assert media == unicodedata.normalize("NFC", media)
    assert any(m.startswith("한글_그림-") for m in built.media)
    answer = built.answer("Which picture is this?")
    assert sorted(re.findall(r'src="([^"]+)"', answer)) == sorted(built.media)


def test_a_tampered_cache_cannot_make_a_build_read_outside(
    vault: Path, build: Callable[..., Built], tmp_path: Path
) -> None:
    """`.note2anki/` sits in a shared, synced vault: paths read back from it are checked like links."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nSECRET")
    (vault / "image 1.png").write_bytes(b"\x89PNG\r\n\x1a\nvault image")
    (vault / "pictures.md").write_text(PATHS_NOTE.format(link="![[image 1.png]]"), encoding="utf-8")
    assert len(build(vault).media) == 1
    cache = vault / ".note2anki" / "cache"
    with contextlib.closing(sqlite3.connect(cache / "notes.sqlite")) as db, db:
        for key, entry in db.execute("SELECT key, data FROM entries").fetchall():
            data = json.loads(entry)  # only the packaged path changes, so every other check passes
            for card in data["cards"]:
                card["media"] = [["../secret.png", name] for _, name in card["media"]]
            db.execute("UPDATE entries SET data = ? WHERE key = ?", (json.dumps(data).encode(), key))
    (tmp_path / "out" / "deck.apkg").unlink()  # the next build starts from the (tampered) cache
    built = build(vault)
    assert built.code == 0
    assert len(built.media) == 1
    with zipfile.ZipFile(tmp_path / "out" / "deck.apkg") as zf:
        assert all(b"SECRET" not in zf.read(name) for name in zf.namelist())


@pytest.mark.skipif(not POSIX, reason="symbolic links")
def test_a_linked_cache_folder_is_not_used(vault: Path, build: Callable[..., Built], tmp_path: Path) -> None:
    """A shared vault whose `.note2anki` links elsewhere (a home folder) gets neither writes nor pruning."""
    home = tmp_path / "home"
    (home / "cache" / "notes" / "ab").mkdir(parents=True)
    (home / "cache" / "notes" / "ab" / "thesis.docx").write_bytes(b"years of work")
    (vault / ".note2anki").symlink_to(home, target_is_directory=True)
    before = snapshot(home)
    built = build(vault)
    assert built.code == 0
    assert line_of(built.stderr, ".note2anki") == (
        ".note2anki: warning N2A013: this folder (or one in it) is a link (symlink), so note2anki does not "
        "use its cache, which would be read and written outside the vault; delete the link (builds are "
        "slower until then)"
    )
    assert snapshot(home) == before
    assert built.questions == GOOD_QUESTIONS


# --- output ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["deck.apkg", "Cloud/Object storage.md", ".hidden/deck.apkg"])
def test_a_deck_inside_the_vault_is_refused(where: str, vault: Path) -> None:
    before = snapshot(vault)
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(vault / where)])
    assert result.exit_code == 2
    assert (
        f"Error: {vault / where} is inside the vault {vault.resolve()}; note2anki writes nothing there"
        in (result.stderr)
    )
    assert snapshot(vault) == before  # not even the state file


def test_a_file_that_is_not_a_deck_is_never_overwritten(vault: Path, tmp_path: Path) -> None:
    notes = tmp_path / "my notes.md"
    notes.write_text("years of work", encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(notes)])
    assert result.exit_code == 2
    assert f"Error: {notes} exists and is not an Anki deck (.apkg), so note2anki will not overwrite it" in (
        result.stderr
    )
    assert notes.read_text(encoding="utf-8") == "years of work"
    report = CliRunner().invoke(
        cli, ["build", str(vault), "-o", str(tmp_path / "d.apkg"), "--report", str(vault / "r.json")]
    )
    assert report.exit_code == 2 and "--report" in report.stderr and not (vault / "r.json").exists()


def test_default_deck_from_inside_the_vault_goes_next_to_it(
    vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(vault / "Cloud")
    result = CliRunner().invoke(cli, ["build", str(vault)])
    assert result.exit_code == 0, result.stderr
    assert (vault.parent / "vault.apkg").is_file()


def test_split_decks_from_hostile_subjects_stay_in_the_output_folder(vault: Path, tmp_path: Path) -> None:
    subjects = ["A B", "A_B", "../../escape", "가" * 300, "con:aux?*"]
    for i, subject in enumerate(subjects):
        (vault / f"s{i}.md").write_text(
            EN_NOTE.replace("subject: Cloud", f"subject: {subject!r}").replace(
                "object storage", f"subject {i}"
            ),
            encoding="utf-8",
        )
    out = tmp_path / "out" / "study.apkg"
    result = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out), "--split", "subject"])
    assert result.exit_code == 0, result.stderr
    decks = sorted(p.name for p in out.parent.iterdir())
    assert len(decks) == len(subjects) + 2  # and Cloud, 네트워크
    assert "study-A_B.apkg" in decks and "study-A_B-2.apkg" in decks
    assert all(len(name.encode()) < 255 and "/" not in name for name in decks)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "vault"]


KILLER = """
import os, signal, sys
import note2anki.atomic, note2anki.state
target, after = sys.argv[1], int(sys.argv[2])

class Dying:
    def __init__(self, f): self.f, self.n = f, 0
    def write(self, data):
        self.n += len(data)
        if self.n > after:
            self.f.write(bytes(data)[: len(data) // 2]); self.f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.f.write(data)
    def __getattr__(self, name): return getattr(self.f, name)

class DyingStaged(note2anki.atomic.Staged):  # every file note2anki writes atomically goes through Staged
    def __init__(self, path, *args, **kwargs):
        super().__init__(path, *args, **kwargs)
        if path.name == target:
            self.file = Dying(self.file)

note2anki.atomic.Staged = note2anki.state.Staged = DyingStaged
from note2anki.cli import cli
from note2anki.state import parse_state
cli(sys.argv[3:])
"""


@pytest.mark.skipif(not hasattr(os, "kill") or os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize(("target", "extra"), [("deck.apkg", []), ("note2anki.lock", ["--no-cache"])])
def test_a_build_killed_mid_write_leaves_deck_and_state_intact(
    target: str, extra: list[str], vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764050000")  # the same "now" for every build below
    out = tmp_path / "deck.apkg"
    first = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out)])
    assert first.exit_code == 0, first.stderr
    deck, lock = out.read_bytes(), (vault / "note2anki.lock").read_bytes()
    (vault / "Cloud/Object storage.md").write_text(
        EN_NOTE.replace("key.", "key and bucket."), encoding="utf-8"
    )
    (vault / "new.md").write_text(EN_NOTE.replace("object storage", "a new note"), encoding="utf-8")

    # what an uninterrupted build of the same vault gives
    copy = tmp_path / "copy" / vault.name  # the same folder name: the same obsidian:// links
    shutil.copytree(vault, copy)
    clean = CliRunner().invoke(cli, ["build", str(copy), "-o", str(tmp_path / "clean.apkg")])
    assert clean.exit_code == 0, clean.stderr

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, target, "1000", "build", str(vault), "-o", str(out), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    # the file being written is the previous one; the other one is whole, old or new
    if target == "deck.apkg":
        assert out.read_bytes() == deck
        parse_state((vault / "note2anki.lock").read_bytes(), vault / "note2anki.lock")
    else:
        assert (vault / "note2anki.lock").read_bytes() == lock
        with zipfile.ZipFile(out) as zf:
            assert zf.testzip() is None
    folder = tmp_path if target == "deck.apkg" else vault / ".note2anki" / "tmp"
    leftovers = [p for p in folder.iterdir() if p.suffix == ".tmp"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(f".{target}.")

    # the next build finishes the job, removes the old temporary file and equals the uninterrupted build
    os.utime(leftovers[0], (0, 0))
    again = CliRunner().invoke(cli, ["build", str(vault), "-o", str(out)])
    assert again.exit_code == 0, again.stderr
    assert not leftovers[0].exists()
    assert out.read_bytes() == (tmp_path / "clean.apkg").read_bytes()
    assert (vault / "note2anki.lock").read_bytes() == (copy / "note2anki.lock").read_bytes()
    col = AnkiCollection(tmp_path / "anki")
    try:
        col.import_deck(out)
        questions = {n.fields["Question"] for n in col.notes() if "Question" in n.fields}
        assert questions == GOOD_QUESTIONS | {"What does a new note keep?"}
    finally:
        col.close()


# --- resource limits -------------------------------------------------------------------------------

DEEP_NOTE = """---
subject: Limits
---
## Cue questions

- What stops a parser from hanging?
{answer}
"""


@pytest.mark.parametrize(
    ("name", "answer", "warning"),
    [
        ("list-10000-deep", "    " + "- " * 10_000 + "bottom", "lists or quotes nested more than 20 levels"),
        ("quote-10000-deep", "    " + "> " * 10_000 + "bottom", "lists or quotes nested more than 20 levels"),
        (
            "staircase",
            "\n".join("    " + "  " * (i % 400) + "- step" for i in range(10_000)),
            "lists or quotes nested more than 20 levels",
        ),
        (
            "line-1mb",
            "    " + "word **bold** `code` [link](https://example.org) " * 22_000,
            "characters long",
        ),
    ],
)
def test_pathological_nesting_and_lines_end_with_a_warning(
    name: str, answer: str, warning: str, vault: Path, build: Callable[..., Built]
) -> None:
    (vault / f"{name}.md").write_text(DEEP_NOTE.format(answer=answer), encoding="utf-8")
    built = build(vault)
    assert built.code == 0
    message = line_of(built.stderr, f"{name}.md")
    assert re.match(rf"{name}\.md:\d+: warning N2A207: .*{re.escape(warning)}", message), message
    assert built.questions == GOOD_QUESTIONS | {"What stops a parser from hanging?"}
