"""Spyglass instrumentation: auto-instrumentors for LM calls and pipeline steps.

The front door of the package; implementation lives in private modules.
"""

from __future__ import annotations

__all__: list[str] = []
