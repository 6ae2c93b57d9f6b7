"""The Management API over real HTTP against a real supervisord."""
import glob
import http.client
import json
import os
import time

import pytest

from supervisor_sessions.settings import Settings

from conftest import FINAL, pids_matching, wait_for

ROUTES = [("GET", "/v1/sessions"), ("POST", "/v1/sessions"), ("GET", "/v1/status"),
          ("GET", "/v1/openapi.json"), ("GET", "/v1/sessions/00000000-0000-4000-8000-000000000000"),
          ("DELETE", "/v1/sessions/00000000-0000-4000-8000-000000000000"),
          ("GET", "/v1/sessions/00000000-0000-4000-8000-000000000000/log"), ("GET", "/v1/sessions/x")]
SHELL = {"agent": "coder", "provider": "gemini", "runtime": "shell"}


def post(system, task, **fields):
    status, body, headers = system.http("POST", "/v1/sessions", dict(SHELL, task=task, **fields))
    assert status == 202, body
    return body, dict(headers)


def wait_http(system, sid, states, timeout=20):
    def reached():
        status, body, _ = system.http("GET", "/v1/sessions/" + sid)
        return status == 200 and body["status"] in states and body
    return wait_for(reached, timeout, message="%s to reach %s" % (sid, states))


def is_json_error(body):
    return isinstance(body, dict) and set(body) == {"error", "message"} and body["message"]


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize("token", [None, "", "wrong", "last-char"])
def test_every_v1_route_needs_the_bearer_token(system, method, path, token):
    if token is None:
        status, body, headers = system.http(method, path, auth=False)
    else:
        status, body, headers = system.http(method, path, token=system.key[:-1] + "X" if token == "last-char"
                                            else token)
    assert status == 401 and is_json_error(body)
    assert ("WWW-Authenticate", 'Bearer realm="supervisor-sessions"') in headers


def test_a_lower_case_scheme_is_refused(system):
    status, _, _ = system.http("GET", "/v1/sessions", auth=False,
                               headers={"Authorization": "bearer " + system.key})
    assert status == 401


def test_health_and_ready_need_no_token(system):
    assert system.http("GET", "/health", auth=False)[:2] == (200, {"status": "ok"})
    status, body, _ = system.http("GET", "/ready", auth=False)
    assert (status, body["status"]) == (200, "ready")


def test_a_session_is_created_run_and_shown(system):
    accepted, headers = post(system, "echo api-$((6*7)); sleep 0.2")
    assert accepted["status"] == "accepted" and accepted["message"]
    assert headers["Location"] == "/v1/sessions/" + accepted["sessionId"]
    assert accepted["logFile"].endswith(accepted["sessionId"] + ".log")
    done = wait_http(system, accepted["sessionId"], FINAL)
    assert (done["status"], done["exitCode"], done["pid"]) == ("completed", 0, None)
    assert done["duration"] == done["endTime"] - done["startTime"] >= 200
    assert done["logTail"] == "api-42"
    for key in ("agent", "task", "provider", "runtime", "createdAt", "sessionDir", "logFile"):
        assert done[key] is not None


def test_the_log_tail_has_the_requested_number_of_lines(system):
    sid = post(system, "seq 1 100")[0]["sessionId"]
    assert wait_http(system, sid, FINAL)["logTail"] == "\n".join(map(str, range(51, 101)))
    assert system.http("GET", "/v1/sessions/%s?tail=3" % sid)[1]["logTail"] == "98\n99\n100"
    assert system.http("GET", "/v1/sessions/%s?tail=0" % sid)[1]["logTail"] == ""
    for bad in ("-1", "abc", "10001"):
        status, body, _ = system.http("GET", "/v1/sessions/%s?tail=%s" % (sid, bad))
        assert status == 400 and is_json_error(body)


