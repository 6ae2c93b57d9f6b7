"""`supervisor-sessions serve`: the one command that starts everything, safely by default."""
import http.client
import json
import os
import stat
import subprocess
import sys

from conftest import wait_for


def test_a_socket_path_too_long_stops_serve_with_a_clear_message():
    env = dict(os.environ, SESSIONS_HOME="/tmp/" + "x" * 100)
    done = subprocess.run([sys.executable, "-m", "supervisor_sessions.cli", "serve"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "choose a shorter SESSIONS_HOME" in done.stderr
    assert not os.path.exists(env["SESSIONS_HOME"])


def test_the_rpc_socket_is_private_and_there_is_no_tcp_rpc_endpoint(system):
    assert stat.S_IMODE(os.stat(system.socket).st_mode) == 0o700
    with open(os.path.join(system.home, "run", "supervisord.conf")) as f:
        assert "inet_http_server" not in f.read()


def test_without_a_key_serve_generates_a_private_one_and_the_api_takes_it(make_system):
    system = make_system(env={"MANAGEMENT_API_KEY": ""})
    system.start()
    key_file = os.path.join(system.home, ".management-api-key")
    assert "generated the API key in %s" % key_file in system.output()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    with open(key_file) as f:
        key = f.read().strip()
    assert len(key) >= 40 and key not in system.output()
    conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=10)
    conn.request("GET", "/v1/sessions", headers={"Authorization": "Bearer " + key})
    assert conn.getresponse().status == 200


def test_a_session_log_stays_under_its_cap(make_system):
    system = make_system(env={"SESSION_LOG_MAX_BYTES": "4096"}).start()
    record = system.run("for i in $(seq 1 20000); do echo line-$i; done")
    assert record["status"] == "completed"
    on_disk = os.path.getsize(record["logFile"]) + os.path.getsize(record["logFile"] + ".1")
    assert on_disk <= 4096 + 8192  # the cap plus one read of the pipe
    text, _, _ = system.rpc().sessions.tailSessionLog(record["sessionId"], -1, 2048)
    assert text.endswith("line-19999\nline-20000\n")


def test_a_worker_that_prints_a_lot_does_not_stall_supervisord(make_system):
    system = make_system(env={"SESSION_LOG_MAX_BYTES": "65536"}).start()
    noisy = system.spawn("yes 'noise noise noise' | head -c 50000000")
    assert wait_for(lambda: system.rpc().sessions.getSession(noisy["sessionId"])["status"] == "completed",
                    timeout=60)
    assert system.run("echo quiet")["status"] == "completed"


def test_our_programs_log_json_lines_without_secrets(make_system):
    system = make_system().start()
    record = system.run("echo logged", env={"PRIVATE": "user-secret-value"})
    system.http("GET", "/v1/sessions/" + record["sessionId"])
    events_log = os.path.join(system.home, "logs", "sessions-events.log")
    api_log = os.path.join(system.home, "logs", "management-api.log")
    wait_for(lambda: '"route": "/v1/sessions/<sid>"' in open(api_log).read(), message="the access line")
    events = [json.loads(line) for line in open(events_log)]
    mine = [(e["event"], e.get("status")) for e in events if e.get("sessionId") == record["sessionId"]]
    assert mine == [("session-created", None), ("session-state", "starting"), ("session-state", "running"),
                    ("session-state", "completed")]
    requests = [json.loads(line) for line in open(api_log) if line.startswith("{")]
    assert any(r.get("route") == "/v1/sessions/<sid>" and r["status"] == 200 and r["ms"] >= 0 for r in requests)
    for path in (events_log, api_log):
        text = open(path).read()
        assert system.key not in text and "user-secret-value" not in text


def test_serve_refuses_to_start_when_the_api_port_is_taken(system, tmp_path):
    env = dict(os.environ, SESSIONS_HOME=str(tmp_path / "second"), MANAGEMENT_API_PORT=str(system.port),
               MANAGEMENT_API_HOST="127.0.0.1")
    done = subprocess.run([sys.executable, "-m", "supervisor_sessions.cli", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "the API's port 127.0.0.1:%d is taken" % system.port in done.stderr, done.stderr
    assert system.http("GET", "/v1/status")[0] == 200   # the first instance answers on
