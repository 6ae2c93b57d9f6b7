"""The sessions.* namespace as an XML-RPC client sees it: documented methods, guarded arguments, logs."""
import xmlrpc.client

import pytest

from supervisor_sessions.faults import Faults

from conftest import FINAL, wait_for

METHODS = ["answerApproval", "closeSession", "countSessions", "createSession", "getAPIVersion", "getCluster",
           "getEvents", "getIsolation", "getSession", "getSessionDiff", "getSessionFile", "interruptSession", "listApprovals", "listRuntimes",
           "listServices", "listSessions", "putSessionFile", "removeSession", "sendMessage", "stopSession",
           "tailSessionLog"]


def test_every_public_method_is_listed_and_documented(system):
    rpc = system.rpc()
    listed = sorted(m.split(".", 1)[1] for m in rpc.system.listMethods() if m.startswith("sessions."))
    assert listed == METHODS
    for name in METHODS:
        assert rpc.system.methodHelp("sessions." + name).strip()
        signature = rpc.system.methodSignature("sessions." + name)
        assert signature[0] in ("string", "struct", "array", "boolean", "int", "double")  # the return type, then params


def test_the_api_version_is_a_string(system):
    assert system.rpc().sessions.getAPIVersion() == "1.0"


@pytest.mark.parametrize("call", [
    lambda s: s.createSession("not a struct"),
    lambda s: s.createSession(["agent", "task"]),
    lambda s: s.tailSessionLog("00000000-0000-4000-8000-000000000000", "0", 10),
])
def test_wrong_argument_types_are_faults_that_say_so_not_type_errors(system, call):
    with pytest.raises(xmlrpc.client.Fault) as info:
        call(system.rpc().sessions)
    assert info.value.faultCode in (Faults.INVALID_SPEC, Faults.NO_SUCH_SESSION)
    assert info.value.faultCode != 2  # supervisor's INCORRECT_PARAMETERS


def test_bad_tail_arguments_are_invalid(system):
    sid = system.run("echo x")["sessionId"]
    for offset, length in (("0", 10), (0, "10"), (0, 0), (0, -5), (True, 10)):
        with pytest.raises(xmlrpc.client.Fault) as info:
            system.rpc().sessions.tailSessionLog(sid, offset, length)
        assert info.value.faultCode == Faults.INVALID_SPEC


def test_a_log_can_be_followed_by_offset_until_the_session_ends(system):
    rpc = system.rpc()
    sid = system.spawn("for i in $(seq 1 5); do echo line-$i; sleep 0.1; done")["sessionId"]
    seen, offset = "", 0

    def step():
        nonlocal seen, offset
        text, offset, overflow = rpc.sessions.tailSessionLog(sid, offset, 7)
        assert overflow is False
        seen += text
        return not text and rpc.sessions.getSession(sid)["status"] in FINAL
    wait_for(step, timeout=20, interval=0.01, message="the whole log")
    assert seen == "".join("line-%d\n" % i for i in range(1, 6))


def test_a_negative_offset_reads_the_end_of_the_log(system):
    sid = system.run("printf 'first\\nsecond\\nthird\\n'")["sessionId"]
    text, offset, overflow = system.rpc().sessions.tailSessionLog(sid, -1, 6)
    assert (text, offset, overflow) == ("third\n", len("first\nsecond\nthird\n"), False)


def test_output_xml_cannot_carry_arrives_replaced_not_as_a_broken_reply(system):
    sid = system.run("printf 'a\\000b\\033[31mred\\033[0m\\n'")["sessionId"]
    text, _, _ = system.rpc().sessions.tailSessionLog(sid, 0, 100)
    assert text == "a\ufffdb\ufffd[31mred\ufffd[0m\n"


def test_no_record_holds_an_unset_value(system):
    system.run("true")
    for record in system.rpc().sessions.listSessions():
        assert all(value is not None for value in record.values())


def test_list_sessions_filters_and_pages_newest_first(system):
    rpc = system.rpc()
    ids = [system.run("exit %d" % (i % 2))["sessionId"] for i in range(4)]
    newest = [r["sessionId"] for r in rpc.sessions.listSessions({"newestFirst": True, "limit": 4})]
    assert newest == ids[::-1]
    failed = [r["sessionId"] for r in rpc.sessions.listSessions({"status": "failed", "newestFirst": True,
                                                                   "limit": 2})]
    assert failed == [ids[3], ids[1]]
    oldest = [r["sessionId"] for r in rpc.sessions.listSessions()]
    assert oldest[-4:] == ids
    assert rpc.sessions.listSessions({"newestFirst": True, "offset": 1, "limit": 1})[0]["sessionId"] == ids[2]


@pytest.mark.parametrize("query", [{"status": "nope"}, {"limit": -1}, {"offset": "1"}, {"sort": "x"}, "x"])
def test_a_bad_list_query_is_invalid(system, query):
    with pytest.raises(xmlrpc.client.Fault) as info:
        system.rpc().sessions.listSessions(query)
    assert info.value.faultCode == Faults.INVALID_SPEC


def test_count_sessions_counts_every_state(system):
    rpc = system.rpc()
    before = rpc.sessions.countSessions()
    system.run("exit 1")
    after = rpc.sessions.countSessions()
    assert after["failed"] == before["failed"] + 1 and after["total"] == before["total"] + 1
    assert after["total"] == len(rpc.sessions.listSessions())
    assert set(after) == {"queued", "starting", "preparing", "running", "completed", "failed", "stopped",
                          "interrupted", "total"}