@pytest.mark.parametrize("raw, words", [
    (b"{not json", "not valid UTF-8 JSON"),
    (b"\xff\xfe{}", "not valid UTF-8 JSON"),
    (b"[1, 2]", "JSON object"),
    (b"", "not valid UTF-8 JSON"),
    (b'{"agent": "coder", "provider": "gemini"}', "'task' is required"),
    (b'{"agent": "coder", "provider": "gemini", "task": 7}', "must be a string"),
    (b'{"agent": "coder", "provider": "gemini", "task": "x", "runtime": "nosuch"}', "unknown runtime"),
    (b'{"agent": "coder", "provider": "gemini", "task": "x", "colour": 1}', "unknown field"),
    (b'{"agent": "coder", "provider": "gemini", "task": "a\\u0000b"}', "NUL"),
    (b'{"agent": "coder", "provider": "gemini", "task": "a\\u001bb"}', "U+001B"),
    (b'{"agent": "coder", "provider": "gemini", "task": "\\ud800"}', "surrogate"),
    (b'{"agent": "c d", "provider": "gemini", "task": "x"}', "'agent' must be"),
])
def test_a_bad_body_is_a_400_that_says_why(system, raw, words):
    status, body, headers = system.http("POST", "/v1/sessions", raw=raw,
                                        headers={"Content-Type": "application/json"})
    assert status == 400 and is_json_error(body) and words in body["message"]
    assert dict(headers)["Content-Type"] == "application/json"


def test_a_body_over_the_limit_is_413(system):
    big = json.dumps(dict(SHELL, task="x" * (1024 * 1024 + 10))).encode()
    status, body, _ = system.http("POST", "/v1/sessions", raw=big)
    assert status == 413 and is_json_error(body)


def test_hostile_text_is_stored_literally(system):
    task = "true\n[program:evil]\ncommand=x ; %(ENV_HOME)s # 'q' \"d\""
    sid = post(system, task)[0]["sessionId"]
    assert wait_http(system, sid, FINAL)["task"] == task


def test_the_list_is_newest_first_filtered_and_paged(system):
    ids = [post(system, "exit %d" % (i % 2))[0]["sessionId"] for i in range(4)]
    for sid in ids:
        wait_http(system, sid, FINAL)
    status, page, _ = system.http("GET", "/v1/sessions?limit=4")
    assert status == 200 and [s["sessionId"] for s in page["sessions"]] == ids[::-1]
    assert "logTail" not in page["sessions"][0] and page["count"] >= 4
    failed = system.http("GET", "/v1/sessions?status=failed&limit=2")[1]
    assert [s["sessionId"] for s in failed["sessions"]] == [ids[3], ids[1]]
    assert all(s["status"] == "failed" for s in failed["sessions"])
    second = system.http("GET", "/v1/sessions?limit=1&offset=1")[1]
    assert second["sessions"][0]["sessionId"] == ids[2] and second["count"] == page["count"]
    for query in ("status=nope", "limit=0", "limit=1001", "limit=x", "offset=-1"):
        status, body, _ = system.http("GET", "/v1/sessions?" + query)
        assert status == 400 and is_json_error(body), query


def test_the_whole_log_is_plain_text(system):
    sid = post(system, "printf 'one\\ntwo ✓\\n'")[0]["sessionId"]
    wait_http(system, sid, FINAL)
    status, text, headers = system.http("GET", "/v1/sessions/%s/log" % sid)
    assert (status, text) == (200, "one\ntwo ✓\n")
    assert dict(headers)["Content-Type"] == "text/plain; charset=utf-8"


def open_follow(system, sid, sse=False):
    conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=30)
    headers = {"Authorization": "Bearer " + system.key}
    if sse:
        headers["Accept"] = "text/event-stream"
    conn.request("GET", "/v1/sessions/%s/log?follow=true" % sid, headers=headers)
    return conn, conn.getresponse()


def test_a_follower_sees_a_line_before_the_worker_ends_and_the_stream_ends_with_it(system):
    sid = post(system, "echo first; sleep 1.5; echo second")[0]["sessionId"]
    conn, response = open_follow(system, sid)
    assert response.status == 200
    first = response.read1(4096)
    assert first == b"first\n"
    assert system.http("GET", "/v1/sessions/" + sid)[1]["status"] == "running"
    assert response.read() == b"second\n"
    assert system.http("GET", "/v1/sessions/" + sid)[1]["status"] == "completed"
    conn.close()


