"""Spyglass semantic conventions: the one place attribute names and message shapes live.

Pinned revision
---------------
The OpenTelemetry GenAI conventions moved out of ``open-telemetry/semantic-conventions`` into
``open-telemetry/semantic-conventions-genai`` (2026-05), and every ``GEN_AI_*`` constant in
``opentelemetry-semantic-conventions`` is now deprecated. Spyglass keeps its own constants, pinned to
:data:`SEMCONV_GENAI_REF`: ``open-telemetry/semantic-conventions-genai`` at commit ``ac48b1f9``
(``docs/gen-ai/client-inference.md``, Sep-Oct 2026), with the message JSON schemas of
``model/gen-ai/gen-ai-{input,output}-messages.json`` @ ``ae14c021``/``7568a240``. That revision includes the
2026 additions (``gen_ai.usage.cache_write.input_tokens``, ``gen_ai.request.reasoning.level``, per-modality
usage, ``gen_ai.prompt.name``...).

Modules
-------
- :mod:`spyglass.semconv.gen_ai`: ``gen_ai.*`` span attribute names, plus the ``server.*``/``error.type``
  names GenAI spans carry.
- :mod:`spyglass.semconv.values`: well-known values (operation names, provider names, finish reasons, roles).
- :mod:`spyglass.semconv.metrics`: metric names, units and bucket advice.
- :mod:`spyglass.semconv.events`: event names.
- :mod:`spyglass.semconv.extensions`: Spyglass's own attributes (cost, redaction, truncation, context).
- :mod:`spyglass.semconv.environment`: every environment variable Spyglass reads.
- :mod:`spyglass.semconv.messages`: the message model (typed parts, fast JSON serialization).
- :mod:`spyglass.semconv.validation`: JSON-schema validation of emitted messages (used by tests).
"""

from __future__ import annotations

from typing import Final

from spyglass.semconv.messages import (
    BlobPart,
    ChatMessage,
    FilePart,
    InputMessage,
    OutputMessage,
    Part,
    ReasoningPart,
    ServerToolCallPart,
    ServerToolCallResponsePart,
    TextPart,
    ToolCallPart,
    ToolCallResponsePart,
    ToolDefinition,
    UriPart,
    dumps,
)

SEMCONV_GENAI_REF: Final = "open-telemetry/semantic-conventions-genai@ac48b1f9"
"""The GenAI conventions revision every name in this package follows."""

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.37.0"
"""Schema URL set on Spyglass tracers and meters (the last core release that carried ``gen_ai``)."""

__all__ = [
    "SCHEMA_URL",
    "SEMCONV_GENAI_REF",
    "BlobPart",
    "ChatMessage",
    "FilePart",
    "InputMessage",
    "OutputMessage",
    "Part",
    "ReasoningPart",
    "ServerToolCallPart",
    "ServerToolCallResponsePart",
    "TextPart",
    "ToolCallPart",
    "ToolCallResponsePart",
    "ToolDefinition",
    "UriPart",
    "dumps",
]
