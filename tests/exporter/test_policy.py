"""Capture policies: matching, expiry, reload on change, and a bad file keeping the last good policy."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from spyglass.exporter import CapturePolicy, ContentMode, PolicyError, PolicyFile

NOW = time.time_ns()
RESOURCE = {"service.name": "support-bot"}


def _decide(policy: CapturePolicy, attrs: dict, at_ns: int = NOW) -> tuple[ContentMode, str | None]:
    return policy.decide(attrs, RESOURCE, at_ns, ContentMode.REDACTED)


def test_rules_match_by_alias_attribute_pattern_and_list() -> None:
    policy = CapturePolicy.parse(
        {
            "default": "metadata_only",
            "rules": [
                {"id": "alice", "match": {"user": "alice"}, "mode": "full"},
                {
                    "id": "eu",
                    "match": {"tenant": ["eu-*", "gdpr-*"], "gen_ai.provider.name": "openai"},
                    "mode": "redacted",
                },
                {"id": "svc", "match": {"service": "support-*", "session": "s-1"}, "mode": "full"},
                {"id": "streamed", "match": {"gen_ai.request.stream": True}, "mode": "full"},
            ],
        }
    )
    assert _decide(policy, {"user.id": "alice"}) == (ContentMode.FULL, "alice")
    assert _decide(policy, {"spyglass.tenant.id": "gdpr-7", "gen_ai.provider.name": "openai"}) == (
        ContentMode.REDACTED,
        "eu",
    )
    assert _decide(policy, {"spyglass.tenant.id": "gdpr-7", "gen_ai.provider.name": "anthropic"})[1] is None
    assert _decide(policy, {"session.id": "s-1"}) == (ContentMode.FULL, "svc")  # service from the resource
    assert _decide(policy, {"gen_ai.request.stream": True}) == (ContentMode.FULL, "streamed")
    assert _decide(policy, {"user.id": "bob"}) == (ContentMode.METADATA_ONLY, None)


def test_expired_rules_stop_applying() -> None:
    policy = CapturePolicy.parse(
        {"rules": [{"id": "t", "match": {"user": "a"}, "mode": "full", "expires": "2026-01-01T00:00:00Z"}]}
    )
    before = 1_767_225_599 * 10**9  # 2025-12-31T23:59:59Z
    after = 1_767_225_600 * 10**9
    assert _decide(policy, {"user.id": "a"}, before) == (ContentMode.FULL, "t")
    assert _decide(policy, {"user.id": "a"}, after) == (ContentMode.REDACTED, None)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "expected a mapping"),
        ({"rules": {}}, "'rules' must be a list"),
        ({"rules": [{"match": {"user": "a"}}]}, "missing 'mode'"),
        ({"rules": [{"match": {"user": "a"}, "mode": "everything"}]}, "not one of"),
        ({"rules": [{"match": {}, "mode": "full"}]}, "non-empty mapping"),
        ({"rules": [{"match": {"user": "a"}, "mode": "full", "expires": "soon"}]}, "ISO 8601"),
        (
            {
                "rules": [
                    {"id": "x", "match": {"u": "a"}, "mode": "full"},
                    {"id": "x", "match": {"u": "b"}, "mode": "full"},
                ]
            },
            "duplicate id",
        ),
        ({"rules": [{"match": {"u": "a"}, "mode": "full", "until": 1}]}, "unknown keys"),
        ({"defaults": "full"}, "unknown top-level"),
    ],
)
def test_bad_documents_are_rejected_with_a_clear_error(doc: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        CapturePolicy.parse(doc, "policy.yaml")


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a visible mtime change


def test_file_reloads_on_change_and_keeps_the_last_good_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("rules:\n  - id: one\n    match: {user: a}\n    mode: full\n")
    pf = PolicyFile(path, check_interval=0)
    assert [r.id for r in pf.rules] == ["one"]

    _touch(path, "rules:\n  - id: two\n    match: {user: b}\n    mode: metadata_only\n")
    assert [r.id for r in pf.rules] == ["two"]

    with caplog.at_level(logging.ERROR, logger="spyglass"):
        _touch(path, "rules:\n  - id: three\n    match: {user: b}\n    mode: sometimes\n")
        assert [r.id for r in pf.rules] == ["two"]  # the bad version is rejected
    assert pf.last_error is not None and "sometimes" in pf.last_error and "last good" in pf.last_error
    assert any("rejected capture policy" in r.getMessage() for r in caplog.records)

    _touch(path, "rules: [")  # not even YAML
    assert [r.id for r in pf.rules] == ["two"] and "not valid yaml" in (pf.last_error or "")

    path.unlink()
    assert [r.id for r in pf.rules] == ["two"] and "not found" in (pf.last_error or "")

    _touch(path, '{"rules": [{"id": "four", "match": {"user": "c"}, "mode": "full"}]}')
    assert [r.id for r in pf.rules] == ["four"] and pf.last_error is None
