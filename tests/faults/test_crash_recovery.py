"""supervisord killed with -9 in the middle of work: nothing accepted is lost, nothing runs unowned."""
import os
import threading
import time

from conftest import FINAL, pids_matching, wait_for

SHELL = {"agent": "coder", "provider": "gemini", "runtime": "shell"}


def test_kill_9_while_sessions_run_and_others_are_being_created(make_system):
    first = make_system().start()
    running = [first.http("POST", "/v1/sessions", dict(SHELL, task="sleep 3071"))[1]["sessionId"]
               for _ in range(20)]
    wait_for(lambda: len(pids_matching("sleep 3071")) >= 20, message="20 workers")
    accepted, answers = [], []

    def create():
        try:
            status, body, _ = first.http("POST", "/v1/sessions", dict(SHELL, task="sleep 3071"))
            answers.append(status)
            if status == 202:
                accepted.append(body["sessionId"])
        except OSError:
            answers.append("connection lost")
    threads = [threading.Thread(target=create) for _ in range(5)]
    for thread in threads:
        thread.start()
    first.kill9()
    for thread in threads:
        thread.join(30)

    restarted_ms = time.time() * 1000
    second = make_system(home=first.home).start()
    listed = [r["sessionId"] for r in second.rpc().sessions.listSessions()]
    assert len(listed) == len(set(listed))
    assert set(running + accepted) <= set(listed)
    assert all(second.meta(sid)["status"] in FINAL for sid in running)
    for sid in set(listed) - set(running):
        meta = second.meta(sid)
        if meta["status"] not in FINAL:
            # killed between its create and its start: it was still queued, so the new supervisord starts it
            assert meta["status"] in {"queued", "starting", "running"} and meta.get("startTime", 1e18) >= restarted_ms
            second.rpc().sessions.stopSession(sid)
            second.wait_status(sid, FINAL)
    wait_for(lambda: not pids_matching("sleep 3071"), timeout=10, message="no worker left unowned")


def test_a_killed_api_comes_back_and_sessions_are_untouched(make_system):
    system = make_system().start()
    live = system.spawn("sleep 3074")
    api = system.rpc().supervisor.getProcessInfo("management-api")
    os.kill(api["pid"], 9)
    started = time.monotonic()
    wait_for(lambda: ready(system), timeout=10, interval=0.05, message="the API back")
    assert time.monotonic() - started < 3
    assert system.rpc().supervisor.getProcessInfo("management-api")["pid"] != api["pid"]
    status, body, _ = system.http("GET", "/v1/sessions/" + live["sessionId"])
    assert (status, body["status"], body["pid"]) == (200, "running", live["pid"])


def ready(system):
    try:
        return system.http("GET", "/ready", auth=False)[0] == 200
    except OSError:
        return False
