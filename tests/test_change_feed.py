"""The change feed: every creation, state change and removal of a session, numbered, durable and resumable,
over XML-RPC (sessions.getEvents) and HTTP (/v1/events as a JSON page, SSE or NDJSON)."""
import http.client
import json
import threading
import xmlrpc.client

import pytest

from supervisor_sessions.faults import Faults

from conftest import FINAL


def feed(system, since=0):
    """Every event from `since` on, through JSON pages."""
    events = []
    while True:
        status, body, _ = system.http("GET", "/v1/events?since=%d" % since)
        assert status == 200, body
        events += body["events"]
        if not body["events"]:
            return events
        since = body["nextSeq"]


def of(events, sid):
    return [(e["type"], e.get("status")) for e in events if e["sessionId"] == sid]


class SseReader:
    """A raw SSE follower of /v1/events that can be cut and resumed with Last-Event-ID."""

    def __init__(self, system, last_event_id=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=30)
        headers = {"Authorization": "Bearer " + system.key, "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", "/v1/events", headers=headers)
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("Content-Type").startswith("text/event-stream")

    def next_event(self):
        fields = {}
        while True:
            line = self.response.readline().decode("utf-8").rstrip("\n")
            if not line:
                if "data" in fields:
                    return fields
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = value

    def close(self):
        self.conn.close()


def test_a_session_s_life_is_in_the_feed_in_order(system):
    record = system.run("echo hi")
    events = feed(system)
    assert of(events, record["sessionId"]) == [("created", None), ("state", "starting"), ("state", "running"),
                                               ("state", "completed")]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    finished = [e for e in events if e["sessionId"] == record["sessionId"]][-1]
    assert finished["exitCode"] == 0 and isinstance(finished["time"], int)


def test_get_events_over_xml_rpc_pages_and_continues(system):
    system.run("true")
    events, next_seq = system.rpc().sessions.getEvents(0, 2)
    assert len(events) == 2 and next_seq == events[-1]["seq"] + 1
    more, _ = system.rpc().sessions.getEvents(next_seq, 1000)
    assert more and more[0]["seq"] == next_seq


def next_seq(system):
    return system.rpc().sessions.getEvents(10 ** 9, 1)[1]


def test_get_events_waits_for_the_next_event_without_holding_supervisord_up(system):
    start = next_seq(system)
    answers = []
    waiter = threading.Thread(target=lambda: answers.append(system.rpc(timeout=90).sessions.getEvents(start, 10, 60)))
    waiter.start()
    for _ in range(3):  # supervisord answers others while the call waits
        assert system.rpc().sessions.getAPIVersion()
    assert waiter.is_alive() and not answers
    sid = system.spawn("true")["sessionId"]
    waiter.join(timeout=20)  # far less than the 60 s it may wait: it answered at the event
    assert not waiter.is_alive()
    events, following = answers[0]
    assert events[0]["seq"] == start and (events[0]["type"], events[0]["sessionId"]) == ("created", sid)
    assert following == events[-1]["seq"] + 1


def test_a_waiting_reader_gets_events_with_non_ascii_text_whole(system):
    task = "exit 0 # ünïcödé ✓ 🚀 \u2028"
    start = next_seq(system)
    answers = []
    waiter = threading.Thread(target=lambda: answers.append(system.rpc(timeout=90).sessions.getEvents(start, 10, 60)))
    waiter.start()
    system.spawn(task)
    waiter.join(timeout=20)
    events, following = answers[0]
    if not events:  # answered early at the same seq: the next call has them
        assert following == start
        events, following = system.rpc().sessions.getEvents(start, 10, 60)
    assert events[0]["type"] == "created" and events[0]["session"]["task"] == task


def test_get_events_with_nothing_new_answers_empty_once_the_wait_is_over(make_system):
    system = make_system().start()  # a quiet one: no session of another test ends meanwhile
    start = next_seq(system)
    assert system.rpc().sessions.getEvents(start, 10, 1) == [[], start]


