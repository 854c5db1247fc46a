"""The web UI behind tokens: a tenant-scoped token sees its tenant only, on every page and JSON twin."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.store.server import request
from tests.store.ui_support import UIStore, running_store

ADMIN = "ui-admin-token"
ACME = "ui-acme-token"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIStore]:
    db = tmp_path_factory.mktemp("ui-tenants") / "spyglass.db"
    with running_store(db, "--auth-token", ADMIN, "--tenant-tokens", f"acme={ACME}", token=ADMIN) as store:
        yield store


def test_pages_need_a_token(ui: UIStore) -> None:
    for path in ("/traces", "/traces.json", "/stats", "/datasets", "/-/summary.json"):
        assert ui.get(path).status == 401, path
        assert ui.get(path, token="wrong").status == 401, path


def test_a_tenant_token_sees_only_its_tenant(ui: UIStore) -> None:
    acme = {s.span_id for s in ui.corpus.llm if s.tenant == "acme"}
    assert {i["tenant"] for i in ui.all_items(token=ADMIN)} == {"acme", "globex"}
    items = ui.all_items(token=ACME)
    assert {i["span_id"] for i in items} == acme
    # Asking for another tenant does not widen the scope.
    assert {i["tenant"] for i in ui.all_items({"tenant": "globex"}, token=ACME)} <= {"acme"}
    assert ui.json("/-/facets.json", ACME)["options"]["tenant"] == ["acme"]
    assert ui.json("/-/summary.json", ACME)["summary"]["count"] == len(acme)
    assert ui.json("/stats.json", ACME)["summary"]["count"] == len(acme)
    html = ui.get("/traces", ACME).text
    assert ui.corpus.spans["error_anthropic"].span_id not in html and ui.corpus.spans["openai"].span_id in html


def test_another_tenants_trace_is_not_found(ui: UIStore) -> None:
    globex = ui.corpus.spans["error_anthropic"]  # sent as tenant globex
    assert ui.get(f"/traces/{globex.trace_id}", ADMIN).status == 200
    assert ui.get(f"/traces/{globex.trace_id}", ACME).status == 404
    assert ui.get(f"/traces/{globex.trace_id}/spans/{globex.span_id}.json", ACME).status == 404
    part = f"/traces/{globex.trace_id}/spans/{globex.span_id}/part.json?path=input.0.0"
    assert ui.get(part, ACME).status == 404
    body = json.dumps({"dataset": "stolen", "trace_id": globex.trace_id, "span_id": globex.span_id}).encode()
    headers = {"content-type": "application/json", "Authorization": f"Bearer {ACME}"}
    assert request("POST", ui.url + "/datasets/-/add", body=body, headers=headers).status == 404
    assert ui.json("/datasets.json", ACME)["datasets"] == []
