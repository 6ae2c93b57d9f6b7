"""How a browser signs in to the dashboard, over real HTTP: the key buys an HttpOnly, SameSite=Strict session
cookie and a CSRF token; the cookie alone reads, but changes nothing without the token; the key itself
never appears in a URL, an answer's headers or the API's log."""
import json
import os

import pytest

SHELL = {"agent": "coder", "provider": "gemini", "runtime": "shell", "task": "true"}


def call(system, method, path, body=None, headers=None):
    """(status, {lower-case header: value}, body bytes) of a JSON request with no Authorization header."""
    headers = dict(headers or {}, **({"Content-Type": "application/json"} if body is not None else {}))
    return system.raw(method, path, json.dumps(body).encode() if body is not None else None, headers, auth=False)


@pytest.fixture
def signed_in(system):
    """(cookie header, CSRF token) of a fresh sign-in."""
    status, headers, body = call(system, "POST", "/ui/login", {"key": system.key})
    assert status == 200
    cookie = headers["set-cookie"]
    return cookie.split(";")[0], json.loads(body)["csrf"]


def test_the_key_buys_an_httponly_same_site_strict_cookie_and_a_csrf_token(system):
    status, headers, body = call(system, "POST", "/ui/login", {"key": system.key})
    assert status == 200
    attributes = [part.strip().lower() for part in headers["set-cookie"].split(";")]
    assert "httponly" in attributes and "samesite=strict" in attributes and "path=/" in attributes
    assert system.key not in headers["set-cookie"] and system.key.encode() not in body
    assert len(json.loads(body)["csrf"]) >= 32


@pytest.mark.parametrize("key", ["wrong", "", None, 5, "Bearer x"])
def test_a_wrong_key_signs_nothing_in(system, key):
    status, headers, body = call(system, "POST", "/ui/login", {"key": key})
    assert status == 401 and "set-cookie" not in headers
    assert json.loads(body)["error"] == "unauthorized"


def test_the_cookie_reads_but_changes_nothing_without_its_csrf_token(system, signed_in):
    cookie, csrf = signed_in
    assert call(system, "GET", "/v1/sessions", headers={"Cookie": cookie})[0] == 200
    for token in (None, "", "not-the-token", csrf + "x"):
        headers = {"Cookie": cookie}
        if token is not None:
            headers["X-CSRF-Token"] = token
        before = system.rpc().sessions.countSessions()["total"]
        assert call(system, "POST", "/v1/sessions", SHELL, headers)[0] == 401
        assert system.rpc().sessions.countSessions()["total"] == before
    status, _, body = call(system, "POST", "/v1/sessions", SHELL, {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert status == 202, body
    sid = json.loads(body)["sessionId"]
    assert call(system, "DELETE", "/v1/sessions/" + sid, headers={"Cookie": cookie})[0] == 401
    assert call(system, "DELETE", "/v1/sessions/" + sid, headers={"Cookie": cookie, "X-CSRF-Token": csrf})[0] == 200


def test_a_wrong_bearer_token_is_not_saved_by_a_good_cookie(system, signed_in):
    cookie, csrf = signed_in
    headers = {"Cookie": cookie, "X-CSRF-Token": csrf, "Authorization": "Bearer wrong"}
    assert call(system, "GET", "/v1/sessions", headers=headers)[0] == 401


def test_sign_out_ends_the_cookie_and_a_made_up_cookie_is_nothing(system, signed_in):
    cookie, csrf = signed_in
    assert json.loads(call(system, "GET", "/ui/session", headers={"Cookie": cookie})[2])["signedIn"] is True
    assert call(system, "POST", "/ui/logout", headers={"Cookie": cookie})[0] == 401   # no CSRF token
    assert call(system, "POST", "/ui/logout", headers={"Cookie": cookie, "X-CSRF-Token": csrf})[0] == 200
    assert call(system, "GET", "/v1/sessions", headers={"Cookie": cookie})[0] == 401
    assert json.loads(call(system, "GET", "/ui/session", headers={"Cookie": cookie})[2]) == {"signedIn": False}
    assert call(system, "GET", "/v1/sessions", headers={"Cookie": "sessions_ui=made-up"})[0] == 401


def test_the_page_is_served_with_a_strict_content_security_policy(system):
    status, headers, body = call(system, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert b'<script src="/ui/app.js"' in body
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        status, headers, _ = call(system, "GET", "/ui/" + name)
        assert status == 200 and headers["content-type"].startswith(kind)
    assert call(system, "GET", "/ui/../api.py")[0] == 404
    assert call(system, "GET", "/ui/index.py")[0] == 404


def test_the_key_posted_to_sign_in_never_reaches_the_api_s_log(system, signed_in):
    cookie, _ = signed_in
    call(system, "POST", "/ui/login", {"key": "a-wrong-key-typed-by-mistake"})
    with open(os.path.join(system.home, "logs", "management-api.log"), errors="replace") as f:
        logged = f.read()
    assert "/ui/login" in logged   # the sign-ins were logged, without their bodies
    assert system.key not in logged and "a-wrong-key-typed-by-mistake" not in logged
    assert cookie.split("=", 1)[1] not in logged
