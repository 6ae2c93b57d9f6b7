"""The API's mirror of the session records: fed from the change feed, it must always say what supervisord
says (the truth is sessions.listSessions over XML-RPC), catch up at start, and show a create at once."""
import json
import os
import signal
import xmlrpc.client

import pytest

from supervisor_sessions.views import close_json, open_json, present
from supervisor_sessions.faults import Faults
from supervisor_sessions.mirror import PAGE, Mirror, apply_event

from conftest import FINAL, wait_for


def listed(system, query=""):
    status, body, _ = system.http("GET", "/v1/sessions?limit=1000" + query)
    assert status == 200, body
    return body


def truth(system):
    """Every record as GET shows it, from supervisord itself, newest first (durations left out: they grow)."""
    records = system.rpc().sessions.listSessions({"newestFirst": True})
    return [dict(present(r), duration=None) for r in records]


def mirrored(system):
    return [dict(r, duration=None) for r in listed(system)["sessions"]]


def test_a_session_created_over_http_is_in_the_very_next_list(system):
    status, body, _ = system.http("POST", "/v1/sessions", {"agent": "a", "provider": "p", "runtime": "shell",
                                                          "task": "exec sleep 30"})
    assert status == 202
    assert body["sessionId"] in {r["sessionId"] for r in listed(system)["sessions"]}
    status, record, _ = system.http("GET", "/v1/sessions/" + body["sessionId"])
    assert status == 200 and record["task"] == "exec sleep 30"
    system.http("DELETE", "/v1/sessions/" + body["sessionId"])


def test_a_session_removed_over_http_is_gone_from_the_very_next_read(system):
    sid = system.run("true")["sessionId"]
    assert system.http("DELETE", "/v1/sessions/%s?purge=true" % sid)[0] == 200
    assert system.http("GET", "/v1/sessions/" + sid)[0] == 404
    assert sid not in {r["sessionId"] for r in listed(system)["sessions"]}


def test_a_session_created_over_xml_rpc_is_found_at_once_and_listed_soon(system):
    sid = system.spawn("exec sleep 30")["sessionId"]
    assert system.http("GET", "/v1/sessions/" + sid)[0] == 200  # asked of supervisord when not mirrored yet
    wait_for(lambda: sid in {r["sessionId"] for r in listed(system)["sessions"]}, message="the list to show it")
    system.rpc().sessions.stopSession(sid)


def test_the_mirror_says_what_supervisord_says_through_a_life_of_changes(system):
    ids = [system.spawn(task, labels={"batch": "m"})["sessionId"]
           for task in ("true", "exit 3", "exec sleep 30", "kill -9 $$", "exec sleep 30")]
    system.rpc().sessions.stopSession(ids[2])
    for sid in ids[:4]:
        system.wait_status(sid, FINAL)
    system.rpc().sessions.removeSession(ids[0])
    wait_for(lambda: mirrored(system) == truth(system), message="the mirror to match supervisord")
    shown = {r["sessionId"]: r for r in listed(system, "&label=batch=m")["sessions"]}
    assert set(shown) == set(ids[1:])
    assert (shown[ids[1]]["status"], shown[ids[1]]["cause"], shown[ids[1]]["exitCode"]) == ("failed", "exit", 3)
    assert (shown[ids[2]]["status"], shown[ids[2]]["cause"]) == ("stopped", "request")
    assert shown[ids[4]]["status"] == "running" and shown[ids[4]]["pid"] > 0
    assert all(shown[sid]["pid"] is None and shown[sid]["endTime"] for sid in ids[1:4])
    system.rpc().sessions.stopSession(ids[4])


def test_counts_in_status_and_metrics_come_from_the_mirror_and_match(system):
    wait_for(lambda: mirrored(system) == truth(system), message="the mirror to settle")
    counts = system.rpc().sessions.countSessions()
    status, body, _ = system.http("GET", "/v1/status")
    assert body["workers"]["total"] == counts["total"] and body["workers"]["byStatus"]["completed"] == counts["completed"]


def test_a_restarted_api_catches_up_with_every_session(make_system):
    system = make_system().start()
    ids = [system.spawn("exit %d" % (i % 2))["sessionId"] for i in range(12)]
    for sid in ids:
        system.wait_status(sid, FINAL)
    system.rpc().supervisor.stopProcess("management-api")
    live = system.spawn("exec sleep 30")["sessionId"]  # made while no API ran
    system.rpc().supervisor.startProcess("management-api")
    wait_for(lambda: system.api_status("/health") == 200, message="the API to answer")
    wait_for(lambda: mirrored(system) == truth(system), message="the restarted API to catch up")
    assert {r["sessionId"] for r in listed(system)["sessions"]} == set(ids) | {live}


def test_reads_of_sessions_do_not_wait_on_supervisord(make_system):
    system = make_system().start()
    sid = system.run("echo from-the-log")["sessionId"]
    wait_for(lambda: sid in {r["sessionId"] for r in listed(system)["sessions"]}, message="the mirror to have it")
    os.kill(system.supervisord_pid(), signal.SIGSTOP)  # its loop answers nothing now (the API's 30 s would pass)
    try:
        assert [r["sessionId"] for r in listed(system)["sessions"]] == [sid]
        status, body, _ = system.http("GET", "/v1/sessions/" + sid)
        assert status == 200 and body["status"] == "completed" and body["logTail"] == "from-the-log"
        status, text, _ = system.http("GET", "/v1/sessions/%s/log" % sid)
        assert status == 200 and text == "from-the-log\n"
    finally:
        os.kill(system.supervisord_pid(), signal.SIGCONT)


