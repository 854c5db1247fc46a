"""Well-known attribute values, per ``SEMCONV_GENAI_REF``.

These are ``str`` enums so a member can be passed wherever an attribute value is expected.
"""

from __future__ import annotations

import enum


class OperationName(str, enum.Enum):
    """``gen_ai.operation.name``."""

    CHAT = "chat"
    TEXT_COMPLETION = "text_completion"
    GENERATE_CONTENT = "generate_content"
    EMBEDDINGS = "embeddings"
    RETRIEVAL = "retrieval"
    EXECUTE_TOOL = "execute_tool"
    CREATE_AGENT = "create_agent"
    INVOKE_AGENT = "invoke_agent"
    INVOKE_WORKFLOW = "invoke_workflow"
    PLAN = "plan"
    FETCH_RESPONSE = "fetch_response"
    CREATE_MEMORY_STORE = "create_memory_store"
    DELETE_MEMORY_STORE = "delete_memory_store"
    CREATE_MEMORY = "create_memory"
    UPDATE_MEMORY = "update_memory"
    UPSERT_MEMORY = "upsert_memory"
    SEARCH_MEMORY = "search_memory"
    DELETE_MEMORY = "delete_memory"


INFERENCE_OPERATIONS = frozenset(
    {OperationName.CHAT.value, OperationName.TEXT_COMPLETION.value, OperationName.GENERATE_CONTENT.value}
)
"""Operations whose spans are LM calls with messages and usage."""


class ProviderName(str, enum.Enum):
    """``gen_ai.provider.name``. Never the deprecated ``gen_ai.system`` spellings (``xai``, ``gemini``...)."""

    ANTHROPIC = "anthropic"
    AWS_BEDROCK = "aws.bedrock"
    AZURE_AI_INFERENCE = "azure.ai.inference"
    AZURE_AI_OPENAI = "azure.ai.openai"
    COHERE = "cohere"
    DEEPSEEK = "deepseek"
    GCP_GEMINI = "gcp.gemini"
    GCP_GEN_AI = "gcp.gen_ai"
    GCP_VERTEX_AI = "gcp.vertex_ai"
    GROQ = "groq"
    IBM_WATSONX_AI = "ibm.watsonx.ai"
    MISTRAL_AI = "mistral_ai"
    MOONSHOT_AI = "moonshot_ai"
    OPENAI = "openai"
    PERPLEXITY = "perplexity"
    X_AI = "x_ai"
    # Not in the spec's list; used as documented custom values.
    OPENROUTER = "openrouter"
    OLLAMA = "ollama"
    VLLM = "vllm"


class Role(str, enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class FinishReason(str, enum.Enum):
    """Values of the (deprecated) ``finish_reason`` field of output messages."""

    STOP = "stop"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    TOOL_CALL = "tool_call"
    COMPACTION = "compaction"
    ERROR = "error"


class Modality(str, enum.Enum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"


class TokenType(str, enum.Enum):
    INPUT = "input"
    OUTPUT = "output"


class OutputType(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    IMAGE = "image"
    SPEECH = "speech"


class ToolType(str, enum.Enum):
    FUNCTION = "function"
    EXTENSION = "extension"
    DATASTORE = "datastore"


class ContentCapture(str, enum.Enum):
    """Values of ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (official names)."""

    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"
