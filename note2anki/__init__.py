"""note2anki: turn a vault of Markdown Cornell notes into Anki decks."""

from __future__ import annotations

__version__ = "0.1.0"

from note2anki.config import Config, ConfigError, load_config
from note2anki.model import BuildResult, CardKind, Diagnostic, RenderedCard, Severity
from note2anki.pipeline import run

__all__ = [
    "BuildResult",
    "CardKind",
    "Config",
    "ConfigError",
    "Diagnostic",
    "RenderedCard",
    "Severity",
    "__version__",
    "load_config",
    "run",
]
