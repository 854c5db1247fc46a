"""Export formats: CSV (safe against formula injection), JSONL, and OpenAI chat fine-tuning JSONL.

Each writer turns an iterable of items (see :mod:`spyglass.store._queries`) into an iterable of text
chunks, so the API streams them and the CLI writes them to a file with a progress bar.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

FORMATS: Final = ("csv", "jsonl", "finetune")
MEDIA_TYPES: Final = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "finetune": "application/x-ndjson",
}
NEEDS_DETAILS: Final = {"csv": False, "jsonl": True, "finetune": True}
"""Whether a format needs the span's attributes and messages (slower to read)."""

CSV_COLUMNS: Final = [
    "timestamp",
    "trace_id",
    "span_id",
    "parent_span_id",
    "tenant",
    "service",
    "name",
    "operation",
    "provider",
    "model",
    "request_model",
    "alias",
    "status",
    "status_message",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "user_id",
    "session_id",
    "input_text",
    "output_text",
    "tool_args",
    "metadata",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: Any) -> Any:
    """A value safe to open in a spreadsheet: text starting like a formula gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(items: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        writer.writerow([csv_cell(item.get(c)) for c in CSV_COLUMNS])
        if buf.tell() > 64_000:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def to_jsonl(items: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    for item in items:
        yield json.dumps(item, ensure_ascii=False, default=str) + "\n"


def _text(parts: Iterable[Mapping[str, Any]]) -> str:
    return "".join(str(p.get("content", "")) for p in parts if p.get("type") == "text")


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def chat_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Semconv messages as OpenAI chat messages (text, tool calls and tool results)."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        parts = [p for p in msg.get("parts") or [] if isinstance(p, Mapping)]
        role = str(msg.get("role") or "user")
        responses = [p for p in parts if p.get("type") == "tool_call_response"]
        if responses:
            for p in responses:
                resp = p.get("response")
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": p.get("id") or "",
                        "content": resp if isinstance(resp, str) else json.dumps(resp, ensure_ascii=False),
                    }
                )
            continue
        chat: dict[str, Any] = {"role": role, "content": _text(parts)}
        calls = [p for p in parts if p.get("type") == "tool_call"]
        if calls:
            chat["tool_calls"] = [
                {
                    "id": p.get("id") or f"call_{i}",
                    "type": "function",
                    "function": {"name": p.get("name", ""), "arguments": _arguments(p.get("arguments") or {})},
                }
                for i, p in enumerate(calls)
            ]
        out.append(chat)
    return out


def finetune_example(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """One OpenAI chat fine-tuning line, or ``None`` for spans that are not successful LM calls with output."""
    if not item.get("is_llm") or item.get("status") != "success":
        return None
    inputs = chat_messages(item.get("input_messages") or [])
    outputs = chat_messages(item.get("output_messages") or [])
    outputs = [m for m in outputs if m["role"] == "assistant"][:1]  # the first choice
    if not inputs or not outputs:
        return None
    return {"messages": inputs + outputs}


def to_finetune(items: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    for item in items:
        example = finetune_example(item)
        if example is not None:
            yield json.dumps(example, ensure_ascii=False) + "\n"


WRITERS: Final = {"csv": to_csv, "jsonl": to_jsonl, "finetune": to_finetune}
