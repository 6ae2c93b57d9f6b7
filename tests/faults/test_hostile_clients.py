"""Hostile clients starve nobody: idle sockets without a key, one address opening many connections,
bodies over the limit and requests waitress refuses itself (each answered as readable JSON)."""
import http.client
import json
import shutil
import socket
import time

import pytest

from conftest import System, wait_for
from supervisor_sessions.api import MAX_BODY_BYTES

IDLE_CONNECTIONS = 300
CAP = 5  # MANAGEMENT_API_CONNECTIONS_PER_CLIENT of the strict system
TWO_MIB = b"x" * (2 * 1024 * 1024)


@pytest.fixture(scope="module")
def strict():
    """A system with a 1 s first-request timeout and a cap of 5 connections per client address."""
    s = System(env={"MANAGEMENT_API_FIRST_REQUEST_TIMEOUT": "1",
                    "MANAGEMENT_API_CONNECTIONS_PER_CLIENT": str(CAP)}).start()
    yield s
    s.stop()
    shutil.rmtree(s.home, ignore_errors=True)


def connect(system, source="127.0.0.1", timeout=10):
    """A TCP connection to the API from `source` (Linux routes all of 127.0.0.0/8 to lo)."""
    return socket.create_connection(("127.0.0.1", system.port), timeout=timeout, source_address=(source, 0))


def closed_by_server(sock):
    """True once the peer has closed (EOF or reset); False while the connection is open and silent."""
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        data = sock.recv(65536, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(timeout)
    if data:
        pytest.fail("the server sent %r to a connection that sent nothing" % data[:200])
    return True


def read_to_eof(sock):
    """Everything the server sends until it closes; a reset fails the test (ConnectionResetError)."""
    reply = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return reply
        reply += chunk


def parse(reply):
    """(status, {lower-case header: value}, body) of one raw HTTP response."""
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:]))
    return int(lines[0].split()[1]), headers, body


def exchange(system, data, source="127.0.0.1"):
    """Send raw bytes in full, then read the answer to the end: (status, headers, body)."""
    with connect(system, source) as sock:
        sock.sendall(data)
        return parse(read_to_eof(sock))


def json_error(headers, body):
    assert headers["content-type"] == "application/json", headers
    payload = json.loads(body)
    assert set(payload) == {"error", "message"}, payload
    return payload


