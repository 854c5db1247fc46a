"""``spyglass demo``: the store, a sample LLM app traced zero-code through the exporter, and the UI URL.

The store starts exactly as ``spyglass serve`` would with the same flags. Once its sockets are bound, the sample
app (:mod:`spyglass.testing.sample_app`) runs in a child process under ``opentelemetry-instrument`` with
``OTEL_TRACES_EXPORTER=spyglass`` pointed at the store's OTLP/HTTP address: the app has no tracing code, the
Spyglass instrumentors and exporter are loaded from their entry points. Against the recorded responses the
package ships it needs no API key; ``--real`` calls the providers whose key is set instead. The child exits
only after its exporter has flushed, so when the URL is printed the traces are in the store. The browser is
opened only with ``--open``; the store keeps serving until Ctrl-C.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import urllib.parse
import webbrowser
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

from opentelemetry import environment_variables as otel_env
from opentelemetry.instrumentation.environment_variables import OTEL_PYTHON_DISABLED_INSTRUMENTATIONS

from spyglass.semconv import environment as env
from spyglass.store._errors import StoreError
from spyglass.store._server import Addresses, serve
from spyglass.store._settings import Settings

__all__ = ["DEMO_SERVICE_NAME", "app_command", "app_environment", "run_app", "run_demo"]

DEMO_SERVICE_NAME = "spyglass-demo"
_SAMPLE_APP = "spyglass.testing.sample_app"


def _reachable(url: str) -> str:
    """The address a local client uses for a server bound to ``url`` (wildcard hosts become loopback)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if host in ("0.0.0.0", ""):  # noqa: S104 - comparing, not binding
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return parts._replace(netloc=f"{shown}:{parts.port}").geturl()


def app_environment(traces_endpoint: str, base: Mapping[str, str], *, auth_token: str | None = None) -> dict[str, str]:
    """The child's environment: ``base`` plus the OTEL_* settings that send its traces, through the Spyglass
    exporter over OTLP/HTTP, to ``traces_endpoint`` (a full ``.../v1/traces`` URL: the store, Phoenix, a
    collector)."""
    out = dict(base)
    out.update(
        {
            env.OTEL_TRACES_EXPORTER: "spyglass",
            env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: traces_endpoint,
            env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
            env.OTEL_SERVICE_NAME: base.get(env.OTEL_SERVICE_NAME) or DEMO_SERVICE_NAME,
            # The demo shows traces; metrics and logs would go to an OTLP endpoint the store does not serve.
            otel_env.OTEL_METRICS_EXPORTER: "none",
            otel_env.OTEL_LOGS_EXPORTER: "none",
            # Only Spyglass's instrumentors: another OpenAI instrumentor installed next to ours would record each
            # call twice, and the sample app uses no DSPy.
            OTEL_PYTHON_DISABLED_INSTRUMENTATIONS: ",".join(_disabled_instrumentors()),
        }
    )
    if auth_token:
        # Header values are URL-encoded in the OTEL_EXPORTER_OTLP_*_HEADERS format.
        out[env.OTEL_EXPORTER_OTLP_TRACES_HEADERS] = "authorization=" + urllib.parse.quote(f"Bearer {auth_token}")
    return out


def _disabled_instrumentors() -> list[str]:
    names = {ep.name for ep in entry_points(group="opentelemetry_instrumentor")}
    return sorted(n for n in names if not n.startswith("spyglass_") or n == "spyglass_dspy")


def app_command(*, real: bool = False) -> list[str]:
    """``opentelemetry-instrument python -m spyglass.testing.sample_app``, with this interpreter."""
    launcher = (
        "import sys; from opentelemetry.instrumentation.auto_instrumentation import run; "
        "sys.argv[0] = 'opentelemetry-instrument'; run()"
    )
    command = [sys.executable, "-c", launcher, sys.executable, "-m", _SAMPLE_APP]
    if real:
        command.append("--real")
    return command


def run_app(
    traces_endpoint: str,
    *,
    auth_token: str | None = None,
    real: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    """Run the sample app zero-code, sending to ``traces_endpoint``; its output lines go to ``echo``.

    Returns the app's exit status. The app exits after its exporter has flushed.
    """
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        app_command(real=real),
        env=app_environment(traces_endpoint, os.environ, auth_token=auth_token),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        echo("demo: " + line.rstrip("\n"))
    return process.wait()


def run_demo(
    settings: Settings,
    *,
    real: bool = False,
    open_browser: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the store, run the sample app once it listens, print where to look; serve until interrupted."""
    missing = [name for name in ("openai", "anthropic") if importlib.util.find_spec(name) is None]
    if missing:
        raise StoreError(
            f"spyglass demo drives the {' and '.join(missing)} SDK: pip install 'spyglass[store,openai,anthropic]'"
        )

    def after_ready(addresses: Addresses) -> None:
        how = "the providers whose API key is set" if real else "recorded provider responses on 127.0.0.1"
        echo(f"demo: running the sample LLM app against {how}, traced zero-code (OTEL_TRACES_EXPORTER=spyglass)")
        endpoint = _reachable(addresses.otlp_http) + "/v1/traces"
        status = run_app(endpoint, auth_token=settings.auth_token, real=real, echo=echo)
        url = _reachable(addresses.api) + "/"
        if status != 0:
            echo(f"demo: the sample app exited with status {status}; what it sent is in the store")
        echo(f"demo: open {url} to see the traces (Ctrl-C stops the store)")
        if open_browser:
            webbrowser.open(url)
        sys.stdout.flush()

    def ready(addresses: Addresses) -> None:
        for line in addresses.lines():
            echo(line)
        sys.stdout.flush()
        # The sockets are bound and listening: the app's connections wait in the backlog until uvicorn accepts.
        threading.Thread(target=after_ready, args=(addresses,), name="spyglass-demo-app", daemon=True).start()

    try:
        serve(settings, ready=ready)
    except OSError as exc:
        # Most often another collector or store already holds 4317/4318/4319.
        raise StoreError(
            f"cannot listen ({exc}): another program uses one of the ports; pass --port, --otlp-grpc-port and "
            "--otlp-http-port (0 picks a free port)"
        ) from None
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C it shut down on; for the demo that is the normal way out.
        echo("demo: stopped")
