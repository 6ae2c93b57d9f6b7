"""Benchmark of the change feed and of what reads and creates cost as history and live sessions grow; run by
hand (as root or not): .venv/bin/python bench/bench_feed.py [--base REF]

Every figure is taken twice in one run, side by side: with this checkout ("now") and with the code at
REF ("before"; default: the commit before the event journal came), checked out into a temporary git
worktree and started the same way. Figures:
  - POST -> running p50 over HTTP (what the journal and the mirror cost a create);
  - GET /v1/sessions?limit=1000 and GET /v1/sessions/{id} with 1,000 sessions, and their ratio (every GET
    timed to its last byte, without the client's JSON decoding);
  - supervisord's CPU per create with 1,000 and with 10,000 ended sessions on disk;
  - GET one, list (of 100) and POST -> running with no session running and with --live running (and
    --live ended sessions in both cases);
  - (now only) how long a status change takes to reach an SSE follower of /v1/events.
"""
import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import psutil

from benchlib import FINAL, System, timed

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHELL = {"agent": "coder", "provider": "gemini", "runtime": "shell"}


class Client:
    """One keep-alive HTTP connection with the bearer token."""

    def __init__(self, system):
        self.conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=60)
        self.headers = {"Authorization": "Bearer " + system.key}

    def call(self, method, path, body=None):
        headers = dict(self.headers, **({"Content-Type": "application/json"} if body is not None else {}))
        self.conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                          headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else None


    def fetch(self, path):
        """GET `path` to its last byte (no JSON decoding: what the server costs, not the client's parser)."""
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        assert response.status == 200, response.status
        return body


def p50(values):
    return statistics.median(values)


def fabricate(home, count):
    """`count` ended sessions on disk, as the store keeps them, for supervisord to load at start."""
    states = os.path.join(home, "state", "sessions")
    os.makedirs(states, exist_ok=True)
    now = int(time.time() * 1000) - 3_600_000
    for i in range(count):
        sid = str(uuid.uuid4())
        os.makedirs(os.path.join(states, sid))
        record = {"sessionId": sid, "name": "", "agent": "coder", "task": "true", "provider": "gemini",
                  "runtime": "shell", "status": "completed", "exitCode": 0, "createdAt": now + i,
                  "startTime": now + i, "endTime": now + i + 5, "port": 0, "group": "sess-" + sid,
                  "sessionDir": os.path.join(home, "workspace", "sessions", sid),
                  "logFile": os.path.join(home, "logs", "sessions", sid + ".log")}
        with open(os.path.join(states, sid, "meta.json"), "w") as f:
            json.dump(record, f)


def start(code, sessions_on_disk=0, env=None):
    """A System running `code` (a checkout) with `sessions_on_disk` ended sessions already in its home."""
    home = tempfile.mkdtemp(prefix="ssfeed", dir="/tmp")
    os.chmod(home, 0o755)
    fabricate(home, sessions_on_disk)
    system = System(home=home, env=dict({"PYTHONPATH": code, "MAX_CONCURRENT_SESSIONS": "600",
                                         "MAX_QUEUED_SESSIONS": "1000", "MANAGEMENT_API_THREADS": "64"},
                                        **(env or {})))
    system.start(timeout=300)
    wait_until(lambda: len(Client(system).call("GET", "/v1/sessions?limit=1")[1]["sessions"]) or
               not sessions_on_disk)
    return system


def done(system):
    system.stop()
    shutil.rmtree(system.home, ignore_errors=True)


def wait_until(predicate, timeout=600):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark's system did not get there")
        time.sleep(0.01)


def post_to_running(system, count):
    """ms from POST to the first GET that shows it running, for `count` sleepers, removed in batches."""
    client = Client(system)
    latencies, ids = [], []
    for _ in range(count):
        began = time.perf_counter()
        status, body = client.call("POST", "/v1/sessions", dict(SHELL, task="exec sleep 60"))
        assert status == 202, body
        while client.call("GET", "/v1/sessions/%s?tail=0" % body["sessionId"])[1]["status"] != "running":
            pass
        latencies.append((time.perf_counter() - began) * 1000)
        ids.append(body["sessionId"])
        if len(ids) == 20:
            purge(client, ids)
    purge(client, ids)
    return latencies


def purge(client, ids):
    for sid in ids:
        client.call("DELETE", "/v1/sessions/%s?purge=true" % sid)
    ids.clear()


def reads(system, rounds=40):
    """(p50 of GET ?limit=1000, p50 of GET one) in ms."""
    client = Client(system)
    one = client.call("GET", "/v1/sessions?limit=1")[1]["sessions"][0]["sessionId"]
    listing = timed(lambda: client.fetch("/v1/sessions?limit=1000"), rounds)
    single = timed(lambda: client.fetch("/v1/sessions/" + one), rounds)
    return p50(listing), p50(single)


def cpu_per_create(system, creates):
    """supervisord's CPU ms per sessions.createSession of `true`, the session run to its end."""
    supervisord = psutil.Process(system.supervisord_pid())
    rpc = system.rpc()
    before = supervisord.cpu_times()
    ids = [rpc.sessions.createSession(dict(SHELL, task="true"))["sessionId"] for _ in range(creates)]
    for sid in ids:
        system.wait_status(sid, FINAL, timeout=120)
    after = supervisord.cpu_times()
    return ((after.user + after.system) - (before.user + before.system)) * 1000 / creates


