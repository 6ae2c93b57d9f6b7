"""Benchmark of the sessions.* plugin over XML-RPC; run by hand: .venv/bin/python bench/bench_plugin.py

Prints createSession-to-RUNNING latency over many spawns, listSessions and getSession times with many
sessions on disk, and supervisord's memory.
"""
import argparse
import importlib.metadata
import os
import platform
import shutil
import statistics
import time

import psutil

from benchlib import FINAL, System, pct, timed

SPEC = {"agent": "coder", "provider": "gemini", "runtime": "shell"}



def row(name, values, target=""):
    print("%-40s %8.1f %8.1f %8.1f %8.1f  %s" % (name, statistics.median(values), pct(values, 90),
                                                  pct(values, 99), max(values), target))


def spawn_latency(rpc, count, batch=20):
    """ms from calling createSession to the session being RUNNING; sleepers are cleaned per batch."""
    latencies = []
    for start in range(0, count, batch):
        ids = []
        for _ in range(min(batch, count - start)):
            began = time.perf_counter()
            record = rpc.sessions.createSession(dict(SPEC, task="sleep 30"))
            while record["status"] != "running":
                record = rpc.sessions.getSession(record["sessionId"])
            latencies.append((time.perf_counter() - began) * 1000)
            ids.append(record["sessionId"])
        for sid in ids:
            rpc.sessions.stopSession(sid)
        for sid in ids:
            while rpc.sessions.getSession(sid)["status"] not in FINAL:
                time.sleep(0.005)
            rpc.sessions.removeSession(sid)
    return latencies


def fill(rpc, total):
    ids = [rpc.sessions.createSession(dict(SPEC, task="true"))["sessionId"] for _ in range(total)]
    for sid in ids:
        while rpc.sessions.getSession(sid)["status"] not in FINAL:
            time.sleep(0.005)
    return ids



def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spawns", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=1000)
    options = parser.parse_args()
    print("machine: %s, %d cpus, Python %s, supervisor %s" % (
        platform.machine(), os.cpu_count(), platform.python_version(), importlib.metadata.version("supervisor")))
    system = System().start()
    try:
        rpc = system.rpc()
        supervisord = psutil.Process(system.supervisord_pid())
        rss_start = supervisord.memory_info().rss
        print("%-40s %8s %8s %8s %8s  %s" % ("ms", "p50", "p90", "p99", "max", "target"))
        row("createSession -> RUNNING (%d)" % options.spawns, spawn_latency(rpc, options.spawns),
            "p50 < 20, p99 < 60")
        began = time.perf_counter()
        ids = fill(rpc, options.sessions)
        fill_seconds = time.perf_counter() - began
        row("listSessions, all %d" % options.sessions, timed(rpc.sessions.listSessions, 30), "< 50")
        row("listSessions, newest 100 of %d" % options.sessions,
            timed(lambda: rpc.sessions.listSessions({"newestFirst": True, "limit": 100}), 50))
        row("countSessions", timed(rpc.sessions.countSessions, 50))
        row("getSession", timed(lambda: rpc.sessions.getSession(ids[len(ids) // 2]), 100))
        print("%d sessions created and finished in %.1f s (%.1f ms each)" % (
            options.sessions, fill_seconds, fill_seconds * 1000 / options.sessions))
        print("supervisord RSS: %.1f MB at start, %.1f MB with %d sessions" % (
            rss_start / 2 ** 20, supervisord.memory_info().rss / 2 ** 20, options.sessions))
    finally:
        system.stop()
        shutil.rmtree(system.home, ignore_errors=True)


if __name__ == "__main__":
    main()
