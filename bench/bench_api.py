"""Benchmark of the Management API over real HTTP; run by hand: .venv/bin/python bench/bench_api.py

Prints POST-to-running latency, GET /v1/sessions with many sessions, GET /health requests per second
with concurrent clients, and how long a printed line takes to reach a follower.
"""
import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import threading
import time

from benchlib import FINAL, System, pct, timed



class Client:
    """One keep-alive HTTP connection with the bearer token."""

    def __init__(self, system):
        self.conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=60)
        self.headers = {"Authorization": "Bearer " + system.key}

    def call(self, method, path, body=None):
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else None


def spawn(client, task):
    status, body = client.call("POST", "/v1/sessions", {"agent": "coder", "task": task, "provider": "gemini",
                                                        "runtime": "shell"})
    assert status == 202, (status, body)
    return body["sessionId"]


def post_to_running(system, count):
    client = Client(system)
    latencies = []
    for batch in range(0, count, 20):
        ids = []
        for _ in range(min(20, count - batch)):
            start = time.perf_counter()
            sid = spawn(client, "sleep 30")
            while client.call("GET", "/v1/sessions/%s?tail=0" % sid)[1]["status"] != "running":
                pass
            latencies.append((time.perf_counter() - start) * 1000)
            ids.append(sid)
        for sid in ids:
            client.call("DELETE", "/v1/sessions/%s?purge=true" % sid)
    return latencies


def fill(system, total):
    rpc = system.rpc()
    have = len(rpc.sessions.listSessions())
    ids = [rpc.sessions.createSession({"agent": "coder", "task": "true", "provider": "gemini",
                                       "runtime": "shell"})["sessionId"] for _ in range(max(0, total - have))]
    for sid in ids:
        while rpc.sessions.getSession(sid)["status"] not in FINAL:
            time.sleep(0.01)


def timed_get(client, path, rounds):
    """ms of `rounds` GETs of `path`, each of which must answer 200."""
    def get():
        status, _ = client.call("GET", path)
        assert status == 200
    return timed(get, rounds)


def health_rps(system, clients, seconds):
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def run(i):
        conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=30)
        while time.monotonic() < stop:
            conn.request("GET", "/health")
            conn.getresponse().read()
            counts[i] += 1
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def follow_latency(system, lines):
    client = Client(system)
    sid = spawn(client, "for i in $(seq %d); do sleep 0.2; date +%%s.%%N; done" % lines)
    conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=60)
    conn.request("GET", "/v1/sessions/%s/log?follow=true" % sid, headers=client.headers)
    response = conn.getresponse()
    delays, pending = [], b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        now = time.time()
        pending += chunk
        *complete, pending = pending.split(b"\n")
        delays.extend((now - float(line)) * 1000 for line in complete if line)
    return delays


def row(name, values, target=""):
    print("%-42s %8.1f %8.1f %8.1f %8.1f  %s" % (name, statistics.median(values), pct(values, 90),
                                                  pct(values, 99), max(values), target))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    options = parser.parse_args()
    print("machine: %s, %d cpus, Python %s" % (platform.machine(), os.cpu_count(), platform.python_version()))
    system = System().start()
    try:
        print("%-42s %8s %8s %8s %8s  %s" % ("ms", "p50", "p90", "p99", "max", "target"))
        row("POST -> running (%d)" % options.posts, post_to_running(system, options.posts), "p50 < 60 ms")
        fill(system, options.sessions)
        client = Client(system)
        row("GET /v1/sessions (%d, limit 100)" % options.sessions, timed_get(client, "/v1/sessions", 50),
            "< 50 ms")
        row("GET /v1/sessions (%d, limit 1000)" % options.sessions,
            timed_get(client, "/v1/sessions?limit=1000", 20))
        any_id = client.call("GET", "/v1/sessions?limit=1")[1]["sessions"][0]["sessionId"]
        row("GET /v1/sessions/{id}", timed_get(client, "/v1/sessions/" + any_id, 50))
        row("GET /v1/status", timed_get(client, "/v1/status", 20))
        row("followed line reaches the follower", follow_latency(system, 25), "< 100 ms")
        print("GET /health with %d clients: %.0f requests/s" % (options.clients,
                                                                 health_rps(system, options.clients,
                                                                            options.seconds)))
    finally:
        system.stop()
        shutil.rmtree(system.home, ignore_errors=True)


if __name__ == "__main__":
    main()
