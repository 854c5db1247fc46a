"""Spyglass instrumentation: auto-instrumentors for LM calls and pipeline steps.

The front door of the package; implementation lives in private modules.
"""

from __future__ import annotations

from spyglass.instrumentation._anthropic import AnthropicInstrumentor
from spyglass.instrumentation._context import (
    ContextAttributesSpanProcessor,
    bind_context,
    install_context_processor,
    using_attributes,
)
from spyglass.instrumentation._dspy import DSPyInstrumentor
from spyglass.instrumentation._hooks import CompletionHook
from spyglass.instrumentation._httpx import HttpxInstrumentor
from spyglass.instrumentation._openai import OpenAIInstrumentor
from spyglass.instrumentation._steps import Step, StepKind, agent, configure_steps, retrieval, task, tool, workflow
from spyglass.instrumentation._upload import UploadCompletionHook

__all__: list[str] = [
    "AnthropicInstrumentor",
    "CompletionHook",
    "ContextAttributesSpanProcessor",
    "DSPyInstrumentor",
    "HttpxInstrumentor",
    "OpenAIInstrumentor",
    "Step",
    "StepKind",
    "UploadCompletionHook",
    "agent",
    "bind_context",
    "configure_steps",
    "install_context_processor",
    "retrieval",
    "task",
    "tool",
    "using_attributes",
    "workflow",
]
