"""The ``spyglass`` click group: ``serve``, ``tail``, ``search``, ``stats``, ``export``.

Commands are thin: they parse options and call the library. Option sets are decorators defined once
(:func:`serve_options`, :func:`source_options`, :func:`filter_options`) so other commands (``spyglass demo``)
take exactly the same flags; :func:`settings_from_options` turns the serve options into :class:`Settings`.
Expected failures print ``Error: message`` and exit 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from spyglass.semconv import environment as env
from spyglass.store import _settings as s
from spyglass.store._errors import StoreError

F = TypeVar("F", bound=Callable[..., Any])


def _compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(fn: F) -> F:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return s.parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _age(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return s.parse_age(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _tenant_tokens(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, str]:
    try:
        return s.parse_tenant_tokens(value or "")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _port(value: int) -> int | None:
    return None if value < 0 else value


serve_options = _compose(
    click.option(
        "--host",
        default=s.DEFAULT_HOST,
        show_default=True,
        envvar=env.OTEL_SPYGLASS_STORE_HOST,
        help="Address to listen on (a non-loopback address needs --auth-token or --insecure).",
    ),
    click.option(
        "--port",
        type=int,
        default=s.DEFAULT_PORT,
        show_default=True,
        envvar=env.OTEL_SPYGLASS_STORE_PORT,
        help="API and web UI port (0 picks a free one).",
    ),
    click.option(
        "--otlp-grpc-port",
        type=int,
        default=s.DEFAULT_OTLP_GRPC_PORT,
        show_default=True,
        envvar=env.OTEL_SPYGLASS_STORE_OTLP_GRPC_PORT,
        help="OTLP/gRPC port (0 free, -1 off).",
    ),
    click.option(
        "--otlp-http-port",
        type=int,
        default=s.DEFAULT_OTLP_HTTP_PORT,
        show_default=True,
        envvar=env.OTEL_SPYGLASS_STORE_OTLP_HTTP_PORT,
        help="OTLP/HTTP port (0 free, -1: only on the API port).",
    ),
    click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        envvar=env.OTEL_SPYGLASS_STORE_DB,
        help="Database file [default: under the user data directory].",
    ),
    click.option(
        "--auth-token",
        default=None,
        envvar=env.OTEL_SPYGLASS_STORE_AUTH_TOKEN,
        help="Require Authorization: Bearer <token> on the API, UI and OTLP.",
    ),
    click.option(
        "--tenant-tokens",
        default=None,
        envvar=env.OTEL_SPYGLASS_STORE_TENANT_TOKENS,
        callback=_tenant_tokens,
        help="tenant=token,... tokens limited to one tenant.",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        default=False,
        envvar=env.OTEL_SPYGLASS_STORE_INSECURE,
        help="Allow a non-loopback address without a token.",
    ),
    click.option(
        "--max-request-size",
        default="32MiB",
        show_default=True,
        callback=_size,
        envvar=env.OTEL_SPYGLASS_STORE_MAX_REQUEST_SIZE,
        help="Largest OTLP request (413 above).",
    ),
    click.option(
        "--max-pending-spans",
        type=int,
        default=s.DEFAULT_MAX_PENDING_SPANS,
        show_default=True,
        envvar=env.OTEL_SPYGLASS_STORE_MAX_PENDING_SPANS,
        help="Spans waiting to be written before senders are told to retry.",
    ),
    click.option(
        "--retention-age",
        default=None,
        callback=_age,
        envvar=env.OTEL_SPYGLASS_STORE_RETENTION_AGE,
        help="Delete spans older than this (30d, 12h).",
    ),
    click.option(
        "--retention-size",
        default=None,
        callback=_size,
        envvar=env.OTEL_SPYGLASS_STORE_RETENTION_SIZE,
        help="Delete the oldest spans above this database size (10GB).",
    ),
)
"""The ``serve`` flags, shared by every command that starts a server."""


def settings_from_options(**options: Any) -> s.Settings:
    """:class:`Settings` from the keyword arguments :data:`serve_options` gives a command."""
    return s.Settings(
        db=options["db"] or s.default_db_path(),
        host=options["host"],
        port=options["port"],
        otlp_grpc_port=_port(options["otlp_grpc_port"]),
        otlp_http_port=_port(options["otlp_http_port"]),
        auth_token=options["auth_token"] or None,
        tenant_tokens=options["tenant_tokens"] or {},
        allow_insecure=options["insecure"],
        max_request_bytes=options["max_request_size"] or s.DEFAULT_MAX_REQUEST_BYTES,
        max_pending_spans=options["max_pending_spans"],
        retention_age_s=options["retention_age"],
        retention_bytes=options["retention_size"],
    )


source_options = _compose(
    click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        envvar=env.OTEL_SPYGLASS_STORE_DB,
        help="Read this database file directly.",
    ),
    click.option(
        "--url",
        default=None,
        envvar=env.OTEL_SPYGLASS_STORE_URL,
        help="Or ask a running server (http://127.0.0.1:4319).",
    ),
    click.option("--token", default=None, envvar=env.OTEL_SPYGLASS_STORE_AUTH_TOKEN, help="Bearer token for --url."),
)

filter_options = _compose(
    click.option("--model", multiple=True, help="Answering model (repeatable)."),
    click.option("--provider", multiple=True, help="Provider (repeatable)."),
    click.option("--status", multiple=True, type=click.Choice(["success", "error", "timeout"])),
    click.option("--service", multiple=True),
    click.option("--tenant", multiple=True),
    click.option("--user", multiple=True),
    click.option("--session", multiple=True),
    click.option("--since", default=None, help="ISO time or age: 15m, 2h, 7d."),
    click.option("--until", default=None),
    click.option("--min-duration-ms", type=float, default=None),
    click.option("--min-cost", type=float, default=None),
)

_FILTER_KEYS = (
    "model",
    "provider",
    "status",
    "service",
    "tenant",
    "user",
    "session",
    "since",
    "until",
    "min_duration_ms",
    "min_cost",
)


def _params(options: Mapping[str, Any], *, q: str | None = None, llm: bool | None = True) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key in _FILTER_KEYS:
        value = options.get(key)
        if value is None or value == ():
            continue
        out[key] = [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
    if q:
        out["q"] = [q]
    if llm is not None:
        out["llm"] = ["true" if llm else "false"]
    return out


def _source(db: Path | None, url: str | None, token: str | None) -> Any:
    from spyglass.store._source import LocalSource, RemoteSource

    if url:
        return RemoteSource(url, token)
    return LocalSource(db or s.default_db_path())


class _Group(click.Group):
    """Turns expected failures into ``Error: message`` and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise click.ClickException(exc.message) from None
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None


