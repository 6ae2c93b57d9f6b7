"""Load benchmark, run by hand: .venv/bin/python bench/bench_load.py

Prints one table: 100 concurrent POSTs, 1,000 finished sessions, 200 running sleepers, 50 followers of
one chatty worker, and a plain supervisor program vs sessions.createSession vs POST /v1/sessions.
"""
import http.client
import json
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time

import psutil

from benchlib import FINAL, System, timed

SHELL = {"agent": "coder", "provider": "gemini", "runtime": "shell"}
rows = []


def report(what, figure, note=""):
    rows.append((what, figure, note))
    print("%-58s %-24s %s" % (what, figure, note), flush=True)


def ms(values):
    return "p50 %.1f / p99 %.1f ms" % (statistics.median(values), sorted(values)[int(0.99 * (len(values) - 1))])



def post(system, task):
    return system.http("POST", "/v1/sessions", dict(SHELL, task=task))


def cpu_percent(pid, seconds=3.0):
    process = psutil.Process(pid)
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    return 100.0 * (after.user + after.system - before.user - before.system) / seconds


def concurrent_posts(system, count=100):
    answers = []
    started = time.perf_counter()
    threads = [threading.Thread(target=lambda: answers.append(post(system, "sleep 30"))) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ids = [body["sessionId"] for status, body, _ in answers if status == 202]
    listed = [r["sessionId"] for r in system.rpc().sessions.listSessions()]
    lost = len(set(ids) - set(listed))
    report("%d concurrent POSTs (limit 250)" % count, "%.2f s wall" % wall,
           "%d accepted, %d lost, %d duplicated" % (len(ids), lost, len(listed) - len(set(listed))))
    for sid in ids:
        system.rpc().sessions.stopSession(sid)
    for sid in ids:
        system.wait_status(sid, FINAL, timeout=60)
        system.rpc().sessions.removeSession(sid)


def finished_sessions(system, total=1000):
    rpc = system.rpc()
    ids = [rpc.sessions.createSession(dict(SHELL, task="true"))["sessionId"] for _ in range(total)]
    for sid in ids:
        system.wait_status(sid, FINAL, timeout=60)
    report("GET /v1/sessions with %d ended" % total, ms(timed(lambda: system.http("GET", "/v1/sessions"), 50)))
    report("GET /v1/sessions/{id} with %d ended" % total,
           ms(timed(lambda: system.http("GET", "/v1/sessions/" + ids[total // 2]), 50)))
    report("GET /v1/status with %d ended" % total, ms(timed(lambda: system.http("GET", "/v1/status"), 50)))
    supervisord = system.supervisord_pid()
    report("supervisord idle with %d ended" % total, "%.1f%% CPU" % cpu_percent(supervisord),
           "RSS %.1f MB" % (psutil.Process(supervisord).memory_info().rss / 2 ** 20))
    for sid in ids:
        rpc.sessions.removeSession(sid)


def running_sleepers(system, count=200):
    supervisord = psutil.Process(system.supervisord_pid())
    api = psutil.Process(system.rpc().supervisor.getProcessInfo("management-api")["pid"])
    rss_before = supervisord.memory_info().rss
    ids = [system.spawn("sleep 600")["sessionId"] for _ in range(count)]
    statuses = [r["status"] for r in system.rpc().sessions.listSessions()]
    report("%d running sleepers" % count, "%d running" % statuses.count("running"),
           "supervisord +%.1f KB RSS per session" % ((supervisord.memory_info().rss - rss_before) / 1024 / count))
    report("  idle CPU with %d running" % count, "supervisord %.1f%%" % cpu_percent(supervisord.pid),
           "API %.1f%%" % cpu_percent(api.pid))
    for sid in ids:
        system.rpc().sessions.stopSession(sid)
    for sid in ids:
        system.wait_status(sid, FINAL, timeout=60)
        system.rpc().sessions.removeSession(sid)


def followers(system, count=50, lines=200):
    status, body, _ = post(system, "sleep 1; for i in $(seq %d); do echo line-$i; sleep 0.01; done" % lines)
    sid = body["sessionId"]
    results = [None] * count

    def follow(i):
        conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=120)
        conn.request("GET", "/v1/sessions/%s/log?follow=true" % sid,
                     headers={"Authorization": "Bearer " + system.key})
        response = conn.getresponse()
        results[i] = (response.status, response.read().decode())
        conn.close()
    threads = [threading.Thread(target=follow, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = "".join("line-%d\n" % i for i in range(1, lines + 1))
    complete = sum(1 for status, text in results if status == 200 and text == expected)
    report("%d followers of one chatty worker (%d lines)" % (count, lines), "%d/%d complete, in order" % (
        complete, count))


def side_by_side(system, rounds=50):
    """A plain program through supervisor's own XML-RPC vs a session through the plugin vs HTTP."""
    rpc = system.rpc()
    conf_dir = os.path.join(system.home, "conf", "sessions")
    plain = []
    for i in range(rounds):
        name = "plain%d" % i
        started = time.perf_counter()
        with open(os.path.join(conf_dir, "sess-%s.conf" % name), "w") as f:
            f.write("[program:%s]\ncommand=/bin/true\nautostart=false\nstartsecs=0\nautorestart=false\n" % name)
        rpc.supervisor.reloadConfig()
        rpc.supervisor.addProcessGroup(name)
        rpc.supervisor.startProcess(name, False)
        plain.append((time.perf_counter() - started) * 1000)
    for i in range(rounds):
        os.unlink(os.path.join(conf_dir, "sess-plain%d.conf" % i))
        rpc.supervisor.removeProcessGroup("plain%d" % i)
    plugin = timed(lambda: rpc.sessions.createSession(dict(SHELL, task="true")), rounds)
    over_http = timed(lambda: post(system, "true"), rounds)
    base = statistics.median(plain)
    report("plain program: write conf + reloadConfig + add + start", ms(plain), "1.00x")
    report("sessions.createSession", ms(plugin), "%.2fx" % (statistics.median(plugin) / base))
    report("POST /v1/sessions", ms(over_http), "%.2fx" % (statistics.median(over_http) / base))


def main():
    print("machine: %s, %d cpus, %.0f GiB, Python %s" % (platform.machine(), os.cpu_count(),
                                                         psutil.virtual_memory().total / 2 ** 30,
                                                         platform.python_version()))
    system = System(home=tempfile.mkdtemp(prefix="ssload", dir="/tmp"),
                    env={"MAX_CONCURRENT_SESSIONS": "250", "MAX_QUEUED_SESSIONS": "1000",
                         "MANAGEMENT_API_THREADS": "128"}).start()
    try:
        concurrent_posts(system)
        finished_sessions(system)
        running_sleepers(system)
        followers(system)
        side_by_side(system)
    finally:
        system.stop()
        shutil.rmtree(system.home, ignore_errors=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
