"""Applying and removing the SDK patches (the ``request`` seam of :mod:`._sdk`), idempotently.

``SDKPatch(sdk, adapter, raw_types).apply()`` wraps ``<sdk>._base_client.SyncAPIClient.request`` and
``AsyncAPIClient.request`` with wrapt (on the base classes only, so a subclassed client is never wrapped
twice) and, for ``anthropic``, makes the SDK's own call span (``anthropic._tracing``) stand down while a
Spyglass LLM span covers the call: exactly one LLM span per call. ``remove()`` unwraps everything and turns
any wrapper still referenced somewhere into a pass-through.
"""

from __future__ import annotations

import importlib
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import unwrap

from ._sdk import SDKAdapter, make_async_wrapper, make_state, make_sync_wrapper
from ._telemetry import llm_span_active, log_once


def _quiet_sdk_span(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # anthropic's own call span: none while ours is active (the SDK then runs its untraced path).
    if llm_span_active():
        return None
    return wrapped(*args, **kwargs)


class SDKPatch:
    def __init__(self, sdk: str, adapter: SDKAdapter, raw_types: tuple[type, ...]) -> None:
        self.sdk = sdk
        self.state = make_state(adapter, raw_types)
        self._applied: list[tuple[Any, str]] = []

    def apply(self, tracer_provider: Any = None) -> None:
        base = importlib.import_module(f"{self.sdk}._base_client")
        for cls_name, factory in (("SyncAPIClient", make_sync_wrapper), ("AsyncAPIClient", make_async_wrapper)):
            cls = getattr(base, cls_name, None)
            if cls is None or isinstance(cls.__dict__.get("request"), wrapt.FunctionWrapper):
                continue
            wrapt.wrap_function_wrapper(cls, "request", factory(self.state))
            self._applied.append((cls, "request"))
        if hasattr(base, "start_api_call_span") and not isinstance(base.start_api_call_span, wrapt.FunctionWrapper):
            wrapt.wrap_function_wrapper(base, "start_api_call_span", _quiet_sdk_span)
            self._applied.append((base, "start_api_call_span"))
        try:
            from opentelemetry import trace

            from ._context import install_context_processor

            install_context_processor(tracer_provider or trace.get_tracer_provider())
        except Exception as exc:  # the context-attributes processor is an extra, never a reason to fail
            log_once("installing the context-attributes processor", exc)

    def remove(self) -> None:
        self.state.adapter = None
        for owner, name in self._applied:
            unwrap(owner, name)
        self._applied.clear()
