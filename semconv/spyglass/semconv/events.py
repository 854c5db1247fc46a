"""GenAI event names, per ``SEMCONV_GENAI_REF``.

Spyglass emits only :data:`INFERENCE_OPERATION_DETAILS` (when the capture mode asks for events) and
:data:`CLIENT_OPERATION_EXCEPTION`. The deprecated per-message events are listed so the store can read
spans from older senders.
"""

from __future__ import annotations

from typing import Final

INFERENCE_OPERATION_DETAILS: Final = "gen_ai.client.inference.operation.details"
CLIENT_OPERATION_EXCEPTION: Final = "gen_ai.client.operation.exception"
"""A failed GenAI operation: ``exception.type``/``message``/``stacktrace``, ``error.type`` and the
operation's request attributes (never content), severity :data:`CLIENT_OPERATION_EXCEPTION_SEVERITY`."""
CLIENT_OPERATION_EXCEPTION_SEVERITY: Final = 13
"""``SeverityNumber.WARN``, the severity the conventions recommend for the exception event."""
EVALUATION_RESULT: Final = "gen_ai.evaluation.result"

# Deprecated per-message events (semantic-conventions PR #2179): read, never written.
DEPRECATED_SYSTEM_MESSAGE: Final = "gen_ai.system.message"
DEPRECATED_USER_MESSAGE: Final = "gen_ai.user.message"
DEPRECATED_ASSISTANT_MESSAGE: Final = "gen_ai.assistant.message"
DEPRECATED_TOOL_MESSAGE: Final = "gen_ai.tool.message"
DEPRECATED_CHOICE: Final = "gen_ai.choice"
DEPRECATED_MESSAGE_EVENTS: Final = (
    DEPRECATED_SYSTEM_MESSAGE,
    DEPRECATED_USER_MESSAGE,
    DEPRECATED_ASSISTANT_MESSAGE,
    DEPRECATED_TOOL_MESSAGE,
    DEPRECATED_CHOICE,
)
