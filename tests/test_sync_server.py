"""`note2anki sync --server/--endpoint`: from commit to phone through the real sync server that ships in the
`anki` package, started here on 127.0.0.1 (issue 18). The "phone" is another collection syncing with it."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from anki.collection import Collection
from anki.sync_pb2 import SyncCollectionResponse
from click.testing import CliRunner

from note2anki.cli import cli
from tests.test_sync import NET, PNG, notes, own_note, review, write

USER, PASSWORD = "student", "correct horse"


@dataclass
class SyncServer:
    endpoint: str
    base: Path
    process: subprocess.Popen[bytes]

    @property
    def collection(self) -> Path:
        return self.base / USER / "collection.anki2"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(base: Path) -> SyncServer:
    """The sync server of the `anki` package, on 127.0.0.1 and a free port, keeping its data in `base`."""
    port = free_port()
    env = {
        **os.environ,
        "SYNC_USER1": f"{USER}:{PASSWORD}",
        "SYNC_BASE": str(base),
        "SYNC_HOST": "127.0.0.1",
        "SYNC_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "anki.syncserver"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("the anki sync server did not start")
            time.sleep(0.1)
    return SyncServer(f"http://127.0.0.1:{port}/", base, process)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SyncServer]:
    running = start_server(tmp_path / "server")
    yield running
    running.stop()


class Phone:
    """The student's phone: its own collection, syncing with the server like AnkiMobile would."""

    def __init__(self, folder: Path, server: SyncServer) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "collection.anki2"
        self.server = server

    def open(self) -> Collection:
        return Collection(str(self.path))

    def sync(self, upload_if_asked: bool = False) -> None:
        col = self.open()
        try:
            auth = col.sync_login(USER, PASSWORD, self.server.endpoint)
            out = col.sync_collection(auth, True)
            if out.required in (SyncCollectionResponse.FULL_UPLOAD, SyncCollectionResponse.FULL_DOWNLOAD):
                col.close_for_full_sync()
                upload = out.required == SyncCollectionResponse.FULL_UPLOAD and upload_if_asked
                col.full_upload_or_download(auth=auth, server_usn=out.server_media_usn, upload=upload)
                col.reopen(after_full_sync=True)
                col.sync_collection(auth, True)
            deadline = time.monotonic() + 60
            while col.media_sync_status().active and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            col.close()

    def notes(self) -> dict[str, dict[str, object]]:
        return notes(self.path)

    def media(self) -> set[str]:
        folder = Path(str(self.path).replace(".anki2", ".media"))
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


@pytest.fixture
def phone(tmp_path: Path, server: SyncServer) -> Phone:
    """A phone with the student's own notes and a review, uploaded to the fresh server."""
    p = Phone(tmp_path / "phone", server)
    col = p.open()
    try:
        own_note(col, "폰에서 만든 카드", "내 답", "폰 단어장")
    finally:
        col.close()
    p.sync(upload_if_asked=True)
    return p


def sync(vault: Path, server: SyncServer, *args: str, password: str = PASSWORD) -> tuple[int, str, float]:
    env = {"ANKI_USERNAME": USER, "ANKI_PASSWORD": password}
    start = time.monotonic()
    result = CliRunner(env=env).invoke(cli, ["sync", str(vault), "--endpoint", server.endpoint, *args])
    assert password not in result.stderr + result.stdout  # never printed
    return result.exit_code, result.stderr, time.monotonic() - start


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return write(
        tmp_path / "Study", {"Networking/TCP.md": NET.format(extra=""), "Networking/topology.png": PNG}
    )