def test_server_sent_events_are_framed_and_end_with_the_final_status(system):
    sid = post(system, "printf 'a\\nb\\n'; sleep 0.3; echo c; exit 2")[0]["sessionId"]
    conn, response = open_follow(system, sid, sse=True)
    assert response.getheader("Content-Type") == "text/event-stream"
    events = response.read().decode().split("\n\n")
    assert events[0] == ": following" and events[-1] == ""
    events = events[1:]
    data = [e for e in events[:-1] if not e.startswith("event:")]
    assert all(e.startswith("id: ") for e in data)
    assert "".join(line[len("data: "):] + "\n" for e in data for line in e.split("\n")[1:]) == "a\nb\nc\n"
    end = events[-2].split("\n")
    assert end[0] == "event: end"
    assert json.loads(end[1][len("data: "):]) == {"sessionId": sid, "status": "failed", "cause": "exit",
                                                     "reason": "exit code 2"}
    conn.close()


def test_following_is_limited_and_a_follower_that_leaves_frees_its_place(system):
    sid = post(system, "echo ready; sleep 60")[0]["sessionId"]
    max_followers = Settings.from_env(system.env).api_threads // 2
    followers = [open_follow(system, sid, sse=i % 2 == 1) for i in range(max_followers)]
    assert all(response.status == 200 for _, response in followers)
    status, body, headers = system.http("GET", "/v1/sessions/%s/log?follow=true" % sid)
    assert status == 429 and "Retry-After" in dict(headers)
    started = time.monotonic()
    assert system.http("GET", "/health", auth=False)[0] == 200
    assert system.http("GET", "/v1/sessions?limit=5")[0] == 200
    assert time.monotonic() - started < 2
    for closing in followers.pop(0):  # the response holds the socket open as long as the connection does
        closing.close()

    def accepted():
        conn, response = open_follow(system, sid)
        if response.status == 200:
            followers.append((conn, response))
            return True
        response.close()
        conn.close()
        return False
    wait_for(accepted, timeout=10, interval=0.1, message="a freed follower slot")
    for conn, response in followers:
        response.close()
        conn.close()
    system.http("DELETE", "/v1/sessions/" + sid)


def test_delete_stops_the_whole_tree_and_keeps_the_files(system):
    accepted, _ = post(system, "sleep 9911 & sleep 9912 & (sleep 9913 & wait) & wait")
    sid = accepted["sessionId"]
    wait_for(lambda: len(pids_matching("sleep 991[123]")) == 3, message="the tree")
    status, body, _ = system.http("DELETE", "/v1/sessions/" + sid)
    assert status == 200 and body["sessionId"] == sid and body["purged"] is False
    assert body["status"] in ("stopping", "stopped")  # where it is going (or is already), not the "running" it had
    assert wait_http(system, sid, FINAL)["status"] == "stopped"
    wait_for(lambda: not pids_matching("sleep 991[123]"), timeout=5, message="no process of the tree")
    assert os.path.isdir(accepted["sessionDir"]) and os.path.exists(accepted["logFile"])
    assert system.http("DELETE", "/v1/sessions/" + sid)[1]["status"] == "stopped"


def test_delete_with_purge_stops_and_removes_everything(system):
    accepted, _ = post(system, "sleep 60")
    status, body, _ = system.http("DELETE", "/v1/sessions/%s?purge=true" % accepted["sessionId"])
    assert (status, body["status"], body["purged"]) == (200, "stopped", True)
    assert system.http("GET", "/v1/sessions/" + accepted["sessionId"])[0] == 404
    assert not os.path.exists(accepted["sessionDir"]) and not os.path.exists(accepted["logFile"])


@pytest.mark.parametrize("sid", ["..", "%2e%2e%2fetc", "x" * 300, "00000000-0000-4000-8000-00000000000A",
                                 "00000000-0000-4000-8000-000000000000"])
def test_unknown_and_malformed_ids_are_404(system, sid):
    for method, path in (("GET", "/v1/sessions/" + sid), ("DELETE", "/v1/sessions/" + sid),
                         ("GET", "/v1/sessions/%s/log" % sid), ("GET", "/v1/sessions/%s/log?follow=true" % sid)):
        status, body, _ = system.http(method, path)
        assert status == 404 and is_json_error(body), (method, path)


