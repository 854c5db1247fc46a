"""The redaction engine: find sensitive values in text or message JSON and mask, hash or drop them.

Usage::

    from spyglass.exporter import Redactor
    r = Redactor()                       # all built-in detectors, mask mode
    r.redact_text("mail bob@example.com")  # ("mail [REDACTED:EMAIL]", ["EMAIL"])
    r.redact_json('[{"role":"user","parts":[{"type":"text","content":"call +44 20 7946 0958"}]}]')

Message JSON is parsed and only string leaves are rewritten (structural keys such as ``type`` and ``role``
are left alone), so the result is the same shape and still valid against the GenAI schemas. Hash mode
writes ``[KIND:<12 hex of HMAC-SHA256>]`` so equal values stay joinable across spans without being
readable; drop mode removes the whole string that held a value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from spyglass.exporter._detectors import BUILTIN_DETECTORS, Detector, Windows, candidate_set, custom_detector
from spyglass.exporter._modes import RedactionMode

__all__ = ["Redactor"]

_log = logging.getLogger(__name__)

# Keys of the message JSON whose values are structure, not content.
_STRUCTURAL_KEYS = frozenset({"type", "role", "finish_reason", "mime_type", "modality", "id", "name"})
_JSON_SEPARATORS = (",", ":")
_JSON_SPACE = " \t\r\n"
_CACHE_MIN_CHARS = 256  # shorter strings are cheaper to scan than to hash and remember
# Longer documents are mostly a conversation's re-sent history: scanned from where an earlier one ends.
_LONG_DOC_CHARS = 3072
_CACHE_MAX_CHARS = 2_000_000  # remembered text per redactor (a few MB), oldest forgotten first
_DOCS_MAX_CHARS = 4_000_000  # remembered long documents (see _redact_extension), oldest forgotten first
_DOC_TAIL = 64  # characters before a cut that key a remembered document, with the cut's position
_EXTEND_TRIES = 8  # object boundaries tried, from the end, when looking for the document a new one extends


class _Doc(NamedTuple):
    """A long message document remembered for :meth:`Redactor._redact_extension` (text up to its closing ``]``)."""

    text: str
    redacted: str  # its redaction, up to the closing "]" (``text`` itself when nothing was found)
    kinds: tuple[str, ...]
    raw_clean: bool  # a raw scan of the whole document found nothing (so neither did the leaf walk)
    valid: bool  # known to be valid JSON

    @property
    def size(self) -> int:
        return len(self.text) + (0 if self.redacted is self.text else len(self.redacted))


class Redactor:
    """Detect and replace sensitive values. Safe to share across threads (configuration is immutable; the
    cache of long message texts is guarded by a lock).

    ``detectors`` names the built-ins to use (``None``: all of them); ``patterns`` adds custom ones
    (``{"NAME": regex}``; a bad regex raises ``ValueError`` naming it).
    """

    def __init__(
        self,
        *,
        detectors: Iterable[str] | None = None,
        mode: RedactionMode = RedactionMode.MASK,
        hmac_key: bytes | None = None,
        patterns: Mapping[str, str] | None = None,
    ) -> None:
        builtins = {d.name: d for d in BUILTIN_DETECTORS}
        if detectors is None:
            chosen = list(BUILTIN_DETECTORS)
        else:
            names = [n.strip().upper() for n in detectors if n.strip() and n.strip().lower() != "none"]
            unknown = [n for n in names if n not in builtins]
            if unknown:
                raise ValueError(f"unknown redaction detectors {unknown}; known: {sorted(builtins)}")
            chosen = [d for d in BUILTIN_DETECTORS if d.name in names]
        chosen.extend(custom_detector(name, regex) for name, regex in (patterns or {}).items())
        self._detectors: tuple[Detector, ...] = tuple(chosen)
        # Whether a scan of a raw JSON document can stand for a scan of its strings (see redact_json).
        self._raw_scan = not patterns
        # With google-re2 one pass says which detectors have a candidate in a text (see Detector.candidate);
        # without it, the probes do (see Windows.probes). A text in which no detector can match is done then.
        self._candidates = candidate_set(self._detectors)
        self._unprobed = frozenset(i for i, d in enumerate(self._detectors) if not d.probe)
        by_probe: dict[str, list[int]] = {}
        for i, d in enumerate(self._detectors):
            if d.probe:
                by_probe.setdefault(d.probe, []).append(i)
        self._by_probe = {name: tuple(positions) for name, positions in by_probe.items()}
        self.mode = mode
        if mode is RedactionMode.HASH and hmac_key is None:
            _log.warning("redaction hash mode without a key: using a random per-process key")
        self._key = hmac_key or secrets.token_bytes(32)
        self._cache: OrderedDict[str, tuple[str, tuple[str, ...]]] = OrderedDict()
        self._cache_chars = 0
        self._cache_lock = threading.Lock()
        # Long message documents redacted recently, by (position of the closing "]", the text before it).
        self._docs: OrderedDict[tuple[int, str], _Doc] = OrderedDict()
        self._docs_chars = 0
        # Results for values that repeat across calls (see redact_value), as text and as JSON.
        self._results: tuple[OrderedDict[str, tuple[str, tuple[str, ...]]], ...] = (OrderedDict(), OrderedDict())
        self._results_chars = [0, 0]

    @property
    def detector_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.name for d in self._detectors))

    def _present(self, text: str, windows: Windows | None = None) -> frozenset[int]:
        """The positions (in the detector list) of the detectors that may match in ``text``: with RE2 those whose
        candidate occurs in it (the set is ASCII, so the UTF-8 bytes answer as the text would), without it those
        whose probe passes; detectors with neither always count."""
        if self._candidates is not None:
            matcher, index = self._candidates
            hit = matcher.Match(text)
            if not hit:
                return self._unprobed
            return frozenset(i for i, k in enumerate(index) if k < 0 or k in hit)
        names = (windows or Windows(text)).probes()
        if not names:
            return self._unprobed
        present = set(self._unprobed)
        for name in names:
            present.update(self._by_probe.get(name, ()))
        return frozenset(present)

    def find(
        self, text: str, *, present: frozenset[int] | None = None, windows: Windows | None = None
    ) -> list[tuple[int, int, str]]:
        """Non-overlapping ``(start, end, kind)`` matches, earlier detectors winning ties, sorted by start.

        ``present`` is :meth:`_present` of the text, and ``windows`` its :class:`Windows`, when the caller
        already has them."""
        found: list[tuple[int, int, str]] = []
        if windows is None:
            windows = Windows(text)
        n = len(text)
        if present is None:
            present = self._present(text, windows)
        if not present:
            return found
        for i, det in enumerate(self._detectors):
            if i not in present:
                continue
            where = det.windowed
            spans: list[tuple[int, int]]
            if where == "token":  # before the gate: the windows are cheaper than most gates and rule out more
                spans = windows.tokens()
                if not spans or not det.gate(text):
                    continue
            elif where == "secret":  # likewise
                if not windows.has_secret_value() or not det.gate(text):
                    continue
                spans = [(0, n)]
            elif not det.gate(text):
                continue
            elif not where:
                spans = [(0, n)]
            elif where == "card":
                spans = windows.cards()
                if not spans:
                    continue
            elif where == "ssn":
                if not windows.may_match("SSN"):
                    continue
                spans = windows.ssns()
            elif where == "run":
                if not windows.may_match(det.name):
                    continue
                least, needs, times = det.min_digits, det.run_needs, det.run_needs_count
                plain = max(det.min_digits_without_plus, least)
                spans = [
                    (s, e)
                    for s, e, run, digits in windows.runs()
                    if digits >= least and run.count(needs) >= times and (digits >= plain or run[0] == "+")
                ]
                if not spans:
                    continue
            elif where == "ipv6":
                if not windows.may_match("IPV6"):
                    continue
                spans = [(0, n)]
            elif where == "at":
                spans = windows.ats()
            else:
                spans = windows.iban()
            validate = det.validate
            edge_sensitive = where in ("iban", "at")
            search = det.pattern.search
            for ws, we in spans:
                pos = ws
                while pos < we:
                    m = search(text, pos, we)
                    if m is None:
                        break
                    start, end = m.span()
                    if start == end or (edge_sensitive and end == we and we < n):  # empty, or cut by the edge
                        pos = start + 1
                        continue
                    if validate is not None and not validate(m.group()):
                        pos = start + 1  # e.g. "12 4111 1111 1111 1111": the card starts one number later
                        continue
                    pos = end
                    if any(s < end and start < e for s, e, _ in found):
                        continue
                    found.append((start, end, det.name))
        found.sort()
        return found

    def _replacement(self, kind: str, value: str) -> str:
        if self.mode is RedactionMode.HASH:
            digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:12]
            return f"[{kind}:{digest}]"
        return f"[REDACTED:{kind}]"

    def redact_text(self, text: str, hits: list[str] | None = None) -> tuple[str, list[str]]:
        """``(redacted text, kinds found)``; the text object itself comes back when nothing was found."""
        hits = [] if hits is None else hits
        found = self.find(text)
        if not found:
            return text, hits
        hits.extend(kind for _, _, kind in found)
        if self.mode is RedactionMode.DROP:
            return "", hits
        out: list[str] = []
        pos = 0
        for start, end, kind in found:
            out.append(text[pos:start])
            out.append(self._replacement(kind, text[start:end]))
            pos = end
        out.append(text[pos:])
        return "".join(out), hits

    def _long_leaf(self, text: str) -> tuple[str, tuple[str, ...]]:
        """Redact a long string leaf, remembering the result: the same system prompt, tool definitions and chat
        history come back on every call of a conversation, and are then scanned once, not on every span."""
        cached = self._cache.get(text)
        if cached is None:
            kinds: list[str] = []
            cached = (self.redact_text(text, kinds)[0], tuple(kinds))
            with self._cache_lock:
                self._cache[text] = cached
                self._cache_chars += len(text)
                while self._cache_chars > _CACHE_MAX_CHARS and self._cache:
                    oldest, _ = self._cache.popitem(last=False)
                    self._cache_chars -= len(oldest)
        return cached

    def _remembered(self, text: str, hits: list[str], as_json: bool) -> str:
        """:meth:`redact_json` (or :meth:`redact_text`) of a value that repeats across calls, remembered."""
        results = self._results[as_json]
        cached = results.get(text)
        if cached is None:
            kinds: list[str] = []
            cached = ((self.redact_json if as_json else self.redact_text)(text, kinds)[0], tuple(kinds))
            with self._cache_lock:
                results[text] = cached
                self._results_chars[as_json] += len(text)
                while self._results_chars[as_json] > _CACHE_MAX_CHARS and results:
                    oldest, _ = results.popitem(last=False)
                    self._results_chars[as_json] -= len(oldest)
        hits.extend(cached[1])
        return cached[0]

    @staticmethod
    def _leaves(node: Any, out: list[str]) -> None:
        """Append the content strings of a parsed document to ``out`` (a loop over a stack, not recursion:
        a conversation's history is hundreds of nodes)."""
        stack = [node]
        pop, push = stack.pop, stack.extend
        while stack:
            node = pop()
            t = type(node)
            if t is str:
                out.append(node)
            elif t is dict:
                push([v for k, v in node.items() if not (k in _STRUCTURAL_KEYS and type(v) is str)])
            elif t is list:
                push(node)

    def _rewrite(self, node: Any, done: Mapping[str, tuple[str, tuple[str, ...]]], hits: list[str]) -> Any:
        if isinstance(node, str):
            result = done.get(node)
            if result is None:
                return node
            hits.extend(result[1])
            return result[0]
        if isinstance(node, list):
            return [self._rewrite(item, done, hits) for item in node]
        if isinstance(node, dict):
            return {
                k: v if k in _STRUCTURAL_KEYS and isinstance(v, str) else self._rewrite(v, done, hits)
                for k, v in node.items()
            }
        return node

    def redact_json(self, text: str, hits: list[str] | None = None) -> tuple[str, list[str]]:
        """Redact the string leaves of a JSON document, keeping its structure.

        Text that is not JSON is redacted as plain text. The original string comes back when nothing was found.
        """
        hits = [] if hits is None else hits
        if len(text) <= _LONG_DOC_CHARS:
            return self._redact_doc(text, hits)[0], hits
        out = self._redact_extension(text, hits)
        if out is not None:
            return out, hits
        start = len(hits)
        out, raw_clean, valid = self._redact_doc(text, hits)
        self._remember(text, out, tuple(hits[start:]), raw_clean, valid)
        return out, hits

    def _redact_doc(self, text: str, hits: list[str]) -> tuple[str, bool, bool]:
        """:meth:`redact_json` of one whole document: ``(result, whether a raw scan found nothing in it, whether
        it is known to be valid JSON)``."""
        # One scan of the raw JSON decides whether anything needs parsing: the built-in detectors treat
        # \n-style escapes as boundaries and match nothing an escape can hide, so what is found in the leaves
        # is found here. Not so for \uXXXX escapes (\d matches non-ASCII digits) or custom patterns, which
        # take the leaf walk.
        raw_ok = len(text) < _CACHE_MIN_CHARS or (self._raw_scan and ("\\" not in text or "\\u" not in text))
        found = None
        if raw_ok:
            windows = Windows(text)
            present = self._present(text, windows)
            if not present:
                return text, True, False  # the common case: no detector can match in the document
            found = self.find(text, present=present, windows=windows)
            if not found:
                return text, True, False
        try:
            doc = json.loads(text)
        except ValueError:
            return self.redact_text(text, hits)[0], False, False
        if found:
            patched = self._patch_raw(text, found, hits)
            if patched is not None:
                return patched, False, True
        leaves: list[str] = []
        self._leaves(doc, leaves)
        done: dict[str, tuple[str, tuple[str, ...]]] = {}
        short = [leaf for leaf in leaves if len(leaf) < _CACHE_MIN_CHARS]
        # Short leaves (roles' texts, tool names, arguments) are checked in one scan, joined by newlines
        # (a boundary for every detector), and only redacted one by one when that scan finds something.
        if short and self.find("\n".join(short)):
            for leaf in short:
                kinds: list[str] = []
                out = self.redact_text(leaf, kinds)[0]
                if kinds:
                    done[leaf] = (out, tuple(kinds))
        for leaf in leaves:
            if len(leaf) >= _CACHE_MIN_CHARS and leaf not in done:
                result = self._long_leaf(leaf)
                if result[1]:
                    done[leaf] = result
        if not done:
            return text, False, True
        patched = self._patch(text, done, hits)
        if patched is not None:
            return patched, False, True
        redacted = self._rewrite(doc, done, hits)
        return json.dumps(redacted, ensure_ascii=False, separators=_JSON_SEPARATORS), False, True

    def _redact_extension(self, text: str, hits: list[str]) -> str | None:
        """:meth:`redact_json` of a long document that extends one redacted recently, or ``None``.

        A conversation re-sends its history with each call, so its message document is usually an earlier
        one without its closing ``]``, then ``,`` and the new messages. Redaction works leaf by leaf, so the
        result is the earlier result without its ``]``, then ``,`` and the redacted new messages: only those
        are scanned. When neither part had anything to find, the document comes back as it is without being
        parsed; otherwise the new part must be a JSON list on its own (and the earlier document valid JSON),
        else ``None`` sends the document down the ordinary path.
        """
        docs = self._docs
        end = len(text)
        for _ in range(_EXTEND_TRIES):
            brace = text.rfind("},", 0, end)
            if brace < _DOC_TAIL:
                return None
            cut = brace + 1
            entry = docs.get((cut, text[cut - _DOC_TAIL : cut]))
            if entry is not None and text.startswith(entry.text):
                break
            end = brace
        else:
            return None
        tail = "[" + text[cut + 1 :]
        if entry.raw_clean and self._raw_scan and "\\u" not in tail and not self.find(tail):
            self._remember(text, text, (), True, False)
            return text
        if not entry.valid:
            return None
        try:
            new = json.loads(tail)
        except ValueError:
            return None
        if not (isinstance(new, list) and new):  # "[]" would leave the document ending in ",]": not JSON
            return None
        tail_hits: list[str] = []
        tail_out = self.redact_json(tail, tail_hits)[0]
        kinds = entry.kinds + tuple(tail_hits)
        out = text if not kinds else entry.redacted + "," + tail_out[1:]
        hits.extend(kinds)
        self._remember(text, out, kinds, False, True)
        return out

    def _remember(self, text: str, out: str, kinds: tuple[str, ...], raw_clean: bool, valid: bool) -> None:
        """Keep a long document's result (up to its closing ``]``) for :meth:`_redact_extension`."""
        if not (text.endswith("]") and out.endswith("]")):
            return
        cut = len(text) - 1
        key = (cut, text[cut - _DOC_TAIL : cut])
        prefix = text[:cut]
        entry = _Doc(prefix, prefix if out is text else out[:-1], kinds, raw_clean, valid)
        size = len(prefix) + (0 if out is text else len(entry.redacted))
        with self._cache_lock:
            known = self._docs.pop(key, None)
            if known is not None:
                self._docs_chars -= known.size
            self._docs[key] = entry
            self._docs_chars += size
            while self._docs_chars > _DOCS_MAX_CHARS and self._docs:
                _, oldest = self._docs.popitem(last=False)
                self._docs_chars -= oldest.size

    def _patch_raw(self, text: str, found: list[tuple[int, int, str]], hits: list[str]) -> str | None:
        """Redact a valid JSON document at the positions its raw scan found, without walking it.

        Only for documents without a backslash: then every ``"`` delimits a string, a string's text is its raw
        text, and a value found inside one is exactly what a scan of that string finds. Values in keys, in
        structural strings (``role``, ``type``...) and outside strings (numbers) are left alone, as the leaf
        walk leaves them; the mask and hash replacements need no escaping, so the document stays valid.
        ``None`` means "take the leaf walk" (escapes, drop mode, a value spanning a quote).
        """
        if self.mode is RedactionMode.DROP or "\\" in text:
            return None
        n = len(text)
        out: list[str] = []
        kinds: list[str] = []
        pos = 0
        for start, end, kind in found:
            if text.find('"', start, end) >= 0:
                return None
            if text.count('"', 0, start) % 2 == 0:
                continue  # not inside a string: a number, never redacted
            opening = text.rfind('"', 0, start)
            closing = text.find('"', end)
            after = closing + 1
            while after < n and text[after] in _JSON_SPACE:
                after += 1
            if after < n and text[after] == ":":
                continue  # a key
            before = opening - 1
            while before >= 0 and text[before] in _JSON_SPACE:
                before -= 1
            if before > 0 and text[before] == ":":
                before -= 1
                while before >= 0 and text[before] in _JSON_SPACE:
                    before -= 1
                if before > 0 and text[before] == '"':
                    key = text[text.rfind('"', 0, before) + 1 : before]
                    if key in _STRUCTURAL_KEYS:
                        continue
            out.append(text[pos:start])
            out.append(self._replacement(kind, text[start:end]))
            kinds.append(kind)
            pos = end
        if not kinds:
            return text
        out.append(text[pos:])
        hits.extend(kinds)
        return "".join(out)

    @staticmethod
    def _patch(text: str, done: Mapping[str, tuple[str, tuple[str, ...]]], hits: list[str]) -> str | None:
        """Replace long redacted leaves inside the JSON text itself, instead of re-serialising the document.

        A conversation's history is re-sent on every call; once it holds one e-mail address every later span
        has a hit, and rewriting and re-encoding 10+ KB of JSON each time would cost more than the scan. A
        leaf's escaped form can only occur inside a JSON string, so swapping it for the escaped redacted text
        keeps the document valid; the result is parsed once to be sure, and ``None`` means "rewrite it".
        """
        if any(len(leaf) < _CACHE_MIN_CHARS for leaf in done):
            return None
        patched = text
        found: list[str] = []
        for leaf, (out, kinds) in done.items():
            escaped = json.dumps(leaf, ensure_ascii=False)[1:-1]
            times = patched.count(escaped)
            if not times:
                return None  # written by another encoder (ASCII escapes...): take the slow path
            patched = patched.replace(escaped, json.dumps(out, ensure_ascii=False)[1:-1])
            found.extend(kinds * times)
        if "\\" in text:  # without escapes a leaf (no quote in it) lies inside one string, and so does its patch
            try:
                json.loads(patched)
            except ValueError:
                return None
        hits.extend(found)
        return patched

    def redact_value(self, value: Any, hits: list[str], *, as_json: bool = False, repeats: bool = False) -> Any:
        """Redact an attribute value: a string (as JSON when asked) or a sequence of strings.

        ``repeats`` says the value is usually the same on every call (system instructions, tool definitions):
        the result for a long one is remembered, so it is scanned once, not on every span."""
        if isinstance(value, str):
            if repeats and len(value) >= _CACHE_MIN_CHARS:
                return self._remembered(value, hits, as_json)
            return (self.redact_json if as_json else self.redact_text)(value, hits)[0]
        if isinstance(value, list | tuple) and value and isinstance(value[0], str):
            return tuple(self.redact_text(v, hits)[0] if isinstance(v, str) else v for v in value)
        return value
