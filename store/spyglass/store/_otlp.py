"""Decoding OTLP trace payloads (protobuf, JSON, gzip) into ``ExportTraceServiceRequest`` messages.

OTLP/JSON differs from the protobuf JSON mapping in one way that matters: trace and span ids are hex
strings, not base64. :func:`decode_json` rewrites them before handing the document to protobuf's parser,
and every failure becomes a :class:`PayloadError` whose message says what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from spyglass.store._records import Pricer, Record, Resource, record, resource_json


class PayloadError(ValueError):
    """A payload that cannot be read; the message is safe to return to the sender."""


class PayloadTooLarge(PayloadError):
    """The payload (or its decompressed form) is bigger than the configured limit."""


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (``gzip``, ``deflate`` or none), refusing output larger than ``limit``."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise PayloadError(f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or none")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    try:
        d = zlib.decompressobj(wbits)
        out = d.decompress(body, limit + 1)
        if len(out) > limit:
            raise PayloadTooLarge(f"decompressed payload is larger than the limit of {limit} bytes")
        if not d.eof:
            raise PayloadError(f"truncated {encoding} body")
    except (zlib.error, gzip.BadGzipFile, EOFError) as exc:
        raise PayloadError(f"invalid {encoding} body: {exc}") from None
    return out


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise PayloadError(f"invalid OTLP protobuf (ExportTraceServiceRequest): {exc}") from None
    return req


_ID_FIELDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8, "trace_id": 16, "span_id": 8, "parent_span_id": 8}


def _hex_ids_to_base64(node: Any, path: str) -> None:
    """OTLP/JSON ids are hex; protobuf's JSON parser wants base64 for ``bytes``: convert in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                if value == "":
                    continue
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise PayloadError(f"{path}.{key}: {value[:40]!r} is not a hex id") from None
                if len(raw) != _ID_FIELDS[key]:
                    raise PayloadError(f"{path}.{key}: expected {_ID_FIELDS[key] * 2} hex digits, got {len(value)}")
                node[key] = base64.b64encode(raw).decode("ascii")
            elif isinstance(value, (dict, list)):
                _hex_ids_to_base64(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _hex_ids_to_base64(item, f"{path}[{i}]")


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("invalid JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        raise PayloadError("OTLP/JSON body must be an object with a resourceSpans list")
    _hex_ids_to_base64(doc, "$")
    req = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(doc, req, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, binascii.Error, RecursionError) as exc:
        raise PayloadError(f"invalid OTLP/JSON: {exc}") from None
    return req


def decode(body: bytes, content_type: str, encoding: str, limit: int) -> ExportTraceServiceRequest:
    """Read one ``POST /v1/traces`` body; ``content_type`` picks protobuf or JSON."""
    if len(body) > limit:
        raise PayloadTooLarge(f"payload of {len(body)} bytes is larger than the limit of {limit} bytes")
    raw = decompress(body, encoding, limit)
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/json":
        return decode_json(raw)
    if ctype in ("application/x-protobuf", "application/protobuf", ""):
        return decode_protobuf(raw)
    raise PayloadError(f"unsupported Content-Type {ctype!r}: use application/x-protobuf or application/json")


# --- protobuf -> records -------------------------------------------------------------------------


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as plain JSON-able Python (bytes become base64 text)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    # Strings and ints are nearly every attribute: read them inline (a call per value was a tenth of decoding).
    # A non-empty string_value can only be the oneof's value: strings need no WhichOneof (a tenth less again).
    out: dict[str, Any] = {}
    for kv in kvs:
        value = kv.value
        text = value.string_value
        if text:
            out[kv.key] = text
            continue
        which = value.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = text
        elif which == "int_value":
            out[kv.key] = value.int_value
        else:
            out[kv.key] = any_value(value)
    return out


@dataclass(slots=True)
class Decoded:
    """The records of one export request, and what was rejected (for OTLP partial success)."""

    records: list[Record]
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def message(self) -> str:
        return "; ".join(self.errors[:5]) + (f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else "")


_NO_TRACE = bytes(16)


def to_records(req: ExportTraceServiceRequest, *, tenant: str | None, pricer: Pricer | None) -> Decoded:
    """Normalise every span of ``req``; a span without valid ids is rejected, the others are kept."""
    out = Decoded([])
    records = out.records
    for rs in req.resource_spans:
        attrs = attributes(rs.resource.attributes)
        # Read once for all the resource's spans: service, tenant and the JSON the writer stores.
        resource = Resource.of(attrs, tenant, resource_json(attrs))
        for ss in rs.scope_spans:
            scope = ss.scope.name or None
            for span in ss.spans:
                trace_id, span_id = span.trace_id, span.span_id
                if len(trace_id) != 16 or len(span_id) != 8 or trace_id == _NO_TRACE:
                    out.rejected += 1
                    out.errors.append(f"span {span.name[:60]!r}: trace_id must be 16 bytes and span_id 8 bytes")
                    continue
                try:
                    events, links, parent, status = span.events, span.links, span.parent_span_id, span.status
                    start = span.start_time_unix_nano
                    records.append(
                        record(
                            trace_id.hex(),
                            span_id.hex(),
                            parent.hex() if len(parent) == 8 else None,
                            span.name,
                            span.kind,
                            start,
                            span.end_time_unix_nano or start,
                            attributes(span.attributes),
                            [
                                {"name": e.name, "time_ns": e.time_unix_nano, "attributes": attributes(e.attributes)}
                                for e in events
                            ]
                            if events
                            else [],
                            [
                                {
                                    "trace_id": lk.trace_id.hex(),
                                    "span_id": lk.span_id.hex(),
                                    "attributes": attributes(lk.attributes),
                                }
                                for lk in links
                            ]
                            if links
                            else [],
                            resource,
                            scope,
                            status.code,
                            status.message or None,
                            pricer,
                        )
                    )
                except Exception as exc:  # one bad span must not drop the batch
                    out.rejected += 1
                    out.errors.append(f"span {span_id.hex()}: {type(exc).__name__}: {exc}")
    return out
