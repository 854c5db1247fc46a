"""Provider and server identification from a URL or host: shared by the SDK and HTTP-level instrumentors.

Contract
--------
- :func:`provider_for_host` maps a host name to a ``gen_ai.provider.name`` value. Hosts of OpenAI-compatible
  services map to their provider (``groq``, ``deepseek``, ``mistral_ai``, ``x_ai``, ``openrouter``,
  ``azure.ai.openai``...); an unknown host gets ``default`` (``openai`` for the OpenAI SDK).
- :func:`server_of` gives ``(server.address, server.port)`` for a URL string or any object with
  ``host``/``port``/``scheme`` (httpx, httpx2 URLs); the port is the explicit one, else the scheme default.
- Both are cached: a client calls them with the same base URL on every request.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

from spyglass.semconv.values import ProviderName

# Suffix match on the host; first match wins (longest, most specific first).
_HOST_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".openai.azure.com", ProviderName.AZURE_AI_OPENAI.value),
    (".cognitiveservices.azure.com", ProviderName.AZURE_AI_OPENAI.value),
    (".services.ai.azure.com", ProviderName.AZURE_AI_INFERENCE.value),
    (".models.ai.azure.com", ProviderName.AZURE_AI_INFERENCE.value),
    ("models.inference.ai.azure.com", ProviderName.AZURE_AI_INFERENCE.value),
    ("api.openai.com", ProviderName.OPENAI.value),
    ("api.anthropic.com", ProviderName.ANTHROPIC.value),
    ("api.groq.com", ProviderName.GROQ.value),
    ("api.deepseek.com", ProviderName.DEEPSEEK.value),
    ("api.mistral.ai", ProviderName.MISTRAL_AI.value),
    ("api.x.ai", ProviderName.X_AI.value),
    ("openrouter.ai", ProviderName.OPENROUTER.value),
    ("api.perplexity.ai", ProviderName.PERPLEXITY.value),
    ("api.moonshot.ai", ProviderName.MOONSHOT_AI.value),
    ("api.moonshot.cn", ProviderName.MOONSHOT_AI.value),
    ("api.cohere.com", ProviderName.COHERE.value),
    ("api.cohere.ai", ProviderName.COHERE.value),
    ("generativelanguage.googleapis.com", ProviderName.GCP_GEMINI.value),
    ("aiplatform.googleapis.com", ProviderName.GCP_VERTEX_AI.value),
    (".amazonaws.com", ProviderName.AWS_BEDROCK.value),
    ("ml.cloud.ibm.com", ProviderName.IBM_WATSONX_AI.value),
)

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

OLLAMA_PORT = 11434


@functools.lru_cache(maxsize=256)
def provider_for_host(host: str | None, default: str = ProviderName.OPENAI.value, port: int | None = None) -> str:
    """``gen_ai.provider.name`` for ``host`` (case-insensitive); ``default`` when the host is not known."""
    if not host:
        return default
    h = host.lower().rstrip(".")
    for suffix, provider in _HOST_SUFFIXES:
        if h == suffix.lstrip(".") or h.endswith(suffix):
            return provider
    if port == OLLAMA_PORT:
        return ProviderName.OLLAMA.value
    return default


@functools.lru_cache(maxsize=256)
def _server_of_str(url: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None, None
    return host, port


def server_of(url: Any) -> tuple[str | None, int | None]:
    """``(server.address, server.port)`` of a URL string or URL object; ``(None, None)`` when unknown."""
    if url is None:
        return None, None
    if isinstance(url, str):
        return _server_of_str(url)
    host = getattr(url, "host", None)
    if host is None:
        return _server_of_str(str(url))
    port = getattr(url, "port", None) or _DEFAULT_PORTS.get(getattr(url, "scheme", "") or "")
    return (str(host) or None), port


def provider_for_url(url: Any, default: str = ProviderName.OPENAI.value) -> str:
    host, port = server_of(url)
    return provider_for_host(host, default, port)
