"""Property and fuzz tests (hypothesis): random Markdown, frontmatter, bytes and file names never break a
build.

For every generated vault (one known-good note plus random ones):
- no exception escapes, and no note hits note2anki's last-resort error (N2A099, "note2anki failed");
- the deck imports into a fresh Anki collection without duplicates or conflicts, and the good note's cards
  are in it;
- every field is valid UTF-8, has no `\\x1f` or other control characters, no script, event handler,
  `javascript:`/`data:` URL or remote image;
- `check` reports exactly what `build` reported, and a note with an error gave no cards (it was skipped and
  said so).

CI runs a bounded, derandomized number of examples (`NOTE2ANKI_FUZZ_EXAMPLES`, default 40). A longer run:
`NOTE2ANKI_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py`. Notes that once failed are kept in
`tests/fuzz_corpus/` and replayed by `test_corpus`.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from note2anki import Config, run
from note2anki.model import Severity
from tests.anki_collection import AnkiCollection

CORPUS = Path(__file__).parent / "fuzz_corpus"
EXAMPLES = int(os.environ.get("NOTE2ANKI_FUZZ_EXAMPLES", "40"))

GOOD = """---
⭕과목: 운영체제
⭕교재: 공룡책
---
### 단서 질문

- 프로세스와 스레드의 차이는?
    1. 프로세스는 주소 공간을 따로 가진다.
    2. 스레드는 주소 공간을 나눠 쓴다.

### 핵심 요약