def _version() -> str:
    from spyglass.store.cli import version

    return version()


@click.group(cls=_Group)
@click.version_option(_version(), "--version", "-V", prog_name="spyglass", message="%(prog)s %(version)s")
def cli() -> None:
    """Spyglass: OpenTelemetry-native tracing for LLM applications."""


@cli.command()
@serve_options
def serve(**options: Any) -> None:
    """Run the trace store: OTLP receivers, API and web UI, one process."""
    from spyglass.store._server import serve as run

    settings = settings_from_options(**options)

    def ready(addresses: Any) -> None:
        for line in addresses.lines():
            click.echo(line)
        sys.stdout.flush()

    run(settings, ready=ready)


@cli.command()
@serve_options
@click.option("--real", is_flag=True, help="Call the providers whose key is set (OPENAI_API_KEY, ANTHROPIC_API_KEY).")
@click.option("--open", "open_browser", is_flag=True, help="Open the web UI in a browser once the traces are in.")
def demo(real: bool, open_browser: bool, **options: Any) -> None:
    """Run the store, trace a sample LLM app into it, print the UI URL."""
    from spyglass.store._demo import run_demo

    run_demo(settings_from_options(**options), real=real, open_browser=open_browser, echo=click.echo)


# --- tail ----------------------------------------------------------------------------------------


