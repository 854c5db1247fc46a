"""Spyglass's own attributes: everything we add beyond ``SEMCONV_GENAI_REF``, documented in one place.

Where a peer or backend already reads a name we use it (``gen_ai.usage.cost`` is read by Langfuse and
OpenLIT); everything else lives under ``spyglass.``. Each constant gives its type and unit.

=====================================  ==========  ======  ===================================================
attribute                              type        unit    meaning
=====================================  ==========  ======  ===================================================
``gen_ai.usage.cost``                  double      USD     total cost of the LM call
``spyglass.cost.input``                double      USD     uncached input tokens
``spyglass.cost.output``               double      USD     output tokens (reasoning included unless priced apart)
``spyglass.cost.cache_read``           double      USD     cache-read input tokens
``spyglass.cost.cache_write``          double      USD     cache-write input tokens
``spyglass.cost.reasoning``            double      USD     reasoning tokens, when the price has its own rate
``spyglass.cost.currency``             str                 always ``USD``
``spyglass.cost.source``               str                 ``genai-prices`` | ``override`` | ``provider``
``spyglass.cost.unpriced``             bool                true when no price could be found (never cost 0)
``spyglass.cost.unpriced_reason``      str                 why: ``unknown_model``, ``no_usage``...
``spyglass.redaction.count``           int                 values replaced by the redactor on this span
``spyglass.redaction.kinds``           str[]               detector names that fired (``EMAIL``, ``CARD``...)
``spyglass.content.mode``              str                 ``full`` | ``redacted`` | ``metadata_only``
``spyglass.policy.rule``               str                 id of the capture-policy rule that applied
``spyglass.content.truncated``         str[]               attribute keys whose JSON was truncated
``spyglass.stream.chunk_count``        int                 chunks/events received on a streamed call
``spyglass.step.kind``                 str                 ``workflow`` | ``task`` | ``agent`` | ``tool`` | ``retrieval``
``spyglass.step.input``                str (JSON)          a step's arguments, size-limited, content policy
``spyglass.step.output``               str (JSON)          a step's return value, size-limited, content policy
``spyglass.tenant.id``                 str                 tenant the request served
``user.id``                            str                 end user (general semconv name)
``session.id``                         str                 session (general semconv name)
``spyglass.metadata.<key>``            str/num/bool        custom metadata from ``using_attributes``
``spyglass.tags``                      str[]               custom tags from ``using_attributes``
``spyglass.http.raw``                  bool                span built by the HTTP-level instrumentor
``spyglass.dspy.signature``            str                 a DSPy predictor's signature (``context, question -> answer``)
``spyglass.outcome``                   str                 on the ``spyglass.exporter.spans`` metric: ``exported`` | ``retried`` | ``spooled`` | ``dropped``
=====================================  ==========  ======  ===================================================

Markers inside message JSON (extra properties, which the schemas allow on every part):

- ``"spyglass.truncated": true`` and ``"spyglass.original_size": <int chars>`` on a part whose text was cut.
- ``"spyglass.omitted": true`` on a ``blob`` part whose base64 ``content`` was replaced by ``""``;
  ``mime_type`` and ``byte_size`` stay.
- ``[REDACTED:<KIND>]`` (mask mode) or ``[<KIND>:<hmac prefix>]`` (hash mode) inside redacted strings.
"""

from __future__ import annotations

from typing import Final

USAGE_COST: Final = "gen_ai.usage.cost"
COST_INPUT: Final = "spyglass.cost.input"
COST_OUTPUT: Final = "spyglass.cost.output"
COST_CACHE_READ: Final = "spyglass.cost.cache_read"
COST_CACHE_WRITE: Final = "spyglass.cost.cache_write"
COST_REASONING: Final = "spyglass.cost.reasoning"
COST_CURRENCY: Final = "spyglass.cost.currency"
COST_SOURCE: Final = "spyglass.cost.source"
COST_UNPRICED: Final = "spyglass.cost.unpriced"
COST_UNPRICED_REASON: Final = "spyglass.cost.unpriced_reason"

REDACTION_COUNT: Final = "spyglass.redaction.count"
REDACTION_KINDS: Final = "spyglass.redaction.kinds"
CONTENT_MODE: Final = "spyglass.content.mode"
POLICY_RULE: Final = "spyglass.policy.rule"
CONTENT_TRUNCATED: Final = "spyglass.content.truncated"

STREAM_CHUNK_COUNT: Final = "spyglass.stream.chunk_count"

STEP_KIND: Final = "spyglass.step.kind"
STEP_INPUT: Final = "spyglass.step.input"
STEP_OUTPUT: Final = "spyglass.step.output"

TENANT_ID: Final = "spyglass.tenant.id"
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"
METADATA_PREFIX: Final = "spyglass.metadata."
TAGS: Final = "spyglass.tags"

HTTP_RAW: Final = "spyglass.http.raw"

DSPY_SIGNATURE: Final = "spyglass.dspy.signature"
EXPORT_OUTCOME: Final = "spyglass.outcome"

# Markers inside message JSON.
PART_TRUNCATED: Final = "spyglass.truncated"
PART_ORIGINAL_SIZE: Final = "spyglass.original_size"
PART_OMITTED: Final = "spyglass.omitted"
