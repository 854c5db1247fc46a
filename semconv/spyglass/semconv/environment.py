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
OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK: Final = "OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK"
"""
.. envvar:: OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK

Unset by default. Name of an entry point in the group ``opentelemetry_genai_completion_hook``, called once
per LM call with its messages, span and event record (``spyglass_upload``: Spyglass's upload hook;
``upload``: util-genai's). A ``completion_hook=`` argument to ``instrument()`` wins.
"""
OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH: Final = "OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH"
"""
.. envvar:: OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH

Required by the upload hooks: a local directory (``/var/spool/llm``, ``file:///...``) or, with ``fsspec``
installed (``spyglass[upload]``), any fsspec URL (``s3://bucket/prefix``, ``gs://...``).
"""
OTEL_INSTRUMENTATION_GENAI_UPLOAD_FORMAT: Final = "OTEL_INSTRUMENTATION_GENAI_UPLOAD_FORMAT"
"""
.. envvar:: OTEL_INSTRUMENTATION_GENAI_UPLOAD_FORMAT

Default ``json`` (one JSON array per file); ``jsonl`` writes one message per line with an ``index``.
"""
OTEL_INSTRUMENTATION_GENAI_UPLOAD_MAX_QUEUE_SIZE: Final = "OTEL_INSTRUMENTATION_GENAI_UPLOAD_MAX_QUEUE_SIZE"
"""
.. envvar:: OTEL_INSTRUMENTATION_GENAI_UPLOAD_MAX_QUEUE_SIZE

Default ``20``: uploads waiting or running in the background pool; files beyond it are dropped and counted.
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

# --- exporter (spyglass.exporter) ------------------------------------------------------------------
OTEL_SPYGLASS_CONTENT_MODE: Final = "OTEL_SPYGLASS_CONTENT_MODE"
"""
.. envvar:: OTEL_SPYGLASS_CONTENT_MODE

Default ``redacted``: what the exporter keeps of prompts, responses and tool content when no capture-policy
rule applies. ``full`` | ``redacted`` (detectors applied) | ``metadata_only`` (content dropped; tokens, cost
and timings kept).
"""
OTEL_SPYGLASS_REDACTION_MODE: Final = "OTEL_SPYGLASS_REDACTION_MODE"
"""
.. envvar:: OTEL_SPYGLASS_REDACTION_MODE

Default ``mask``: ``mask`` (``[REDACTED:EMAIL]``), ``hash`` (``[EMAIL:<HMAC prefix>]``, equal values stay
joinable) or ``drop`` (the string holding the value is removed).
"""
OTEL_SPYGLASS_REDACTION_DETECTORS: Final = "OTEL_SPYGLASS_REDACTION_DETECTORS"
"""
.. envvar:: OTEL_SPYGLASS_REDACTION_DETECTORS

Default: all. Comma-separated detector names to enable (``EMAIL,PHONE,CARD,SSN,IBAN,IP_ADDRESS,API_KEY,
AWS_KEY,GITHUB_TOKEN,JWT,PRIVATE_KEY``); ``none`` turns the built-ins off (unset or empty: all).
"""
OTEL_SPYGLASS_REDACTION_PATTERNS: Final = "OTEL_SPYGLASS_REDACTION_PATTERNS"
"""
.. envvar:: OTEL_SPYGLASS_REDACTION_PATTERNS

Default none. Custom detectors as a JSON object ``{"NAME": "regex", ...}``; a match is replaced like a
built-in one (``[REDACTED:NAME]``).
"""
OTEL_SPYGLASS_REDACTION_KEYS: Final = "OTEL_SPYGLASS_REDACTION_KEYS"
"""
.. envvar:: OTEL_SPYGLASS_REDACTION_KEYS

Default none. Comma-separated extra span/event attribute keys whose string values are redacted (and
dropped in metadata-only mode), beyond the GenAI content attributes.
"""
OTEL_SPYGLASS_REDACTION_HMAC_KEY: Final = "OTEL_SPYGLASS_REDACTION_HMAC_KEY"
"""
.. envvar:: OTEL_SPYGLASS_REDACTION_HMAC_KEY

Key for ``hash`` mode. Unset: a random per-process key (hashes then join only within one process).
"""
OTEL_SPYGLASS_POLICY_FILE: Final = "OTEL_SPYGLASS_POLICY_FILE"
"""
.. envvar:: OTEL_SPYGLASS_POLICY_FILE

