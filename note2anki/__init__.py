"""note2anki: turn a vault of Markdown Cornell notes into Anki decks.

from note2anki import Config, run
scan = run(Path("vault"), Config())                       # what check and list see: Scan
built = run(Path("vault"), Config(), out=Path("d.apkg"))  # what build did: BuildResult
"""

from __future__ import annotations

from note2anki._version import __version__
from note2anki.config import Config, load_config
from note2anki.errors import (
    BuildBusy,
    ConfigError,
    ExportError,
    FrozenStateError,
    Note2AnkiError,
    OutputRefused,
    StateError,
    UsageError,
    WorkflowError,
)
from note2anki.model import BuildResult, CardKind, Diagnostic, RenderedCard, Scan, Severity
from note2anki.pipeline import run

__all__ = [
    "BuildBusy",
    "BuildResult",
    "CardKind",
    "Config",
    "ConfigError",
    "Diagnostic",
    "ExportError",
    "FrozenStateError",
    "Note2AnkiError",
    "OutputRefused",
    "RenderedCard",
    "Scan",
    "Severity",
    "StateError",
    "UsageError",
    "WorkflowError",
    "__version__",
    "load_config",
    "run",
]