def test_from_commit_to_phone_and_back(vault: Path, server: SyncServer, phone: Phone, tmp_path: Path) -> None:
    code, stderr, _ = sync(vault, server)
    assert code == 0, stderr
    assert "note2anki: sync: 5 added, 0 updated, 0 unchanged, 0 removed (suspended)" in stderr
    assert f"-> {server.endpoint}" in stderr
    phone.sync()
    got = phone.notes()
    assert got["폰에서 만든 카드"]["reps"] == 1  # the phone's own note and review, intact
    assert got["TCP와 UDP의 차이는?"]["decks"] == {"Networking::네트워크 첫걸음"}
    assert got["TCP와 UDP의 차이는?"]["tags"] == {"subject::Networking", "textbook::네트워크_첫걸음"}
    assert len(got) == 6 and any(name.startswith("topology-") for name in phone.media())
    session = vault / ".note2anki/sync/session.json"
    assert session.is_file() and (session.stat().st_mode & 0o777) == 0o600
    assert PASSWORD not in session.read_text(encoding="utf-8")

    # the student reviews on the phone, then the notes change: edit, reword, rename, delete, add
    col = phone.open()
    try:
        for cid in col.find_cards("deck:Networking*"):
            review(col, cid)
    finally:
        col.close()
    phone.sync()
    time.sleep(1.1)
    text = (vault / "Networking/TCP.md").read_text(encoding="utf-8")
    text = text.replace("2. UDP는 맺지 않는다.", "2. UDP는 연결 없이 보낸다.")
    text = text.replace("서브넷 마스크의 역할은?", "서브넷 마스크는 무엇을 나누는가?")
    text = text.replace("- What does DNS do?\n    - It turns names into addresses.\n", "")
    text = text.replace(
        "- TCP와 UDP의 차이는?",
        "- ARP는 무엇을 하는가?\n    - IP 주소로 MAC 주소를 찾는다.\n- TCP와 UDP의 차이는?",
    )
    (vault / "Networking/TCP.md").unlink()
    (vault / "Networking/전송 계층.md").write_text(text, encoding="utf-8")
    code, stderr, _ = sync(vault, server)
    assert code == 0, stderr
    assert "1 added, 4 updated, 0 unchanged, 1 removed (suspended)" in stderr
    phone.sync()
    got = phone.notes()
    assert len(got) == 7  # no duplicates: own + 4 cue + summary + cloze (the removed one suspended, kept)
    assert got["What does DNS do?"]["suspended"] and "note2anki::removed" in got["What does DNS do?"]["tags"]
    assert got["What does DNS do?"]["reps"] == 1  # reviews from the phone, kept
    assert got["서브넷 마스크는 무엇을 나누는가?"]["reps"] == 1 and got["TCP와 UDP의 차이는?"]["reps"] == 1
    assert "연결 없이" in str(got["TCP와 UDP의 차이는?"]["fields"][1])
    assert got["폰에서 만든 카드"]["reps"] == 1


def test_nothing_changed_uploads_nothing_and_a_lost_working_copy_is_downloaded(
    vault: Path, server: SyncServer, phone: Phone
) -> None:
    assert sync(vault, server)[0] == 0
    phone.sync()
    before = server.collection.read_bytes()
    code, stderr, _ = sync(vault, server)
    assert code == 0 and "0 added, 0 updated, 5 unchanged" in stderr
    assert server.collection.read_bytes() == before  # nothing uploaded
    # the working copy lost (a CI run without its cache): downloaded again, and nothing is duplicated
    import shutil

    shutil.rmtree(vault / ".note2anki")
    code, stderr, _ = sync(vault, server)
    assert code == 0 and "0 added, 0 updated, 5 unchanged" in stderr, stderr
    phone.sync()
    assert len(phone.notes()) == 6 and phone.notes()["폰에서 만든 카드"]["reps"] == 1


def test_clear_failures_in_bounded_time(
    vault: Path, server: SyncServer, phone: Phone, tmp_path: Path
) -> None:
    code, stderr, took = sync(vault, server, password="wrong")
    assert code == 1 and took < 30
    assert f"Error: {server.endpoint} refused the login: check ANKI_USERNAME and ANKI_PASSWORD" in stderr
    bad = CliRunner(env={"ANKI_USERNAME": USER, "ANKI_PASSWORD": PASSWORD}).invoke(
        cli, ["sync", str(vault), "--endpoint", "http://127.0.0.1:9/"]
    )
    assert (
        bad.exit_code == 1
        and "Error: cannot reach http://127.0.0.1:9/: A network error occurred." in bad.stderr
    )
    missing = CliRunner(env={"ANKI_USERNAME": "", "ANKI_PASSWORD": ""}).invoke(
        cli, ["sync", str(vault), "--endpoint", server.endpoint]
    )
    assert (
        missing.exit_code == 2 and "set ANKI_USERNAME and ANKI_PASSWORD in the environment" in missing.stderr
    )
    assert sync(vault, server)[0] == 0
    server.stop()
    (vault / "Networking/TCP.md").write_text(NET.format(extra="- New?\n    - Yes.\n"), encoding="utf-8")
    code, stderr, took = sync(vault, server)
    assert code == 1 and took < 60
    assert f"Error: cannot reach {server.endpoint}" in stderr


