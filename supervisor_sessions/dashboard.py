"""The web dashboard: its static page at `/`, and how a browser signs in.

A browser cannot put the API key on an EventSource, and the key must never rest in a URL, a log line or the
page's storage. So the page posts the key once (`POST /ui/login`, JSON body) and gets a session cookie
(random, HttpOnly, SameSite=Strict, Path=/) that the API accepts in place of the bearer token, plus a CSRF
token that it keeps in memory and sends as `X-CSRF-Token` with every request that changes something: a
cookie alone (a form or a fetch from another site) is never enough for POST, PUT or DELETE. Sessions live
in this process (a restart of the API signs browsers out) and expire after LOGIN_HOURS.
"""
import hmac
import os
import secrets
import threading
import time

import bottle

from .apihttp import ApiError, json_answer, read_json_body

COOKIE = "sessions_ui"
LOGIN_HOURS = 12
MAX_LOGINS = 1000
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_FILES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
# What the page may do: its own scripts, styles and requests, nothing inline, nothing framed.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SAFE_METHODS = ("GET", "HEAD")


class BrowserLogins:
    """The signed-in browsers: cookie value -> (CSRF token, expiry)."""

    def __init__(self, api_key):
        self._key = ("Bearer " + api_key).encode("utf-8") if api_key else None
        self._logins = {}
        self._lock = threading.Lock()

    def login(self, key):
        """(cookie value, CSRF token) for the right key; ApiError 401 for any other."""
        given = ("Bearer " + key).encode("utf-8", "replace") if isinstance(key, str) else b""
        if self._key is None or not hmac.compare_digest(given, self._key):
            raise ApiError(401, "that is not the API key")
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._logins = {c: v for c, v in self._logins.items() if v[1] > now}
            while len(self._logins) >= MAX_LOGINS:   # the oldest sign-in goes first
                del self._logins[next(iter(self._logins))]
            self._logins[cookie] = (csrf, now + LOGIN_HOURS * 3600)
        return cookie, csrf

    def logout(self, cookie):
        with self._lock:
            self._logins.pop(cookie, None)

    def csrf_of(self, cookie):
        """The CSRF token of a live sign-in, or None."""
        with self._lock:
            found = self._logins.get(cookie or "")
        return found[0] if found and found[1] > time.time() else None

    def allows(self, request):
        """True when `request` carries a live sign-in cookie and, unless it only reads, its CSRF token."""
        csrf = self.csrf_of(request.get_cookie(COOKIE))
        if csrf is None:
            return False
        if request.method in SAFE_METHODS:
            return True
        given = request.get_header("X-CSRF-Token", "")
        return hmac.compare_digest(given.encode("utf-8", "replace"), csrf.encode("ascii"))


def _static(name):
    with open(os.path.join(STATIC_DIR, name), "rb") as f:
        return f.read()


def add_routes(app, logins):
    """Put the page, its files and the sign-in routes on `app`."""

    @app.get("/")
    def page():
        return bottle.HTTPResponse(_static("index.html"), status=200, headers={
            "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": PAGE_POLICY,
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})

    @app.get("/ui/<name>")
    def static(name):
        if name not in STATIC_FILES:
            raise ApiError(404, "no file %r" % name[:80])
        return bottle.HTTPResponse(_static(name), status=200, headers={
            "Content-Type": STATIC_FILES[name], "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    @app.post("/ui/login")
    def login():
        body = read_json_body("the key")
        cookie, csrf = logins.login(body.get("key"))
        answer = json_answer(200, {"csrf": csrf})
        answer.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", path="/",
                          secure=bottle.request.urlparts.scheme == "https")
        return answer

    @app.get("/ui/session")
    def session():
        """Whether this browser is signed in (and its CSRF token): how a reloaded page finds out."""
        csrf = logins.csrf_of(bottle.request.get_cookie(COOKIE))
        return json_answer(200, {"signedIn": True, "csrf": csrf} if csrf else {"signedIn": False})

    @app.post("/ui/logout")
    def logout():
        if not logins.allows(bottle.request):
            raise ApiError(401, "not signed in")
        logins.logout(bottle.request.get_cookie(COOKIE))
        answer = json_answer(200, {"signedOut": True})
        answer.delete_cookie(COOKIE, path="/")
        return answer

