"""Idempotent creates: the same Idempotency-Key (or clientToken) within a day gives the same session."""
import threading
import uuid
import xmlrpc.client

import pytest

from supervisor_sessions.faults import Faults

from conftest import FINAL

SPEC = {"agent": "a", "provider": "p", "runtime": "shell", "task": "sleep 30"}


def post(system, key=None, **extra):
    return system.http("POST", "/v1/sessions", dict(SPEC, **extra),
                       headers={"Idempotency-Key": key} if key is not None else None)


def test_the_same_key_twice_gives_one_session_and_200(system):
    key = str(uuid.uuid4())
    first = post(system, key)
    again = post(system, key)
    assert (first[0], again[0]) == (202, 200)
    assert first[1]["sessionId"] == again[1]["sessionId"]
    assert "Idempotency-Key" in again[1]["message"]
    mine = [s for s in system.http("GET", "/v1/sessions?limit=1000")[1]["sessions"]
            if s["sessionId"] == first[1]["sessionId"]]
    assert len(mine) == 1
    system.http("DELETE", "/v1/sessions/%s?purge=true" % first[1]["sessionId"])


def test_concurrent_creates_with_one_key_make_one_session(system):
    key = str(uuid.uuid4())
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(post(system, key))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(status for status, _, _ in answers) == [200] * 7 + [202]
    assert len({body["sessionId"] for _, body, _ in answers}) == 1
    system.http("DELETE", "/v1/sessions/%s?purge=true" % answers[0][1]["sessionId"])


def test_different_keys_and_no_key_make_different_sessions(system):
    ids = {post(system, key)[1]["sessionId"] for key in (str(uuid.uuid4()), str(uuid.uuid4()), None)}
    assert len(ids) == 3
    for sid in ids:
        system.http("DELETE", "/v1/sessions/%s?purge=true" % sid)


def test_a_removed_sessions_key_makes_a_new_session_and_a_restart_keeps_keys(make_system):
    system = make_system().start()
    key = str(uuid.uuid4())
    kept = post(system, "kept-" + key)[1]["sessionId"]
    removed = post(system, key)[1]["sessionId"]
    system.http("DELETE", "/v1/sessions/%s?purge=true" % removed)
    status, body, _ = post(system, key)
    assert status == 202 and body["sessionId"] != removed
    system.stop()
    system.start()
    status, body, _ = post(system, "kept-" + key)
    assert (status, body["sessionId"]) == (200, kept)


def test_client_token_in_the_spec_works_over_xml_rpc_too(system):
    token = str(uuid.uuid4())
    first = system.spawn("true", clientToken=token)
    again = system.spawn("true", clientToken=token)
    assert again["sessionId"] == first["sessionId"] and again["replayed"] is True
    assert "replayed" not in first
    system.wait_status(first["sessionId"], FINAL)


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "tab\tinside", "é"])
def test_a_bad_key_is_400(system, key):
    status, body, _ = system.http("POST", "/v1/sessions", dict(SPEC, clientToken=key))
    assert status == 400 and "clientToken" in body["message"]


def test_a_header_and_a_different_client_token_are_400(system):
    status, body, _ = post(system, "one", clientToken="two")
    assert status == 400 and "differ" in body["message"]


def test_a_bad_client_token_over_xml_rpc_is_invalid(system):
    with pytest.raises(xmlrpc.client.Fault) as info:
        system.spawn("true", clientToken=7)
    assert info.value.faultCode == Faults.INVALID_SPEC
