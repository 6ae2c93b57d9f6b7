"""The two backends side by side, in one run; by hand: .venv/bin/python bench/bench_backends.py (as root for
the memory figures; needs the ray extra: make install EXTRAS=ray)

Starts one instance on the supervisord backend and one on the ray backend (the embedded single-node head
serve starts itself, on 127.0.0.1) and prints, for each, over real HTTP: POST -> running, DELETE -> stopped,
GET /v1/sessions (a page of 100), how long a printed line takes to reach a log follower, and what one
running session costs in memory (the machine's PSS with RUNNING sessions of `sleep`, less without, divided).
"""
import argparse
import os
import platform
import shutil
import statistics
import time

import psutil

from bench_api import Client, follow_latency, spawn
from benchlib import FINAL, System, pct


def wait_status(client, sid, states):
    while True:
        record = client.call("GET", "/v1/sessions/%s?tail=0" % sid)[1]
        if record["status"] in states:
            return record["status"]
        if record["status"] in FINAL:
            raise SystemExit("session %s ended %s: %s" % (sid, record["status"], record.get("reason")))


def post_and_stop(system, rounds):
    """(ms from POST to running, ms from DELETE to stopped) of `rounds` sessions, one at a time."""
    client = Client(system)
    starts, stops = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        sid = spawn(client, "sleep 600")
        wait_status(client, sid, {"running"})
        starts.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        client.call("DELETE", "/v1/sessions/%s" % sid)
        assert wait_status(client, sid, FINAL) == "stopped"
        stops.append((time.perf_counter() - began) * 1000)
    return starts, stops


def machine_pss_mb():
    """The PSS of every process on the machine, in MB (root reads them all)."""
    total = 0
    for process in psutil.process_iter():
        try:
            total += process.memory_full_info().pss
        except (psutil.Error, AttributeError):
            pass
    return total / 2 ** 20


def memory_per_session(system, count):
    """MB one running `sleep` session adds to the machine (all its processes, ours and the worker's)."""
    client = Client(system)
    time.sleep(2)
    before = machine_pss_mb()
    ids = [spawn(client, "sleep 600") for _ in range(count)]
    for sid in ids:
        wait_status(client, sid, {"running"})
    time.sleep(2)
    after = machine_pss_mb()
    for sid in ids:
        client.call("DELETE", "/v1/sessions/%s" % sid)
    for sid in ids:
        wait_status(client, sid, FINAL)
    return (after - before) / count


def list_page(system, sessions, rounds):
    client = Client(system)
    rpc = system.rpc()
    ids = [rpc.sessions.createSession({"agent": "coder", "task": "true", "provider": "gemini",
                                       "runtime": "shell"})["sessionId"] for _ in range(sessions)]
    for sid in ids:
        while rpc.sessions.getSession(sid)["status"] not in FINAL:
            time.sleep(0.01)
    out = []
    for _ in range(rounds):
        began = time.perf_counter()
        status, _ = client.call("GET", "/v1/sessions?limit=100")
        assert status == 200
        out.append((time.perf_counter() - began) * 1000)
    return out


def measure(system, args):
    starts, stops = post_and_stop(system, args.rounds)
    return {"POST -> running": starts, "DELETE -> stopped": stops,
            "GET /v1/sessions (100 of %d)" % args.sessions: list_page(system, args.sessions, args.rounds),
            "a printed line reaches a follower": follow_latency(system, 25),
            "MB per running session": [memory_per_session(system, args.live)]}


def started(env):
    system = System(env=dict(env, MAX_CONCURRENT_SESSIONS="64", SESSION_CPUS="0.1", SESSION_MEMORY_MB="256"))
    system.start(timeout=120)
    if env.get("SESSIONS_BACKEND") == "ray":
        while not system.rpc().sessions.getCluster().get("reachable"):
            time.sleep(0.2)
        time.sleep(3)   # the bridge makes the node's agent as soon as it sees the node
    return system


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--live", type=int, default=10)
    args = parser.parse_args()
    results = {}
    for name, env in (("supervisord", {}), ("ray", {"SESSIONS_BACKEND": "ray"})):
        system = started(env)
        try:
            results[name] = measure(system, args)
        finally:
            system.stop()
            shutil.rmtree(system.home, ignore_errors=True)
    print("%s, %d cores, Python %s, %d rounds; ms unless said; p50 (p90)"
          % (platform.machine(), os.cpu_count(), platform.python_version(), args.rounds))
    print("%-40s %20s %20s" % ("", "supervisord", "ray"))
    for key in results["supervisord"]:
        cells = []
        for name in ("supervisord", "ray"):
            values = results[name][key]
            cells.append("%.1f" % values[0] if len(values) == 1 else
                         "%.1f (%.1f)" % (statistics.median(values), pct(values, 90)))
        print("%-40s %20s %20s" % (key, cells[0], cells[1]))


if __name__ == "__main__":
    main()
