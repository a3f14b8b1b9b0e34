"""Screenshots of note2anki cards as Anki shows them, light and night, with a headless Chromium.

The deck is built from a vault, imported into a fresh collection with the official `anki` package, and each
card's HTML is rendered by Anki itself (`card.question()` / `card.answer()`, templates and cloze included)
with the note type's CSS. Each page is loaded once to collect errors (scripts, images that fail to load)
and once to take the screenshot; any error fails the run.

    python scripts/screenshots.py                      # samples/ -> docs/screenshots/*.png
    python scripts/screenshots.py --vault my-vault --note "Folder/Note.md" --out /tmp/shots

Needs the test extra (`pip install '.[test]'`) and Chromium (Debian: `apt install chromium`). MathJax is
used when Debian's libjs-mathjax is installed (as in Anki, which ships its own); without it TeX shows as
source and the run says so.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATHJAX = Path("/usr/share/javascript/mathjax/MathJax.js")
WINDOW = (430, 600)  # a phone held upright (CSS pixels), cropped to what a card needs
ERROR_MARK = "n2a-page-errors:"
LAYOUT_MARK = "n2a-layout:"

# Records every error the page raises: script errors, and resources (images, scripts) that fail to load
# (caught in the capture phase, since those events do not bubble).
_CATCH_ERRORS = """
<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  var what = t && t !== window && (t.src || t.href) ? "cannot load " + (t.src || t.href) : e.message;
  window.__errors.push(what);
}, true);
window.addEventListener("unhandledrejection", function (e) { window.__errors.push(String(e.reason)); });
var _consoleError = console.error;
console.error = function () {
  window.__errors.push(Array.prototype.join.call(arguments, " "));
  _consoleError.apply(console, arguments);
};
window.addEventListener("load", function () {
  setTimeout(function () {
    var box = document.createElement("pre");
    box.id = "n2a-page-errors";
    box.style.display = "none";
    box.textContent = "@MARK@" + JSON.stringify(window.__errors);
    document.body.appendChild(box);
  }, 1500);
});
</script>
""".replace("@MARK@", ERROR_MARK)

# Measures what a student would see at phone width, once MathJax has run: words in table cells drawn on two
# lines (a word broken inside), whether each table and display formula scrolls sideways, and whether the page
# itself is wider than the screen.
_MEASURE_LAYOUT = """
<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var broken = [];
    document.querySelectorAll("th, td").forEach(function (cell) {
      var walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (var node = walker.nextNode(); node; node = walker.nextNode()) {
        var re = /\\S+/g, m;
        while ((m = re.exec(node.data))) {
          var range = document.createRange();
          range.setStart(node, m.index);
          range.setEnd(node, m.index + m[0].length);
          var tops = {};
          Array.prototype.forEach.call(range.getClientRects(), function (r) {
            if (r.width > 0) tops[Math.round(r.top)] = true;
          });
          if (Object.keys(tops).length > 1) broken.push(m[0]);
        }
      }
    });
    function scrolls(selector) {
      return Array.prototype.map.call(document.querySelectorAll(selector), function (el) {
        return el.scrollWidth > el.clientWidth;
      });
    }
    var box = document.createElement("pre");
    box.id = "n2a-layout";
    box.style.display = "none";
    box.textContent = "@MARK@" + JSON.stringify({
      broken: broken,
      tables: scrolls("table"),
      math: scrolls(".n2a-math, .MJXc-display, mjx-container[display='true']"),
      page_overflows: document.documentElement.scrollWidth > window.innerWidth
    });
    document.body.appendChild(box);
  }, 1500);
});
</script>
""".replace("@MARK@", LAYOUT_MARK)

_MATHJAX = """
<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]], processEscapes: false},
  messageStyle: "none", showMathMenu: false
});
</script>
<script src="@SRC@?config=TeX-AMS_CHTML"></script>
"""


@dataclass(frozen=True)
class Shot:
    name: str  # file stem: cue, code, summary, cloze
    body: str  # Anki's rendered answer side
    css: str


def page(shot: Shot, night: bool, mathjax: Path | None, measure: bool = False) -> str:
    """The card as Anki's reviewer lays it out: `<body class="card card1">`, plus night-mode classes."""
    classes = "card card1" + (" nightMode night_mode" if night else "")
    math = _MATHJAX.replace("@SRC@", mathjax.as_uri()) if mathjax else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"{_CATCH_ERRORS}{_MEASURE_LAYOUT if measure else ''}{shot.css}{math}</head>"
        f'<body class="{classes}">{shot.body}</body></html>'
    )


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--allow-file-access-from-files",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--virtual-time-budget=5000",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def page_errors(binary: str, path: Path, profile: Path) -> list[str]:
    """Errors the page raised while loading (empty when clean)."""
    result = _chromium(binary, profile, "--dump-dom", path.as_uri())
    m = re.search(rf'<pre id="n2a-page-errors"[^>]*>{ERROR_MARK}(.*?)</pre>', result.stdout, re.S)
    if m is None:
        tail = result.stderr[-400:]
        return [f"the page did not finish loading (chromium exit {result.returncode}): {tail}"]
    errors: list[str] = json.loads(html.unescape(m.group(1)))
    return errors


