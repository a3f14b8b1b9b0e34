"""`note2anki init-ci`: a GitHub Actions workflow for a vault repository.

The workflow runs the commands a student runs locally, from the repository root, with the same settings:
when `note2anki.toml` is at the root, the commands name no vault (the file's `vault` key says where the
notes are, as it does for `note2anki build` on the student's machine); otherwise they name the vault folder,
whose own `note2anki.toml` (if any) is then read. Steps: restore `.note2anki/` (the cache checks every entry
itself, so a restored cache can only make the build faster), `note2anki check --format github` (annotations
on the changed lines), `note2anki build --frozen`, upload the deck, attach it to tag releases.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from note2anki._version import __version__
from note2anki.config import CONFIG_FILE, load_config
from note2anki.errors import ConfigError, WorkflowError

WORKFLOW_PATH = ".github/workflows/anki.yml"
#: the deck is built outside the checkout (note2anki never writes a deck into the vault)
DECK = '"$RUNNER_TEMP/anki-deck.apkg"'
DECK_PATH = "${{ runner.temp }}/anki-deck.apkg"

_TEMPLATE = """\
# Written by `note2anki init-ci`. Rebuilds the Anki deck on every push and pull request, uploads it as the
# `anki-deck` artifact, and attaches it to a release when you push a tag (git tag v1 && git push --tags).
# What is installed: the repository variable NOTE2ANKI_INSTALL when set (Settings > Secrets and variables >
# Actions > Variables; any pip requirement, e.g. git+https://github.com/you/note2anki), else {default}.
name: Anki deck

on:
  push:
  pull_request:

permissions:
  contents: write

jobs:
  deck:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install note2anki
        env:
          NOTE2ANKI_INSTALL: ${{{{ vars.NOTE2ANKI_INSTALL || '{default}' }}}}
        run: python -m pip install "$NOTE2ANKI_INSTALL"
      - name: Restore the note2anki cache
        uses: actions/cache@v4
        with:
          path: {private}
          key: note2anki-${{{{ runner.os }}}}-${{{{ github.sha }}}}
          restore-keys: note2anki-${{{{ runner.os }}}}-
      - name: Check notes
        run: note2anki check {vault}--format github
      - name: Build deck
        run: note2anki build {vault}--frozen -o {deck}
{sync}      - name: Upload deck
        uses: actions/upload-artifact@v4
        with:
          name: anki-deck
          path: {deck_path}
      - name: Attach deck to the release
        if: startsWith(github.ref, 'refs/tags/')
        env:
          GH_TOKEN: ${{{{ github.token }}}}
        run: >-
          gh release upload "$GITHUB_REF_NAME" {deck} --clobber
          || gh release create "$GITHUB_REF_NAME" {deck} --title "$GITHUB_REF_NAME" --notes "Anki deck"
"""


@dataclass(frozen=True)
class Layout:
    """Where the notes are, seen from the repository root, and how the commands must name them."""

    vault: str  # POSIX, relative to the root ("." for the root itself)
    argument: str  # what the commands pass as VAULT ("" when note2anki.toml at the root says it)


def layout(repo: Path, vault: str | None) -> Layout:
    """The layout of the repository at `repo`: `note2anki.toml` at the root decides (its `vault` key);
    without one, `vault` (default: the root)."""
    config_path = repo / CONFIG_FILE
    if config_path.is_file():
        try:
            configured = posixpath.normpath(load_config(repo, config_path).vault.replace("\\", "/"))
        except ConfigError as exc:
            raise WorkflowError(str(exc)) from exc
        if vault is not None and posixpath.normpath(vault) != configured:
            raise WorkflowError(
                f"{CONFIG_FILE} says vault = {configured!r}, but --vault says {vault!r}; the workflow uses "
                f"{CONFIG_FILE} as your own builds do, so drop --vault (or change the file)"
            )
        if not (repo / configured).is_dir():
            raise WorkflowError(f"{config_path}: `vault = {configured!r}` is not a folder")
        return Layout(configured, "")
    folder = posixpath.normpath((vault or ".").replace("\\", "/"))
    if folder.startswith("..") or posixpath.isabs(folder):
        raise WorkflowError(f"--vault {vault}: give the vault folder relative to the repository root")
    if not (repo / folder).is_dir():
        raise WorkflowError(f"--vault {vault}: no such folder in {repo}")
    return Layout(folder, folder)


def default_install() -> tuple[str, str]:
    """What the workflow installs unless told otherwise, and a note when that may not work: the git URL
    this note2anki was installed from (PEP 610), else this version from PyPI."""
    pin = f"note2anki=={__version__}"
    try:
        raw = metadata.distribution("note2anki").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        raw = None
    if not raw:
        return pin, ""
    try:
        info = json.loads(raw)
        url, vcs = str(info["url"]), info.get("vcs_info")
    except (ValueError, KeyError, TypeError):
        return pin, ""
    if isinstance(vcs, dict) and vcs.get("vcs") == "git" and url.startswith(("https://", "ssh://")):
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        return f"git+{url}" + (f"@{commit}" if commit else ""), ""
    return pin, (
        f"note2anki is installed here from {url}, which CI cannot reach; the workflow installs {pin} from "
        "PyPI unless you pass --install or set the repository variable NOTE2ANKI_INSTALL"
    )


_SYNC = """\
      # `--sync`: pushes to the default branch reach Anki through AnkiWeb (or the server the repository
      # variable ANKI_ENDPOINT names), with the secrets ANKI_USERNAME and ANKI_PASSWORD; never pull requests.
      - name: Install Anki's sync client
        if: github.event_name == 'push' && github.ref_name == github.event.repository.default_branch
        run: python -m pip install "anki>=25.2"
      - name: Sync to Anki
        if: github.event_name == 'push' && github.ref_name == github.event.repository.default_branch
        env:
          ANKI_USERNAME: ${{{{ secrets.ANKI_USERNAME }}}}
          ANKI_PASSWORD: ${{{{ secrets.ANKI_PASSWORD }}}}
          ANKI_ENDPOINT: ${{{{ vars.ANKI_ENDPOINT }}}}
        run: note2anki sync {vault}--server
"""


def workflow(install: str | None = None, where: Layout | None = None, sync: bool = False) -> str:
    """The workflow text; `install` is the pip requirement (default: `default_install()`); `sync` adds the
    steps that sync the deck through AnkiWeb or a sync server."""
    where = where or Layout(".", ".")
    spec = install or default_install()[0]
    if "'" in spec or "\n" in spec:
        raise WorkflowError(f"--install {spec!r}: a pip requirement cannot contain quotes or line breaks")
    vault = f"{where.argument} " if where.argument else ""
    return _TEMPLATE.format(
        default=spec,
        sync=_SYNC.format(vault=vault) if sync else "",
        vault=vault,
        private=posixpath.join(where.vault, ".note2anki") if where.vault != "." else ".note2anki",
        deck=DECK,
        deck_path=DECK_PATH,
    )