# Prompt and response text is untrusted: terminal control characters (escape sequences could retitle or
# rewrite the terminal) are shown as \xNN instead of being sent to it. Newlines and tabs stay.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0, 9), *range(11, 32), *range(127, 160)]}


def _safe(text: str | None) -> str:
    return (text or "").translate(_CONTROL)


def _fmt_cost(cost: float | None) -> str:
    return "-" if cost is None else f"${cost:.6f}".rstrip("0").rstrip(".")


def _header(item: Mapping[str, Any]) -> str:
    tokens = f"{item.get('input_tokens') or 0} in / {item.get('output_tokens') or 0} out"
    model = item.get("model") or "?"
    if item.get("alias"):
        model += f" (asked {item['alias']})"
    return (
        f"{item['timestamp']}  {_safe(item.get('provider')) or '?'} {_safe(model)}  {item['status']}  "
        f"{item['duration_ms']:.0f} ms  {tokens}  {_fmt_cost(item.get('cost'))}  trace {item['trace_id']}"
    )


def _print_call(item: Mapping[str, Any], console: Any | None) -> None:
    if console is None:
        click.echo("=" * 100)
        click.echo(_header(item))
        click.echo("-- prompt " + "-" * 90)
        click.echo(_safe(item.get("input_text")) or "(no prompt captured)")
        click.echo("-- response " + "-" * 88)
        click.echo(_safe(item.get("output_text") or item.get("status_message")) or "(no response captured)")
        return
    from rich.panel import Panel
    from rich.text import Text

    # Prompt and response are untrusted: rich Text objects, never markup.
    body = Text()
    body.append("Prompt\n", style="bold cyan")
    body.append(_safe(item.get("input_text")) or "(no prompt captured)")
    body.append("\n\nResponse\n", style="bold green" if item["status"] == "success" else "bold red")
    body.append(_safe(item.get("output_text") or item.get("status_message")) or "(no response captured)")
    style = "green" if item["status"] == "success" else "red"
    console.print(Panel(body, title=Text(_header(item)), title_align="left", border_style=style))


@cli.command()
@click.option("-n", "count", type=click.IntRange(1, 1000), default=1, show_default=True, help="How many LM calls.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new calls as they arrive.")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between polls (--follow).")
@source_options
@filter_options
def tail(
    count: int, follow: bool, interval: float, db: Path | None, url: str | None, token: str | None, **filters: Any
) -> None:
    """Print the last N LM calls with their full prompt and response (like dspy.inspect_history)."""
    source = _source(db, url, token)
    console = None
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console()
    params = _params(filters)
    page = source.search(params, sort="-start", limit=count)
    items = list(reversed(page["items"]))
    seen = {it["id"] for it in items}
    for item in items:
        _print_call(item, console)
    while follow:
        time.sleep(interval)
        fresh = [it for it in source.search(params, sort="-start", limit=200)["items"] if it["id"] not in seen]
        for item in sorted(fresh, key=lambda it: (it["start_ns"], it["id"])):
            seen.add(item["id"])
            _print_call(item, console)
        sys.stdout.flush()


# --- search and stats ----------------------------------------------------------------------------


