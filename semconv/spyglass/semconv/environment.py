"""Every environment variable Spyglass reads, official names first, then ours under ``OTEL_SPYGLASS_``.

Each constant's docstring gives the default and the meaning; the README's configuration table lists the
same names (a test keeps the two in step). Variables are read once, when a component is configured
(instrumentor ``instrument()``, exporter construction, ``spyglass serve`` start), never on a hot path.
"""

from __future__ import annotations

from typing import Final

# --- official OpenTelemetry names ----------------------------------------------------------------
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""
.. envvar:: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT

Default ``SPAN_ONLY`` in Spyglass (the official default is ``NO_CONTENT``): ``NO_CONTENT``, ``SPAN_ONLY``,
``EVENT_ONLY``, ``SPAN_AND_EVENT``, and also ``true`` (= ``SPAN_ONLY``) / ``false`` (= ``NO_CONTENT``).
"""
OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT: Final = "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT"
"""
.. envvar:: OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT

Emit ``gen_ai.client.inference.operation.details``; default true for the EVENT modes, false otherwise.
"""
OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: Final = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"
"""
.. envvar:: OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT

Largest attribute value; message JSON beyond it is truncated structurally (stays valid JSON).
Unset: Spyglass's own limit, :data:`OTEL_SPYGLASS_CONTENT_MAX_LENGTH`.
"""
OTEL_SERVICE_NAME: Final = "OTEL_SERVICE_NAME"
"""
.. envvar:: OTEL_SERVICE_NAME

Service name on every span's resource (standard SDK behaviour).
"""
OTEL_TRACES_EXPORTER: Final = "OTEL_TRACES_EXPORTER"
"""
.. envvar:: OTEL_TRACES_EXPORTER

Set to ``spyglass`` to export through the Spyglass exporter under ``opentelemetry-instrument``.
"""
OTEL_EXPORTER_OTLP_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""
.. envvar:: OTEL_EXPORTER_OTLP_ENDPOINT

Standard OTLP endpoint (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` wins for traces).
"""
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
"""
.. envvar:: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT

Standard OTLP traces endpoint.
"""
OTEL_EXPORTER_OTLP_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_PROTOCOL"
"""
.. envvar:: OTEL_EXPORTER_OTLP_PROTOCOL

``grpc`` | ``http/protobuf`` | ``http/json`` (``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` wins for traces).
"""
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
"""
.. envvar:: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL

Standard OTLP traces protocol.
"""
OTEL_EXPORTER_OTLP_HEADERS: Final = "OTEL_EXPORTER_OTLP_HEADERS"
"""
.. envvar:: OTEL_EXPORTER_OTLP_HEADERS

Standard ``k=v,k2=v2`` headers (``..._TRACES_HEADERS`` wins for traces).
"""
OTEL_EXPORTER_OTLP_TRACES_HEADERS: Final = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
"""
.. envvar:: OTEL_EXPORTER_OTLP_TRACES_HEADERS

Standard OTLP traces headers.
"""
OTEL_EXPORTER_OTLP_COMPRESSION: Final = "OTEL_EXPORTER_OTLP_COMPRESSION"
"""
.. envvar:: OTEL_EXPORTER_OTLP_COMPRESSION

``gzip`` | ``none`` (``..._TRACES_COMPRESSION`` wins for traces).
"""
OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: Final = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"
"""
.. envvar:: OTEL_EXPORTER_OTLP_TRACES_COMPRESSION

Standard OTLP traces compression.
"""
OTEL_EXPORTER_OTLP_TIMEOUT: Final = "OTEL_EXPORTER_OTLP_TIMEOUT"
"""
.. envvar:: OTEL_EXPORTER_OTLP_TIMEOUT

Export timeout in milliseconds (``..._TRACES_TIMEOUT`` wins for traces).
"""
OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: Final = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
"""
.. envvar:: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT

Standard OTLP traces timeout (ms).
"""
OTEL_EXPORTER_OTLP_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_CERTIFICATE"
"""
.. envvar:: OTEL_EXPORTER_OTLP_CERTIFICATE

CA certificate file (``..._TRACES_CERTIFICATE`` wins for traces).
"""
OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"
"""
.. envvar:: OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE

Standard OTLP traces CA certificate.
"""

# --- Spyglass's own, under OTEL_SPYGLASS_ --------------------------------------------------------
OTEL_SPYGLASS_CONTENT_MAX_LENGTH: Final = "OTEL_SPYGLASS_CONTENT_MAX_LENGTH"
"""
.. envvar:: OTEL_SPYGLASS_CONTENT_MAX_LENGTH

Default ``65536`` characters: the size limit for one content attribute when
``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` is unset.
"""
