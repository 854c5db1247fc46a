"""The redaction engine: detector quality on the labelled set, modes, and message JSON kept valid."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from spyglass.exporter import RedactionMode, Redactor
from spyglass.exporter._evaluation import load_rows, score
from spyglass.semconv import dumps
from spyglass.semconv import messages as m
from spyglass.semconv.validation import validate

LABELLED = Path(__file__).parents[1] / "fixtures" / "redaction" / "labelled.jsonl"

# Floors well under the measured figures (README), so a regression fails but the hand-written misses pass.
PRECISION_FLOOR = 0.95
RECALL_FLOOR = 0.85


def test_labelled_set_is_large_and_has_hard_negatives() -> None:
    rows = load_rows(LABELLED)
    assert len(rows) >= 300
    assert sum(1 for r in rows if not r["labels"]) >= 100


def test_every_detector_meets_the_floors() -> None:
    scores = score(Redactor(), load_rows(LABELLED))
    for name, s in scores.items():
        assert s.tp + s.fn >= 8, f"{name}: too few labelled examples to measure"
        assert s.precision >= PRECISION_FLOOR, f"{name}: precision {s.precision:.3f}"
        assert s.recall >= RECALL_FLOOR, f"{name}: recall {s.recall:.3f}"


def test_hard_negatives_survive_untouched() -> None:
    r = Redactor()
    for text in [
        "order #123456789 placed 2024-01-15T10:30:00Z",
        "upgrade v2.13.4 to 3.1.0, python 3.11.7",
        "id 123e4567-e89b-12d3-a456-426614174000 at 1699999999123",
        "4111111111111112 is not Luhn-valid",
        "Use @dataclass; ping @oncall; the task-list is long",
    ]:
        assert r.redact_text(text) == (text, [])


def test_mask_mode_names_the_kind() -> None:
    text, kinds = Redactor().redact_text("mail bob@example.com or call +44 20 7946 0958, card 4111 1111 1111 1111")
    assert text == "mail [REDACTED:EMAIL] or call [REDACTED:PHONE], card [REDACTED:CARD]"
    assert kinds == ["EMAIL", "PHONE", "CARD"]


def test_hash_mode_is_keyed_and_joinable() -> None:
    a = Redactor(mode=RedactionMode.HASH, hmac_key=b"k1")
    b = Redactor(mode=RedactionMode.HASH, hmac_key=b"k2")
    one = a.redact_text("from bob@example.com")[0]
    assert one == a.redact_text("to bob@example.com")[0].replace("to ", "from ")
    assert one.startswith("from [EMAIL:") and "bob" not in one
    assert one != b.redact_text("from bob@example.com")[0]
    assert a.redact_text("x alice@example.com")[0] != a.redact_text("x bob@example.com")[0]


def test_drop_mode_removes_the_string() -> None:
    r = Redactor(mode=RedactionMode.DROP)
    assert r.redact_text("my ssn is 123-45-6789") == ("", ["SSN"])
    assert r.redact_text("nothing here") == ("nothing here", [])


def test_custom_patterns_and_detector_selection() -> None:
    r = Redactor(detectors=["EMAIL"], patterns={"employee_id": r"\bEMP-\d{6}\b"})
    assert r.redact_text("EMP-123456 bob@example.com 123-45-6789")[0] == (
        "[REDACTED:EMPLOYEE_ID] [REDACTED:EMAIL] 123-45-6789"
    )
    assert Redactor(detectors=["none"]).redact_text("bob@example.com")[0] == "bob@example.com"


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not a valid regex"):
        Redactor(patterns={"bad": "("})
    with pytest.raises(ValueError, match="unknown redaction detectors"):
        Redactor(detectors=["EMAILS"])


def test_message_json_keeps_its_structure_and_validates() -> None:
    messages = [
        m.message("user", [m.text("I am bob@example.com\n415-555-0132, key sk-" + "a" * 40)]),
        m.message("assistant", [m.tool_call("lookup", {"email": "bob@example.com", "n": 3}, id="call_1")]),
    ]
    raw = dumps(messages)
    validate(json.loads(raw), "InputMessages")
    out, kinds = Redactor().redact_json(raw)
    doc = json.loads(out)
    validate(doc, "InputMessages")
    assert doc[0]["parts"][0]["content"] == "I am [REDACTED:EMAIL]\n[REDACTED:PHONE], key [REDACTED:API_KEY]"
    assert doc[1]["parts"][0]["arguments"] == {"email": "[REDACTED:EMAIL]", "n": 3}
    assert doc[1]["parts"][0]["name"] == "lookup" and doc[1]["role"] == "assistant"
    assert sorted(kinds) == ["API_KEY", "EMAIL", "EMAIL", "PHONE"]


def test_clean_json_comes_back_as_the_same_object() -> None:
    raw = '[{"role":"user","parts":[{"type":"text","content":"hello there"}]}]'
    assert Redactor().redact_json(raw)[0] is raw


def test_non_json_text_is_redacted_as_text() -> None:
    assert Redactor().redact_json("not json bob@example.com")[0] == "not json [REDACTED:EMAIL]"


def _history(email_turn: int, turns: int = 6) -> list:
    out = [m.message("system", [m.text("Policy: be brief.\n" + 'Rules "quoted" — ünïcödé. ' * 20)])]
    for t in range(turns):
        extra = f" my email is bob{t}@example.com\tthanks" if t == email_turn else ""
        out.append(m.message("user", [m.text(f"Turn {t}: " + "tell me about the order status please. " * 10 + extra)]))
        out.append(m.message("assistant", [m.text(f"Answer {t}: " + "the order is on its way. " * 12)]))
    return out


@pytest.mark.parametrize("ensure_ascii", [False, True])
def test_long_leaves_are_redacted_in_place_and_match_a_full_rewrite(ensure_ascii: bool) -> None:
    doc = _history(email_turn=2)
    raw = json.dumps(doc, ensure_ascii=ensure_ascii, separators=(",", ":"))
    out, kinds = Redactor().redact_json(raw)
    expected = json.loads(raw)
    leaf = expected[5]["parts"][0]
    leaf["content"] = leaf["content"].replace("bob2@example.com", "[REDACTED:EMAIL]")
    assert json.loads(out) == expected and kinds == ["EMAIL"]
    validate(json.loads(out), "InputMessages")


def test_a_conversation_scans_repeated_history_once() -> None:
    r = Redactor()
    seen_before = len(r._cache)
    for turn in range(1, 6):
        raw = dumps(_history(email_turn=0, turns=turn))
        out, kinds = r.redact_json(raw)
        assert "bob0@example.com" not in out and kinds == ["EMAIL"]
    # No long text was scanned twice: each went into the leaf cache at most once (the system prompt plus two
    # messages per turn), and the longer documents were answered from the one they extend.
    assert len(r._cache) - seen_before <= 1 + 2 * 5
    assert r._docs


def test_ascii_escaped_json_falls_back_to_a_full_rewrite() -> None:
    doc = [m.message("system", [m.text("Contact ünïcödé support at help@example.com. " + "Be kind. " * 40)])]
    raw = json.dumps(doc, ensure_ascii=True)  # another encoder's style: \\u00fc escapes, spaces after separators
    out, kinds = Redactor().redact_json(raw)
    assert kinds == ["EMAIL"]
    assert json.loads(out)[0]["parts"][0]["content"].startswith("Contact ünïcödé support at [REDACTED:EMAIL].")


def _python_only() -> Redactor:
    r = Redactor()
    r._candidates = None  # the pure-Python gates, as without google-re2
    return r


def test_the_re2_candidate_pass_is_in_use() -> None:
    # CI installs the `redaction` extra; without it the pure-Python gates run (tested below as well).
    assert Redactor()._candidates is not None


def test_both_engines_find_the_same_values() -> None:
    rows = load_rows(LABELLED)
    fast, slow = Redactor(), _python_only()
    every = _python_only()
    everything = frozenset(range(len(every._detectors)))
    every._present = lambda text, windows=None: everything  # type: ignore[method-assign]
    texts = [row["text"] for row in rows]
    # Values glued to their neighbours by the separators the detectors care about.
    texts += [a + sep + b for a, b in zip(texts, texts[7:]) for sep in (" ", "-", ".", "\n", ":")]
    for text in texts:
        # The RE2 candidates and the pure-Python probes only skip detectors that would find nothing.
        assert fast.find(text) == slow.find(text) == every.find(text), text
    scores = score(slow, rows)
    for name, s in scores.items():
        assert s.precision >= PRECISION_FLOOR and s.recall >= RECALL_FLOOR, name


@pytest.mark.parametrize("engine", [Redactor, _python_only])
def test_a_raw_document_scan_finds_what_its_strings_hold(engine: Callable[[], Redactor]) -> None:
    # redact_json decides from one scan of the raw JSON; escapes (\n, \", \t) must not hide a value from it.
    r = engine()
    for row in load_rows(LABELLED):
        for wrap in ("{}", "line one\n{}", 'say "{}"', "a\t{}\tb", "{}\n"):
            leaf = wrap.format(row["text"])
            raw = dumps([m.message("user", [m.text(leaf)])])
            assert sorted(r.redact_json(raw)[1]) == sorted(r.redact_text(leaf)[1]), leaf


def test_a_key_right_after_a_newline_in_short_json_is_redacted() -> None:
    raw = dumps([m.message("user", [m.text("key:\nsk-" + "a1" * 20 + "\nDE89 3704 0044 0532 0130 00")])])
    out, kinds = Redactor().redact_json(raw)
    assert sorted(kinds) == ["API_KEY", "IBAN"] and "sk-" not in out and "DE89" not in out


@pytest.mark.parametrize("mode", [RedactionMode.MASK, RedactionMode.HASH])
def test_redacting_the_raw_document_matches_the_leaf_walk(mode: RedactionMode) -> None:
    # Documents without escapes are redacted at the positions of the raw scan; the leaf walk is the reference.
    fast = Redactor(mode=mode, hmac_key=b"k")
    walk = Redactor(mode=mode, hmac_key=b"k")
    walk._raw_scan = False  # parse and scan string by string
    rows = load_rows(LABELLED)
    for a, b in zip(rows, rows[5:]):
        doc = [
            m.message("system", [m.text(a["text"])]),
            m.message("user", [m.text(b["text"]), m.tool_call("lookup", {"q": a["text"], "n": 4111111111111111})]),
        ]
        raw = dumps(doc)
        out, kinds = fast.redact_json(raw)
        ref, ref_kinds = walk.redact_json(raw)
        assert json.loads(out) == json.loads(ref) and sorted(kinds) == sorted(ref_kinds), raw
        validate(json.loads(out), "InputMessages")


def _leaf_walk(raw: str) -> tuple[str, list[str]]:
    walk = Redactor()
    walk._raw_scan = False  # parse and scan string by string: the reference
    return walk.redact_json(raw)


@pytest.mark.parametrize("engine", [Redactor, _python_only])
@pytest.mark.parametrize("escapes", [False, True])
def test_a_growing_conversation_is_scanned_from_where_the_last_call_ended(
    engine: Callable[[], Redactor], escapes: bool
) -> None:
    r = engine()
    scanned: list[int] = []  # lengths of the texts scanned during the current call
    find, present = r.find, r._present

    def recording_find(text: str, **kwargs: object) -> list[tuple[int, int, str]]:
        scanned.append(len(text))
        return find(text, **kwargs)  # type: ignore[arg-type]

    def recording_present(text: str, windows: object = None) -> frozenset[int]:
        scanned.append(len(text))
        return present(text, windows)  # type: ignore[arg-type]

    r.find = recording_find  # type: ignore[method-assign]
    r._present = recording_present  # type: ignore[method-assign]
    longest: list[int] = []
    history = [m.message("system", [m.text(("Policy line.\n" if escapes else "Policy line. ") * 100)])]
    raw = ""
    for t in range(12):
        pii = f" reach me at bob{t}@example.com or +44 20 7946 09{t:02d}" if t in (3, 7) else ""
        history.append(m.message("user", [m.text(f"Turn {t}: where is order {t}? " * 8 + pii)]))
        raw = dumps(history)
        scanned.clear()
        out, kinds = r.redact_json(raw)
        longest.append(max(scanned, default=0))
        ref, ref_kinds = _leaf_walk(raw)
        assert json.loads(out) == json.loads(ref) and sorted(kinds) == sorted(ref_kinds), t
        validate(json.loads(out), "InputMessages")
        if t >= 3:
            assert "bob3@example.com" not in out
        history.append(m.message("assistant", [m.text(f"Answer {t}. " * 10)]))
    assert len(raw) > 6000
    # Once the documents are long, each call scans only the messages added since the previous one.
    assert max(longest[-4:]) < len(raw) / 4, longest


def test_an_edited_history_or_a_broken_tail_is_not_taken_from_memory() -> None:
    r = Redactor()
    history = [m.message("system", [m.text("Policy line. " * 300)])]
    history.append(m.message("user", [m.text("first question " * 20)]))
    base = dumps(history)
    assert r.redact_json(base) == (base, [])
    # The same length and the same tail, but an e-mail address where the history had none.
    edited = base.replace("Policy line. Policy", "Policy line. b@x.io", 1)
    assert len(edited) == len(base)
    extended = edited[:-1] + "," + dumps([m.message("user", [m.text("next " * 10)])])[1:]
    out, kinds = r.redact_json(extended)
    assert kinds == ["EMAIL"] and "b@x.io" not in out
    json.loads(out)
    # Text that extends a remembered document but is not JSON is redacted as text, as without the memory.
    broken = base[:-1] + ',{"role": "user", "parts": call +44 20 7946 0958]'
    assert r.redact_json(broken) == Redactor().redact_json(broken)
    assert r.redact_json(broken)[1] == ["PHONE"]
    known = r.redact_json(extended)[0]  # remembered, with a finding: the next one takes the parsing path
    trailing = extended[:-1] + ",]"  # a trailing comma: not JSON either
    assert r.redact_json(trailing) == Redactor().redact_json(trailing)
    assert json.loads(r.redact_json(extended[:-1] + ',{"role":"user","parts":[]}]')[0])[:-1] == json.loads(known)
