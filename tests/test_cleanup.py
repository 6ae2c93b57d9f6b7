"""session-cleanup: removes ended sessions past their retention, and nothing else."""
import json
import os

from supervisor_sessions import cleanup

from conftest import FINAL, wait_for

HOUR = 3_600_000


def cleanup_lines(system):
    with open(os.path.join(system.home, "logs", "session-cleanup.log")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_the_cleanup_program_removes_ended_sessions_and_spares_live_ones(make_system):
    system = make_system(env={"SESSION_RETENTION_HOURS": "0", "CLEANUP_INTERVAL": "1"}).start()
    rpc = system.rpc()
    live = system.spawn("sleep 60")
    ended = system.run("echo bye")
    wait_for(lambda: ended["sessionId"] not in {r["sessionId"] for r in rpc.sessions.listSessions()},
             timeout=15, message="the ended session to be removed")
    assert not os.path.exists(ended["sessionDir"]) and not os.path.exists(ended["logFile"])
    assert rpc.sessions.getSession(live["sessionId"])["status"] == "running"
    lines = wait_for(lambda: cleanup_lines(system), message="the removal's log line")  # written just after it
    assert {"event": "session-removed", "sessionId": ended["sessionId"]}.items() <= lines[0].items()
    wait_for(lambda: system.http("GET", "/v1/sessions/" + ended["sessionId"])[0] == 404,
             message="the API to have heard of the removal")


def test_a_sweep_removes_every_expired_session_a_page_at_a_time(make_system, monkeypatch):
    system = make_system(env={"SESSION_RETENTION_HOURS": "1000"}).start()
    ended = [system.run("exit %d" % (i % 2))["sessionId"] for i in range(7)]
    live = system.spawn("exec sleep 60")["sessionId"]
    monkeypatch.setattr(cleanup, "PAGE", 3)
    assert cleanup.sweep(system.rpc(), retention_ms=0) == 7
    assert [r["sessionId"] for r in system.rpc().sessions.listSessions()] == [live]
    assert cleanup.sweep(system.rpc(), retention_ms=0) == 0
    system.rpc().sessions.stopSession(live)
    assert set(ended).isdisjoint(r["sessionId"] for r in system.rpc().sessions.listSessions())


def test_sessions_within_the_retention_are_kept(make_system):
    system = make_system(env={"SESSION_RETENTION_HOURS": "1", "CLEANUP_INTERVAL": "1"}).start()
    ended = system.run("true")
    status = system.rpc().supervisor.getProcessInfo("session-cleanup")
    wait_for(lambda: system.rpc().supervisor.getProcessInfo("session-cleanup")["now"] - status["start"] >= 3,
             timeout=10, message="a few cleanup rounds")
    assert system.rpc().sessions.getSession(ended["sessionId"])["status"] in FINAL


def test_a_removal_cut_short_is_finished_at_the_next_start(make_system):
    first = make_system().start()
    ended = first.run("true")
    first.stop()
    state = os.path.join(first.home, "state", "sessions", ended["sessionId"])
    trash = os.path.join(os.path.dirname(state), ".removing-" + ended["sessionId"])
    os.rename(state, trash)  # where removeSession's first step leaves it
    second = make_system(home=first.home).start()
    assert ended["sessionId"] not in {r["sessionId"] for r in second.rpc().sessions.listSessions()}
    assert not os.path.exists(trash) and not os.path.exists(ended["sessionDir"])
