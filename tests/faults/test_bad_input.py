"""Requests no well-behaved client sends, written straight to the socket, each with its expected status."""
import socket

import pytest


def raw(system, request):
    """Send raw bytes, return the status code (0 when the server just closed the connection)."""
    with socket.create_connection(("127.0.0.1", system.port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split()[1]) if reply.startswith(b"HTTP/") else 0


def request(system, method, path, headers=(), body=b"", token=True):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: x", "Connection: close"]
    if token:
        lines.append("Authorization: Bearer " + system.key)
    lines += list(headers)
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


@pytest.mark.parametrize("path, status", [
    ("/v1/sessions/%00", 404),
    ("/v1/sessions/..%2f..%2fetc%2fpasswd", 404),
    ("/v1/sessions/%ff%fe", 404),
    ("/v1/sessions/00000000-0000-4000-8000-000000000000%0d%0aX-Evil:%201", 404),
    ("/v1/sessions?limit=%ff", 400),
])
def test_hostile_paths(system, path, status):
    assert raw(system, request(system, "GET", path)) == status


@pytest.mark.parametrize("authorization", [
    "Bearer", "Bearer  {key}", "Basic {key}", "bearer {key}", "Bearer {key}x", "Bearer \u00e9{key}",
])
def test_wrong_tokens_are_401(system, authorization):
    header = "Authorization: " + authorization.format(key=system.key)
    assert raw(system, request(system, "GET", "/v1/sessions", headers=[header], token=False)) == 401


def test_a_header_injected_into_the_token_does_not_authenticate(system):
    forged = "Authorization: Bearer nope\r\nAuthorization: Bearer " + system.key
    assert raw(system, request(system, "GET", "/v1/sessions", headers=[forged], token=False)) in (400, 401)


@pytest.mark.parametrize("body, status", [
    (b'{"agent": "coder", "task": "\xff\xfe", "provider": "gemini"}', 400),
    (b'{"agent": "coder", "task": "x", "provider": "gemini", "runtime": "shell"' + b" " * (1 << 20) + b"}", 413),
    (b"{" * 100000, 400),
])
def test_bad_bodies(system, body, status):
    assert raw(system, request(system, "POST", "/v1/sessions", ["Content-Type: application/json"], body)) == status


def test_conflicting_length_and_chunking_is_refused(system):
    smuggle = request(system, "POST", "/v1/sessions", ["Transfer-Encoding: chunked", "Content-Length: 4"])
    assert raw(system, smuggle + b"0\r\n\r\n") in (400, 501, 0)


def test_an_oversized_header_is_refused(system):
    assert raw(system, request(system, "GET", "/health", ["X-Big: " + "a" * 300000], token=False)) in (400, 431, 0)