def test_status_reports_workers_the_machine_and_the_gpus(system):
    live = post(system, "sleep 30")[0]["sessionId"]
    status, body, _ = system.http("GET", "/v1/status")
    assert status == 200
    assert body["timestamp"].endswith("Z") and isinstance(body["api"]["uptime"], int)
    assert body["workers"]["active"] >= 1 and body["workers"]["total"] >= body["workers"]["active"]
    assert body["workers"]["total"] == sum(body["workers"]["byStatus"].values())
    if glob.glob("/dev/nvidia[0-9]*"):
        assert body["gpu"]["available"] is True and body["gpu"]["gpus"]
    else:
        assert body["gpu"]["available"] is False and body["gpu"]["reason"] and body["gpu"]["gpus"] == []
    assert {"cpu", "memory", "disk", "load"} <= set(body["system"])
    system.http("DELETE", "/v1/sessions/" + live)


def test_unknown_routes_and_methods_are_json_errors(system):
    status, body, _ = system.http("GET", "/v1/nope")
    assert status == 404 and is_json_error(body)
    status, body, headers = system.http("PUT", "/v1/sessions")
    assert status == 405 and is_json_error(body) and "POST" in dict(headers)["Allow"]


def test_ready_turns_503_while_supervisords_socket_is_gone(make_system):
    system = make_system().start()
    aside = system.socket + ".aside"
    os.rename(system.socket, aside)
    try:
        wait_for(lambda: system.http("GET", "/ready", auth=False)[0] == 503, message="/ready to be 503")
        status, body, _ = system.http("POST", "/v1/sessions", {"agent": "a", "provider": "p", "task": "true"})
        assert status == 503 and is_json_error(body)
        assert system.http("GET", "/health", auth=False)[0] == 200
    finally:
        os.rename(aside, system.socket)
    wait_for(lambda: system.http("GET", "/ready", auth=False)[0] == 200, message="/ready to be 200 again")
    assert system.http("GET", "/v1/sessions")[0] == 200


def test_responses_match_the_openapi_schemas(system):
    jsonschema = pytest.importorskip("jsonschema")
    spec = system.http("GET", "/v1/openapi.json")[1]

    def check(name, instance):
        jsonschema.validate(instance, {"$ref": "#/components/schemas/" + name, "components": spec["components"]})
    accepted, _ = post(system, "true")
    check("Accepted", accepted)
    check("SessionDetail", wait_http(system, accepted["sessionId"], FINAL))
    check("SessionList", system.http("GET", "/v1/sessions?limit=5")[1])
    check("Status", system.http("GET", "/v1/status")[1])
    check("Error", system.http("GET", "/v1/sessions?limit=x")[1])


def test_the_key_appears_in_no_response(system):
    bodies = [system.http(m, p)[1] for m, p in ROUTES] + [system.http("GET", "/v1/status")[1]]
    assert system.key not in json.dumps(bodies)


def test_the_log_over_http_keeps_colour_codes_that_only_xml_rpc_must_replace(system):
    accepted, _ = post(system, "printf '\\033[31mred\\033[0m\\n'")
    sid = accepted["sessionId"]
    wait_http(system, sid, FINAL)
    status, text, _ = system.http("GET", "/v1/sessions/%s/log" % sid)
    assert status == 200 and "\x1b[31mred\x1b[0m\n" in text
    assert system.rpc().sessions.tailSessionLog(sid, 0, 1000)[0] == "\ufffd[31mred\ufffd[0m\n"


def test_a_session_that_cannot_start_says_why_in_its_log_and_its_follow_ends_with_it(system):
    accepted, _ = post(system, "true", env={"PATH": "/nonexistent"})
    record = wait_http(system, accepted["sessionId"], FINAL)
    assert (record["status"], record["cause"]) == ("failed", "spawn")
    status, text, _ = system.http("GET", "/v1/sessions/%s/log" % accepted["sessionId"])
    assert status == 200 and text == "supervisor-sessions: %s\n" % record["reason"]
    status, stream, _ = system.http("GET", "/v1/sessions/%s/log?follow=true" % accepted["sessionId"],
                                    headers={"Accept": "text/event-stream"})
    assert "data: supervisor-sessions: %s" % record["reason"] in stream
    end = json.loads(stream.split("event: end\n")[1].split("data: ", 1)[1].split("\n")[0])
    assert (end["status"], end["reason"]) == ("failed", record["reason"])