def test_events_carry_what_changed_so_a_reader_can_keep_the_record(system):
    record = system.run("exit 3", labels={"team": "a"}, clientToken="feed-token-1")
    events = [e for e in feed(system) if e["sessionId"] == record["sessionId"]]
    created, starting, running, failed = events
    assert created["session"]["task"] == "exit 3" and created["session"]["labels"] == {"team": "a"}
    assert created["session"]["status"] == "queued" and "clientToken" not in created["session"]
    assert isinstance(created["session"]["createdAt"], int)
    assert running["pid"] > 0 and running["startTime"] >= created["session"]["createdAt"]
    assert (failed["status"], failed["cause"], failed["exitCode"]) == ("failed", "exit", 3)
    assert failed["endTime"] >= running["startTime"] and failed["reason"] == "exit code 3"
    assert all(e["labels"] == {"team": "a"} for e in events)


@pytest.mark.parametrize("task, status, cause, spec", [
    ("true", "completed", "exit", {}),
    ("exit 2", "failed", "exit", {}),
    ("kill -9 $$", "failed", "signal", {}),
    ("exec sleep 30", "failed", "timeout", {"timeoutSeconds": 1}),
])
def test_every_ending_says_why(system, task, status, cause, spec):
    record = system.run(task, timeout=30, **spec)
    assert (record["status"], record["cause"]) == (status, cause), record


@pytest.mark.parametrize("by, reason", [("request", "stopped on request"), ("cleanup", "stopped by cleanup")])
def test_a_stop_says_who_asked_for_it(system, by, reason):
    sid = system.spawn("exec sleep 60")["sessionId"]
    system.wait_status(sid, {"running"})
    system.rpc().sessions.stopSession(sid, by)
    record = system.wait_status(sid, FINAL)
    assert (record["status"], record["cause"], record["reason"]) == ("stopped", by, reason)


def test_a_stop_by_someone_unknown_is_invalid(system):
    sid = system.spawn("exec sleep 60")["sessionId"]
    with pytest.raises(xmlrpc.client.Fault) as info:
        system.rpc().sessions.stopSession(sid, "the-janitor")
    assert info.value.faultCode == Faults.INVALID_SPEC
    system.rpc().sessions.stopSession(sid)
    system.wait_status(sid, FINAL)  # its last event must not land in a later test's feed


def test_list_sessions_can_ask_for_those_that_ended_before_a_time(system):
    ended = system.run("true")
    live = system.spawn("exec sleep 60")
    cutoff = ended["endTime"] + 1
    found = {r["sessionId"] for r in system.rpc().sessions.listSessions({"endedBefore": float(cutoff)})}
    assert ended["sessionId"] in found and live["sessionId"] not in found
    assert all(r["status"] in FINAL and r["endTime"] < cutoff
               for r in system.rpc().sessions.listSessions({"endedBefore": float(cutoff)}))
    system.rpc().sessions.stopSession(live["sessionId"])
    system.wait_status(live["sessionId"], FINAL)


@pytest.mark.parametrize("args", [("0", 10), (0, 0), (0, 1001), (True, 5), (0, 5, -1), (0, 5, 61), (0, 5, "1")])
def test_bad_get_events_arguments_are_invalid(system, args):
    with pytest.raises(xmlrpc.client.Fault) as info:
        system.rpc().sessions.getEvents(*args)
    assert info.value.faultCode == Faults.INVALID_SPEC


def test_a_follower_that_reconnects_with_last_event_id_sees_every_event_once_in_order(system):
    start = system.rpc().sessions.getEvents(10 ** 9, 1)[1]
    created = []

    def make():
        for _ in range(200):
            created.append(system.spawn("true")["sessionId"])
    maker = threading.Thread(target=make)
    maker.start()
    seen, reader = [], SseReader(system, last_event_id=start - 1)
    while len([e for e in seen if e["type"] == "state" and e.get("status") in FINAL]) < 200:
        event = reader.next_event()
        seen.append(dict(json.loads(event["data"]), id=int(event["id"])))
        if len(seen) % 37 == 0:  # cut the connection now and then, and resume from the last id seen
            reader.close()
            reader = SseReader(system, last_event_id=seen[-1]["id"])
    reader.close()
    maker.join()
    assert [e["seq"] for e in seen] == list(range(start, start + len(seen)))
    assert all(e["id"] == e["seq"] for e in seen)
    assert {e["sessionId"] for e in seen} == set(created)
    for sid in created:
        assert of(seen, sid) == [("created", None), ("state", "starting"), ("state", "running"),
                                 ("state", "completed")]


