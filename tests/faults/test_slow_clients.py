"""Slow and broken clients hold no thread for ever and starve nobody."""
import socket
import time

from conftest import wait_for

SLOW_CLIENTS = 30  # more than the API's 16 threads


def slow_post(port):
    """A client that announces a body and sends almost none of it."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"agent\": ")
    return sock


def closed_by_server(sock):
    sock.settimeout(0.5)
    try:
        return sock.recv(1024) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_clients_that_send_slowly_neither_starve_others_nor_stay_for_ever(make_system):
    system = make_system(env={"MANAGEMENT_API_CLIENT_TIMEOUT": "2"}).start()
    slow = [slow_post(system.port) for _ in range(SLOW_CLIENTS)]
    started = time.monotonic()
    assert system.http("GET", "/health", auth=False)[0] == 200
    assert system.http("GET", "/v1/sessions")[0] == 200
    assert system.http("POST", "/v1/sessions", {"agent": "coder", "task": "true", "provider": "gemini",
                                                "runtime": "shell"})[0] == 202
    assert time.monotonic() - started < 3
    wait_for(lambda: all(closed_by_server(s) for s in slow), timeout=20, interval=0.2,
             message="the server to close the slow clients")
    for sock in slow:
        sock.close()


def test_a_client_that_disconnects_mid_request_leaves_the_api_healthy(system):
    for _ in range(50):
        sock = slow_post(system.port)
        sock.close()
    assert system.http("GET", "/v1/sessions?limit=1")[0] == 200
