"""Cost of an LM call from its span attributes, priced offline by ``genai-prices`` (plus user overrides).

Usage::

    from spyglass.exporter import price
    price(span.attributes, timestamp=start)  # {"gen_ai.usage.cost": 0.0042, "spyglass.cost.input": ...}

Token accounting follows the GenAI conventions: ``gen_ai.usage.input_tokens`` *includes* cache reads and
cache writes and ``gen_ai.usage.output_tokens`` includes reasoning tokens, so the uncached input and the
non-reasoning output are what is left after subtracting them. A call that cannot be priced gets
``spyglass.cost.unpriced = true`` and a reason, never a cost of 0.

Overrides (``OTEL_SPYGLASS_PRICES_FILE``, JSON, or YAML when PyYAML is installed)::

    {"models": [{"model": "my-finetune-*", "provider": "openai",
                 "input_mtok": 3.0, "output_mtok": 12.0, "cache_read_mtok": 1.5}]}

``model`` is an exact name or a ``fnmatch`` pattern (case-insensitive); ``provider`` is optional; prices are
USD per million tokens (``cache_write_mtok`` and ``reasoning_mtok`` are optional too). An override wins over
the bundled database. Offline by default: the database is the snapshot shipped with the package; with
``OTEL_SPYGLASS_PRICES_UPDATE`` the exporter refreshes it hourly in the background (:func:`start_price_updates`),
and cached rates are dropped whenever the data changes.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai

_log = logging.getLogger(__name__)

__all__ = ["PriceOverride", "Pricer", "load_price_overrides", "price", "start_price_updates", "stop_price_updates"]

# gen_ai.provider.name values whose genai-prices id differs (or would be mis-matched by substring:
# "azure.ai.openai" contains "openai").
_PROVIDER_IDS: dict[str, str] = {
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "gcp.vertex_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "moonshot_ai": "moonshotai",
}
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})  # noqa: S104 (a name, not a bind)
_MTOK = Decimal(1_000_000)
_ZERO = Decimal(0)


@dataclass(frozen=True)
class PriceOverride:
    """A user price: USD per million tokens for models matching ``model`` (exact or fnmatch pattern)."""

    model: str
    input_mtok: Decimal
    output_mtok: Decimal
    provider: str | None = None
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None
    reasoning_mtok: Decimal | None = None

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider is not None and provider is not None and self.provider.lower() != provider.lower():
            return False
        return fnmatch.fnmatchcase(model.lower(), self.model.lower())


def _decimal(entry: Mapping[str, Any], key: str, *, required: bool) -> Decimal | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise ValueError(f"price override {entry.get('model')!r}: missing {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"price override {entry.get('model')!r}: {key!r} must be a number, got {value!r}")
    try:
        result = Decimal(str(value))
    except ArithmeticError as exc:
        raise ValueError(f"price override {entry.get('model')!r}: {key!r} is not a number: {value!r}") from exc
    if result < 0 or not result.is_finite():
        raise ValueError(f"price override {entry.get('model')!r}: {key!r} must be >= 0, got {value!r}")
    return result


def _parse_document(text: str, path: Path) -> Any:
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - pyyaml ships with the store extra
            raise ValueError(f"{path}: YAML needs PyYAML (pip install pyyaml), or use JSON") from exc
        return yaml.safe_load(text)
    return json.loads(text)


def load_price_overrides(path: str | Path) -> tuple[PriceOverride, ...]:
    """Read a price-override file; raise ``ValueError`` naming the file and the bad entry."""
    path = Path(path)
    try:
        document = _parse_document(path.read_text(encoding="utf-8"), path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read price overrides from {path}: {exc}") from exc
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, list):
        raise ValueError(f"{path}: expected an object with a 'models' list")
    out: list[PriceOverride] = []
    for entry in models:
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
            raise ValueError(f"{path}: every entry needs a 'model' string, got {entry!r}")
        provider = entry.get("provider")
        if provider is not None and not isinstance(provider, str):
            raise ValueError(f"{path}: 'provider' of {entry['model']!r} must be a string")
        input_mtok = _decimal(entry, "input_mtok", required=True)
        output_mtok = _decimal(entry, "output_mtok", required=True)
        assert input_mtok is not None and output_mtok is not None
        out.append(
            PriceOverride(
                model=entry["model"],
                provider=provider,
                input_mtok=input_mtok,
                output_mtok=output_mtok,
                cache_read_mtok=_decimal(entry, "cache_read_mtok", required=False),
                cache_write_mtok=_decimal(entry, "cache_write_mtok", required=False),
                reasoning_mtok=_decimal(entry, "reasoning_mtok", required=False),
            )
        )
    return tuple(out)


def _count(value: Any) -> int:
    """A token count attribute as a non-negative int (anything else counts as 0)."""
    if type(value) is int:
        return value if value > 0 else 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(int(value), 0)


_NS_PER_DAY = 86_400 * 1_000_000_000


class _Tokens(NamedTuple):
    input: int  # all input, cache included (spec)
    output: int  # all output, reasoning included (spec)
    cache_read: int
    cache_write: int
    reasoning: int

    @property
    def uncached_input(self) -> int:
        return max(self.input - self.cache_read - self.cache_write, 0)


def _unpriced(reason: str) -> dict[str, Any]:
    return {ext.COST_UNPRICED: True, ext.COST_UNPRICED_REASON: reason}


def _result(source: str, total: Decimal, parts: Mapping[str, Decimal]) -> dict[str, Any]:
    out: dict[str, Any] = {ext.USAGE_COST: float(total), ext.COST_CURRENCY: "USD", ext.COST_SOURCE: source}
    for key, value in parts.items():
        out[key] = float(value)
    return out


class Pricer:
    """Prices spans: user overrides first, then the bundled ``genai-prices`` snapshot. Thread-safe.

    Lookups are cached per (provider, model, address); the span's start time selects historic prices.
    """

    def __init__(self, overrides: tuple[PriceOverride, ...] = ()) -> None:
        self._overrides = overrides
        self._lock = threading.Lock()
        self._misses: dict[tuple[str | None, str, str | None], str] = {}
        self._rates: dict[tuple[str | None, str, str | None, Any], _Rates] = {}
        try:
            import genai_prices
            from genai_prices.data_snapshot import get_snapshot

            self._genai_prices: Any = genai_prices
            self._current_snapshot: Any = get_snapshot
        except ImportError:  # the cost extra is optional
            self._genai_prices = None
            self._current_snapshot = lambda: None
        self._snapshot: Any = self._current_snapshot()

    @property
    def overrides(self) -> tuple[PriceOverride, ...]:
        return self._overrides

    def price(self, attributes: Mapping[str, Any], timestamp: datetime | None = None) -> dict[str, Any]:
        """Cost attributes (``spyglass.semconv.extensions`` names) for one span's attributes.

        Returns ``{}`` for spans that are not LM calls with usage (no model, no token counts), the cost and
        its breakdown when priced, and ``{unpriced: true, unpriced_reason: ...}`` otherwise.
        """
        when = timestamp or datetime.now(tz=timezone.utc)
        return self._price(attributes, when.date(), when)

    def price_ns(self, attributes: Mapping[str, Any], start_ns: int) -> dict[str, Any]:
        """:meth:`price` at a span's start time in nanoseconds since the epoch (``0``: now), without building a
        ``datetime`` per span: rates are cached per UTC day."""
        if not start_ns:
            return self.price(attributes)
        return self._price(attributes, start_ns // _NS_PER_DAY, start_ns)

    def _price(self, attributes: Mapping[str, Any], day: Any, when: datetime | int) -> dict[str, Any]:
        get = attributes.get
        inp = get(gen_ai.USAGE_INPUT_TOKENS)
        out = get(gen_ai.USAGE_OUTPUT_TOKENS)
        if (
            inp is None
            and out is None
            and not (gen_ai.USAGE_INPUT_TOKENS in attributes or gen_ai.USAGE_OUTPUT_TOKENS in attributes)
        ):
            return {}  # not an LM call with usage
        model = get(gen_ai.RESPONSE_MODEL) or get(gen_ai.REQUEST_MODEL)
        if not isinstance(model, str) or not model:
            return _unpriced("no_model")
        cache_read = get(gen_ai.USAGE_CACHE_READ_INPUT_TOKENS)
        cache_write = get(gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS)
        reasoning = get(gen_ai.USAGE_REASONING_OUTPUT_TOKENS)
        tokens = (
            _count(inp),
            _count(out),
            _count(cache_read) if cache_read is not None else 0,
            (_count(cache_write) if cache_write is not None else 0)
            or _count(get(gen_ai.DEPRECATED_USAGE_CACHE_CREATION_INPUT_TOKENS)),
            _count(reasoning) if reasoning is not None else 0,
        )
        provider = get(gen_ai.PROVIDER_NAME) or get(gen_ai.DEPRECATED_SYSTEM)
        provider = provider if isinstance(provider, str) else None
        address = get(gen_ai.SERVER_ADDRESS)
        address = address if isinstance(address, str) and address not in _LOCAL_HOSTS else None
        for override in self._overrides:
            if override.matches(provider, model):
                return self._price_override(override, _Tokens(*tokens))
        if self._genai_prices is None:
            return _unpriced("genai_prices_not_installed")
        return self._price_database(provider, model, address, tokens, day, when)

    @staticmethod
    def _price_override(o: PriceOverride, t: _Tokens) -> dict[str, Any]:
        parts = {
            ext.COST_INPUT: t.uncached_input * o.input_mtok / _MTOK,
            ext.COST_CACHE_READ: t.cache_read
            * (o.cache_read_mtok if o.cache_read_mtok is not None else o.input_mtok)
            / _MTOK,
            ext.COST_CACHE_WRITE: t.cache_write
            * (o.cache_write_mtok if o.cache_write_mtok is not None else o.input_mtok)
            / _MTOK,
        }
        if o.reasoning_mtok is not None:
            parts[ext.COST_OUTPUT] = max(t.output - t.reasoning, 0) * o.output_mtok / _MTOK
            parts[ext.COST_REASONING] = t.reasoning * o.reasoning_mtok / _MTOK
        else:
            parts[ext.COST_OUTPUT] = t.output * o.output_mtok / _MTOK
        return _result("override", sum(parts.values(), Decimal(0)), parts)

    def _price_database(
        self,
        provider: str | None,
        model: str,
        address: str | None,
        tokens: tuple[int, int, int, int, int],
        day: Any,
        when: datetime | int,
    ) -> dict[str, Any]:
        snapshot = self._current_snapshot()
        if snapshot is not self._snapshot:  # prices were refreshed (OTEL_SPYGLASS_PRICES_UPDATE)
            with self._lock:
                self._rates.clear()
                self._misses.clear()
                self._snapshot = snapshot
        key = (provider, model, address, day)
        rates = self._rates.get(key)
        if rates is None:
            at = datetime.fromtimestamp(when / 1e9, tz=timezone.utc) if isinstance(when, int) else when
            found = self._lookup(provider, model, address, at)
            if isinstance(found, str):
                return _unpriced(found)
            rates = found
            with self._lock:
                if len(self._rates) > 10_000:
                    self._rates.clear()
                self._rates[key] = rates
        return rates.result(_Tokens(*tokens))

    def _lookup(self, provider: str | None, model: str, address: str | None, when: datetime) -> _Rates | str:
        """The model's prices at ``when`` (cached per day by the caller), or the reason there are none."""
        gp = self._genai_prices
        miss_key = (provider, model, address)
        miss = self._misses.get(miss_key)
        if miss is not None:
            return miss
        attempts: list[dict[str, Any]] = []
        if address is not None:
            attempts.append({"provider_api_url": f"https://{address}"})
        if provider is not None:
            attempts.append({"provider_id": _PROVIDER_IDS.get(provider, provider)})
        attempts.append({})
        probe = gp.Usage(input_tokens=1, output_tokens=1)
        for kwargs in attempts:
            try:
                calc = gp.calc_price(probe, model, genai_request_timestamp=when, **kwargs)
            except LookupError:
                continue
            return _Rates(calc.model_price)
        with self._lock:
            if len(self._misses) < 10_000:
                self._misses[miss_key] = "unknown_model"
        return "unknown_model"


