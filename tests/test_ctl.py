"""`supervisorctl sessions ...` through the real command line (`supervisor-sessions ctl`)."""
import os

from conftest import FINAL

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def test_stock_status_shows_a_running_session_group(system):
    record = system.spawn("sleep 60")
    result = system.ctl("status")
    line = [l for l in result.stdout.splitlines() if l.startswith(record["group"])]
    assert line and "RUNNING" in line[0]
    system.rpc().sessions.stopSession(record["sessionId"])


def test_list_shows_a_header_and_each_session(system):
    sid = system.run("true")["sessionId"]
    result = system.ctl("sessions", "list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "RUNTIME"]
    assert any(l.startswith(sid) and " completed " in l for l in lines)


def test_spawn_starts_a_session_with_the_literal_task_and_env(system):
    result = system.ctl("sessions", "spawn", "-r", "shell", "-e", "GREETING=hi there", "coder", "gemini",
                        "printf '%s|%s' \"$GREETING\" 'x ; %(ENV_HOME)s' > out.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    sid, status = result.stdout.split()[:2]
    assert status == "running" or status == "completed"
    record = system.wait_status(sid, FINAL)
    assert record["status"] == "completed"
    with open(os.path.join(record["sessionDir"], "out.txt")) as f:
        assert f.read() == "hi there|x ; %(ENV_HOME)s"


def test_spawn_of_a_missing_runtime_program_exits_non_zero_with_the_reason(system):
    result = system.ctl("sessions", "spawn", "-r", "codex", "-e", "PATH=/nonexistent", "coder", "openai", "x")
    assert result.returncode != 0
    assert "not installed" in result.stdout


def test_show_prints_the_record_and_fails_for_unknown_ids(system):
    sid = system.run("exit 4")["sessionId"]
    result = system.ctl("sessions", "show", sid)
    assert result.returncode == 0
    fields = dict(l.split(None, 1) for l in result.stdout.splitlines() if l.strip())
    assert fields["status:"] == "failed" and fields["exitCode:"] == "4" and fields["task:"] == "exit 4"
    for bad in (UNKNOWN, "not-an-id"):
        result = system.ctl("sessions", "show", bad)
        assert result.returncode != 0 and "ERROR: NO_SUCH_SESSION" in result.stdout


def test_stop_then_rm(system):
    sid = system.spawn("sleep 60")["sessionId"]
    result = system.ctl("sessions", "rm", sid)
    assert result.returncode != 0 and "stop it" in result.stdout
    result = system.ctl("sessions", "stop", sid)
    assert result.returncode == 0 and "stopping" in result.stdout
    assert system.wait_status(sid, FINAL)["status"] == "stopped"
    result = system.ctl("sessions", "rm", sid)
    assert result.returncode == 0
    assert sid not in system.ctl("sessions", "list").stdout


def test_tail_prints_the_end_of_the_log(system):
    sid = system.run("seq 1 1000")["sessionId"]
    result = system.ctl("sessions", "tail", "-c", "13", sid)
    assert result.returncode == 0
    assert result.stdout.split() == ["998", "999", "1000"]


def test_tail_follow_ends_when_the_session_ends(system):
    sid = system.spawn("for i in 1 2 3; do echo follow-$i; sleep 0.3; done")["sessionId"]
    result = system.ctl("sessions", "tail", "-f", sid)
    assert result.returncode == 0
    assert [l for l in result.stdout.split() if l.startswith("follow-")] == ["follow-1", "follow-2", "follow-3"]
    assert system.rpc().sessions.getSession(sid)["status"] == "completed"


def test_bad_usage_exits_non_zero_with_the_usage(system):
    for args in (["sessions"], ["sessions", "frobnicate"], ["sessions", "spawn", "coder"],
                 ["sessions", "tail", "-c", "0", UNKNOWN]):
        result = system.ctl(*args)
        assert result.returncode != 0, args
        assert "ERROR" in result.stdout


def test_help_shows_every_subcommand(system):
    result = system.ctl("help", "sessions")
    for word in ("list", "spawn", "show", "stop", "rm", "tail"):
        assert "sessions " + word in result.stdout

