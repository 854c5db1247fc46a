"""A lean OTLP encoder: ``ExportTraceServiceRequest`` protobuf bytes written directly, plus OTLP/JSON.

The stock encoder builds a protobuf object per attribute and then serializes the tree; writing the wire
format straight into byte strings does the same job in a fraction of the time (see ``benchmarks/exporter.py``)
and a test checks the bytes decode to the same message the stock encoder produces. Resource and scope
encodings are cached, since every span of a process shares them.

OTLP/JSON (for ``http/json`` and the file target) is derived from the protobuf bytes with
``google.protobuf.json_format`` and the spec's fix-ups: trace and span ids as hex, not base64.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["encode_request", "to_otlp_json"]

_pack_fixed64 = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack
_pack_fixed32 = struct.Struct("<I").pack

_VARINT_CACHE = [bytes([i]) for i in range(128)]


def _varint(n: int) -> bytes:
    if n < 128:
        return _VARINT_CACHE[n] if n >= 0 else _varint(n + (1 << 64))
    if n < 16384:  # lengths of most strings and messages: no loop
        return ((n & 0x7F) | 0x80 | (n >> 7) << 8).to_bytes(2, "little")
    if n < 2097152:
        return ((n & 0x7F) | 0x80 | ((n >> 7) & 0x7F | 0x80) << 8 | (n >> 14) << 16).to_bytes(3, "little")
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag + _varint(len(payload)) + payload


_KEY_CACHE: dict[str, bytes] = {}


def _key_bytes(key: str) -> bytes:
    """``KeyValue.key`` (field 1), cached: attribute keys repeat on every span."""
    cached = _KEY_CACHE.get(key)
    if cached is None:
        cached = _ld(b"\x0a", key.encode("utf-8"))
        if len(_KEY_CACHE) < 4096:
            _KEY_CACHE[key] = cached
    return cached


def _any_value(value: Any) -> bytes:
    t = type(value)  # the exact types first: attribute values are almost always these
    if t is str:
        return _ld(b"\x0a", value.encode("utf-8", "surrogatepass"))
    if t is int:
        return b"\x18" + _varint(value)
    if t is float:
        return b"\x21" + _pack_double(value)
    if t is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if t is tuple or t is list:
        return _ld(b"\x2a", b"".join(_ld(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, str):
        return _ld(b"\x0a", value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _pack_double(value)
    if isinstance(value, bytes):
        return _ld(b"\x3a", value)
    if isinstance(value, Sequence):
        return _ld(b"\x2a", b"".join(_ld(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _ld(b"\x32", b"".join(_ld(b"\x0a", _kv(k, v)) for k, v in value.items()))
    if value is None:
        return b""
    return _ld(b"\x0a", str(value).encode("utf-8", "surrogatepass"))


def _kv(key: str, value: Any) -> bytes:
    return _key_bytes(key) + _ld(b"\x12", _any_value(value))


def _field(tag: bytes, key: str, value: Any) -> bytes:
    kv = _key_bytes(key) + _ld(b"\x12", _any_value(value))
    return tag + _varint(len(kv)) + kv


_KV_CACHE: dict[tuple[bytes, str, type, Any], bytes] = {}
_KV_CACHE_MAX = 8192
_SMALL = 128
# Keys whose values rarely repeat (response ids, costs): after this many cached values a key stops being
# cached, so it neither pays for the look-up nor pushes the repeating values (model, provider...) out.
_KEY_VALUES_MAX = 256
_KEY_VALUES: dict[str, int] = {}
_UNCACHED_KEYS: set[str] = set()


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None, out: list[bytes]) -> None:
    """Append repeated ``KeyValue`` fields to ``out``. Small values that repeat across spans (model, provider,
    operation, token counts...) have their whole encoded field cached. A long string (a message document)
    goes in as a small header and its own UTF-8 bytes, copied once more only by the request's final join."""
    if not attributes:
        return
    cache = _KV_CACHE
    uncached = _UNCACHED_KEYS
    append = out.append
    for k, v in attributes.items():
        t = type(v)
        if t is str and len(v) > _SMALL:
            payload = v.encode("utf-8", "surrogatepass")
            key = _key_bytes(k)
            value_head = b"\x0a" + _varint(len(payload))
            any_len = len(value_head) + len(payload)
            kv_head = key + b"\x12" + _varint(any_len)
            append(tag + _varint(len(kv_head) + any_len) + kv_head + value_head)
            append(payload)
            continue
        if k in uncached or t is list or (t is tuple and len(v) > 4):
            append(_field(tag, k, v))
            continue
        ck = (tag, k, t, v)
        hit = cache.get(ck)
        if hit is None:
            hit = _field(tag, k, v)
            seen = _KEY_VALUES.get(k, 0) + 1
            if seen > _KEY_VALUES_MAX:
                if len(uncached) >= _KV_CACHE_MAX:
                    uncached.clear()
                uncached.add(k)
            else:
                _KEY_VALUES[k] = seen
                if len(cache) >= _KV_CACHE_MAX:
                    cache.clear()
                    _KEY_VALUES.clear()
                cache[ck] = hit
        append(hit)