def test_ndjson_streams_the_feed_and_filters_by_session_and_type(system):
    record = system.run("true")
    sid = record["sessionId"]
    conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=30)
    conn.request("GET", "/v1/events?since=0&session=%s&type=state" % sid,
                 headers={"Authorization": "Bearer " + system.key, "Accept": "application/x-ndjson"})
    response = conn.getresponse()
    assert response.getheader("Content-Type").startswith("application/x-ndjson")
    lines = [json.loads(response.readline()) for _ in range(3)]
    conn.close()
    assert [(e["type"], e["status"]) for e in lines] == [("state", "starting"), ("state", "running"),
                                                         ("state", "completed")]
    assert {e["sessionId"] for e in lines} == {sid}


@pytest.mark.parametrize("query, header", [
    ("since=-1", None), ("since=x", None), ("session=not-an-id", None), ("type=nonsense", None),
    ("", "abc"),
])
def test_bad_feed_queries_are_400(system, query, header):
    status, body, _ = system.http("GET", "/v1/events?" + query,
                                  headers={"Last-Event-ID": header} if header else None)
    assert status == 400 and body["error"] == "invalid_request"


def test_the_feed_continues_after_kill_9_with_every_acknowledged_create(make_system):
    system = make_system().start()
    acknowledged = [system.spawn("sleep 60")["sessionId"] for _ in range(5)]
    before = feed(system)
    system.kill9()
    system.start()
    after = feed(system, since=before[-1]["seq"] + 1)
    assert after and after[0]["seq"] == before[-1]["seq"] + 1
    everything = before + after
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    for sid in acknowledged:
        assert of(everything, sid)[0] == ("created", None)
        assert of(everything, sid)[-1] == ("state", "interrupted")
        assert [e for e in everything if e["sessionId"] == sid][-1]["cause"] == "shutdown"


def test_asking_for_events_older_than_the_journal_keeps_is_410_naming_the_oldest(make_system):
    system = make_system(env={"EVENTS_RETAINED": "10"}).start()
    for _ in range(8):
        system.run("true")
    with pytest.raises(xmlrpc.client.Fault) as info:  # 32 events, of which the newest 10-20 are kept
        system.rpc().sessions.getEvents(1, 1)
    assert info.value.faultCode == Faults.EVENTS_GONE
    status, body, _ = system.http("GET", "/v1/events?since=1")
    assert status == 410 and body["error"] == "gone"
    oldest = int(body["message"].split("ask from seq ")[1].split()[0])
    status, body, _ = system.http("GET", "/v1/events?since=%d" % oldest)
    assert status == 200 and body["events"][0]["seq"] == oldest



def test_a_log_follower_resumes_from_the_offset_of_the_last_chunk_without_loss_or_repeats(system):
    sid = system.spawn("for i in $(seq 1 40); do echo line-$i; sleep 0.02; done")["sessionId"]
    got, last_id, ended = "", None, None
    while ended is None:
        conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=30)
        headers = {"Authorization": "Bearer " + system.key, "Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        conn.request("GET", "/v1/sessions/%s/log?follow=true" % sid, headers=headers)
        response = conn.getresponse()
        fields, frames = {}, 0
        while frames < 3:  # cut after three chunks, then reconnect from the last id
            line = response.readline().decode("utf-8").rstrip("\n")
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(": ")
                fields.setdefault(key, []).append(value)
                continue
            if "event" in fields:
                ended = json.loads(fields["data"][0])
                break
            if "data" in fields:
                got += "\n".join(fields["data"]) + "\n"
                last_id = fields["id"][0]
                frames += 1
            fields = {}
        conn.close()
    assert got.split() == ["line-%d" % i for i in range(1, 41)]
    assert ended == {"sessionId": sid, "status": "completed", "cause": "exit", "reason": None}


def test_the_log_from_an_offset(system):
    sid = system.run("echo first; echo second")["sessionId"]
    status, text, _ = system.http("GET", "/v1/sessions/%s/log?offset=6" % sid)
    assert status == 200 and text == "second\n"