def layout(binary: str, path: Path, profile: Path) -> dict[str, object]:
    """What `_MEASURE_LAYOUT` found on a page made with `page(..., measure=True)`."""
    result = _chromium(binary, profile, "--dump-dom", path.as_uri())
    m = re.search(rf'<pre id="n2a-layout"[^>]*>{LAYOUT_MARK}(.*?)</pre>', result.stdout, re.S)
    if m is None:
        raise RuntimeError(f"the page did not finish loading: {result.stderr[-400:]}")
    found: dict[str, object] = json.loads(html.unescape(m.group(1)))
    return found


def screenshot(binary: str, path: Path, png: Path, profile: Path) -> None:
    result = _chromium(binary, profile, f"--screenshot={png}", path.as_uri())
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot for {path.name}: {result.stderr[-400:]}")


def card_shots(vault: Path, note: str, work: Path) -> tuple[list[Shot], Path]:
    """Build `vault`, import the deck into a fresh collection and render, as Anki does, the answer side of
    `note`'s first cue card, its first cue cards with code and with a table (when others), its summary card
    and its first cloze card. Returns the shots and the collection's media folder."""
    from anki.collection import Collection

    from note2anki import Config, run

    copy = work / vault.name
    shutil.copytree(vault, copy, ignore=shutil.ignore_patterns(".note2anki"))
    deck = work / "deck.apkg"
    run(copy, Config(), out=deck)
    (work / "anki").mkdir()
    col = Collection(str(work / "anki" / "collection.anki2"))
    try:
        from anki.import_export_pb2 import ImportAnkiPackageOptions, ImportAnkiPackageRequest

        col.import_anki_package(
            ImportAnkiPackageRequest(package_path=str(deck), options=ImportAnkiPackageOptions())
        )
        shots: dict[str, Shot] = {}
        for cid in sorted(col.find_cards("")):  # ids follow the note's order on a first build
            card = col.get_card(cid)
            fields = dict(card.note().items())
            if note not in fields.get("Source", ""):
                continue
            kind = str(card.note_type()["name"]).removeprefix("note2anki ").lower()
            if kind == "cue" and "<pre" in fields["Answer"]:
                kind = "cue" if "cue" not in shots else "code"
            elif kind == "cue" and "<table" in fields["Answer"]:
                kind = "cue" if "cue" not in shots else "table"
            out = card.render_output()
            shots.setdefault(kind, Shot(kind, out.answer_text, f"<style>{out.css}</style>"))
        missing = {"cue", "summary", "cloze"} - set(shots)
        if missing:
            raise SystemExit(f"{note}: no {', '.join(sorted(missing))} card in the deck built from {vault}")
        order = [k for k in ("cue", "code", "table", "summary", "cloze") if k in shots]
        return [shots[k] for k in order], Path(col.media.dir())
    finally:
        col.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vault", type=Path, default=ROOT / "samples")
    parser.add_argument("--note", default="Algorithms/시간 복잡도.md", help="vault path of the note to show")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)

    binary = chromium_binary()
    if binary is None:
        print("screenshots: Chromium not found (Debian: apt install chromium)", file=sys.stderr)
        return 2
    mathjax = MATHJAX if MATHJAX.is_file() else None
    if mathjax is None:
        print("screenshots: MathJax not found (Debian: apt install libjs-mathjax); TeX shows as source")
    args.out.mkdir(parents=True, exist_ok=True)
    failures = []
    with tempfile.TemporaryDirectory(prefix="n2a-shots-") as tmp:
        work = Path(tmp)
        shots, media = card_shots(args.vault.resolve(), args.note, work)
        for shot in shots:
            for mode in ("light", "night"):
                path = media / f"{shot.name}-{mode}.html"  # next to the media files, as in Anki
                path.write_text(page(shot, mode == "night", mathjax), encoding="utf-8")
                profile = work / f"profile-{shot.name}-{mode}"
                errors = page_errors(binary, path, profile)
                if errors:
                    failures.append(f"{path.name}: {'; '.join(errors)}")
                    continue
                if mode == "light":  # the layout is the same in night mode
                    measured = media / f"{shot.name}-layout.html"
                    measured.write_text(page(shot, False, mathjax, measure=True), encoding="utf-8")
                    found = layout(binary, measured, profile)
                    if found["broken"] or found["page_overflows"]:
                        failures.append(
                            f"{shot.name}: words broken inside or a page wider than a phone: {found}"
                        )
                png = args.out / f"{shot.name}-{mode}.png"
                screenshot(binary, path, png, profile)
                print(f"screenshots: {png}")
    for failure in failures:
        print(f"screenshots: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
