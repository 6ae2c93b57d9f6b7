"""Limits, the queue, exclusive resources, timeouts, per-session resources and /metrics, for real."""
import os
import threading
import xmlrpc.client

import pytest
from prometheus_client.parser import text_string_to_metric_families

from supervisor_sessions.faults import Faults

from conftest import FINAL, pids_matching, wait_for

SHELL = {"agent": "coder", "provider": "gemini", "runtime": "shell"}
# agentic-flow 2.1.2 ignored PROXY_PORT and bound 3000 for these providers: a user pinned to it says so.
PINNED_RUNTIME = """{% extends "session.conf.j2" %}
{% set argv = ["bash", "--noprofile", "--norc", task_file] %}
{% set secrets = [] %}
{% set mcp_forms = [] %}
{% set exclusive = ["tcp:3000"] if provider in ("gemini", "openrouter", "requesty") else [] %}
"""


def statuses(system, ids):
    rpc = system.rpc()
    return [rpc.sessions.getSession(sid)["status"] for sid in ids]


@pytest.fixture
def limited(make_system):
    return make_system(env={"MAX_CONCURRENT_SESSIONS": "2", "MAX_QUEUED_SESSIONS": "3"}).start()


def test_sessions_over_the_limit_wait_and_start_oldest_first(limited):
    ids = [limited.spawn("sleep 60")["sessionId"] for _ in range(5)]
    assert statuses(limited, ids) == ["running"] * 2 + ["queued"] * 3
    queued = limited.rpc().sessions.getSession(ids[2])
    assert "pid" not in queued and "startTime" not in queued
    limited.rpc().sessions.stopSession(ids[0])
    wait_for(lambda: statuses(limited, ids) == ["stopped", "running", "running", "queued", "queued"],
             message="the oldest queued session to start")
    limited.rpc().sessions.stopSession(ids[1])
    wait_for(lambda: statuses(limited, ids)[3] == "running", message="the next one")
    assert statuses(limited, ids)[4] == "queued"


def test_past_the_queue_limit_create_is_refused_over_rpc_and_http(limited):
    for _ in range(5):
        limited.spawn("sleep 60")
    with pytest.raises(xmlrpc.client.Fault) as info:
        limited.spawn("true")
    assert info.value.faultCode == Faults.QUEUE_FULL and "MAX_QUEUED_SESSIONS" in info.value.faultString
    status, body, headers = limited.http("POST", "/v1/sessions", dict(SHELL, task="true"))
    assert status == 429 and body["error"] == "too_many_requests" and dict(headers)["Retry-After"]
    assert limited.http("GET", "/v1/status")[1]["workers"]["queued"] == 3


def test_a_queued_session_can_be_stopped_before_it_ever_runs(limited):
    ids = [limited.spawn("echo ran; sleep 60")["sessionId"] for _ in range(3)]
    rpc = limited.rpc()
    with pytest.raises(xmlrpc.client.Fault) as info:
        rpc.sessions.removeSession(ids[2])
    assert info.value.faultCode == Faults.SESSION_ACTIVE
    assert rpc.sessions.stopSession(ids[2])["status"] == "stopped"
    rpc.sessions.stopSession(ids[0])
    limited.wait_status(ids[0], FINAL)
    assert statuses(limited, ids)[2] == "stopped"
    assert not os.path.exists(rpc.sessions.getSession(ids[2])["logFile"])  # it never ran
    assert rpc.sessions.removeSession(ids[2]) is True


def test_queued_sessions_survive_a_restart_and_start_then(make_system):
    first = make_system(env={"MAX_CONCURRENT_SESSIONS": "1"}).start()
    running = first.spawn("sleep 60")["sessionId"]
    queued = [first.spawn("echo after-restart")["sessionId"] for _ in range(2)]
    assert statuses(first, queued) == ["queued", "queued"]
    first.kill9()
    second = make_system(home=first.home, env={"MAX_CONCURRENT_SESSIONS": "1"}).start()
    assert second.rpc().sessions.getSession(running)["status"] == "interrupted"
    for sid in queued:
        assert second.wait_status(sid, FINAL)["status"] == "completed"
        assert second.log(sid) == "after-restart\n"


def test_an_exclusive_resource_serialises_its_holders_while_others_run(make_system, tmp_path):
    overlay = tmp_path / "templates"
    (overlay / "runtimes").mkdir(parents=True)
    (overlay / "runtimes" / "pinned.conf.j2").write_text(PINNED_RUNTIME)
    system = make_system(env={"SESSIONS_TEMPLATES_DIR": str(overlay)}).start()
    first = system.spawn("sleep 60", runtime="pinned")["sessionId"]
    second = system.spawn("echo second", runtime="pinned")["sessionId"]
    other = system.spawn("echo other", runtime="pinned", provider="anthropic")["sessionId"]
    plain = system.spawn("echo plain")["sessionId"]
    assert statuses(system, [first, second]) == ["running", "queued"]
    assert system.wait_status(other, FINAL)["status"] == "completed"
    assert system.wait_status(plain, FINAL)["status"] == "completed"
    assert statuses(system, [second]) == ["queued"]
    system.rpc().sessions.stopSession(first)
    assert system.wait_status(second, FINAL)["status"] == "completed"