- 스레드는 **주소 공간**을 공유한다.
"""
GOOD_QUESTION = "프로세스와 스레드의 차이는?"

# --- strategies ------------------------------------------------------------------------------------

# characters that have broken Markdown tools: controls and NUL, RTL and bidi marks, combining marks, emoji
# (with joiners and variation selectors), full-width and Korean text, Markdown and Obsidian punctuation
ODD = (
    "\x00\x01\x07\x08\x0b\x0c\x1b\x1f\x7f\x85\u2028\u2029\ufeff\ufffd"
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202e\u2066\u2069"
    "\u0301\u0308\u0323\u20dd\u1100\u1161\u11a8"
    "שלוםمرحبا"
    "⭕✅📌👩‍💻🇰🇷️"
    "가나다한글질문요약"
    "#*_`~$%=|[]()<>!^:-+>\\/&;\"'{}.,0123456789 \t"
)
text = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(ODD), max_size=40)
word = st.text(alphabet=st.sampled_from(ODD + "abcxyz"), min_size=1, max_size=12)

HEADINGS = [
    "단서 질문",
    "핵심 요약",
    "핵심 필기",
    "복습알림",
    "Questions",
    "Summary",
    "Cue questions",
    "Notes",
]
TARGETS = [
    "image 1.png",
    "../../secret.png",
    "/etc/passwd.png",
    "file:///etc/hosts",
    "C:\\Windows\\x.png",
    "Other note",
    "Other note#Heading",
    "img|300",
    "a]]b",
    "",
]


@st.composite
def inline(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.one_of(
                text,
                word.map(lambda w: f"**{w}**"),
                word.map(lambda w: f"=={w}=="),
                word.map(lambda w: f"`{w}`"),
                word.map(lambda w: f"${w}$"),
                st.sampled_from(TARGETS).map(lambda t: f"[[{t}]]"),
                st.sampled_from(TARGETS).map(lambda t: f"![[{t}]]"),
                st.sampled_from(TARGETS).map(lambda t: f"![alt]({t})"),
                st.sampled_from(
                    [
                        "<script>alert(1)</script>",
                        '<img src="https://example.org/x.png" onerror="alert(1)">',
                        '<a href="javascript:alert(1)">x</a>',
                        '<a href="data:text/html,x">d</a>',
                        "<iframe src=//example.org></iframe>",
                        "<details><summary>s</summary>d</details>",
                        "<!-- comment",
                        "[sound:x.mp3]",
                        "%%",
                        "{{c1::x}}",
                        "^block-id",
                        "![x](https://example.org/y.png)",
                        "![x](data:image/png;base64,AAAA)",
                    ]
                ),
            ),
            max_size=6,
        )
    )
    return " ".join(parts)


@st.composite
def block(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["heading", "list", "fence", "table", "quote", "para", "rule", "callout"]))
    if kind == "heading":
        level = "#" * draw(st.integers(1, 7))
        title = draw(st.one_of(st.sampled_from(HEADINGS), inline()))
        return f"{level} {draw(st.sampled_from(['', '**', '✅ ']))}{title}"
    if kind == "list":
        lines = []
        for _ in range(draw(st.integers(1, 6))):
            depth = draw(st.integers(0, 5))
            indent = draw(st.sampled_from(["\t", "  ", "    ", "\t    ", " "])) * depth
            marker = draw(st.sampled_from(["-", "*", "+", "1.", "2)", "•"]))
            lines.append(f"{indent}{marker} {draw(inline())}")
        return "\n".join(lines)
    if kind == "fence":
        fence = draw(st.sampled_from(["```", "~~~", "````"]))
        lang = draw(st.sampled_from(["", "python", "nosuchlang", "js {x}"]))
        close = draw(st.sampled_from([fence, "", "```"]))
        return f"{fence}{lang}\n{draw(text)}\n{close}"
    if kind == "table":
        cells = draw(st.lists(inline(), min_size=1, max_size=3))
        return "| " + " | ".join(cells) + " |\n|" + "---|" * len(cells) + "\n| " + " | ".join(cells) + " |"
    if kind == "quote":
        return draw(st.sampled_from([">", "> >", ">>>"])) + " " + draw(inline())
    if kind == "callout":
        return (
            f"> [!{draw(word)}]{draw(st.sampled_from(['', '-', '+']))} {draw(inline())}\n> {draw(inline())}"
        )
    if kind == "rule":
        return draw(st.sampled_from(["---", "***", "___", "- - -"]))
    return draw(inline())


@st.composite
def frontmatter(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["none", "mapping", "broken", "aliases", "huge", "odd keys"]))
    if kind == "none":
        return ""
    if kind == "broken":
        return f"---\n{draw(text)}\n---\n"
    if kind == "aliases":
        return "---\na: &a [x, x, x]\nb: &b [*a, *a, *a]\nsubject: *b\ntags: *b\n---\n"
    if kind == "huge":
        long = "가" * draw(st.integers(100, 3000))
        return f"---\nsubject: {long}\ntextbook: [{', '.join(['x'] * 500)}]\n---\n"
    if kind == "odd keys":
        return "---\n1: one\ntrue: yes\n? [a]\n: b\nnull: ~\n2024-01-01: date\n---\n"
    values = st.one_of(word, st.integers(), st.booleans(), st.none(), st.lists(word, max_size=3))
    data = draw(
        st.dictionaries(st.sampled_from(["⭕과목", "⭕교재", "subject", "tags", "date", "x"]), values)
    )
    lines = [f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in data.items()]
    return "---\n" + "\n".join(lines) + "\n---\n"


@st.composite
def cornell(draw: st.DrawFn) -> str:
    """A note in the template's shape (cue questions with nested answers, a summary) with random content:
    most of these make cards, so the rendering and the deck are exercised, not only the error paths."""
    cue = draw(
        st.sampled_from(["### 단서 질문", "## Questions", "# **단서 질문 및 답변**", "### ✅ Cue questions"])
    )
    items = []
    for _ in range(draw(st.integers(1, 4))):
        indent = draw(st.sampled_from(["    ", "\t", "  ", "\t    "]))
        answer = [
            indent + line for b in draw(st.lists(block(), min_size=1, max_size=3)) for line in b.split("\n")
        ]
        items.append(f"- {draw(inline())}\n" + "\n".join(answer))
    summary = [f"- {draw(inline())} **{draw(word)}**" for _ in range(draw(st.integers(0, 3)))]
    tail = draw(st.lists(block(), max_size=2))
    return "\n\n".join([cue, *items, "### 핵심 요약", *summary, *tail])


@st.composite
def note_bytes(draw: st.DrawFn) -> bytes:
    body = draw(st.one_of(cornell(), st.lists(block(), max_size=10).map("\n\n".join)))
    note = draw(frontmatter()) + body
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "crlf", "cr", "raw"]))
    if encoding == "raw":
        return draw(st.binary(max_size=200))
    if encoding == "crlf":
        return note.replace("\n", "\r\n").encode("utf-8", "surrogatepass")
    if encoding == "cr":
        return note.replace("\n", "\r").encode("utf-8", "surrogatepass")
    return note.encode(encoding, "surrogatepass")


NAME_CHARS = "abc 가나다 ⭕📌 #^[]|:?*<>\"'()&%$!~-_,;=+ é\u0301\u200f"
_NAME = st.text(alphabet=st.sampled_from(NAME_CHARS), min_size=1, max_size=30)
_ODD_NAME = st.sampled_from(["\udcff latin1", "new\nline", "tab\there", "x" * 200])
file_name = (  # a name that cannot be read one time in ten
    st.integers(0, 9)
    .flatmap(lambda i: _ODD_NAME if i == 0 else _NAME)
    .map(lambda n: n.replace("/", "_").lstrip(".") or "n")
)
folder = st.sampled_from(["", "sub/", "깊은/폴더/", "a b/"])


# --- the property ----------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _Unsafe(HTMLParser):
    """What in a field's HTML could run a script or load something: checked on the parsed tags and
    attributes, so that `&lt;script&gt;` shown as text in code is not mistaken for a script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "iframe", "object", "embed", "link", "meta", "base", "form"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            url = (value or "").strip().lower()
            if name.startswith("on") or name in ("srcdoc", "formaction"):
                self.found.append(f"{tag} {name}=")
            elif name in ("href", "src") and url.startswith(("javascript:", "data:", "vbscript:")):
                self.found.append(f"{tag} {name}={url[:20]}")
            elif tag == "img" and name == "src" and re.match(r"[a-z][a-z0-9+.-]*:|//", url):
                self.found.append(f"remote <img src={url[:40]}>")
            elif name == "style" and re.search(r"url\(|expression|@import", url):
                self.found.append(f"{tag} style={url[:40]}")