class _Rates:
    """One model's per-million-token prices, resolved once; costs per span are then a few multiplications.

    Gives the same totals as ``genai_prices.calc_price`` for token usage (a test checks it), including tiered
    prices, which go through genai-prices' own ``calc_unit_price``.
    """

    __slots__ = ("cache_read", "cache_write", "input", "output", "reasoning", "simple")

    def __init__(self, model_price: Any) -> None:
        def rate(name: str) -> Any:
            return getattr(model_price, name, None)

        self.input = rate("input_mtok")
        self.output = rate("output_mtok")
        self.cache_read = rate("cache_read_mtok") if rate("cache_read_mtok") is not None else self.input
        self.cache_write = rate("cache_write_mtok") if rate("cache_write_mtok") is not None else self.input
        self.reasoning = rate("output_reasoning_mtok")
        # Every rate a plain Decimal (most models): result() prices in floats, which the attributes are anyway
        # (count * rate is exact for the usual rates, and one correctly rounded division gives float(Decimal));
        # tiered prices take the Decimal path through genai-prices.
        rates = (self.input, self.cache_read, self.cache_write, self.output)
        plain = all(isinstance(r, Decimal) for r in rates)
        if plain and (self.reasoning is None or isinstance(self.reasoning, Decimal)):
            self.simple: tuple[float, ...] | None = tuple(float(r) for r in rates) + (
                (float(self.reasoning),) if self.reasoning is not None else ()
            )
        else:
            self.simple = None

    def parts(self, t: _Tokens) -> dict[str, Decimal]:
        def cost(rate: Any, count: int) -> Decimal:
            if rate is None or count <= 0:
                return Decimal(0)
            if isinstance(rate, Decimal):
                return rate * count / _MTOK
            from genai_prices.types import calc_unit_price  # tiered prices

            return Decimal(calc_unit_price(rate, count, t.input, 1_000_000))

        parts = {
            ext.COST_INPUT: cost(self.input, t.uncached_input),
            ext.COST_CACHE_READ: cost(self.cache_read, t.cache_read),
            ext.COST_CACHE_WRITE: cost(self.cache_write, t.cache_write),
        }
        if self.reasoning is not None:
            parts[ext.COST_OUTPUT] = cost(self.output, max(t.output - t.reasoning, 0))
            parts[ext.COST_REASONING] = cost(self.reasoning, t.reasoning)
        else:
            parts[ext.COST_OUTPUT] = cost(self.output, t.output)
        return parts

    def result(self, t: _Tokens) -> dict[str, Any]:
        simple = self.simple
        if simple is None:
            parts = self.parts(t)
            return _result("genai-prices", sum(parts.values(), _ZERO), parts)
        uncached = t.input - t.cache_read - t.cache_write
        cost_input = uncached * simple[0] / 1e6 if uncached > 0 else 0.0
        cost_read = t.cache_read * simple[1] / 1e6
        cost_write = t.cache_write * simple[2] / 1e6
        out: dict[str, Any] = {ext.USAGE_COST: 0.0, ext.COST_CURRENCY: "USD", ext.COST_SOURCE: "genai-prices"}
        out[ext.COST_INPUT] = cost_input
        out[ext.COST_CACHE_READ] = cost_read
        out[ext.COST_CACHE_WRITE] = cost_write
        if len(simple) == 5:
            rest = t.output - t.reasoning
            cost_output = rest * simple[3] / 1e6 if rest > 0 else 0.0
            cost_reasoning = t.reasoning * simple[4] / 1e6
            out[ext.COST_OUTPUT] = cost_output
            out[ext.COST_REASONING] = cost_reasoning
            out[ext.USAGE_COST] = cost_input + cost_read + cost_write + cost_output + cost_reasoning
        else:
            cost_output = t.output * simple[3] / 1e6
            out[ext.COST_OUTPUT] = cost_output
            out[ext.USAGE_COST] = cost_input + cost_read + cost_write + cost_output
        return out


