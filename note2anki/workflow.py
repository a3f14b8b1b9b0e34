"""`note2anki init-ci`: a GitHub Actions workflow for a vault repository.

The workflow runs the same commands a student runs locally: `note2anki check --format github` (annotations on
the changed lines) and `note2anki build --frozen`, then uploads the deck and attaches it to tag releases.
"""

from __future__ import annotations

from note2anki import __version__

WORKFLOW_PATH = ".github/workflows/anki.yml"
#: the deck is built outside the checkout (note2anki never writes a deck into the vault)
DECK = '"$RUNNER_TEMP/anki-deck.apkg"'
DECK_PATH = "${{ runner.temp }}/anki-deck.apkg"

_TEMPLATE = """\
# Written by `note2anki init-ci`. Rebuilds the Anki deck on every push and pull request, uploads it as the
# `anki-deck` artifact, and attaches it to a release when you push a tag (git tag v1 && git push --tags).
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
        run: {install}
      - name: Check notes
        run: note2anki check {vault}--format github
      - name: Build deck
        run: note2anki build {vault}--frozen -o {deck}
      - name: Upload deck
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


def workflow(install: str | None = None, vault: str = ".") -> str:
    """The workflow text; `install` is the pip requirement (default: this version of note2anki)."""
    spec = install or f"note2anki=={__version__}"
    return _TEMPLATE.format(
        install=f'python -m pip install "{spec}"',
        vault=f"{vault} " if vault else "",
        deck=DECK,
        deck_path=DECK_PATH,
    )
