"""Workers that misbehave: floods of output, and trees that ignore SIGTERM."""
import http.client
import os
import threading
import time

from conftest import FINAL, pids_matching, wait_for

SHELL = {"agent": "coder", "provider": "gemini", "runtime": "shell"}
CAP = 4 * 1024 * 1024


def test_200_mb_of_output_stays_under_the_cap_while_the_api_answers(make_system):
    system = make_system(env={"SESSION_LOG_MAX_BYTES": str(CAP)}).start()
    status, body, _ = system.http("POST", "/v1/sessions", dict(
        SHELL, task="yes 'flood flood flood flood flood flood flood' | head -c 200000000; echo; echo flood-done"))
    sid = body["sessionId"]
    received = {"bytes": 0, "ended": False}

    def follow():
        conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=120)
        conn.request("GET", "/v1/sessions/%s/log?follow=true" % sid, headers={"Authorization": "Bearer " + system.key})
        response = conn.getresponse()
        while True:
            chunk = response.read1(1 << 20)
            if not chunk:
                break
            received["bytes"] += len(chunk)
        received["ended"] = True
        conn.close()
    follower = threading.Thread(target=follow)
    follower.start()
    health_times = []

    def ended_while_api_answers():
        started = time.monotonic()
        assert system.http("GET", "/health", auth=False)[0] == 200
        health_times.append(time.monotonic() - started)
        return system.http("GET", "/v1/sessions/" + sid + "?tail=0")[1]["status"] in FINAL
    wait_for(ended_while_api_answers, timeout=120, interval=0.2, message="the flood to end")
    follower.join(60)
    slowest = max(health_times)
    assert received["ended"] and received["bytes"] > 0
    assert slowest < 2.0
    log = system.http("GET", "/v1/sessions/" + sid)[1]
    assert log["status"] == "completed" and log["logTail"].endswith("flood-done")
    on_disk = os.path.getsize(log["logFile"]) + os.path.getsize(log["logFile"] + ".1")
    assert on_disk <= CAP + 1024 * 1024


def test_delete_leaves_none_of_50_children_that_ignore_sigterm(system):
    status, body, _ = system.http("POST", "/v1/sessions", dict(
        SHELL, task="trap '' TERM; for i in $(seq 50); do (trap '' TERM; sleep 6612) & done; wait"))
    sid = body["sessionId"]
    wait_for(lambda: len(pids_matching("sleep 6612")) == 50, message="50 children")
    assert system.http("DELETE", "/v1/sessions/" + sid)[0] == 200
    wait_for(lambda: system.http("GET", "/v1/sessions/" + sid)[1]["status"] in FINAL, timeout=30,
             message="the stop")
    wait_for(lambda: not pids_matching("sleep 6612"), timeout=5, message="no child left")