def test_list_sessions_after_id_is_a_cursor_that_removals_do_not_shift(system):
    ids = [system.run("true")["sessionId"] for _ in range(4)]
    rpc = system.rpc().sessions
    after = [r["sessionId"] for r in rpc.listSessions({"afterId": ids[0], "limit": 2})]
    assert after == ids[1:3]
    rpc.removeSession(ids[1])
    assert [r["sessionId"] for r in rpc.listSessions({"afterId": ids[2], "limit": 2})][:1] == [ids[3]]
    with pytest.raises(xmlrpc.client.Fault) as info:
        rpc.listSessions({"afterId": ids[1]})
    assert info.value.faultCode == Faults.NO_SUCH_SESSION


# ---- the mirror alone, over a hand-written stand-in for the sessions.* calls it makes ----------------------

class FakeSessions:
    """sessions.listSessions / getEvents over a list of records and of events; `on_page` runs between pages."""

    def __init__(self, records, events, on_page=None):
        self.records, self.events, self.on_page, self.pages = records, events, on_page, 0

    def listSessions(self, query):
        ids = [r["sessionId"] for r in self.records]
        if "afterId" in query and query["afterId"] not in ids:
            raise xmlrpc.client.Fault(Faults.NO_SUCH_SESSION, "gone")
        start = ids.index(query["afterId"]) + 1 if "afterId" in query else 0
        self.pages += 1
        page = [dict(r) for r in self.records[start:start + query["limit"]]]
        if self.on_page:
            self.on_page(self)
        return page

    def getEvents(self, since, limit, wait=0):
        first = self.events[0]["seq"] if self.events else 1
        nxt = first + len(self.events)
        since = min(max(since, first), nxt)
        page = self.events[since - first:since - first + limit]
        return [page, page[-1]["seq"] + 1 if page else since]


class FakeProxy:
    def __init__(self, sessions):
        self.sessions = sessions


def record(i, status="completed"):
    return {"sessionId": "id-%05d" % i, "status": status, "createdAt": float(i)}


def test_catching_up_reads_every_page_and_replays_what_changed_meanwhile():
    records = [record(i) for i in range(2 * PAGE + 7)]
    events = []

    def change_things(fake):  # between pages: one session removed, one created, one ends
        if fake.pages == 1:
            base = len(events) + 1
            fake.records.pop(3)
            events.append({"seq": base, "type": "removed", "sessionId": "id-00003", "time": 0.0})
            new = record(99999, "queued")
            fake.records.append(new)
            events.append({"seq": base + 1, "type": "created", "sessionId": new["sessionId"], "time": 0.0,
                           "session": dict(new)})
            events.append({"seq": base + 2, "type": "state", "sessionId": new["sessionId"], "time": 0.0,
                           "status": "failed", "cause": "spawn"})
    fake = FakeSessions(records, events, change_things)
    mirror = Mirror(lambda: FakeProxy(fake))
    assert mirror._catch_up(FakeProxy(fake)) == 4
    shown, count = mirror.page(dict, lambda rendered, record: rendered, limit=10 ** 6)
    assert count == 2 * PAGE + 7 and fake.pages == 3
    assert "id-00003" not in {r["sessionId"] for r in shown}
    assert shown[0]["sessionId"] == "id-99999" and (shown[0]["status"], shown[0]["cause"]) == ("failed", "spawn")
    assert mirror.live


def test_a_page_cursor_that_vanished_makes_the_catch_up_start_again():
    records = [record(i) for i in range(PAGE + 5)]

    def remove_the_cursor(fake):
        if fake.pages == 1:
            fake.records.pop(PAGE - 1)
    fake = FakeSessions(records, [], remove_the_cursor)
    with pytest.raises(xmlrpc.client.Fault):
        Mirror(lambda: FakeProxy(fake))._catch_up(FakeProxy(fake))


def test_an_ended_session_keeps_no_pid_and_a_state_event_for_an_unknown_session_adds_nothing():
    records = {"a": {"sessionId": "a", "status": "running", "pid": 42}}
    apply_event(records, {"seq": 1, "type": "state", "sessionId": "a", "time": 0.0, "status": "stopped",
                          "cause": "request", "labels": {"k": "v"}})
    assert records["a"] == {"sessionId": "a", "status": "stopped", "cause": "request"}
    apply_event(records, {"seq": 2, "type": "state", "sessionId": "b", "time": 0.0, "status": "running"})
    assert set(records) == {"a"}


@pytest.mark.parametrize("record", [
    {"sessionId": "a", "status": "running", "startTime": 1000.0, "createdAt": 900.0, "pid": 7, "task": "x\u2028<y>"},
    {"sessionId": "b", "status": "completed", "startTime": 1000.0, "endTime": 1500.0, "cause": "exit"},
    {"sessionId": "c", "status": "queued", "labels": {"k": "v"}},
])
def test_a_record_s_json_kept_apart_from_its_duration_is_the_record_as_get_shows_it(record):
    assert json.loads(close_json(open_json(record), record, 4000)) == present(record, 4000)


def test_a_create_seen_by_the_api_is_not_overwritten_by_an_older_copy():
    mirror = Mirror(lambda: None)
    mirror.add({"sessionId": "a", "status": "running"})
    mirror.add({"sessionId": "a", "status": "queued"})
    assert mirror.get("a")["status"] == "running"
