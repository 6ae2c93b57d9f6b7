"""Nothing is lost when supervisord restarts, is reloaded or is killed; nothing is re-run either."""
import os
import signal
import xmlrpc.client
from xml.parsers.expat import ExpatError

import psutil

from conftest import FINAL, pids_matching, wait_for


def listed(system):
    return {r["sessionId"]: r for r in system.rpc().sessions.listSessions()}


def test_after_kill_9_every_session_is_back_and_running_ones_are_interrupted(make_system):
    first = make_system().start()
    done = [first.run("echo finished-%d" % i)["sessionId"] for i in range(3)]
    live = [first.spawn("echo started; sleep 8123 # persist")["sessionId"] for _ in range(3)]
    for sid in live:
        wait_for(lambda: "started" in first.log(sid), message="the worker to print")
    api_pid = [p["pid"] for p in first.rpc().supervisor.getAllProcessInfo() if p["name"] == "management-api"][0]
    first.kill9()

    second = make_system(home=first.home).start()
    sessions = listed(second)
    assert set(done + live) <= set(sessions)
    assert [sessions[sid]["status"] for sid in done] == ["completed"] * 3
    assert [sessions[sid]["status"] for sid in live] == ["interrupted"] * 3
    assert all(sessions[sid]["reason"] == "supervisord stopped while the worker ran" for sid in live)
    assert all(second.meta(sid)["status"] == "interrupted" for sid in live)
    text, _, _ = second.rpc().sessions.tailSessionLog(done[0], 0, 1000)
    assert text == "finished-0\n"
    wait_for(lambda: not pids_matching("sleep 8123"), timeout=5, message="orphaned workers to be killed")
    wait_for(lambda: not psutil.pid_exists(api_pid), timeout=5, message="the orphaned API to exit")


def test_a_restarted_system_never_reruns_a_session(make_system):
    first = make_system().start()
    record = first.spawn("echo run >> runs.txt; sleep 60")
    wait_for(lambda: os.path.exists(os.path.join(record["sessionDir"], "runs.txt")), message="the first run")
    first.stop()
    second = make_system(home=first.home).start()
    assert second.rpc().sessions.getSession(record["sessionId"])["status"] == "interrupted"
    with open(os.path.join(record["sessionDir"], "runs.txt")) as f:
        assert f.read() == "run\n"
    assert record["group"] not in {p["group"] for p in second.rpc().supervisor.getAllProcessInfo()}


def test_a_clean_shutdown_marks_running_sessions_interrupted(make_system):
    system = make_system().start()
    record = system.spawn("sleep 60")
    system.stop()
    assert system.meta(record["sessionId"])["status"] == "interrupted"


def test_supervisorctl_update_leaves_a_live_session_alone(make_system):
    system = make_system().start()
    record = system.spawn("sleep 60")
    result = system.ctl("update")
    assert result.returncode == 0, result.stdout + result.stderr
    info = system.rpc().supervisor.getProcessInfo(record["group"])
    assert (info["statename"], info["pid"]) == ("RUNNING", record["pid"])
    assert system.rpc().supervisor.reloadConfig() == [[[], [], []]]


def test_a_reload_interrupts_running_sessions_and_keeps_them_listed(make_system):
    system = make_system().start()
    finished = system.run("true")
    running = system.spawn("sleep 60")
    old_pid = system.supervisord_pid()
    os.kill(old_pid, signal.SIGHUP)

    def reloaded():
        try:
            return listed(system)[running["sessionId"]]["status"] == "interrupted"
        except (OSError, xmlrpc.client.Error, ExpatError):  # SHUTDOWN_STATE, or an answer cut by the reload
            return False
    wait_for(reloaded, message="the reload")

    def running_again():
        try:
            return system.rpc().supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error, ExpatError):
            return False
    wait_for(running_again, message="supervisord to run again")
    sessions = listed(system)
    assert sessions[finished["sessionId"]]["status"] == "completed"
    assert system.supervisord_pid() == old_pid
    assert not psutil.pid_exists(running["pid"]) or psutil.Process(running["pid"]).status() == "zombie"
    second = system.spawn("echo after-reload")
    assert system.wait_status(second["sessionId"], FINAL)["status"] == "completed"


def test_a_broken_session_config_is_quarantined_and_the_rest_starts(make_system):
    first = make_system().start()
    kept = first.run("echo kept")
    first.stop()
    conf_dir = os.path.join(first.home, "conf", "sessions")
    broken = os.path.join(conf_dir, "sess-00000000-0000-4000-8000-000000000000.conf")
    with open(broken, "w") as f:
        f.write("[program:sess-00000000-0000-4000-8000-000000000000]\ncommand=echo 100% done\n")
    second = make_system(home=first.home).start()
    assert not os.path.exists(broken)
    assert os.path.exists(os.path.join(first.home, "conf", "quarantine", os.path.basename(broken)))
    assert "quarantined %s" % broken in second.output()
    assert listed(second)[kept["sessionId"]]["status"] == "completed"
    assert second.run("echo still-works")["status"] == "completed"


def test_no_session_is_created_while_supervisord_shuts_down(make_system):
    system = make_system(env={"SESSION_STOP_WAIT_SECS": "5"}).start()
    system.spawn("trap '' TERM; sleep 60")  # keeps supervisord in its shutdown for the grace period
    os.kill(system.supervisord_pid(), signal.SIGTERM)
    rpc = system.rpc()

    def refused():
        try:
            rpc.sessions.createSession({"agent": "coder", "task": "true", "provider": "gemini", "runtime": "shell"})
            return False
        except xmlrpc.client.Fault as e:
            return e.faultCode == 6  # supervisor's SHUTDOWN_STATE
    assert wait_for(refused, timeout=4, message="createSession to be refused")
