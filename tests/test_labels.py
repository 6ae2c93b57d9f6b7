"""Labels: set at creation, shown in records and events, filtered on (every label asked for must match)."""
import urllib.parse
import xmlrpc.client

import pytest

from supervisor_sessions.faults import Faults

from conftest import FINAL


def create(system, labels):
    status, body, _ = system.http("POST", "/v1/sessions", {"agent": "a", "provider": "p", "runtime": "shell",
                                                           "task": "true", "labels": labels})
    assert status == 202, body
    return body["sessionId"]


def listed(system, *labels):
    query = urllib.parse.urlencode([("label", label) for label in labels] + [("limit", "1000")])
    status, body, _ = system.http("GET", "/v1/sessions?" + query)
    assert status == 200, body
    return {s["sessionId"] for s in body["sessions"]}, body["count"]


def test_labels_are_shown_in_the_record_and_filter_the_list_anded(system):
    team = "t-%s" % id(system)
    both = create(system, {"team": team, "tier": "gpu"})
    one = create(system, {"team": team, "tier": "cpu"})
    plain = create(system, {})
    assert system.http("GET", "/v1/sessions/" + both)[1]["labels"] == {"team": team, "tier": "gpu"}
    assert system.http("GET", "/v1/sessions/" + plain)[1]["labels"] == {}
    assert listed(system, "team=" + team) == ({both, one}, 2)
    assert listed(system, "team=" + team, "tier=gpu") == ({both}, 1)
    assert listed(system, "team=" + team, "tier=none") == (set(), 0)
    assert system.rpc().sessions.countSessions({"labels": {"team": team}})["total"] == 2
    found = system.rpc().sessions.listSessions({"labels": {"team": team, "tier": "cpu"}})
    assert [r["sessionId"] for r in found] == [one]


def test_labels_travel_with_every_event_of_their_session_and_filter_the_feed(system):
    sid = create(system, {"app": "feed-test", "note": "héllo wörld"})
    system.wait_status(sid, FINAL)
    query = urllib.parse.urlencode({"since": 0, "label": "note=héllo wörld"})
    status, body, _ = system.http("GET", "/v1/events?" + query)
    mine = [e for e in body["events"] if e["sessionId"] == sid]
    assert status == 200 and len(mine) == 4 and {e["sessionId"] for e in body["events"]} == {sid}
    assert all(e["labels"] == {"app": "feed-test", "note": "héllo wörld"} for e in mine)


@pytest.mark.parametrize("labels", [
    {"": "x"}, {"-starts-badly": "x"}, {"has space": "x"}, {"k": 1}, {"k": "a\nb"}, {"k": "x" * 129},
    {"k%d" % i: "v" for i in range(17)}, ["not", "a", "struct"],
])
def test_bad_labels_are_refused_clearly(system, labels):
    status, body, _ = system.http("POST", "/v1/sessions", {"agent": "a", "provider": "p", "runtime": "shell",
                                                           "task": "true", "labels": labels})
    assert status == 400 and "label" in body["message"]


@pytest.mark.parametrize("query", ["label=novalue", "label==v", "label=a%20b=c"])
def test_bad_label_filters_are_400(system, query):
    for path in ("/v1/sessions?", "/v1/events?"):
        status, body, _ = system.http("GET", path + query)
        assert status == 400 and "label" in body["message"], (path, body)


def test_a_label_filter_over_xml_rpc_is_checked(system):
    with pytest.raises(xmlrpc.client.Fault) as info:
        system.rpc().sessions.listSessions({"labels": {"bad name": "x"}})
    assert info.value.faultCode == Faults.INVALID_SPEC