def _preview(text: str | None, width: int = 60) -> str:
    flat = " ".join(_safe(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _table(title: str, columns: list[str], rows: Iterable[list[str]]) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join(row))


@cli.command()
@click.argument("query", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--sort", default="-start", show_default=True, help="start, duration, cost (- for descending).")
@click.option("--all-spans", is_flag=True, help="Every span, not only LM calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@source_options
@filter_options
def search(
    query: str | None,
    limit: int,
    sort: str,
    all_spans: bool,
    as_json: bool,
    db: Path | None,
    url: str | None,
    token: str | None,
    **filters: Any,
) -> None:
    """Search spans: full text QUERY plus filters."""
    source = _source(db, url, token)
    page = source.search(_params(filters, q=query, llm=None if all_spans else True), sort=sort, limit=limit)
    if as_json:
        click.echo(json.dumps(page, indent=2, ensure_ascii=False))
        return
    rows = [
        [
            it["timestamp"],
            _safe(it.get("model") or it["name"]),
            it["status"],
            f"{it['duration_ms']:.0f}",
            str((it.get("input_tokens") or 0) + (it.get("output_tokens") or 0)),
            _fmt_cost(it.get("cost")),
            _preview(it.get("input_text")),
            f"{it['trace_id']}/{it['span_id']}",
        ]
        for it in page["items"]
    ]
    _table("spans", ["time", "model", "status", "ms", "tokens", "cost", "input", "trace/span"], rows)


@cli.command()
@click.option(
    "--group-by",
    type=click.Choice(["model", "provider", "service", "tenant", "status", "operation", "alias", "user", "session"]),
    default=None,
)
@click.option("--bucket", default=None, help="Time buckets: 5m, 1h, 1d or auto.")
@click.option("--json", "as_json", is_flag=True)
@source_options
@filter_options
def stats(
    group_by: str | None,
    bucket: str | None,
    as_json: bool,
    db: Path | None,
    url: str | None,
    token: str | None,
    **filters: Any,
) -> None:
    """Request count, latency percentiles, failure rate, tokens and cost."""
    source = _source(db, url, token)
    data = source.stats(_params(filters, llm=None), group_by=group_by, bucket=bucket)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return

    def row(key: str, d: Mapping[str, Any]) -> list[str]:
        lat = d["latency_ms"]
        ms = [("-" if lat[p] is None else f"{lat[p]:.0f}") for p in ("p50", "p90", "p99")]
        return [
            key,
            str(d["count"]),
            f"{d['failure_rate']:.1%}",
            *ms,
            str(d["tokens"]["input"]),
            str(d["tokens"]["output"]),
            _fmt_cost(d["cost"]),
        ]

    rows = [row("all", data)] + [row(str(g["key"]), g) for g in data["groups"]]
    rows += [row(b["start"], b) for b in data["buckets"]]
    _table(
        "requests", [group_by or "", "count", "failed", "p50 ms", "p90 ms", "p99 ms", "in tok", "out tok", "cost"], rows
    )


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "finetune"]), default="jsonl", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: standard output).",
)
@click.argument("query", required=False)
@click.option("--all-spans", is_flag=True, help="Every span, not only LM calls.")
@source_options
@filter_options
def export(
    fmt: str,
    output: Path | None,
    query: str | None,
    all_spans: bool,
    db: Path | None,
    url: str | None,
    token: str | None,
    **filters: Any,
) -> None:
    """Export the filtered spans as CSV (formula-safe), JSONL or OpenAI fine-tuning JSONL."""
    source = _source(db, url, token)
    params = _params(filters, q=query, llm=None if all_spans else True)
    chunks = source.export(params, fmt)
    if output is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    # The bar counts records (lines; a CSV cell with a newline makes it run a little ahead).
    total = source.count(params) if fmt != "finetune" else None
    with (
        output.open("w", encoding="utf-8", newline="") as fh,
        Progress(
            TextColumn("exporting"),
            BarColumn(),
            TextColumn("{task.completed:,.0f} records"),
            TimeElapsedColumn(),
            disable=not sys.stderr.isatty(),
        ) as progress,
    ):
        task = progress.add_task("export", total=None if total is None else total + (1 if fmt == "csv" else 0))
        for chunk in chunks:
            fh.write(chunk)
            progress.advance(task, chunk.count("\n"))
    click.echo(f"wrote {output}", err=True)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="spyglass", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
