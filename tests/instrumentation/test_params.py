"""The one request-parameter reader: semconv types whichever way the request arrived (SDK or raw JSON)."""

from __future__ import annotations

from spyglass.instrumentation._params import first_number, set_float, set_int, set_stop_sequences
from spyglass.semconv import gen_ai


def test_numbers_are_cast_to_the_semconv_type_and_booleans_ignored() -> None:
    attrs: dict = {}
    set_float(attrs, gen_ai.REQUEST_TEMPERATURE, 1)  # raw JSON "temperature": 1 is an int
    set_int(attrs, gen_ai.REQUEST_MAX_TOKENS, 256.0)
    set_float(attrs, gen_ai.REQUEST_TOP_P, True)
    set_int(attrs, gen_ai.REQUEST_SEED, "42")
    assert attrs == {gen_ai.REQUEST_TEMPERATURE: 1.0, gen_ai.REQUEST_MAX_TOKENS: 256}
    assert type(attrs[gen_ai.REQUEST_TEMPERATURE]) is float


def test_first_number_skips_missing_and_non_numbers() -> None:
    assert first_number(None, False, "7", 5, 9) == 5
    assert first_number(None, None) is None


def test_stop_sequences() -> None:
    attrs: dict = {}
    set_stop_sequences(attrs, "END")
    assert attrs[gen_ai.REQUEST_STOP_SEQUENCES] == ["END"]
    set_stop_sequences(attrs, ("a", 1))
    assert attrs[gen_ai.REQUEST_STOP_SEQUENCES] == ["a", "1"]
    attrs.clear()
    set_stop_sequences(attrs, [])
    assert attrs == {}
