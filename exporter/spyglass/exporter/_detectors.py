"""Built-in PII and secret detectors: a regex to find candidates, and a validator to cut false positives.

Each detector has a cheap ``gate`` (a substring or character test) so a string that cannot hold a match is
not scanned at all; most prompt text passes only the digit-based gates.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BUILTIN_DETECTORS", "Detector", "custom_detector", "luhn_ok"]


@dataclass(frozen=True)
class Detector:
    """One kind of sensitive value. ``validate`` gets the matched text and returns whether it is real."""

    name: str
    pattern: re.Pattern[str]
    gate: Callable[[str], bool]
    validate: Callable[[str], bool] | None = None


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


def _card_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    # Issuer prefixes: Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro.
    if not re.match(r"4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]|2)|3(?:0[0-5]|[68])|35|5[06-9]|6", digits):
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


def _has_digits(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def _contains(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(n in text for n in needles)


_NOT_BEFORE = r"(?<![\w.+/@-])"
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
    ),
    Detector("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"), _contains("eyJ")),
    Detector(
        "API_KEY",
        re.compile(
            r"(?<![\w-])(?:"
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
        _contains("sk-", "sk_", "rk_", "AIza", "xox", "hf_", "gsk_", "xai-", "glpat-"),
    ),
    Detector(
        "AWS_KEY",
        re.compile(
            r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"
            r"|(?i:aws_?secret_?access_?key|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
        ),
        lambda t: "AKIA" in t or "ASIA" in t or "ABIA" in t or "ACCA" in t or "ecret" in t or "ECRET" in t,
    ),
    Detector(
        "GITHUB_TOKEN",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
        _contains("gh", "github_pat_"),
    ),
    Detector(
        "EMAIL",
        re.compile(
            r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"
        ),
        _contains("@"),
    ),
    Detector(
        "IBAN",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        _has_digits,
        _iban_ok,
    ),
    Detector(
        "CARD",
        re.compile(_NOT_BEFORE + r"(?:\d[ -]?){12,18}\d" + _NOT_AFTER),
        _has_digits,
        _card_ok,
    ),
    Detector(
        "SSN",
        re.compile(_NOT_BEFORE + r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}" + _NOT_AFTER),
        _has_digits,
    ),
    Detector(
        "PHONE",
        re.compile(
            _NOT_BEFORE + r"(?:"
            r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +44 20 7946 0958, +33 1 23 45 67 89
            r"|(?:1[ .-])?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}"  # (415) 555-0132, 415.555.0132, 1-800-555-0199
            r")" + _NOT_AFTER
        ),
        _has_digits,
        _phone_ok,
    ),
    Detector(
        "IP_ADDRESS",
        re.compile(
            r"(?<![\w.:])(?:"
            r"(?:[0-9A-Fa-f]{0,4}:){2,6}(?:\d{1,3}\.){3}\d{1,3}"  # IPv4-mapped IPv6
            r"|(?:\d{1,3}\.){3}\d{1,3}"
            r"|(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
            r")(?![\w.])(?!:(?!\d))"  # ":5432" (a port) may follow
        ),
        lambda t: "." in t or ":" in t,
        _ip_ok,
    ),
)
"""Ordered: structured secrets before the generic digit patterns, so a key is labelled as a key."""


def custom_detector(name: str, regex: str) -> Detector:
    """A detector from configuration; raises ``ValueError`` with the name on a bad regex."""
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise ValueError(f"custom redaction pattern {name!r} is not a valid regex: {exc}") from exc
    return Detector(name.upper(), pattern, lambda _t: True)