def _joined_attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    out: list[bytes] = []
    _attributes(tag, attributes, out)
    return b"".join(out)


def _flags(parent: Any) -> bytes:
    # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, plus IS_REMOTE for a remote parent (as the stock encoder).
    return b"\x85\x01" + _pack_fixed32(0x300 if parent is not None and parent.is_remote else 0x100)


_STATUS_EMPTY = b"\x7a\x00"
_FLAGS_LOCAL = _flags(None)


def _span(enriched: Any) -> list[bytes]:
    """The ``Span`` message's fields as a list of byte strings (joined once, with the whole request)."""
    span = enriched.span
    ctx = span.get_span_context()
    parent = span.parent
    parts = [b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big") + b"\x12\x08" + ctx.span_id.to_bytes(8, "big")]
    append = parts.append
    if ctx.trace_state:
        append(_ld(b"\x1a", ",".join(f"{k}={v}" for k, v in ctx.trace_state.items()).encode()))
    if parent is not None:
        append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    append(
        _ld(b"\x2a", span.name.encode("utf-8", "surrogatepass"))
        + b"\x30"
        + _VARINT_CACHE[span.kind.value + 1]
        + b"\x39"
        + _pack_fixed64(span.start_time or 0)
        + b"\x41"
        + _pack_fixed64(span.end_time or 0)
    )
    _attributes(b"\x4a", enriched.attributes, parts)
    if span.dropped_attributes:
        append(b"\x50" + _varint(span.dropped_attributes))
    for ev in enriched.events:
        body = b"\x09" + _pack_fixed64(ev.timestamp) + _ld(b"\x12", ev.name.encode("utf-8", "surrogatepass"))
        body += _joined_attributes(b"\x1a", ev.attributes)
        if ev.dropped_attributes:
            body += b"\x20" + _varint(ev.dropped_attributes)
        append(_ld(b"\x5a", body))
    if span.dropped_events:
        append(b"\x60" + _varint(span.dropped_events))
    for link in span.links:
        lctx = link.context
        body = b"\x0a\x10" + lctx.trace_id.to_bytes(16, "big") + b"\x12\x08" + lctx.span_id.to_bytes(8, "big")
        body += _joined_attributes(b"\x22", link.attributes)
        if link.dropped_attributes:
            body += b"\x28" + _varint(link.dropped_attributes)
        body += b"\x35" + _pack_fixed32(0x300 if lctx.is_remote else 0x100)
        append(_ld(b"\x6a", body))
    if span.dropped_links:
        append(b"\x70" + _varint(span.dropped_links))
    status = span.status
    code = status.status_code.value if status is not None else 0
    message = enriched.status_message
    if code or message:
        body = (_ld(b"\x12", message.encode("utf-8", "surrogatepass")) if message else b"") + (
            b"\x18" + _varint(code) if code else b""
        )
        append(_ld(b"\x7a", body))
    else:
        append(_STATUS_EMPTY)
    append(_FLAGS_LOCAL if parent is None else _flags(parent))
    return parts


_RESOURCE_CACHE: dict[int, tuple[Any, bytes]] = {}
_SCOPE_CACHE: dict[int, tuple[Any, bytes]] = {}


def _resource(resource: Any) -> bytes:
    hit = _RESOURCE_CACHE.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit[1]
    encoded = _ld(b"\x0a", _joined_attributes(b"\x0a", resource.attributes))
    if len(_RESOURCE_CACHE) > 256:
        _RESOURCE_CACHE.clear()
    _RESOURCE_CACHE[id(resource)] = (resource, encoded)
    return encoded


def _scope(scope: Any) -> bytes:
    hit = _SCOPE_CACHE.get(id(scope))
    if hit is not None and hit[0] is scope:
        return hit[1]
    body = b""
    if scope is not None:
        if scope.name:
            body += _ld(b"\x0a", scope.name.encode())
        if scope.version:
            body += _ld(b"\x12", scope.version.encode())
        body += _joined_attributes(b"\x1a", scope.attributes)
    encoded = _ld(b"\x0a", body)
    if len(_SCOPE_CACHE) > 1024:
        _SCOPE_CACHE.clear()
    _SCOPE_CACHE[id(scope)] = (scope, encoded)
    return encoded


def _group(items: Iterable[Any]) -> dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]]:
    """Encoded ``spans`` fields per resource and scope, in first-seen order, as the stock encoder groups them
    (equal resources together, equal scopes together). Each distinct object is compared once per batch: a
    ``Resource`` hashes by dumping its attributes to JSON, which per span would cost more than encoding it."""
    same: dict[Any, Any] = {}  # resource or scope -> the first equal one seen
    canonical: dict[int, Any] = {}  # id of each object seen -> that first equal one (all alive in ``items``)
    groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
    for item in items:
        span = item.span
        resource = span.resource
        r = canonical.get(id(resource))
        if r is None:
            r = canonical[id(resource)] = same.setdefault(("r", resource), resource)
        scope = span.instrumentation_scope or None
        sc = canonical.get(id(scope))
        if sc is None:
            sc = canonical[id(scope)] = same.setdefault(("s", scope), scope)
        rgroup = groups.get(id(r))
        if rgroup is None:
            rgroup = groups[id(r)] = (r, {})
        sgroup = rgroup[1].get(id(sc))
        if sgroup is None:
            sgroup = rgroup[1][id(sc)] = (sc, [])
        parts = _span(item)
        chunks = sgroup[1]
        chunks.append(b"\x12" + _varint(sum(map(len, parts))))
        chunks.extend(parts)
    return groups


