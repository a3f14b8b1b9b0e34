"""Regenerate the code-highlighting block of note2anki/card.css from Pygments' styles.

The block is committed rather than generated at build time, so the note types' CSS (and the deck's bytes)
do not change when Pygments is upgraded. Run it when changing the styles below, then raise MODEL_MOD:

    python scripts/pygments_css.py
"""

from __future__ import annotations

import re
from pathlib import Path

from pygments.formatters import HtmlFormatter

LIGHT = "default"
NIGHT = "github-dark"
CSS = Path(__file__).resolve().parent.parent / "note2anki" / "card.css"
SCOPES = {LIGHT: (".n2a-code",), NIGHT: (".nightMode .n2a-code", ".night_mode .n2a-code")}
_RULE = re.compile(r"^(?P<sel>\.X \.[\w-]+) \{ (?P<body>[^}]*?) \}")


def token_rules(style: str) -> list[str]:
    """Only the token rules (`.k`, `.s2`, ...); the box itself is styled by card.css."""
    out = []
    for line in HtmlFormatter(style=style).get_style_defs(".X").splitlines():
        m = _RULE.match(line)
        # `.err`: a token the lexer does not know (a newer keyword, a template tag); valid code is never
        # boxed in red
        if m is None or m.group("sel").endswith((".hll", ".linenos", ".err")):
            continue
        body = m.group("body").replace("background-color", "background")
        selectors = ", ".join(m.group("sel").replace(".X", scope) for scope in SCOPES[style])
        out.append(f"{selectors} {{ {body} }}")
    return out


def main() -> None:
    text = CSS.read_text(encoding="utf-8")
    block = "\n".join(token_rules(LIGHT) + token_rules(NIGHT))
    new = re.sub(
        r"(/\* pygments:begin \*/\n).*?(/\* pygments:end \*/)",
        lambda m: m.group(1) + block + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    CSS.write_text(new, encoding="utf-8")
    print(f"{CSS}: {len(block.splitlines())} token rules")


if __name__ == "__main__":
    main()
