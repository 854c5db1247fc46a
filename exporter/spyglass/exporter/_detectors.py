"""Built-in PII and secret detectors: a regex to find candidates, and a validator to cut false positives.

Scanning every pattern over every prompt would cost far more than encoding the span, so a detector's pattern
runs only where it can match. With ``google-re2`` installed (the ``redaction`` extra), each detector names a
``candidate`` pattern that all its matches contain, and one RE2 pass over the text (a DFA, linear, in C)
says which detectors have a candidate at all; the others are skipped. Without RE2 each detector's ``probe``
does that job (:meth:`Windows.probes`): cheap C-level tests, a ``memchr`` where one character decides, else a
``bytes.translate`` profile of the text (digits to ``0``...) and one ``in`` test ("an SSN is 000-00-0000
with real dashes", "a dotted quad is 7 of [0-9.] in a row"). Then small windows (runs of digits and
separators, long ``[A-Za-z0-9_-]`` tokens, the neighbourhood of each ``@``) found with ``find`` in those
profiles narrow the rest: the Python ``re`` engine only sees the few windows left.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

try:  # optional (the "fast" extra): RE2 runs every detector's candidate pattern in one linear pass
    import re2 as _re2  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - exercised where google-re2 is not installed
    _re2 = None

__all__ = ["BUILTIN_DETECTORS", "Detector", "Windows", "candidate_set", "custom_detector", "luhn_ok"]


@dataclass(frozen=True)
class Detector:
    """One kind of sensitive value. ``validate`` gets the matched text and returns whether it is real."""

    name: str
    pattern: re.Pattern[str]
    gate: Callable[[str], bool]
    validate: Callable[[str], bool] | None = None
    windowed: str = ""
    """Where the pattern runs: ``""`` the whole text (after the gate); ``"secret"`` / ``"ipv6"`` the whole
    text when it has a 40-character base64 stretch / two colons with only hex digits between them; ``"run"``,
    ``"card"``, ``"ssn"``, ``"iban"``, ``"token"`` or ``"at"``: only the matching :class:`Windows`."""
    min_digits: int = 0
    """For ``"run"`` detectors: runs with fewer digits are skipped (most runs in prose are short numbers)."""
    run_needs: str = ""
    """For ``"run"`` detectors: a character the run must contain (``-`` for SSNs, ``.`` for IPv4)..."""
    run_needs_count: int = 0
    """...at least this many times."""
    min_digits_without_plus: int = 0
    """For ``"run"`` detectors: the digit minimum for runs without a leading ``+`` (national phone formats)."""
    candidate: str = ""
    """An RE2 pattern over :meth:`Windows.data` that every match of this detector contains (``""``: none known).
    With ``google-re2`` installed the candidates of all detectors are one DFA pass (:func:`candidate_set`)
    that rules most detectors out of most texts; each detector still decides with its own pattern."""
    probe: str = ""
    """Without ``google-re2``: the name of a :meth:`Windows.probes` test that every text holding a match of this
    detector passes (``""``: none; the detector always runs)."""


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_ISSUER = re.compile(r"4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]|2)|3(?:0[0-5]|[68])|35|5[06-9]|6")


def _card_ok(text: str) -> bool:
    digits = text.replace(" ", "").replace("-", "")  # the card pattern matches digits, spaces and dashes only
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    # Issuer prefixes: Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro.
    if not _ISSUER.match(digits):
        return False
    return luhn_ok(digits)


def _iban_ok(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _ip_ok(text: str) -> bool:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv4Address):
        # "1.2.3.4"-like tokens are far more often versions than addresses when every part is one digit.
        return not all(len(p) == 1 for p in text.split("."))
    return True


def _phone_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        return 8 <= len(digits) <= 15
    return len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")


_RUN_CHARS = "0123456789 ().:/+-"
# Key and token characters, plus the "/+=" of base64 secrets (an AWS secret key is 40 of them in a row).
_TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-/+="  # noqa: S105 (a charset)
# Every ASCII character to "0" (member) or "\x01" (not); other characters stay themselves (never "0").
_RUN_BYTES = bytes(ord("0") if i < 128 and chr(i) in _RUN_CHARS else ord("x") for i in range(256))
_TOKEN_BYTES = bytes(ord("0") if i < 128 and chr(i) in _TOKEN_CHARS else ord("x") for i in range(256))
_CARD_BYTES = bytes(ord("0") if i < 128 and chr(i) in "0123456789 -" else ord("x") for i in range(256))
_UPPER_PAIR = re.compile(r"[A-Z]{2}\d\d")
_MIN_RUN = 8  # the shortest value any digit-based detector accepts ("10.0.0.1", "+4930901820")
_MIN_TOKEN = 20  # the shortest key or token (an AWS key id: AKIA + 16)
_MIN_SECRET = 40  # an AWS secret access key
_TOKEN_NEEDLE = b"0" * _MIN_TOKEN
_MIN_CARD = 13
_IBAN_BEFORE = 40  # an IBAN's country code and bank letters can precede its longest digit run
_IBAN_AFTER = 8
_EMAIL_BEFORE = 65  # the local part is at most 64 characters
_EMAIL_AFTER = 256
_LOCAL_PART = frozenset(string.ascii_letters + string.digits + "._%+-")  # the EMAIL pattern's local part


def _member_spans(data: bytes, table: bytes, min_len: int, profile: bytes | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of every stretch of at least ``min_len`` member bytes of ``table`` (members to ``0``,
    the rest to ``x``) in ``data``, one byte per character (see :meth:`Windows.data`); ``profile`` is
    ``data.translate(table)`` when the caller has it."""
    out: list[tuple[int, int]] = []
    b = data.translate(table) if profile is None else profile
    needle = b"0" * min_len
    pos = b.find(needle)
    while pos >= 0:
        end = b.find(b"x", pos + min_len)
        if end < 0:
            end = len(b)
        out.append((pos, end))
        pos = b.find(needle, end)
    return out