def post(system, body, headers=(), chunked=False):
    """POST /v1/sessions with http.client (no Expect: 100-continue): (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=30)
    sent = {"Authorization": "Bearer " + system.key, "Content-Type": "application/json"}
    sent.update(headers)
    try:
        if chunked:
            blocks = (body[i:i + 65536] for i in range(0, len(body), 65536))
            conn.request("POST", "/v1/sessions", body=blocks, headers=sent, encode_chunked=True)
        else:
            conn.request("POST", "/v1/sessions", body=body, headers=sent)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def padded(size):
    """A JSON object of exactly `size` bytes that is not a valid session (the app answers 400)."""
    head = b'{"agent": "coder", "pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


# --- many idle connections -----------------------------------------------------------------------------

def test_300_idle_connections_without_a_key_starve_no_one(system):
    # Spread over three addresses: each stays under the default cap of 200 per address.
    idle = [connect(system, "127.0.0.%d" % (2 + i % 3)) for i in range(IDLE_CONNECTIONS)]
    try:
        started = time.monotonic()
        assert system.api_status("/health") == 200
        assert time.monotonic() - started < 1.0
        status, body, _ = system.http("GET", "/v1/sessions?limit=1")
        assert status == 200 and "sessions" in body
        assert not any(closed_by_server(s) for s in idle), "an idle connection under the caps was refused"
    finally:
        for sock in idle:
            sock.close()


def test_connections_that_send_no_request_are_closed_within_the_first_request_timeout(strict):
    silent = [connect(strict, "127.0.0.3") for _ in range(3)]
    partial = connect(strict, "127.0.0.3")  # a request line and a header, never finished
    partial.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    try:
        wait_for(lambda: all(closed_by_server(s) for s in silent + [partial]), timeout=10, interval=0.05,
                 message="the server to close connections that sent no complete request")
        assert time.monotonic() - started < 1 + 3  # the timeout plus the once-a-second maintenance
    finally:
        for sock in silent + [partial]:
            sock.close()


def test_a_follower_and_a_keep_alive_connection_outlive_the_first_request_timeout(strict):
    sid = strict.spawn("sleep 30")["sessionId"]
    strict.wait_status(sid, {"running"})
    follower = http.client.HTTPConnection("127.0.0.1", strict.port, timeout=15)
    keepalive = http.client.HTTPConnection("127.0.0.1", strict.port, timeout=15)
    follower_sock = None
    try:
        follower.request("GET", "/v1/sessions/%s/log?follow=true" % sid,
                         headers={"Authorization": "Bearer " + strict.key, "Accept": "text/event-stream"})
        follower_sock = follower.sock  # http.client lets go of it once it has a Connection: close response
        stream = follower.getresponse()
        assert stream.status == 200
        assert stream.readline() == b": following\n"
        keepalive.request("GET", "/health")
        first = keepalive.getresponse()
        assert first.status == 200 and json.loads(first.read()) == {"status": "ok"}

        # A connection opened after both is closed by the first-request timeout; the same maintenance
        # pass saw the follower and the keep-alive connection, both older. One more round trip lets
        # the event loop carry out every close decided in that pass.
        control = connect(strict, "127.0.0.4")
        try:
            wait_for(lambda: closed_by_server(control), timeout=10, interval=0.05,
                     message="the server to close the silent control connection")
        finally:
            control.close()
        assert strict.api_status("/health") == 200

        assert not closed_by_server(follower_sock), "the follower was cut"
        keepalive.request("GET", "/health")
        second = keepalive.getresponse()
        assert second.status == 200 and json.loads(second.read()) == {"status": "ok"}

        # The stream is live: stopping the session ends it with its end event.
        assert strict.http("DELETE", "/v1/sessions/" + sid)[0] == 200
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = stream.readline()
            assert line, "the stream ended without an end event"
            if line == b"event: end\n":
                break
        else:
            pytest.fail("no end event")
    finally:
        follower.close()
        if follower_sock is not None:
            follower_sock.close()
        keepalive.close()


# --- one address, many connections ---------------------------------------------------------------------

def test_the_cap_per_address_refuses_more_connections_from_it_while_others_are_served(strict):
    held = []
    try:
        for _ in range(CAP):  # each sends a request first, so the first-request timeout leaves it alone
            conn = http.client.HTTPConnection("127.0.0.1", strict.port, timeout=10,
                                              source_address=("127.0.0.5", 0))
            conn.request("GET", "/health")
            assert conn.getresponse().read() == b'{"status": "ok"}'
            held.append(conn)

        with connect(strict, "127.0.0.5") as extra:
            started = time.monotonic()
            status, headers, body = parse(read_to_eof(extra))
            assert time.monotonic() - started < 1.0
        assert status == 503
        assert json_error(headers, body)["error"] == "unavailable"
        assert headers["connection"] == "close"

        # Other addresses, 127.0.0.1 included, are served meanwhile.
        assert strict.http("GET", "/v1/sessions?limit=1")[0] == 200
        status, _, body = exchange(strict, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                   source="127.0.0.6")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        assert all(not closed_by_server(c.sock) for c in held)
    finally:
        for conn in held:
            conn.close()

    # Closed connections no longer count: the address is served again.
    def served_again():
        status, _, _ = exchange(strict, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                source="127.0.0.5")
        return status == 200
    wait_for(served_again, timeout=10, interval=0.1, message="127.0.0.5 to be served again")


# --- bodies over the limit -----------------------------------------------------------------------------

def raw_post(system, body, chunked=False):
    """The whole request in one send (headers and body, no Expect), then the answer: (status, headers, body)."""
    head = (b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + system.key.encode()
            + b"\r\nContent-Type: application/json\r\n")
    if chunked:
        blocks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
        return exchange(system, head + b"Transfer-Encoding: chunked\r\n\r\n"
                        + b"".join(b"%x\r\n%s\r\n" % (len(b), b) for b in blocks) + b"0\r\n\r\n")
    return exchange(system, head + b"Content-Length: %d\r\n\r\n" % len(body) + body)


@pytest.mark.parametrize("client", [raw_post, post], ids=["one-send", "http.client"])
def test_a_2_mib_body_sent_in_full_gets_a_readable_json_413(system, client):
    status, headers, body = client(system, TWO_MIB)  # a reset raises ConnectionResetError here
    assert status == 413
    payload = json_error(headers, body)
    assert payload["error"] == "payload_too_large"
    assert str(MAX_BODY_BYTES) in payload["message"]
    assert headers["connection"] == "close"


@pytest.mark.parametrize("client", [raw_post, post], ids=["one-send", "http.client"])
def test_a_2_mib_chunked_body_gets_a_readable_json_413(system, client):
    status, headers, body = client(system, TWO_MIB, chunked=True)
    assert status == 413
    assert json_error(headers, body)["error"] == "payload_too_large"


def test_an_oversized_body_announced_with_expect_is_refused_before_it_is_sent(system):
    with connect(system) as sock:
        sock.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + system.key.encode()
                     + b"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % (2 * 1024 * 1024))
        reply = read_to_eof(sock)
    assert not reply.startswith(b"HTTP/1.1 100")
    status, headers, body = parse(reply)
    assert status == 413
    assert json_error(headers, body)["error"] == "payload_too_large"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_of_exactly_the_limit_still_reaches_the_api(system, chunked):
    status, headers, body = post(system, padded(MAX_BODY_BYTES), chunked=chunked)
    assert status == 400  # the API read it: no task, no provider
    assert json_error(headers, body)["error"] == "invalid_request"


def test_an_oversized_unauthenticated_body_gets_the_json_413_too(system):
    status, headers, body = post(system, b"x" * (3 * 1024 * 1024), headers={"Authorization": "Bearer nope"})
    assert status == 413
    assert json_error(headers, body)["error"] == "payload_too_large"


# --- requests waitress refuses itself ------------------------------------------------------------------

@pytest.mark.parametrize("request_line", [
    b"GET /health HTTP/1.1 trailing",
    b"get /health HTTP/1.1",
    b"GET",
    b"\x00\x01\x02 / HTTP/1.1",
])
def test_a_malformed_request_line_gets_a_json_400(system, request_line):
    status, headers, body = exchange(system, request_line + b"\r\nHost: x\r\n\r\n")
    assert status == 400
    assert json_error(headers, body)["error"] == "invalid_request"


def test_an_oversized_header_gets_a_readable_json_431(system):
    status, headers, body = exchange(system, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300000
                                     + b"\r\n\r\n")
    assert status == 431
    payload = json_error(headers, body)
    assert payload["error"] == "header_too_large"


def test_an_unsupported_transfer_encoding_gets_a_json_501(system):
    status, headers, body = exchange(system, b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n"
                                             b"Transfer-Encoding: gzip\r\n\r\n")
    assert status == 501
    assert json_error(headers, body)["error"] == "not_implemented"


def test_broken_chunking_gets_a_json_400(system):
    status, headers, body = exchange(system, b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n"
                                             b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    assert status == 400
    assert json_error(headers, body)["error"] == "invalid_request"


def test_the_api_still_serves_after_the_hostile_requests(system):
    assert system.http("GET", "/v1/sessions?limit=1")[0] == 200