def with_live(system, live, rounds):
    """(GET one, list of 100, POST -> running) p50s with `live` sleepers running."""
    rpc = system.rpc()
    sleepers = [rpc.sessions.createSession(dict(SHELL, task="exec sleep 600"))["sessionId"] for _ in range(live)]
    for sid in sleepers:
        system.wait_status(sid, {"running"}, timeout=300)
    one = rpc.sessions.createSession(dict(SHELL, task="true"))["sessionId"]
    system.wait_status(one, FINAL)
    client = Client(system)
    single = p50(timed(lambda: client.fetch("/v1/sessions/" + one), rounds))
    listing = p50(timed(lambda: client.fetch("/v1/sessions"), rounds))
    posting = p50(post_to_running(system, rounds))
    for sid in sleepers:
        rpc.sessions.stopSession(sid)
    for sid in sleepers:
        system.wait_status(sid, FINAL, timeout=300)
    return single, listing, posting


def event_latency(system, count):
    """ms from a status change (the event's time, set when supervisord saw it) to an SSE follower."""
    conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=60)
    start_seq = system.rpc().sessions.getEvents(2 ** 31 - 1, 1)[1]
    conn.request("GET", "/v1/events", headers={"Authorization": "Bearer " + system.key,
                                                "Accept": "text/event-stream", "Last-Event-ID": str(start_seq - 1)})
    response = conn.getresponse()
    rpc = system.rpc()
    delays = []
    for _ in range(count):
        rpc.sessions.createSession(dict(SHELL, task="true"))
        while True:
            line = response.readline().decode()
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "state":
                    delays.append(time.time() * 1000 - event["time"])
                    if event["status"] in FINAL:
                        break
    conn.close()
    return delays


def checkout(ref):
    """A worktree of `ref` in a temp directory."""
    path = tempfile.mkdtemp(prefix="ssbase")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-f", path, ref], check=True,
                   capture_output=True)
    os.chmod(path, 0o755)
    return path


def measure(code, options):
    figures = {}
    system = start(code)
    try:
        figures["post"] = p50(post_to_running(system, options.rounds))
    finally:
        done(system)
    for on_disk in (1000, 10000):
        system = start(code, on_disk)
        try:
            if on_disk == 1000:
                figures["list"], figures["one"] = reads(system)
            figures["cpu%d" % on_disk] = cpu_per_create(system, options.creates)
        finally:
            done(system)
    system = start(code, options.live, env={"SESSIONS_SANDBOX": "off"})  # as many ended: lists of 100 either way
    try:
        figures["idle"] = with_live(system, 0, options.rounds)
        figures["live"] = with_live(system, options.live, options.rounds)
        if os.path.exists(os.path.join(code, "supervisor_sessions", "mirror.py")):
            figures["event"] = event_latency(system, options.rounds)
    finally:
        done(system)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="f525f57^", help="the code to compare with (a git ref)")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--creates", type=int, default=100)
    parser.add_argument("--live", type=int, default=500)
    options = parser.parse_args()
    print("machine: %s, %d cpus, Python %s, %s" % (platform.machine(), os.cpu_count(), platform.python_version(),
                                                   "root" if os.geteuid() == 0 else "not root"), flush=True)
    base = checkout(options.base)
    try:
        before = measure(base, options)
        now = measure(ROOT, options)
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", base], capture_output=True)
    rows = [
        ("POST -> running p50 (ms)", before["post"], now["post"]),
        ("GET /v1/sessions?limit=1000, 1,000 sessions, p50 (ms)", before["list"], now["list"]),
        ("GET /v1/sessions/{id}, 1,000 sessions, p50 (ms)", before["one"], now["one"]),
        ("  list of 1,000 / GET one (target <= 8x)", before["list"] / before["one"], now["list"] / now["one"]),
        ("supervisord CPU per create, 1,000 on disk (ms)", before["cpu1000"], now["cpu1000"]),
        ("supervisord CPU per create, 10,000 on disk (ms)", before["cpu10000"], now["cpu10000"]),
        ("  10,000 / 1,000 (target <= 1.2x)", before["cpu10000"] / before["cpu1000"],
         now["cpu10000"] / now["cpu1000"]),
    ]
    for i, what in enumerate(("GET one", "GET list of 100", "POST -> running")):
        rows.append(("%s p50, 0 running (ms)" % what, before["idle"][i], now["idle"][i]))
        rows.append(("%s p50, %d running (ms)" % (what, options.live), before["live"][i], now["live"][i]))
        rows.append(("  %d running / 0 (target <= 1.5x)" % options.live, before["live"][i] / before["idle"][i],
                     now["live"][i] / now["idle"][i]))
    print("\n%-58s %12s %12s" % ("", "before", "now"))
    for what, old, new in rows:
        print("%-58s %12.2f %12.2f" % (what, old, new))
    if "event" in now:
        print("%-58s %12s %12.1f" % ("status change -> SSE follower p50 (ms)", "-", p50(now["event"])))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