Default none. YAML or JSON capture-policy file (rules by service, tenant, user, session or any attribute,
each with an optional expiry); reloaded when it changes, the last good policy kept on a bad file.
"""
OTEL_SPYGLASS_PRICES_FILE: Final = "OTEL_SPYGLASS_PRICES_FILE"
"""
.. envvar:: OTEL_SPYGLASS_PRICES_FILE

Default none. JSON or YAML price overrides (USD per million tokens) that win over the bundled
``genai-prices`` database.
"""
OTEL_SPYGLASS_PRICES_UPDATE: Final = "OTEL_SPYGLASS_PRICES_UPDATE"
"""
.. envvar:: OTEL_SPYGLASS_PRICES_UPDATE

Default ``false``: prices come from the database bundled with ``genai-prices`` and nothing is fetched. ``true``
fetches the latest ``genai-prices`` data in the background (hourly, never blocking start-up or export); an
``http(s)://`` URL fetches from there instead (a mirror).
"""
OTEL_SPYGLASS_EXPORT_FILE: Final = "OTEL_SPYGLASS_EXPORT_FILE"
"""
.. envvar:: OTEL_SPYGLASS_EXPORT_FILE

Default none. When set, the exporter appends OTLP-JSON lines (one ``ExportTraceServiceRequest`` per line)
to this file instead of sending to a network endpoint.
"""
OTEL_SPYGLASS_SPOOL_DIR: Final = "OTEL_SPYGLASS_SPOOL_DIR"
"""
.. envvar:: OTEL_SPYGLASS_SPOOL_DIR

Default none (spans wait in a bounded memory queue only). Directory where batches spill when the backend
stays down; re-sent in order when it is back.
"""
OTEL_SPYGLASS_SPOOL_MAX_BYTES: Final = "OTEL_SPYGLASS_SPOOL_MAX_BYTES"
"""
.. envvar:: OTEL_SPYGLASS_SPOOL_MAX_BYTES

Default ``268435456`` (256 MiB): size cap of the spool; the oldest batches are dropped (and counted) first.
"""
OTEL_SPYGLASS_OPENAI_STREAM_INCLUDE_USAGE: Final = "OTEL_SPYGLASS_OPENAI_STREAM_INCLUDE_USAGE"
"""
.. envvar:: OTEL_SPYGLASS_OPENAI_STREAM_INCLUDE_USAGE

Default ``false``. When true, OpenAI streams that did not ask for usage get
``stream_options.include_usage`` added, so token counts arrive; the extra usage-only chunk is hidden from
the caller.
"""
OTEL_SPYGLASS_CONTEXT_BAGGAGE: Final = "OTEL_SPYGLASS_CONTEXT_BAGGAGE"
"""
.. envvar:: OTEL_SPYGLASS_CONTEXT_BAGGAGE

Default ``false``. When true, ``using_attributes`` also puts ``user.id``, ``session.id`` and
``spyglass.tenant.id`` in W3C baggage (sent downstream by the propagator), and the context-attributes span
processor stamps spans with those three keys from incoming baggage.
"""

# --- the trace store (`spyglass serve` and the CLI) ----------------------------------------------
OTEL_SPYGLASS_STORE_DB: Final = "OTEL_SPYGLASS_STORE_DB"
"""
.. envvar:: OTEL_SPYGLASS_STORE_DB

Default ``spyglass/spyglass.db`` under the user's data directory (``$XDG_DATA_HOME`` or ``~/.local/share``;
Application Support on macOS; ``%LOCALAPPDATA%`` on Windows): the store's SQLite database (``--db``).
"""
OTEL_SPYGLASS_STORE_HOST: Final = "OTEL_SPYGLASS_STORE_HOST"
"""
.. envvar:: OTEL_SPYGLASS_STORE_HOST

Default ``127.0.0.1``: the address ``spyglass serve`` listens on (``--host``). A non-loopback address needs
a token or ``--insecure``.
"""
OTEL_SPYGLASS_STORE_PORT: Final = "OTEL_SPYGLASS_STORE_PORT"
"""
.. envvar:: OTEL_SPYGLASS_STORE_PORT

