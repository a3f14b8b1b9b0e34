"""scripts/screenshots.py: cards rendered by Anki, shown by a headless Chromium, light and night."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["screenshots"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


shots = load_script()
needs_chromium = pytest.mark.skipif(shots.chromium_binary() is None, reason="Chromium is not installed")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_chromium
def test_screenshots_of_every_card_kind_light_and_night(tmp_path: Path) -> None:
    assert shots.main(["--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    kinds = ("cloze", "code", "cue", "summary", "table")
    assert names == sorted(f"{k}-{m}.png" for k in kinds for m in ("light", "night"))
    for name in names:
        assert png_size(tmp_path / name) == shots.WINDOW
    # night mode really is another picture
    assert (tmp_path / "cue-light.png").read_bytes() != (tmp_path / "cue-night.png").read_bytes()


@needs_chromium
def test_a_page_with_errors_fails(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    card = shots.Shot("cue", '<img src="missing.png"><script>undefinedFunction()</script>', "")
    page.write_text(shots.page(card, night=False, mathjax=None), encoding="utf-8")
    errors = shots.page_errors(shots.chromium_binary(), page, tmp_path / "profile")
    assert any("cannot load" in e and "missing.png" in e for e in errors)
    assert any("undefinedFunction" in e for e in errors)


@needs_chromium
def test_wide_tables_and_long_formulas_scroll_at_phone_width(tmp_path: Path) -> None:
    """Measured in the rendered page, not read off the CSS: no word of a table cell is drawn on two
    lines, the table and the long display formula scroll sideways, and the card is never wider than a
    phone."""
    binary = shots.chromium_binary()
    found, media = shots.card_shots(ROOT / "samples", "Algorithms/시간 복잡도.md", tmp_path)
    by_name = {s.name: s for s in found}
    assert {"cue", "table"} <= set(by_name)
    mathjax = shots.MATHJAX if shots.MATHJAX.is_file() else None
    results = {}
    for name in ("cue", "table"):
        path = media / f"{name}.html"
        path.write_text(shots.page(by_name[name], False, mathjax, measure=True), encoding="utf-8")
        results[name] = shots.layout(binary, path, tmp_path / f"profile-{name}")
    table = results["table"]
    assert table["broken"] == [] and table["tables"] == [True] and table["page_overflows"] is False
    cue = results["cue"]
    assert cue["page_overflows"] is False
    if mathjax is not None:  # without MathJax the TeX is text, which wraps
        assert True in cue["math"]
    # the measurement sees broken words: the cells as they were styled before (`overflow-wrap: anywhere`)
    old = shots.Shot(
        "table",
        by_name["table"].body,
        by_name["table"].css + "<style>th, td { overflow-wrap: anywhere; word-break: normal; }</style>",
    )
    path = media / "old-table.html"
    path.write_text(shots.page(old, False, mathjax, measure=True), encoding="utf-8")
    assert shots.layout(binary, path, tmp_path / "profile-old")["broken"] != []