# Byte-level profiles of a text, each one ``bytes.translate`` (a C loop) that lets ``in`` tests rule whole
# detectors out before any window or regex work. They work on :meth:`Windows.data`, one byte per character.
def _table(mapping: dict[str, str]) -> bytes:
    return bytes(ord(mapping.get(chr(i), "x")) if i < 128 else ord("x") for i in range(256))


_DIGITS = "0123456789"
# Digits to "0", the separators of numeric values to "-", capitals to "A": an SSN is "000-00-0000", the end
# of a North American phone number "-000-0000", an IBAN starts with "AA00". Positions are the text's.
_SHAPE_TABLE = _table(
    {**dict.fromkeys(_DIGITS, "0"), **dict.fromkeys(" .-", "-"), **dict.fromkeys(string.ascii_uppercase, "A")}
)
_SSN_SHAPE = b"000-00-0000"
# Hex digits and dots to "0", colons kept: a dotted quad ("1.2.3.4") is 7 zeros in a row (a version such as
# "2.4.1" is not), an IPv6 address holds "::" or at least three "0:0" (7 colons between hex groups).
_ADDRESS_BYTES = bytes(
    ord("0") if i < 128 and chr(i) in _DIGITS + "abcdefABCDEF." else ord(":") if i == ord(":") else ord("x")
    for i in range(256)
)
_MIN_QUAD = 7
_QUAD = b"0" * _MIN_QUAD
_HEX_DOT_COLON = frozenset(_DIGITS + "abcdefABCDEF.:")  # the address profile's members
_DIGIT_DOT_BYTES = bytes(ord("0") if i < 128 and chr(i) in _DIGITS + "." else ord("x") for i in range(256))
# 13+ digits with single separators, from an issuer's first digit (Mastercard's 2-series is 22-27; _card_ok).
_CARD_CANDIDATE_PATTERN = r"[3-6](?:[ -]?\d){12}|2[ -]?[2-7](?:[ -]?\d){11}"
_CARD_CANDIDATE = re.compile(_CARD_CANDIDATE_PATTERN, re.ASCII)
_DIGIT_BYTES = bytes(ord("0") if i < 128 and chr(i) in _DIGITS else ord("x") for i in range(256))