def encode_request(items: Iterable[Any]) -> bytes:
    """Serialized ``ExportTraceServiceRequest`` for :class:`~spyglass.exporter._enrichment.Enriched` spans,
    grouped by resource and scope in first-seen order (as the stock encoder groups them). Nested messages
    are written as length headers followed by their parts, and everything is joined once at the end."""
    out: list[bytes] = []
    for resource, scopes in _group(items).values():
        body: list[bytes] = [_resource(resource)]
        for scope, spans in scopes.values():
            head = _scope(scope)
            tail = _ld(b"\x1a", scope.schema_url.encode()) if scope is not None and scope.schema_url else b""
            size = len(head) + sum(map(len, spans)) + len(tail)
            body.append(b"\x12" + _varint(size))
            body.append(head)
            body.extend(spans)
            body.append(tail)
        if resource.schema_url:
            body.append(_ld(b"\x1a", resource.schema_url.encode()))
        out.append(b"\x0a" + _varint(sum(map(len, body))))
        out.extend(body)
    return b"".join(out)


def to_otlp_json(payload: bytes) -> str:
    """OTLP/JSON for serialized request bytes (ids in hex, enums as integers, one line)."""
    import json

    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    doc = MessageToDict(request, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                _hex_ids(span)
                for link in span.get("links", ()):
                    _hex_ids(link)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _hex_ids(obj: dict[str, Any]) -> None:
    import base64

    for key in ("traceId", "spanId", "parentSpanId"):
        if key in obj:
            obj[key] = base64.b64decode(obj[key]).hex()
