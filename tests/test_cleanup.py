"""session-cleanup: removes ended sessions past their retention, and nothing else."""
import json
import os

from supervisor_sessions.cleanup import expired

from conftest import FINAL, wait_for

HOUR = 3_600_000


def record(sid, status, end=None, created=0):
    r = {"sessionId": sid, "status": status, "createdAt": created}
    if end is not None:
        r["endTime"] = end
    return r


def test_only_ended_sessions_older_than_the_retention_expire():
    now = 100 * HOUR
    records = [record("old-done", "completed", end=now - 25 * HOUR), record("new-done", "failed", end=now - HOUR),
               record("old-running", "running", created=now - 99 * HOUR),
               record("old-queued", "queued", created=now - 99 * HOUR),
               record("never-ran", "stopped", created=now - 30 * HOUR),
               record("interrupted", "interrupted", end=now - 24 * HOUR)]
    assert expired(records, now, 24 * HOUR) == ["old-done", "never-ran", "interrupted"]
    assert expired(records, now, 0) == ["old-done", "new-done", "never-ran", "interrupted"]


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
    assert {"event": "session-removed", "sessionId": ended["sessionId"]}.items() <= cleanup_lines(system)[0].items()
    assert system.http("GET", "/v1/sessions/" + ended["sessionId"])[0] == 404


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
