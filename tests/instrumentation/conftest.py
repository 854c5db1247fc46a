"""Fixtures for the instrumentation tests (the LM-call fixtures live in :mod:`.llm_support`)."""

from __future__ import annotations

from .llm_support import instrumented

__all__ = ["instrumented"]
