"""``gen_ai.*`` attribute names (and the few general names GenAI spans carry), per ``SEMCONV_GENAI_REF``.

Types and requirement levels follow ``client-inference.md``; each constant's docstring gives the type.
Deprecated names (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``, ``gen_ai.usage.cache_creation.input_tokens``,
``gen_ai.prompt``/``gen_ai.completion``) are listed at the bottom only so readers of other senders' spans
(the store) can recognise them; Spyglass never emits them.
"""

from __future__ import annotations

from typing import Final

# --- operation and provider -------------------------------------------------------------------
OPERATION_NAME: Final = "gen_ai.operation.name"
"""str, required. See :class:`spyglass.semconv.values.OperationName`."""
PROVIDER_NAME: Final = "gen_ai.provider.name"
"""str, required. See :class:`spyglass.semconv.values.ProviderName`."""
CONVERSATION_ID: Final = "gen_ai.conversation.id"
"""str. Only when really known (from the library or the app); never synthesised."""
CONVERSATION_COMPACTED: Final = "gen_ai.conversation.compacted"
"""bool. Set only to ``true``."""
OUTPUT_TYPE: Final = "gen_ai.output.type"
"""str: ``text`` | ``json`` | ``image`` | ``speech``."""
PROMPT_NAME: Final = "gen_ai.prompt.name"
"""str. Named prompt template."""
PROMPT_VERSION: Final = "gen_ai.prompt.version"
"""str."""
PROMPT_VARIABLE_PREFIX: Final = "gen_ai.prompt.variable."
"""Prefix; ``gen_ai.prompt.variable.<key>`` = str (opt-in content)."""
DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
"""str. Retrieval / agent data source."""

# --- request -------------------------------------------------------------------------------------
REQUEST_MODEL: Final = "gen_ai.request.model"
"""str."""
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
"""int."""
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
"""double."""
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
"""double."""
REQUEST_TOP_K: Final = "gen_ai.request.top_k"
"""int (the newest table says int)."""
REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
"""double."""
REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
"""double."""
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
"""str[] (a single string becomes a one-element list)."""
REQUEST_SEED: Final = "gen_ai.request.seed"
"""int."""
REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
"""int, only when != 1."""
REQUEST_STREAM: Final = "gen_ai.request.stream"
"""bool, set (to true) only for streaming requests."""
REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
"""str[] (embeddings)."""
REQUEST_REASONING_LEVEL: Final = "gen_ai.request.reasoning.level"
"""str, exact value sent to the provider (``low``/``medium``/``high``...)."""
REQUEST_PREVIOUS_RESPONSE_ID: Final = "gen_ai.request.previous_response.id"
"""str (OpenAI Responses ``previous_response_id``)."""

# --- response ------------------------------------------------------------------------------------
RESPONSE_ID: Final = "gen_ai.response.id"
"""str."""
RESPONSE_MODEL: Final = "gen_ai.response.model"
"""str."""
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
"""str[], one per choice in order; ``error`` for one that never arrived."""
RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
"""double, seconds (streaming only)."""

# --- usage ---------------------------------------------------------------------------------------
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
"""int. Includes cache reads and cache writes (Anthropic's count is normalised to this)."""
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
"""int. Includes reasoning tokens."""
USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
"""int, subset of input tokens."""
USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
"""int, subset of input tokens (2026 rename of ``cache_creation``)."""
USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
"""int, subset of output tokens."""
USAGE_TEXT_INPUT_TOKENS: Final = "gen_ai.usage.text.input_tokens"
USAGE_IMAGE_INPUT_TOKENS: Final = "gen_ai.usage.image.input_tokens"
USAGE_AUDIO_INPUT_TOKENS: Final = "gen_ai.usage.audio.input_tokens"
USAGE_TEXT_OUTPUT_TOKENS: Final = "gen_ai.usage.text.output_tokens"
USAGE_IMAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.image.output_tokens"
USAGE_AUDIO_OUTPUT_TOKENS: Final = "gen_ai.usage.audio.output_tokens"

