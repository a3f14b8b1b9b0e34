"""Every reason note2anki cannot go on, in one place, under one base class.

Problems in the user's notes are not exceptions: they are `Diagnostic` values, collected across the whole
run (see `codes.py`). An exception here means the run stops; its message says why and how to fix it. The CLI
maps `UsageError` to exit 2 and every other `Note2AnkiError` to exit 1, in one place (`cli.main`).
"""

from __future__ import annotations


class Note2AnkiError(Exception):
    """note2anki cannot go on; the message says why and what to do."""


class UsageError(Note2AnkiError):
    """The command, its options or its settings cannot be used as given (exit 2)."""


class ConfigError(UsageError):
    """The configuration file cannot be used; the message says which key and how to fix it."""


class OutputRefused(UsageError):
    """The deck (or report) path given would put it where it must not go; nothing was written."""


class WorkflowError(UsageError):
    """The CI workflow cannot be written as asked."""


class ExportError(Note2AnkiError):
    """The deck cannot be written (disk, permissions); the previous deck, if any, is left intact."""


class StateError(Note2AnkiError):
    """The state file cannot be used; building on would duplicate cards, so the build stops."""


class FrozenStateError(Note2AnkiError):
    """`--frozen` was given and the build would change the card state file."""


class BuildBusy(Note2AnkiError):
    """Another build of the same vault held the build lock longer than this build would wait."""


class FallBack(Exception):
    """Internal: the incremental way cannot be taken, so the deck is built whole (never reaches a user)."""


class StaleCollection(FallBack):
    """The collection kept from the last build cannot be edited."""


class NotSorted(FallBack):
    """The state file is not in the order `format_state` writes, so it cannot be read in part."""