def test_a_worker_past_its_timeout_fails_with_reason_timeout(limited):
    sid = limited.spawn("sleep 3072", timeoutSeconds=1)["sessionId"]
    record = limited.wait_status(sid, FINAL, timeout=15)
    assert (record["status"], record["reason"], record["timeoutSeconds"]) == ("failed", "timeout", 1)
    assert record["endTime"] - record["startTime"] >= 1000
    wait_for(lambda: not pids_matching("sleep 3072"), timeout=5, message="the worker gone")


def test_the_default_timeout_applies_and_the_maximum_is_enforced(make_system):
    system = make_system(env={"SESSION_TIMEOUT_SECONDS": "1", "SESSION_TIMEOUT_MAX_SECONDS": "5"}).start()
    record = system.run("sleep 60", timeout=15)
    assert (record["status"], record["reason"]) == ("failed", "timeout")
    with pytest.raises(xmlrpc.client.Fault) as info:
        system.spawn("true", timeoutSeconds=6)
    assert info.value.faultCode == Faults.INVALID_SPEC and "timeoutSeconds" in info.value.faultString


def test_a_hundred_concurrent_posts_respect_both_limits(make_system):
    system = make_system(env={"MAX_CONCURRENT_SESSIONS": "3", "MAX_QUEUED_SESSIONS": "40"}).start()
    answers = []

    def post():
        answers.append(system.http("POST", "/v1/sessions", dict(SHELL, task="sleep 60"))[0])
    threads = [threading.Thread(target=post) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [202] * 43 + [429] * 57
    counts = system.rpc().sessions.countSessions()
    assert (counts["running"] + counts["starting"], counts["queued"], counts["total"]) == (3, 40, 43)


def test_a_running_session_shows_the_resources_of_its_tree(system):
    sid = system.spawn("(while :; do :; done) & sleep 60")["sessionId"]
    wait_for(lambda: system.http("GET", "/v1/sessions/" + sid)[1]["resources"]["processes"] >= 3,
             message="the tree")
    wait_for(lambda: system.http("GET", "/v1/sessions/" + sid)[1]["resources"]["cpuPercent"] > 30,
             timeout=10, interval=0.3, message="a busy tree")
    resources = system.http("GET", "/v1/sessions/" + sid)[1]["resources"]
    assert resources["rss"] > 1024 * 1024 and resources["gpuMemory"] in (None, 0)
    system.http("DELETE", "/v1/sessions/" + sid)
    assert wait_for(lambda: system.http("GET", "/v1/sessions/" + sid)[1]["resources"] is None)


def metric_samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_parse_and_match_the_api(system):
    assert system.http("POST", "/v1/sessions", dict(SHELL, task="true"))[0] == 202
    system.http("GET", "/v1/sessions/not-an-id")
    status, text, headers = system.http("GET", "/metrics")
    assert status == 200 and dict(headers)["Content-Type"].startswith("text/plain")
    samples = metric_samples(text)
    counts = system.http("GET", "/v1/status")[1]["workers"]["byStatus"]
    for state, count in counts.items():
        assert samples[("sessions", (("state", state),))] == count
    assert samples[("sessions_queue_length", ())] == counts["queued"]
    assert samples[("sessions_spawn_duration_seconds_count", ())] >= 1
    key = ("sessions_api_requests_total", (("method", "GET"), ("route", "/v1/sessions/<sid>"), ("status", "404")))
    assert samples[key] >= 1


def test_metrics_need_the_token_unless_public(system, make_system):
    assert system.http("GET", "/metrics", auth=False)[0] == 401
    public = make_system(env={"METRICS_PUBLIC": "true"}).start()
    assert public.http("GET", "/metrics", auth=False)[0] == 200


def test_a_queued_session_whose_config_is_gone_fails_instead_of_waiting_for_ever(make_system):
    first = make_system(env={"MAX_CONCURRENT_SESSIONS": "1"}).start()
    first.spawn("sleep 60")
    queued = first.spawn("echo never")
    first.kill9()
    os.unlink(os.path.join(first.home, "conf", "sessions", queued["group"] + ".conf"))
    second = make_system(home=first.home, env={"MAX_CONCURRENT_SESSIONS": "1"}).start()
    record = second.wait_status(queued["sessionId"], FINAL)
    assert (record["status"], record["reason"]) == ("failed", "its program is no longer in supervisord's config")
