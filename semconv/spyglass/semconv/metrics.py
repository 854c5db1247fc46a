"""GenAI metric names, units and bucket advice, per ``SEMCONV_GENAI_REF`` (``metrics.yaml`` @9ba9b775)."""

from __future__ import annotations

from typing import Final

CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
"""Histogram, ``s``. Client operations (inference, embeddings, retrieval); attributes include ``error.type``."""
CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
"""Histogram, ``{token}``; one point per ``gen_ai.token.type`` (``input``/``output``)."""
CLIENT_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
"""Histogram, ``s``. Streaming calls only."""
CLIENT_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
"""Histogram, ``s``. One point per chunk after the first, from the end of the previous chunk."""
EXECUTE_TOOL_DURATION: Final = "gen_ai.execute_tool.duration"
"""Histogram, ``s``."""
INVOKE_AGENT_DURATION: Final = "gen_ai.invoke_agent.duration"
"""Histogram, ``s`` (in-process agents)."""
WORKFLOW_DURATION: Final = "gen_ai.workflow.duration"
"""Histogram, ``s``."""

UNIT_SECONDS: Final = "s"
UNIT_TOKENS: Final = "{token}"

DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
"""Advisory boundaries for operation duration and the chunk-timing histograms."""
TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
"""Advisory boundaries for token usage."""
INVOKE_AGENT_BUCKETS: Final = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6)
WORKFLOW_BUCKETS: Final = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)

# Spyglass's own metrics.
SPYGLASS_COST: Final = "spyglass.client.cost"
"""Counter, ``USD``: the priced cost of LM calls (by model and provider)."""
SPYGLASS_EXPORTER_SPANS: Final = "spyglass.exporter.spans"
"""Counter, ``{span}``, attribute ``spyglass.outcome`` = exported | retried | spooled | dropped."""
