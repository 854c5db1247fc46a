"""Contract tests on the names module: pinned revision, no deprecated emission names, documented env vars."""

from __future__ import annotations

import re
from pathlib import Path

import spyglass.semconv as semconv
from spyglass.semconv import environment, extensions, gen_ai
from spyglass.semconv.values import ProviderName

README = Path(__file__).resolve().parents[2] / "README.md"


def _constants(module: object) -> dict[str, str]:
    return {k: v for k, v in vars(module).items() if k.isupper() and isinstance(v, str)}


def test_revision_is_pinned_in_the_docstring() -> None:
    assert semconv.SEMCONV_GENAI_REF.startswith("open-telemetry/semantic-conventions-genai@")
    assert semconv.SEMCONV_GENAI_REF.split("@")[1] in (semconv.__doc__ or "")


def test_2026_names_are_present() -> None:
    assert gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS == "gen_ai.usage.cache_write.input_tokens"
    assert gen_ai.USAGE_REASONING_OUTPUT_TOKENS == "gen_ai.usage.reasoning.output_tokens"
    assert gen_ai.REQUEST_REASONING_LEVEL == "gen_ai.request.reasoning.level"


def test_names_are_unique() -> None:
    names = {**_constants(gen_ai), **{f"x_{k}": v for k, v in _constants(extensions).items()}}
    values = [v for k, v in names.items() if not k.endswith("PREFIX")]
    dupes = {v for v in values if values.count(v) > 1}
    assert not dupes


def test_no_deprecated_provider_spellings() -> None:
    assert not {"xai", "gemini", "vertex_ai", "az.ai.openai"} & {p.value for p in ProviderName}


def test_every_environment_variable_is_in_the_readme_table() -> None:
    table = README.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\|\s*`(OTEL_[A-Z0-9_]+)`", table, flags=re.M))
    names = set(_constants(environment).values())
    assert names, "environment module defines no names"
    assert names - rows == set(), "variables missing from the README table"
    assert rows - names == set(), "README lists variables the code does not define"
    for name in names:
        assert name == getattr(environment, name)
        assert name.startswith("OTEL_")