# --- content (opt-in in the spec; on by default in Spyglass) ------------------------------------
INPUT_MESSAGES: Final = "gen_ai.input.messages"
"""JSON string on spans (list of :class:`~spyglass.semconv.messages.InputMessage`)."""
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
"""JSON string on spans (list of :class:`~spyglass.semconv.messages.OutputMessage`)."""
SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
"""JSON string on spans (list of parts). Only for APIs that take instructions separately."""
TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
"""JSON string on spans (list of :class:`~spyglass.semconv.messages.ToolDefinition`)."""

CONTENT_ATTRIBUTES: Final = (INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS, TOOL_DEFINITIONS)
"""The message-content attributes of inference spans."""

# References to content stored elsewhere by a completion hook. The conventions define no name yet ("TODO:
# document a common approach"); these are util-genai's upload hook's names, so both hooks read the same.
INPUT_MESSAGES_REF: Final = "gen_ai.input.messages_ref"
"""str: URL of the uploaded ``gen_ai.input.messages`` (util-genai spelling, underscore before ``ref``)."""
OUTPUT_MESSAGES_REF: Final = "gen_ai.output.messages_ref"
"""str: URL of the uploaded ``gen_ai.output.messages``."""
SYSTEM_INSTRUCTIONS_REF: Final = "gen_ai.system_instructions_ref"
"""str: URL of the uploaded ``gen_ai.system_instructions``."""
TOOL_DEFINITIONS_REF: Final = "gen_ai.tool.definitions_ref"
"""str: URL of the uploaded ``gen_ai.tool.definitions``."""

CONTENT_REF_ATTRIBUTES: Final = (INPUT_MESSAGES_REF, OUTPUT_MESSAGES_REF, SYSTEM_INSTRUCTIONS_REF, TOOL_DEFINITIONS_REF)

# --- embeddings ----------------------------------------------------------------------------------
EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
"""int."""

# --- tools ---------------------------------------------------------------------------------------
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
TOOL_TYPE: Final = "gen_ai.tool.type"
"""str: ``function`` | ``extension`` | ``datastore``."""
TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
"""JSON (opt-in content)."""
TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
"""JSON (opt-in content)."""

TOOL_CONTENT_ATTRIBUTES: Final = (TOOL_CALL_ARGUMENTS, TOOL_CALL_RESULT)

# --- agents and workflows ------------------------------------------------------------------------
AGENT_ID: Final = "gen_ai.agent.id"
AGENT_NAME: Final = "gen_ai.agent.name"
AGENT_DESCRIPTION: Final = "gen_ai.agent.description"
AGENT_VERSION: Final = "gen_ai.agent.version"
WORKFLOW_NAME: Final = "gen_ai.workflow.name"

# --- retrieval -----------------------------------------------------------------------------------
RETRIEVAL_QUERY_TEXT: Final = "gen_ai.retrieval.query.text"
"""str (opt-in content)."""
RETRIEVAL_DOCUMENTS: Final = "gen_ai.retrieval.documents"
"""JSON list of ``{"id", "score", "content"?}`` (opt-in content)."""

# --- metrics-only attribute ----------------------------------------------------------------------
TOKEN_TYPE: Final = "gen_ai.token.type"
"""str: ``input`` | ``output`` (on ``gen_ai.client.token.usage``)."""

# --- general names used on GenAI spans -----------------------------------------------------------
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
ERROR_TYPE_OTHER: Final = "_OTHER"
"""Fallback ``error.type`` value."""
EXCEPTION_TYPE: Final = "exception.type"
"""str: fully-qualified exception class (on the ``gen_ai.client.operation.exception`` event)."""
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"

# --- OpenAI refinements ------------------------------------------------------------------------
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
"""str, only when sent and != ``auto``."""
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"
OPENAI_API_TYPE: Final = "openai.api.type"
"""str: ``chat_completions`` | ``responses``."""

# --- deprecated: recognised when reading other senders' spans, never emitted -------------------
DEPRECATED_SYSTEM: Final = "gen_ai.system"
DEPRECATED_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
DEPRECATED_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
DEPRECATED_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
DEPRECATED_PROMPT_PREFIX: Final = "gen_ai.prompt."
"""OpenLLMetry's indexed ``gen_ai.prompt.N.role``/``.content``."""
DEPRECATED_COMPLETION_PREFIX: Final = "gen_ai.completion."
"""OpenLLMetry's indexed ``gen_ai.completion.N.role``/``.content``."""