class Windows:
    """The candidate windows of one text, each computed on first use."""

    __slots__ = (
        "_addresses",
        "_cards",
        "_data",
        "_iban",
        "_runs",
        "_shape",
        "_token_max",
        "_token_profile",
        "_tokens",
        "text",
    )

    def __init__(self, text: str) -> None:
        self.text = text
        self._runs: list[tuple[int, int, str, int]] | None = None
        self._tokens: list[tuple[int, int]] | None = None
        self._token_profile: bytes | None = None
        self._token_max = 0
        self._iban: list[tuple[int, int]] | None = None
        self._cards: list[tuple[int, int]] | None = None
        self._shape: bytes | None = None
        self._data: bytes | None = None
        self._addresses: bytes | None = None

    def data(self) -> bytes:
        """The text as bytes, one per character (non-ASCII characters become ``?``), so that offsets into
        it and into every profile of it are offsets into the text."""
        if self._data is None:
            self._data = self.text.encode("ascii", "replace")
        return self._data

    def shape(self) -> bytes:
        """The text through ``_SHAPE_TABLE`` (see there)."""
        if self._shape is None:
            self._shape = self.data().translate(_SHAPE_TABLE)
        return self._shape

    def may_match(self, name: str) -> bool:
        """``False`` proves that the numeric detector ``name`` (``CARD``, ``SSN``, ``PHONE``, ``IP_ADDRESS``,
        ``IPV6``, ``IBAN``) cannot match anywhere in the text: each test is a substring every match must hold."""
        if name == "CARD":
            return bool(self.cards())
        if name == "SSN":
            return _SSN_SHAPE in self.shape()
        if name == "PHONE":
            return "+" in self.text or b"-000-0000" in self.shape()
        if name == "IP_ADDRESS":
            return b"0" * _MIN_QUAD in self.addresses()
        if name == "IPV6":
            addresses = self.addresses()
            return b"::" in addresses or addresses.count(b"0:0") >= 3
        if name == "IBAN":
            shape = self.shape()
            return b"AA" in shape and b"AA00" in shape  # capitals are rare: the short needle skips fastest
        return True

    def probes(self) -> tuple[str, ...]:
        """The :attr:`Detector.probe` names whose detectors may match in the text: the pure-Python stand-in for
        the RE2 candidate pass. Each test is a necessary condition of a detector's pattern and validator (the
        gates and windows its detector runs anyway, so their profiles are shared): a ``memchr`` where one
        character decides, else a ``bytes.translate`` profile and one substring test in it."""
        text = self.text
        out: list[str] = []
        if "@" in text:
            out.append("email")
        if "J" in text and "eyJ" in text:  # memchr for the rare capital first
            out.append("jwt")
        if "V" in text and "PRIVATE KEY" in text:
            out.append("private_key")
        if self.has_token():  # 20+ key characters in a row: API keys, AWS key ids, GitHub tokens
            out.append("token")
            if self.has_secret_value() and ("ecret" in text or "ECRET" in text):
                out.append("aws_secret")
        shape = self.shape()
        # Only one-byte needles run at memchr speed (longer ones step through the text), so a rare byte first.
        if b"A" in shape and b"AA00" in shape:
            out.append("iban")
        if _SSN_SHAPE in shape and self._dashed_ssn_shape():
            out.append("ssn")
        if "+" in text or b"-000-0000" in shape:
            out.append("phone")
        # Card windows (13+ digits among digits, spaces and dashes), then the RE2 candidate in one of them: dates
        # and numbers next to each other make windows, rarely 13 digits with single separators from an issuer.
        if self.cards() and any(_CARD_CANDIDATE.search(text, s, e) for s, e in self.cards()):
            out.append("card")
        # A dotted quad is 7+ digits and dots in a row (the address profile also counts hex letters: slower).
        if _QUAD in self.data().translate(_DIGIT_DOT_BYTES) and self.may_match("IP_ADDRESS"):
            out.append("ipv4")
        if self._colon_by_address() and self.may_match("IPV6"):
            out.append("ipv6")
        return tuple(out)

    def _dashed_ssn_shape(self) -> bool:
        """Whether an SSN shape of the profile has real dashes (the profile counts spaces and dots as dashes too,
        so "total 349.99 2024" has one)."""
        shape, text = self.shape(), self.text
        pos = shape.find(_SSN_SHAPE)
        while pos >= 0:
            if text[pos + 3] == "-" and text[pos + 6] == "-":
                return True
            pos = shape.find(_SSN_SHAPE, pos + 1)
        return False

    def _colon_by_address(self) -> bool:
        """Whether a ``:`` follows a hex digit, a dot or another ``:``, or precedes a ``:`` (every IPv6 address
        has one): JSON's own colons follow a quote, so the few colons of a message document are checked one by
        one with ``memchr`` instead of searching the whole profile for two-byte needles."""
        text = self.text
        pos = text.find(":")
        while pos >= 0:
            if (pos and text[pos - 1] in _HEX_DOT_COLON) or text[pos + 1 : pos + 2] == ":":
                return True
            pos = text.find(":", pos + 1)
        return False

    def has_token(self) -> bool:
        """Whether :meth:`tokens` has any (one ``translate`` and one ``find``, without collecting them)."""
        if self._tokens is not None:
            return bool(self._tokens)
        if self._token_profile is None:
            self._token_profile = self.data().translate(_TOKEN_BYTES)
        return _TOKEN_NEEDLE in self._token_profile

    def addresses(self) -> bytes:
        """The text through ``_ADDRESS_BYTES`` (see there)."""
        if self._addresses is None:
            self._addresses = self.data().translate(_ADDRESS_BYTES)
        return self._addresses

    def ssns(self) -> list[tuple[int, int]]:
        """A window (plus two characters for the look-ahead) around every ``000-00-0000`` of the shape."""
        shape = self.shape()
        n = len(shape)
        out: list[tuple[int, int]] = []
        pos = shape.find(_SSN_SHAPE)
        while pos >= 0:
            out.append((pos, min(pos + len(_SSN_SHAPE) + 2, n)))
            pos = shape.find(_SSN_SHAPE, pos + 1)
        return out

    def cards(self) -> list[tuple[int, int]]:
        """Stretches of digits, spaces and dashes holding at least 13 digits (where a card number can be), plus
        two characters after for the look-ahead."""
        if self._cards is None:
            out: list[tuple[int, int]] = []
            self._cards = out
            data = self.data()
            n = len(data)
            for s, e in _member_spans(data, _CARD_BYTES, _MIN_CARD):
                if e - s - data.count(b" ", s, e) - data.count(b"-", s, e) >= _MIN_CARD:  # digits
                    out.append((s, min(e + 2, n)))
        return self._cards

    def runs(self) -> list[tuple[int, int, str, int]]:
        """Runs of digits and separators that could hold a value: ``(start, end, text, digit count)``.

        Every digit-based detector's match lies inside one run (plus a leading ``+`` or ``(``). ``end``
        includes one character after the run, so the patterns' look-aheads see what follows.
        """
        if self._runs is None:
            text = self.text
            n = len(text)
            runs = []
            spans = _member_spans(self.data(), _RUN_BYTES, _MIN_RUN)
            if spans:
                digits_only = self.data().translate(_DIGIT_BYTES)
                for s, e in spans:
                    digits = digits_only.count(b"0", s, e)
                    # Phones, cards, SSNs and IBANs have 7+ digits; a dotted quad has 4+ and three dots.
                    if digits < 7 and (digits < 4 or text.count(".", s, e) < 3):
                        continue
                    if s and text[s - 1] in "+(":
                        s -= 1
                    runs.append((s, e + 1 if e < n else e, text[s:e], digits))
            self._runs = runs
        return self._runs

    def iban(self) -> list[tuple[int, int]]:
        """Wider windows for IBANs, only around long digit runs with a country code (2 capitals, 2 digits) nearby."""
        if self._iban is not None:
            return self._iban
        text = self.text
        n = len(text)
        out: list[tuple[int, int]] = []
        self._iban = out
        if not self.may_match("IBAN"):
            return out
        runs = [r for r in self.runs() if r[3] >= 8]
        if not runs:
            return out
        for s, e, _run, digits in runs:
            if digits < 8:  # every IBAN format has a run of at least 8 digits after its country code
                continue
            ws = max(s - _IBAN_BEFORE, 0)
            if _UPPER_PAIR.search(text, ws, min(s + 4, n)) is None:
                continue
            we = min(e + _IBAN_AFTER, n)
            if out and ws <= out[-1][1]:
                out[-1] = (out[-1][0], we)
            else:
                out.append((ws, we))
        return out

    def tokens(self) -> list[tuple[int, int]]:
        """Stretches of at least 20 ``[A-Za-z0-9_/+=-]`` characters (keys and tokens), plus one character after."""
        if self._tokens is None:
            n = len(self.text)
            spans = _member_spans(self.data(), _TOKEN_BYTES, _MIN_TOKEN, self._token_profile)
            self._token_max = max((e - s for s, e in spans), default=0)
            self._tokens = [(s, e + 1 if e < n else e) for s, e in spans]
        return self._tokens

    def has_secret_value(self) -> bool:
        """Whether a 40-character base64 stretch (an AWS secret key's value) is in the text."""
        self.tokens()
        return self._token_max >= _MIN_SECRET

    def ats(self) -> list[tuple[int, int]]:
        """Merged neighbourhoods of every ``@`` (an e-mail address is around one)."""
        text = self.text
        n = len(text)
        out: list[tuple[int, int]] = []
        at = text.find("@")
        while at >= 0:
            # From where the run of local-part characters before the "@" starts: the pattern then tries one
            # start, not 65 (each of which would run up to 64 characters before failing).
            ws, lo = at, max(at - _EMAIL_BEFORE + 1, 0)
            while ws > lo and text[ws - 1] in _LOCAL_PART:
                ws -= 1
            we = min(at + _EMAIL_AFTER, n)
            if out and ws <= out[-1][1]:
                out[-1] = (out[-1][0], we)
            else:
                out.append((ws, we))
            at = text.find("@", at + 1)
        return out