def test_the_workflow_init_ci_writes_syncs_against_the_server(
    vault: Path, server: SyncServer, phone: Phone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(vault)
    local = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "local.apkg")])
    assert local.exit_code == 0  # the student builds before committing: the lock is in the repository
    assert CliRunner().invoke(cli, ["init-ci", "--sync"]).exit_code == 0
    flow = yaml.safe_load((vault / ".github/workflows/anki.yml").read_text(encoding="utf-8"))
    steps = {s.get("name", s.get("uses")): s for s in flow["jobs"]["deck"]["steps"]}
    step = steps["Sync to Anki"]
    assert "secrets.ANKI_PASSWORD" in step["env"]["ANKI_PASSWORD"] and "pull_request" not in step["if"]
    env = {
        **os.environ,
        "RUNNER_TEMP": str(tmp_path / "runner"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ANKI_USERNAME": USER,
        "ANKI_PASSWORD": PASSWORD,  # the repository secrets
        "ANKI_ENDPOINT": server.endpoint,  # the repository variable
        "CI": "true",
    }
    (tmp_path / "runner").mkdir()
    for name in ("Check notes", "Build deck", "Sync to Anki"):
        line = steps[name]["run"]
        assert shlex.split(line)[0] == "note2anki"
        done = subprocess.run(["bash", "-c", line], cwd=vault, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{line}: {done.stderr}"
        assert PASSWORD not in done.stdout + done.stderr
    assert not (vault / ".note2anki/sync/session.json").exists()  # no key kept on CI
    phone.sync()
    assert len(phone.notes()) == 6


def test_a_full_sync_the_phone_forced_is_a_download_never_an_upload(
    vault: Path, server: SyncServer, phone: Phone
) -> None:
    """The student changes the collection's schema on the phone (a note type edited) and uploads it whole:
    the server then asks note2anki's working copy for a full sync. note2anki downloads, applies the vault
    again and syncs normally: the phone's change, notes and reviews stay, and the vault's edit arrives."""
    assert sync(vault, server)[0] == 0
    phone.sync()
    col = phone.open()
    try:
        col.mod_schema(check=False)  # what editing a note type's fields does
        own_note(col, "폰에서 바꾼 뒤의 카드", "두 번째 답", "폰 단어장")
        auth = col.sync_login(USER, PASSWORD, server.endpoint)
        assert col.sync_collection(auth, True).required == SyncCollectionResponse.FULL_SYNC
        col.close_for_full_sync()
        col.full_upload_or_download(auth=auth, server_usn=None, upload=True)
        col.reopen(after_full_sync=True)
    finally:
        col.close()
    (vault / "Networking/TCP.md").write_text(
        NET.format(extra="- What does ARP do?\n    - It finds a MAC address.\n"), encoding="utf-8"
    )
    code, stderr, _ = sync(vault, server)
    assert code == 0, stderr
    assert "1 added, 0 updated, 5 unchanged" in stderr, stderr
    phone.sync()
    got = phone.notes()
    assert got["What does ARP do?"]["tags"] == {"subject::Networking", "textbook::네트워크_첫걸음"}
    assert got["폰에서 바꾼 뒤의 카드"]["reps"] == 1 and got["폰에서 만든 카드"]["reps"] == 1
    assert len(got) == 8


def test_a_server_that_fails_or_sends_a_collection_too_new_is_one_clear_line(
    vault: Path, server: SyncServer, phone: Phone, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collection this `anki` cannot read: on the server (which then fails every request, in its own
    words), or downloaded (a phone on a newer Anki uploaded it: the backend says FileTooNew, as it does
    for a collection file marked with a future schema, which is what this test hands it)."""
    assert sync(vault, server)[0] == 0
    server.stop()
    good = server.base.parent / "server-copy"
    shutil.copytree(server.base, good)
    db = sqlite3.connect(server.collection)
    try:
        db.execute("UPDATE col SET ver = 99")  # the schema version of an Anki from the future
        db.commit()
    finally:
        db.close()
    broken = start_server(server.base)
    try:
        code, stderr, _ = sync(vault, broken)
    finally:
        broken.stop()
    assert code == 1 and stderr.startswith(f"Error: {broken.endpoint} would not sync: "), stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1

    from anki.collection import Collection as Backend

    def too_new(col: Backend, *, upload: bool, **_: object) -> None:  # the download, then its opening
        assert not upload
        path = Path(col.path)
        path.unlink()
        Backend(str(path)).close()
        with sqlite3.connect(path) as future:
            future.execute("UPDATE col SET ver = 99")
        future.close()
        Backend(str(path))  # raises DBError(... FileTooNew) as after a real download

    monkeypatch.setattr(Backend, "full_upload_or_download", too_new)
    again = start_server(good)
    try:
        shutil.rmtree(vault / ".note2anki")  # a lost working copy: the collection is downloaded
        code, stderr, _ = sync(vault, again)
    finally:
        again.stop()
    assert code == 1, stderr
    assert f"Error: the collection on {again.endpoint} was made by a newer version of Anki" in stderr
    assert "pip install -U anki" in stderr and "Traceback" not in stderr