def unsafe(html: str) -> list[str]:
    parser = _Unsafe()
    parser.feed(html)
    parser.close()
    return parser.found + [f"control character {m.group()!r}" for m in _CONTROL.finditer(html)]


def check_vault(root: Path, work: Path) -> int:
    """Build, import and check the vault at `root` (see the module docstring); the number of notes."""
    out = work / "deck.apkg"
    result = run(root, Config(), out=out)
    failures = [d.format() for d in result.diagnostics if d.code == "N2A099"]
    assert failures == []
    checked = run(root, Config())
    assert checked.diagnostics == result.diagnostics
    errors = {d.path for d in result.diagnostics if d.severity is Severity.ERROR}
    assert not errors & {c.source for c in checked.cards}
    # what the examples covered (shown by --hypothesis-show-statistics)
    record = event if currently_in_test_context() else (lambda _: None)
    record("random notes with cards" if len({c.source for c in checked.cards}) > 1 else "no random cards")
    for code in sorted({d.code for d in result.diagnostics}):
        record(f"reported {code}")

    col = AnkiCollection(work / "anki")
    try:
        log = col.import_deck(out)
        assert log.duplicate == log.conflicting == log.missing_notetype == 0
        notes = col.notes()
        assert log.new == len(notes) == result.card_total
        assert GOOD_QUESTION in {n.fields.get("Question") for n in notes}
        for note in notes:
            for name, value in note.fields.items():
                value.encode("utf-8")  # no lone surrogates
                assert unsafe(value) == [], (name, value)
            for tag in note.tags:
                assert tag and not any(c.isspace() for c in tag)
    finally:
        col.close()
    return len(notes)


def write_vault(root: Path, notes: list[tuple[str, bytes]]) -> None:
    (root / "운영체제").mkdir(parents=True)
    (root / "운영체제" / "프로세스.md").write_text(GOOD, encoding="utf-8")
    (root / "image 1.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    for rel, data in notes:
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_bytes(data)
        except (OSError, UnicodeEncodeError):
            pass  # a name this file system refuses (macOS: undecodable bytes)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=bool(os.environ.get("CI")) or EXAMPLES <= 40,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.tuples(folder, file_name, note_bytes()), min_size=1, max_size=3))
def test_random_vaults_build_and_import(notes: list[tuple[str, str, bytes]]) -> None:
    with tempfile.TemporaryDirectory(prefix="note2anki-fuzz-") as tmp:
        root = Path(tmp) / "vault"
        write_vault(root, [(f"{where}{name}.md", data) for where, name, data in notes])
        check_vault(root, Path(tmp))


@pytest.mark.parametrize("case", sorted(p.name for p in CORPUS.glob("*.md") if p.name != "README.md"))
def test_corpus(case: str, tmp_path: Path) -> None:
    """Notes that once broke a build (found by the fuzzer), replayed as they were."""
    root = tmp_path / "vault"
    write_vault(root, [(case, (CORPUS / case).read_bytes())])
    check_vault(root, tmp_path)


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux allows such names")
def test_undecodable_and_control_character_names(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    write_vault(root, [(os.fsdecode(b"caf\xe9.md"), GOOD.encode()), ("two\nlines.md", GOOD.encode())])
    check_vault(root, tmp_path)
