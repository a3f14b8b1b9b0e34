"""The Cornell template's vocabulary, shared by parse, extract and render: which headings open the cue and
summary sections (and which other template headings end them), the label and placeholder bullets, and how
headings are compared (loosely: `### ✅ **핵심 요약**` is `핵심요약`). Names come from the config.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata

from note2anki.config import Config

CUE, SUMMARY, OTHER = "cue", "summary", "other"
#: the section roles whose content becomes cards (the rest of a note never needs parsing)
CARD_ROLES = frozenset({CUE, SUMMARY})


@functools.lru_cache(maxsize=4096)  # a vault's headings and labels repeat from note to note
def heading_key(text: str) -> str:
    """Compare headings and labels loosely: `### ✅ **핵심 요약** ` and `핵심요약` have the same key.

    Keeps letters and digits only (case-folded, NFKC), so emoji, symbols, punctuation, emphasis
    markers and spacing never decide whether a heading is recognised.
    """
    # `[\W_]` is every character that is not a letter or a number (str.isalnum), in C rather than a
    # Python loop: keys are computed for every card of every build.
    return _NOT_LETTER_OR_NUMBER.sub("", unicodedata.normalize("NFKC", text).casefold())


_NOT_LETTER_OR_NUMBER = re.compile(r"[\W_]+")

#: how alike a heading must be to a cue or summary heading to be reported as a misspelling of it
NEAR_MISS = 0.75


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


class Keys:
    """Heading and label names from the config, as comparison keys (computed once per config)."""

    def __init__(self, config: Config) -> None:
        def keys(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(k for k in (heading_key(n) for n in names) if k)

        def patterns(names: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
            return tuple((heading_key(n), n.rstrip().endswith("*")) for n in names if heading_key(n))

        self.cue = patterns(config.cue_headings)
        self.summary = patterns(config.summary_headings)
        self.cue_names = tuple(n.rstrip("* ") for n in config.cue_headings if heading_key(n))
        self.summary_names = tuple(n.rstrip("* ") for n in config.summary_headings if heading_key(n))
        self.other = patterns(config.other_headings)
        self.wrappers = frozenset(keys(config.wrappers))
        self.placeholders = frozenset(keys(config.placeholders))
        self.closers = frozenset(keys(config.non_question_headings))

    def near_miss(self, key: str) -> tuple[str, str] | None:
        """(role, configured name) of a cue or summary heading that `key` looks like a misspelling of."""
        if len(key) < 3 or self.role(key) is not None:
            return None
        for role, names, configured in (
            (CUE, self.cue, self.cue_names),
            (SUMMARY, self.summary, self.summary_names),
        ):
            for (name, prefix), shown in zip(names, configured, strict=True):
                candidate = key[: len(name)] if prefix and len(key) > len(name) else key
                if abs(len(candidate) - len(name)) <= 2 and _ratio(candidate, name) >= NEAR_MISS:
                    return role, shown
        return None

    def role(self, key: str) -> str | None:
        for role, names in ((CUE, self.cue), (SUMMARY, self.summary), (OTHER, self.other)):
            if any(key.startswith(n) if prefix else key == n for n, prefix in names):
                return role
        return None


@functools.lru_cache(maxsize=8)
def keys(config: Config) -> Keys:
    """The config's names as comparison keys (made once per config)."""
    return Keys(config)


def heading_role(config: Config, text: str) -> str | None:
    """ "cue", "summary", "other" (another template heading) or None, for a heading's plain text."""
    return keys(config).role(heading_key(text))