_default: Pricer | None = None
_default_lock = threading.Lock()
_updater: Any = None


def start_price_updates(url: str, interval_s: float = 3600.0) -> bool:
    """Refresh the genai-prices data from ``url`` in genai-prices' background thread (once per process).

    Never blocks: the first fetch happens in the background and the bundled data is used until it lands; a
    failed fetch is logged by genai-prices and the previous data stays. Returns whether updates are running.
    """
    global _updater
    with _default_lock:
        if _updater is not None:
            return True
        try:
            from genai_prices import UpdatePrices
        except ImportError:
            _log.warning("price updates need genai-prices (pip install 'spyglass[cost]')")
            return False
        updater = UpdatePrices(url=url, update_interval=interval_s)
        updater.start(wait=False)
        _updater = updater
        return True


def stop_price_updates() -> None:
    """Stop the background refresh (fetched prices stay in use)."""
    global _updater
    with _default_lock:
        if _updater is not None:
            _updater.stop()
            _updater = None


def _default_pricer() -> Pricer:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from spyglass.exporter._settings import Settings

                _default = Pricer(Settings.from_env().price_overrides)
    return _default


def price(attributes: Mapping[str, Any], timestamp: datetime | None = None) -> dict[str, Any]:
    """Cost attributes for one span's attributes, with the process-wide :class:`Pricer`.

    The overrides file (``OTEL_SPYGLASS_PRICES_FILE``) is read on the first call. ``timestamp`` is the
    request time (the span start) and selects historic prices; ``None`` means now.
    """
    return _default_pricer().price(attributes, timestamp)