def _contains(*needles: str) -> Callable[[str], bool]:
    if len(needles) == 1:
        (a,) = needles
        return lambda text: a in text
    if len(needles) == 2:
        a, b = needles
        return lambda text: a in text or b in text
    return lambda text: any(n in text for n in needles)


def _always(_text: str) -> bool:
    return True


# In raw JSON text an escape (\n, \t...) before a value is a boundary too, so a scan of the raw document finds
# everything a scan of its decoded strings finds (the redactor relies on that to skip parsing clean documents).
_ESCAPED = r"(?<=\\[nrtbf\"/])"
_WORD_START = r"(?:\b|" + _ESCAPED + ")"
_NOT_BEFORE = r"(?:(?<![\w.+/@-])|" + _ESCAPED + ")"
_NOT_AFTER = r"(?![\w/@]|[.-]\w)"

BUILTIN_DETECTORS: tuple[Detector, ...] = (
    Detector(
        "PRIVATE_KEY",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r".*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
            re.S,
        ),
        _contains("PRIVATE KEY"),
        candidate=r"PRIVATE KEY",
        probe="private_key",
    ),
    Detector(
        "JWT",
        re.compile(_WORD_START + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
        lambda text: "J" in text and "eyJ" in text,  # memchr for the rare capital first
        candidate="eyJ",
        probe="jwt",
    ),
    Detector(
        "API_KEY",
        re.compile(
            r"(?:(?<![\w-])|" + _ESCAPED + r")(?:"
            r"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{32,}"  # Anthropic
            r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}"  # OpenAI (and OpenAI-compatible)
            r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}"  # Stripe
            r"|AIza[0-9A-Za-z_-]{35}"  # Google
            r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
            r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
            r"|gsk_[A-Za-z0-9]{40,}"  # Groq
            r"|xai-[A-Za-z0-9]{40,}"  # xAI
            r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
            r")(?![\w-])"
        ),
        _always,
        windowed="token",
        candidate=r"sk-|(?:sk|rk)_|AIza|xox[abposr]-|hf_|xai-|glpat-",
        probe="token",
    ),
    Detector(
        "AWS_KEY",
        re.compile(_WORD_START + r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
        _always,
        windowed="token",
        candidate="AKIA|ASIA|ABIA|ACCA",
        probe="token",
    ),
    Detector(
        "AWS_KEY",
        re.compile(
            r"(?i:aws_?secret_?access_?key|secret_?access_?key)(?:\\?[\"'])?(?:\s|\\[nrt])*[:=](?:\s|\\[nrt])*"
            r"(?:\\?[\"'])?[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
        ),
        _contains("ecret", "ECRET"),
        windowed="secret",
        candidate=r"(?i)secret_?access",
        probe="aws_secret",
    ),
    Detector(
        "GITHUB_TOKEN",
        re.compile(_WORD_START + r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
        _always,
        windowed="token",
        candidate=r"gh[pousr]_|github_pat_",
        probe="token",
    ),
    Detector(
        "EMAIL",
        re.compile(
            r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"
        ),
        _contains("@"),
        windowed="at",
        candidate="@",
        probe="email",
    ),
    Detector(
        "IBAN",
        re.compile(_WORD_START + r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        _always,
        _iban_ok,
        windowed="iban",
        candidate=r"[A-Z]{2}\d\d",
        probe="iban",
    ),
    Detector(
        "CARD",
        re.compile(_NOT_BEFORE + r"(?:\d[ -]?){12,18}\d" + _NOT_AFTER),
        _always,
        _card_ok,
        windowed="card",
        min_digits=13,
        candidate=_CARD_CANDIDATE_PATTERN,
        probe="card",
    ),
    Detector(
        "SSN",
        re.compile(_NOT_BEFORE + r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}" + _NOT_AFTER),
        _always,
        windowed="ssn",
        candidate=r"\d{3}-\d{2}-\d{4}",
        probe="ssn",
    ),
    Detector(
        "PHONE",
        re.compile(
            _NOT_BEFORE + r"(?:"
            r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +44 20 7946 0958, +33 1 23 45 67 89
            r"|(?:1[ .-])?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}"  # (415) 555-0132, 415.555.0132, 1-800-555-0199
            r")" + _NOT_AFTER
        ),
        _always,
        _phone_ok,
        windowed="run",
        min_digits=8,
        min_digits_without_plus=10,  # (415) 555-0132: what _phone_ok accepts without a country code
        candidate=r"\+\d|\d{3}\)?[ .-]\d{3}[ .-]\d{4}",
        probe="phone",
    ),
    Detector(
        "IP_ADDRESS",
        # ":5432" may follow
        re.compile(r"(?:(?<![\w.:])|" + _ESCAPED + r")(?:\d{1,3}\.){3}\d{1,3}(?![\w.])(?!:(?!\d))"),
        lambda t: "." in t,
        _ip_ok,
        windowed="run",
        min_digits=5,
        run_needs=".",
        run_needs_count=3,
        candidate=r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",
        probe="ipv4",
    ),
    Detector(
        "IP_ADDRESS",
        re.compile(
            r"(?:(?<![\w.:])|" + _ESCAPED + r")(?:"
            r"(?:[0-9A-Fa-f]{0,4}:){2,6}(?:\d{1,3}\.){3}\d{1,3}"  # IPv4-mapped IPv6
            r"|(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
            r")(?![\w.])(?!:(?!\d))"
        ),
        _always,
        _ip_ok,
        windowed="ipv6",
        candidate=r"::|(?:[0-9A-Fa-f]{1,4}:){6}",  # a valid address holds "::" or 6+ colons,
        probe="ipv6",
    ),
)
"""Ordered: structured secrets before the generic digit patterns, so a key is labelled as a key."""


def candidate_set(detectors: Sequence[Detector]) -> tuple[Any, tuple[int, ...]] | None:
    """An RE2 set of the detectors' candidate patterns and, per detector, its index in the set (``-1``: the
    detector has none and always runs); ``None`` without ``google-re2`` or without any candidate pattern."""
    if _re2 is None or not any(d.candidate for d in detectors):
        return None
    options = _re2.Options()
    options.max_mem = 64 << 20  # the DFA of 13 small patterns needs a few MB; the default cap is 8 MB
    matcher = _re2.Set.SearchSet(options)
    index: dict[str, int] = {}
    for d in detectors:
        if d.candidate and d.candidate not in index:
            index[d.candidate] = matcher.Add(d.candidate.encode())
    matcher.Compile()
    return matcher, tuple(index[d.candidate] if d.candidate else -1 for d in detectors)


def custom_detector(name: str, regex: str) -> Detector:
    """A detector from configuration; raises ``ValueError`` with the name on a bad regex."""
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise ValueError(f"custom redaction pattern {name!r} is not a valid regex: {exc}") from exc
    return Detector(name.upper(), pattern, lambda _t: True)
