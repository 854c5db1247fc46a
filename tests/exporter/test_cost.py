"""Cost from span attributes, checked against genai-prices itself for the same model and token counts."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest

from spyglass.exporter import Pricer, load_price_overrides, price
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai


def _attrs(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        gen_ai.OPERATION_NAME: "chat",
        gen_ai.PROVIDER_NAME: "openai",
        gen_ai.REQUEST_MODEL: "gpt-4o",
        gen_ai.RESPONSE_MODEL: "gpt-4o-2024-08-06",
        gen_ai.USAGE_INPUT_TOKENS: 1000,
        gen_ai.USAGE_OUTPUT_TOKENS: 200,
    }
    base.update(extra)
    return base


def test_total_matches_genai_prices() -> None:
    attrs = _attrs(**{gen_ai.USAGE_CACHE_READ_INPUT_TOKENS: 400})
    got = Pricer().price(attrs)
    want = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, cache_read_tokens=400, output_tokens=200),
        "gpt-4o-2024-08-06",
        provider_id="openai",
    )
    assert got[ext.USAGE_COST] == pytest.approx(float(want.total_price))
    assert got[ext.COST_SOURCE] == "genai-prices"
    assert got[ext.COST_CURRENCY] == "USD"
    assert ext.COST_UNPRICED not in got


def test_cache_tokens_are_subtracted_from_input_before_pricing() -> None:
    got = Pricer().price(_attrs(**{gen_ai.USAGE_CACHE_READ_INPUT_TOKENS: 400}))
    # gpt-4o: $2.5/M input, $1.25/M cache read, $10/M output.
    assert got[ext.COST_INPUT] == pytest.approx(600 * 2.5 / 1e6)
    assert got[ext.COST_CACHE_READ] == pytest.approx(400 * 1.25 / 1e6)
    assert got[ext.COST_OUTPUT] == pytest.approx(200 * 10 / 1e6)
    parts = got[ext.COST_INPUT] + got[ext.COST_CACHE_READ] + got[ext.COST_CACHE_WRITE] + got[ext.COST_OUTPUT]
    assert parts == pytest.approx(got[ext.USAGE_COST])


def test_anthropic_cache_write() -> None:
    attrs = _attrs(
        **{
            gen_ai.PROVIDER_NAME: "anthropic",
            gen_ai.RESPONSE_MODEL: "claude-3-5-sonnet-20241022",
            gen_ai.USAGE_INPUT_TOKENS: 3000,
            gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS: 2000,
            gen_ai.USAGE_CACHE_READ_INPUT_TOKENS: 500,
        }
    )
    got = Pricer().price(attrs)
    want = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=3000, cache_write_tokens=2000, cache_read_tokens=500, output_tokens=200),
        "claude-3-5-sonnet-20241022",
        provider_id="anthropic",
    )
    assert got[ext.USAGE_COST] == pytest.approx(float(want.total_price))
    assert got[ext.COST_CACHE_WRITE] == pytest.approx(2000 * 3.75 / 1e6)
    assert got[ext.COST_INPUT] == pytest.approx(500 * 3 / 1e6)


def test_unknown_model_is_unpriced_never_zero() -> None:
    got = Pricer().price(_attrs(**{gen_ai.RESPONSE_MODEL: "totally-made-up-model-9000", gen_ai.REQUEST_MODEL: "x"}))
    assert got == {ext.COST_UNPRICED: True, ext.COST_UNPRICED_REASON: "unknown_model"}


def test_span_without_usage_gets_nothing_and_without_model_is_unpriced() -> None:
    assert price({gen_ai.OPERATION_NAME: "execute_tool"}) == {}
    got = price({gen_ai.USAGE_INPUT_TOKENS: 3})
    assert got[ext.COST_UNPRICED] is True and got[ext.COST_UNPRICED_REASON] == "no_model"


def test_server_address_selects_the_provider() -> None:
    attrs = _attrs(**{gen_ai.PROVIDER_NAME: "azure.ai.openai", gen_ai.SERVER_ADDRESS: "myres.openai.azure.com"})
    got = Pricer().price(attrs)
    want = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=200),
        "gpt-4o-2024-08-06",
        provider_api_url="https://myres.openai.azure.com",
    )
    assert want.provider.id == "azure"
    assert got[ext.USAGE_COST] == pytest.approx(float(want.total_price))


def test_historic_prices_follow_the_span_time() -> None:
    attrs = _attrs(**{gen_ai.RESPONSE_MODEL: "gpt-4o"})
    old = datetime(2024, 6, 1, tzinfo=timezone.utc)
    got = Pricer().price(attrs, old)
    want = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=200),
        "gpt-4o",
        provider_id="openai",
        genai_request_timestamp=old,
    )
    assert got[ext.USAGE_COST] == pytest.approx(float(want.total_price))


def test_overrides_file_wins_and_prices_unknown_models(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "models": [
                    {"model": "my-finetune-*", "input_mtok": 3, "output_mtok": 12, "cache_read_mtok": "1.5"},
                    {"model": "gpt-4o*", "provider": "openai", "input_mtok": 1, "output_mtok": 1},
                ]
            }
        )
    )
    pricer = Pricer(load_price_overrides(path))
    got = pricer.price(_attrs(**{gen_ai.RESPONSE_MODEL: "my-finetune-v2", gen_ai.USAGE_CACHE_READ_INPUT_TOKENS: 100}))
    assert got[ext.COST_SOURCE] == "override"
    assert got[ext.USAGE_COST] == pytest.approx((900 * 3 + 100 * 1.5 + 200 * 12) / 1e6)
    assert pricer.price(_attrs())[ext.USAGE_COST] == pytest.approx(1200 / 1e6)
    assert load_price_overrides(path)[0].input_mtok == Decimal(3)


def test_overrides_env_var_is_read_by_price(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spyglass.exporter import _cost

    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  - model: house-model\n    input_mtok: 2\n    output_mtok: 4\n")
    monkeypatch.setenv("OTEL_SPYGLASS_PRICES_FILE", str(path))
    monkeypatch.setattr(_cost, "_default", None)
    got = price(_attrs(**{gen_ai.RESPONSE_MODEL: "house-model"}))
    assert got[ext.USAGE_COST] == pytest.approx((1000 * 2 + 200 * 4) / 1e6)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{", "cannot read"),
        ('{"models": {}}', "'models' list"),
        ('{"models": [{"model": "m"}]}', "missing 'input_mtok'"),
        ('{"models": [{"model": "m", "input_mtok": -1, "output_mtok": 1}]}', ">= 0"),
        ('{"models": [{"model": "m", "input_mtok": "abc", "output_mtok": 1}]}', "not a number"),
    ],
)
def test_bad_override_files_give_clear_errors(tmp_path: Path, doc: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(doc)
    with pytest.raises(ValueError, match=message):
        load_price_overrides(path)


@pytest.mark.parametrize(
    ("provider", "model", "tokens"),
    [
        ("openai", "gpt-4o-mini", (5000, 700, 1200, 0)),
        ("anthropic", "claude-sonnet-4-5", (300_000, 2000, 100_000, 50_000)),  # tiered: above 200k input
        ("anthropic", "claude-sonnet-4-5", (10_000, 2000, 0, 4_000)),
        ("aws.bedrock", "global.anthropic.claude-haiku-5-5", (250_000, 10, 0, 0)),
        ("gcp.gemini", "gemini-2.5-pro", (1000, 10_000, 0, 0)),
        ("mistral_ai", "mistral-large-latest", (1000, 100, 0, 0)),
    ],
)
def test_totals_match_genai_prices_across_providers_and_tiers(
    provider: str, model: str, tokens: tuple[int, int, int, int]
) -> None:
    inp, out, cache_read, cache_write = tokens
    attrs = _attrs(
        **{
            gen_ai.PROVIDER_NAME: provider,
            gen_ai.RESPONSE_MODEL: model,
            gen_ai.USAGE_INPUT_TOKENS: inp,
            gen_ai.USAGE_OUTPUT_TOKENS: out,
            gen_ai.USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
            gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS: cache_write,
        }
    )
    got = Pricer().price(attrs)
    from spyglass.exporter._cost import _PROVIDER_IDS

    want = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=cache_read or None,
            cache_write_tokens=cache_write or None,
        ),
        model,
        provider_id=_PROVIDER_IDS.get(provider, provider),
    )
    assert got[ext.USAGE_COST] == pytest.approx(float(want.total_price), rel=1e-12)


def test_opt_in_price_updates_fetch_in_the_background_and_replace_cached_rates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_SPYGLASS_PRICES_UPDATE=<url>: a real HTTP server on 127.0.0.1 plays the genai-prices data file."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from genai_prices import wait_prices_updated_sync
    from genai_prices.data_snapshot import set_custom_snapshot

    from spyglass.exporter import SpyglassSpanExporter
    from spyglass.exporter._cost import stop_price_updates

    payload = json.dumps(
        [
            {
                "id": "openai",
                "name": "OpenAI",
                "api_pattern": r"https://api\.openai\.com",
                "models": [
                    {"id": "gpt-4o", "match": {"equals": "gpt-4o"}, "prices": {"input_mtok": 100, "output_mtok": 200}}
                ],
            }
        ]
    ).encode()
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    attrs = _attrs(**{gen_ai.RESPONSE_MODEL: "gpt-4o"})
    pricer = Pricer()
    before = pricer.price(attrs)[ext.USAGE_COST]  # bundled data, rates now cached
    monkeypatch.setenv("OTEL_SPYGLASS_PRICES_UPDATE", f"http://127.0.0.1:{server.server_address[1]}/data.json")
    exporter = SpyglassSpanExporter(export_file=None, endpoint="http://127.0.0.1:9/v1/traces")
    try:
        assert wait_prices_updated_sync(timeout=15)
        assert requests == ["/data.json"]
        after = pricer.price(attrs)[ext.USAGE_COST]
        assert after == pytest.approx((1000 * 100 + 200 * 200) / 1e6) and after != before
    finally:
        exporter.shutdown(timeout_millis=100)
        stop_price_updates()
        set_custom_snapshot(None)  # back to the bundled data for every other test
        server.shutdown()
        server.server_close()
    assert pricer.price(attrs)[ext.USAGE_COST] == pytest.approx(before)


def test_prices_stay_offline_by_default() -> None:
    from spyglass.exporter import _cost
    from spyglass.exporter._settings import Settings

    assert Settings.from_env({}).prices_update_url is None
    assert Settings.from_env({"OTEL_SPYGLASS_PRICES_UPDATE": "true"}).prices_update_url.startswith("https://")
    assert _cost._updater is None
