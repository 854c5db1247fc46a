"""Browsers behind a token: page visits go to a login form that sets an HttpOnly cookie; APIs still get 401."""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator

import pytest

from tests.store.ui_support import UIStore, running_store

TOKEN = "ui-login-token"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIStore]:
    db = tmp_path_factory.mktemp("ui-login") / "spyglass.db"
    with running_store(db, "--auth-token", TOKEN, token=TOKEN) as store:
        yield store


def _send(
    ui: UIStore, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """One request, redirects not followed (urllib would follow them)."""
    parts = urllib.parse.urlsplit(ui.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _login(ui: UIStore, token: str, next_path: str) -> http.client.HTTPResponse:
    form = urllib.parse.urlencode({"token": token, "next": next_path})
    headers = {"content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin"}
    return _send(ui, "POST", "/-/login", form, headers)


def test_a_page_visit_without_token_goes_to_the_login_form(ui: UIStore) -> None:
    response = _send(ui, "GET", "/stats?since=7d", headers={"accept": "text/html"})
    assert response.status == 303
    assert response.getheader("location") == "/-/login?next=%2Fstats%3Fsince%3D7d"
    form = ui.get("/-/login")
    assert form.status == 200
    assert 'name="token"' in form.text and 'type="password"' in form.text
    assert ui.get("/-/static/spyglass.css").status == 200  # the form is styled without a token


def test_apis_and_json_twins_still_answer_401(ui: UIStore) -> None:
    for path in ("/traces.json", "/api/v1/spans", "/-/summary.json"):
        response = _send(ui, "GET", path, headers={"accept": "text/html,application/json"})
        assert response.status == 401, path


def test_a_wrong_token_is_refused(ui: UIStore) -> None:
    response = _login(ui, "not-the-token", "/stats")
    assert response.status == 401
    assert response.getheader("set-cookie") is None


def test_the_right_token_sets_an_httponly_strict_cookie_that_opens_the_pages(ui: UIStore) -> None:
    response = _login(ui, TOKEN, "/stats")
    assert response.status == 303
    assert response.getheader("location") == "/stats"
    cookie = response.getheader("set-cookie") or ""
    assert cookie.startswith(f"spyglass_token={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = _send(ui, "GET", "/traces", headers={"accept": "text/html", "cookie": f"spyglass_token={TOKEN}"})
    assert page.status == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_next_never_leaves_the_site(ui: UIStore, target: str) -> None:
    response = _login(ui, TOKEN, target)
    assert response.status == 303
    assert response.getheader("location") == "/traces"


def test_login_from_another_site_is_refused(ui: UIStore) -> None:
    form = urllib.parse.urlencode({"token": TOKEN, "next": "/traces"})
    headers = {"content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "cross-site"}
    assert _send(ui, "POST", "/-/login", form, headers).status == 403
