"""Sessions against a real supervisord over XML-RPC: states, exit codes, logs, stop, removal."""
import os
import xmlrpc.client

import pytest

from supervisor_sessions.faults import Faults

from conftest import FINAL, pids_matching, wait_for


def fault_code(call, *args):
    with pytest.raises(xmlrpc.client.Fault) as info:
        call(*args)
    return info.value.faultCode


def test_a_zero_exit_completes_with_its_output_in_the_session_log(system):
    record = system.run("echo lifecycle-$((40+2))")
    assert record["status"] == "completed"
    assert record["exitCode"] == 0
    assert "lifecycle-42" in system.log(record["sessionId"])
    assert record["logFile"] == os.path.join(system.home, "logs", "sessions", record["sessionId"] + ".log")


def test_a_non_zero_exit_fails_with_its_exit_code_and_a_reason(system):
    record = system.run("exit 3")
    assert (record["status"], record["exitCode"], record["reason"]) == ("failed", 3, "exit code 3")


def test_a_worker_killed_by_a_signal_fails(system):
    record = system.run("kill -KILL $$")
    assert record["status"] == "failed"
    assert record["reason"] in ("killed by a signal", "killed by signal 9 (exit code 137)")


def test_the_meta_file_holds_the_record_of_state(system):
    record = system.run("true")
    meta = system.meta(record["sessionId"])
    assert meta["status"] == "completed" and meta["exitCode"] == 0
    assert meta["task"] == "true" and meta["runtime"] == "shell"
    assert record["sessionDir"] == os.path.join(system.home, "workspace", "sessions", record["sessionId"])


def test_a_running_session_reports_its_pid_and_start_time(system):
    record = system.spawn("sleep 3073")
    assert record["status"] == "running"
    assert record["pid"] > 0 and record["startTime"] >= record["createdAt"]
    assert os.path.exists("/proc/%d" % record["pid"])
    wait_for(lambda: pids_matching("sleep 3073"), message="the worker's child")
    system.rpc().sessions.stopSession(record["sessionId"])
    final = system.wait_status(record["sessionId"], FINAL)
    assert final["status"] == "stopped" and "pid" not in final


def test_stop_ends_every_process_of_the_tree(system):
    record = system.spawn("sleep 7311 & sleep 7312 & (sleep 7313 & wait) & wait")
    sid = record["sessionId"]
    wait_for(lambda: len(pids_matching("sleep 731[123]")) == 3, message="the tree to start")
    system.rpc().sessions.stopSession(sid)
    assert system.wait_status(sid, FINAL)["status"] == "stopped"
    wait_for(lambda: not pids_matching("sleep 731[123]"), timeout=5, message="the tree to be gone")


def test_stop_kills_children_that_ignore_sigterm_after_the_grace_period(system):
    sid = system.spawn("trap '' TERM; for i in 1 2 3 4 5; do (trap '' TERM; sleep 7321) & done; wait")["sessionId"]
    wait_for(lambda: len(pids_matching("sleep 7321")) == 5, message="the children to start")
    system.rpc().sessions.stopSession(sid)
    assert system.wait_status(sid, FINAL, timeout=15)["status"] == "stopped"
    wait_for(lambda: not pids_matching("sleep 7321"), timeout=5, message="the children to be gone")


def test_stop_kills_a_child_that_left_the_process_group(system):
    sid = system.spawn("setsid sleep 7331 & wait")["sessionId"]
    wait_for(lambda: pids_matching("sleep 7331"), message="the escaped child to start")
    system.rpc().sessions.stopSession(sid)
    system.wait_status(sid, FINAL)
    wait_for(lambda: not pids_matching("sleep 7331"), timeout=5, message="the escaped child to be gone")


def test_a_completed_session_leaves_no_background_process_behind(system):
    record = system.run("sleep 7341 & echo started")
    assert record["status"] == "completed"
    wait_for(lambda: not pids_matching("sleep 7341"), timeout=5, message="the left-over child to be gone")


def test_stopping_an_ended_session_changes_nothing(system):
    record = system.run("true")
    again = system.rpc().sessions.stopSession(record["sessionId"])
    assert again["status"] == "completed" and again["endTime"] == record["endTime"]


def test_remove_refuses_a_running_session_then_removes_everything(system):
    rpc = system.rpc()
    record = system.spawn("sleep 60")
    sid = record["sessionId"]
    assert fault_code(rpc.sessions.removeSession, sid) == Faults.SESSION_ACTIVE
    rpc.sessions.stopSession(sid)
    system.wait_status(sid, FINAL)
    assert rpc.sessions.removeSession(sid) is True
    assert sid not in {r["sessionId"] for r in rpc.sessions.listSessions()}
    assert not os.path.exists(record["sessionDir"]) and not os.path.exists(record["logFile"])
    assert not os.path.exists(os.path.join(system.home, "conf", "sessions", "sess-%s.conf" % sid))
    assert record["group"] not in {p["group"] for p in rpc.supervisor.getAllProcessInfo()}
    assert fault_code(rpc.sessions.getSession, sid) == Faults.NO_SUCH_SESSION


@pytest.mark.parametrize("bad_id", ["nope", "../../etc/passwd", "", "0" * 36,
                                    "00000000-0000-4000-8000-000000000000"])
def test_unknown_or_malformed_ids_are_no_such_session(system, bad_id):
    rpc = system.rpc()
    for method in (rpc.sessions.getSession, rpc.sessions.stopSession, rpc.sessions.removeSession):
        assert fault_code(method, bad_id) == Faults.NO_SUCH_SESSION
    assert fault_code(rpc.sessions.tailSessionLog, bad_id, 0, 10) == Faults.NO_SUCH_SESSION


def test_fifty_sessions_back_to_back_all_reach_a_final_state(system):
    rpc = system.rpc()
    ids = [rpc.sessions.createSession({"agent": "coder", "task": "exit $((%d %% 2))" % i,
                                       "provider": "gemini", "runtime": "shell"})["sessionId"]
           for i in range(50)]
    finals = [system.wait_status(sid, FINAL) for sid in ids]
    assert [r["status"] for r in finals] == ["completed", "failed"] * 25
    assert set(ids) <= {r["sessionId"] for r in rpc.sessions.listSessions()}


def test_an_ended_session_leaves_supervisord_and_keeps_its_config_in_its_directory(system):
    rpc = system.rpc()
    live = system.spawn("sleep 30")
    assert live["group"] in {p["group"] for p in rpc.supervisor.getAllProcessInfo()}
    assert os.path.exists(os.path.join(system.home, "conf", "sessions", live["group"] + ".conf"))
    rpc.sessions.stopSession(live["sessionId"])
    system.wait_status(live["sessionId"], FINAL)
    assert live["group"] not in {p["group"] for p in rpc.supervisor.getAllProcessInfo()}
    assert not os.path.exists(os.path.join(system.home, "conf", "sessions", live["group"] + ".conf"))
    with open(os.path.join(system.home, "state", "sessions", live["sessionId"], "program.conf")) as f:
        assert f.read().startswith("[program:%s]" % live["group"])
    assert rpc.supervisor.reloadConfig() == [[[], [], []]]