Default ``4319``: the API and web UI port (``--port``).
"""
OTEL_SPYGLASS_STORE_OTLP_GRPC_PORT: Final = "OTEL_SPYGLASS_STORE_OTLP_GRPC_PORT"
"""
.. envvar:: OTEL_SPYGLASS_STORE_OTLP_GRPC_PORT

Default ``4317``: the OTLP/gRPC port (``--otlp-grpc-port``; ``-1`` turns it off).
"""
OTEL_SPYGLASS_STORE_OTLP_HTTP_PORT: Final = "OTEL_SPYGLASS_STORE_OTLP_HTTP_PORT"
"""
.. envvar:: OTEL_SPYGLASS_STORE_OTLP_HTTP_PORT

Default ``4318``: the OTLP/HTTP port (``--otlp-http-port``; ``-1`` serves ``/v1/traces`` on the API port only).
"""
OTEL_SPYGLASS_STORE_AUTH_TOKEN: Final = "OTEL_SPYGLASS_STORE_AUTH_TOKEN"
"""
.. envvar:: OTEL_SPYGLASS_STORE_AUTH_TOKEN

Default none: when set, the API, UI and OTLP endpoints require ``Authorization: Bearer <token>``
(``--auth-token``); the CLI sends it to ``--url``.
"""
OTEL_SPYGLASS_STORE_TENANT_TOKENS: Final = "OTEL_SPYGLASS_STORE_TENANT_TOKENS"
"""
.. envvar:: OTEL_SPYGLASS_STORE_TENANT_TOKENS

Default none: ``tenant=token,...``; each token reads and writes its own tenant only (``--tenant-tokens``).
"""
OTEL_SPYGLASS_STORE_INSECURE: Final = "OTEL_SPYGLASS_STORE_INSECURE"
"""
.. envvar:: OTEL_SPYGLASS_STORE_INSECURE

Default ``false``: allow a non-loopback ``--host`` without a token (``--insecure``).
"""
OTEL_SPYGLASS_STORE_MAX_REQUEST_SIZE: Final = "OTEL_SPYGLASS_STORE_MAX_REQUEST_SIZE"
"""
.. envvar:: OTEL_SPYGLASS_STORE_MAX_REQUEST_SIZE

Default ``32MiB``: the largest OTLP request, compressed or not (413 / ``RESOURCE_EXHAUSTED`` above it).
"""
OTEL_SPYGLASS_STORE_MAX_PENDING_SPANS: Final = "OTEL_SPYGLASS_STORE_MAX_PENDING_SPANS"
"""
.. envvar:: OTEL_SPYGLASS_STORE_MAX_PENDING_SPANS

Default ``200000``: spans waiting for the writer before senders get 503 + ``Retry-After`` /
``RESOURCE_EXHAUSTED``.
"""
OTEL_SPYGLASS_STORE_RETENTION_AGE: Final = "OTEL_SPYGLASS_STORE_RETENTION_AGE"
"""
.. envvar:: OTEL_SPYGLASS_STORE_RETENTION_AGE

Default none (keep everything): delete spans older than this age (``30d``, ``12h``); dataset spans are kept.
"""
OTEL_SPYGLASS_STORE_RETENTION_SIZE: Final = "OTEL_SPYGLASS_STORE_RETENTION_SIZE"
"""
.. envvar:: OTEL_SPYGLASS_STORE_RETENTION_SIZE

Default none: above this database size (``10GB``) the oldest spans are deleted; dataset spans are kept.
"""
OTEL_SPYGLASS_STORE_URL: Final = "OTEL_SPYGLASS_STORE_URL"
"""
.. envvar:: OTEL_SPYGLASS_STORE_URL

Default none: the CLI (``tail``, ``search``, ``stats``, ``export``) asks this running server instead of
reading the database file (``--url``).
"""
OTEL_SPYGLASS_HTTPX_PROVIDERS: Final = "OTEL_SPYGLASS_HTTPX_PROVIDERS"
"""
.. envvar:: OTEL_SPYGLASS_HTTPX_PROVIDERS

Default none. ``host[:port]=provider`` pairs, comma-separated (``gpu-box:8000=vllm,llm.internal=ollama``): the
``gen_ai.provider.name`` the HTTP-level instrumentor gives calls to hosts it cannot recognise. The
``providers=`` argument of ``HttpxInstrumentor().instrument()`` wins per host.
"""
