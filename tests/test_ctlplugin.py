"""`supervisorctl sessions ...` through the real command line: `supervisor-sessions ctl ARGS`.

`system.ctl(*args)` runs supervisorctl against the test instance. The CLI hands supervisorctl the
arguments as one shell-quoted line and the plugin shlex-splits it again, so every argument below reaches
the plugin exactly as written here.
"""
import os
import re
import select
import subprocess
import sys
import xmlrpc.client

import pytest

from conftest import FINAL, wait_for

UNKNOWN = "00000000-0000-4000-8000-000000000000"
UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
USAGE_LINE = "sessions spawn [-r RUNTIME] [-n NAME] [-e K=V]... AGENT PROVIDER [--] TASK..."
SUBCOMMANDS = ("list", "spawn", "show", "stop", "rm", "tail")


def spawned(result):
    """(id, status) from the line `sessions spawn` prints: `<id> <status>[ pid N]`."""
    assert result.returncode == 0, result.stdout + result.stderr
    sid, status = result.stdout.split()[:2]
    assert UUID.match(sid), result.stdout
    return sid, status


def listed(system):
    """{id: status} as `sessions list` prints them."""
    result = system.ctl("sessions", "list")
    assert result.returncode == 0, result.stdout + result.stderr
    return {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:] if line.strip()}


def fields_of(result):
    """The `key: value` lines of `sessions show` as a dict."""
    fields = {}
    for line in result.stdout.splitlines():
        if line.strip():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def file_in(record, name):
    with open(os.path.join(record["sessionDir"], name)) as f:
        return f.read()


def error_lines(result):
    return [line for line in result.stdout.splitlines() if line.startswith("ERROR: ")]


@pytest.fixture
def sleeper(system):
    """A running `sleep` session, stopped after the test if it still runs."""
    record = system.spawn("sleep 3089")
    assert record["status"] == "running"
    yield record
    rpc = system.rpc()
    try:
        rpc.sessions.stopSession(record["sessionId"])
        system.wait_status(record["sessionId"], FINAL)
    except xmlrpc.client.Fault:
        pass  # removed by the test


# ---- stock supervisorctl ------------------------------------------------------------------------------

def test_stock_status_shows_a_running_session_as_its_group_in_state_running(system, sleeper):
    result = system.ctl("status")
    lines = [line for line in result.stdout.splitlines() if line.split()[:1] == ["sess-" + sleeper["sessionId"]]]
    assert len(lines) == 1, result.stdout
    assert lines[0].split()[1] == "RUNNING"
    assert "pid %d" % sleeper["pid"] in lines[0]


def test_stock_status_no_longer_shows_an_ended_session(system):
    record = system.run("true")
    assert record["group"] not in system.ctl("status").stdout


def test_help_sessions_prints_the_usage_of_every_subcommand(system):
    result = system.ctl("help", "sessions")
    assert result.returncode == 0
    assert USAGE_LINE in result.stdout
    for word in SUBCOMMANDS:
        assert re.search(r"^sessions %s\b" % word, result.stdout, re.M), word


# ---- list ---------------------------------------------------------------------------------------------

def test_list_prints_a_header_then_each_session_with_its_status(system, sleeper):
    done = system.run("true")["sessionId"]
    result = system.ctl("sessions", "list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "RUNTIME", "AGENT", "CREATED", "TASK"]
    by_id = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert by_id[done][1:4] == ["completed", "shell", "coder"] and by_id[done][-1] == "true"
    assert by_id[sleeper["sessionId"]][1] == "running"
    assert by_id[sleeper["sessionId"]][-2:] == ["sleep", "3089"]


# ---- spawn --------------------------------------------------------------------------------------------

def test_spawn_prints_the_new_id_and_status_and_the_session_completes_with_its_output(system):
    sid, status = spawned(system.ctl("sessions", "spawn", "-r", "shell", "coder", "gemini", "echo", "hi-from-ctl"))
    assert status in ("starting", "running", "completed")
    record = system.wait_status(sid, FINAL)
    assert record["status"] == "completed"
    assert (record["task"], record["runtime"], record["agent"], record["provider"]) == \
        ("echo hi-from-ctl", "shell", "coder", "gemini")
    assert "hi-from-ctl" in system.log(sid)


def test_spawn_with_a_name_labels_the_session(system):
    sid, _ = spawned(system.ctl("sessions", "spawn", "-r", "shell", "-n", "my label", "coder", "gemini", "true"))
    assert system.wait_status(sid, FINAL)["name"] == "my label"


def test_a_task_with_percent_interpolation_and_a_semicolon_reaches_the_worker_literally(system):
    task = "printf '%s' 'x ; %(ENV_HOME)s' > out.txt"
    sid, _ = spawned(system.ctl("sessions", "spawn", "-r", "shell", "coder", "gemini", task))
    record = system.wait_status(sid, FINAL)
    assert record["status"] == "completed", system.log(sid)
    assert record["task"] == task
    assert file_in(record, "out.txt") == "x ; %(ENV_HOME)s"


def test_task_words_are_joined_with_spaces_and_a_lone_semicolon_stays_in_the_task(system):
    sid, _ = spawned(system.ctl("sessions", "spawn", "-r", "shell", "coder", "gemini",
                                "echo", "first", ";", "echo", "second"))
    record = system.wait_status(sid, FINAL)
    assert record["task"] == "echo first ; echo second"
    assert system.log(sid).split() == ["first", "second"]


def test_a_multi_line_task_keeps_its_lines(system):
    sid, _ = spawned(system.ctl("sessions", "spawn", "-r", "shell", "coder", "gemini",
                                "echo line-one\necho line-two"))
    system.wait_status(sid, FINAL)
    assert system.log(sid).split() == ["line-one", "line-two"]


def test_env_options_reach_the_worker_environment_and_are_not_shown(system):
    sid, _ = spawned(system.ctl("sessions", "spawn", "-r", "shell",
                                "-e", "GREETING=hello world", "-e", "EQUATION=a=b", "-e", "EMPTY=",
                                "coder", "gemini",
                                "printf '%s|%s|%s|%s' \"$GREETING\" \"$EQUATION\" \"${EMPTY-unset}\" \"$HOME\" > env.txt"))
    record = system.wait_status(sid, FINAL)
    assert record["status"] == "completed", system.log(sid)
    assert file_in(record, "env.txt") == "hello world|a=b||" + record["sessionDir"]
    assert "hello world" not in system.ctl("sessions", "show", sid).stdout


def test_an_env_option_without_an_equals_sign_is_refused_and_spawns_nothing(system):
    before = listed(system)
    result = system.ctl("sessions", "spawn", "-r", "shell", "-e", "NOEQUALS", "coder", "gemini", "true")
    assert result.returncode != 0
    assert error_lines(result) and "KEY=VALUE" in error_lines(result)[0]
    assert listed(system) == before


def test_an_env_name_the_system_sets_is_refused_with_the_fault(system):
    result = system.ctl("sessions", "spawn", "-r", "shell", "-e", "HOME=/", "coder", "gemini", "true")
    assert result.returncode != 0
    assert error_lines(result)[0].startswith("ERROR: INVALID_SPEC: ") and "HOME" in result.stdout


def test_an_unknown_runtime_is_refused_with_the_fault(system):
    result = system.ctl("sessions", "spawn", "-r", "no-such-runtime", "coder", "gemini", "true")
    assert result.returncode != 0
    assert error_lines(result)[0].startswith("ERROR: INVALID_SPEC: unknown runtime")


def test_option_like_words_after_the_provider_belong_to_the_task(system):
    sid, _ = spawned(system.ctl("sessions", "spawn", "-r", "shell", "coder", "gemini", "echo", "-n", "hi-there"))
    record = system.wait_status(sid, FINAL)
    assert (record["task"], record["name"]) == ("echo -n hi-there", "")


def test_a_double_dash_passes_option_like_words_on_to_the_task(system):
    sid, _ = spawned(system.ctl("sessions", "spawn", "-r", "shell", "coder", "gemini", "--", "echo", "-n", "hi"))
    record = system.wait_status(sid, FINAL)
    assert record["task"] == "echo -n hi" and record["name"] == ""
    assert system.log(sid) == "hi"


# ---- show ---------------------------------------------------------------------------------------------

def test_show_prints_the_record_as_key_value_lines_and_exits_zero(system):
    record = system.run("exit 0")
    result = system.ctl("sessions", "show", record["sessionId"])
    assert result.returncode == 0
    assert all(re.match(r"\A[A-Za-z]+: +\S", line) for line in result.stdout.splitlines() if line.strip())
    fields = fields_of(result)
    assert fields["sessionId"] == record["sessionId"]
    assert fields["status"] == "completed" and fields["exitCode"] == "0"
    assert (fields["runtime"], fields["agent"], fields["provider"], fields["task"]) == \
        ("shell", "coder", "gemini", "exit 0")
    assert fields["logFile"] == record["logFile"] and fields["sessionDir"] == record["sessionDir"]
    assert re.match(r"\A\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\Z", result.stdout.split("createdAt:")[1].splitlines()[0].strip())
    assert "name" not in fields and "pid" not in fields  # empty and absent fields are left out


def test_show_of_a_failed_session_gives_its_exit_code_and_reason(system):
    record = system.run("exit 5")
    fields = fields_of(system.ctl("sessions", "show", record["sessionId"]))
    assert (fields["status"], fields["exitCode"], fields["reason"]) == ("failed", "5", "exit code 5")


@pytest.mark.parametrize("command", ["show", "stop", "rm", "tail"])
@pytest.mark.parametrize("bad_id", [UNKNOWN, "not-an-id", "../../etc/passwd"])
def test_an_unknown_or_malformed_id_exits_non_zero_with_an_error_line(system, command, bad_id):
    result = system.ctl("sessions", command, bad_id)
    assert result.returncode != 0
    errors = error_lines(result)
    assert errors and "NO_SUCH_SESSION" in errors[0], result.stdout


# ---- stop and rm --------------------------------------------------------------------------------------

def test_stop_ends_a_running_sleep_session_and_exits_zero(system, sleeper):
    sid = sleeper["sessionId"]
    result = system.ctl("sessions", "stop", sid)
    assert result.returncode == 0
    assert result.stdout.strip() == "%s stopping" % sid
    assert system.wait_status(sid, FINAL)["status"] == "stopped"
    assert listed(system)[sid] == "stopped"
    wait_for(lambda: not os.path.exists("/proc/%d" % sleeper["pid"]), timeout=5, message="the worker to be gone")


def test_stop_of_several_ids_stops_the_known_ones_and_fails_for_the_unknown(system, sleeper):
    result = system.ctl("sessions", "stop", UNKNOWN, sleeper["sessionId"])
    assert result.returncode != 0
    assert error_lines(result)[0].startswith("ERROR: %s: NO_SUCH_SESSION" % UNKNOWN)
    assert "%s stopping" % sleeper["sessionId"] in result.stdout
    assert system.wait_status(sleeper["sessionId"], FINAL)["status"] == "stopped"


def test_stopping_an_ended_session_leaves_it_as_it_was(system):
    sid = system.run("exit 2")["sessionId"]
    before = system.rpc().sessions.getSession(sid)
    result = system.ctl("sessions", "stop", sid)
    assert result.returncode == 0 and result.stdout.strip() == "%s already failed" % sid
    assert system.rpc().sessions.getSession(sid) == before
    assert before["status"] == "failed" and before["exitCode"] == 2


def test_rm_of_a_running_session_exits_non_zero_saying_it_is_running(system, sleeper):
    sid = sleeper["sessionId"]
    result = system.ctl("sessions", "rm", sid)
    assert result.returncode != 0
    assert error_lines(result) and "is running" in error_lines(result)[0] and "SESSION_ACTIVE" in result.stdout
    assert listed(system)[sid] == "running"
    assert os.path.isdir(sleeper["sessionDir"])


def test_rm_of_a_stopped_session_removes_it_from_the_list(system, sleeper):
    sid = sleeper["sessionId"]
    system.rpc().sessions.stopSession(sid)
    assert system.wait_status(sid, FINAL)["status"] == "stopped"
    result = system.ctl("sessions", "rm", sid)
    assert result.returncode == 0
    assert result.stdout.strip() == "%s removed" % sid
    assert sid not in listed(system)
    assert not os.path.exists(sleeper["sessionDir"]) and not os.path.exists(sleeper["logFile"])


# ---- tail ---------------------------------------------------------------------------------------------

def test_tail_c_prints_the_last_bytes_of_the_log(system):
    record = system.run("seq 1 3000")
    log = system.log(record["sessionId"])
    assert len(log) > 1000
    result = system.ctl("sessions", "tail", "-c", "100", record["sessionId"])
    assert result.returncode == 0
    assert result.stdout == log[-100:]
    assert result.stdout.splitlines()[-1] == "3000"


def test_tail_without_c_prints_at_most_the_last_4096_bytes(system):
    record = system.run("seq 1 3000")
    result = system.ctl("sessions", "tail", record["sessionId"])
    assert result.stdout == system.log(record["sessionId"])[-4096:]


def test_tail_of_a_non_positive_byte_count_is_refused(system):
    record = system.run("true")
    result = system.ctl("sessions", "tail", "-c", "0", record["sessionId"])
    assert result.returncode != 0
    assert error_lines(result) and error_lines(result)[0].startswith("ERROR: -c takes 1 to")


def test_tail_follow_prints_every_line_and_ends_by_itself_when_the_session_ends(system):
    sid = system.spawn("for i in 1 2 3 4 5; do echo follow-$i; sleep 0.25; done")["sessionId"]
    result = system.ctl("sessions", "tail", "-f", sid)  # system.ctl gives up (and fails) after 60 s
    assert result.returncode == 0
    assert result.stdout.split() == ["follow-%d" % i for i in range(1, 6)]
    assert system.rpc().sessions.getSession(sid)["status"] == "completed"


def test_tail_follow_of_a_queued_session_waits_for_it_to_run_and_end(make_system):
    system = make_system(env={"MAX_CONCURRENT_SESSIONS": "1"}).start()
    system.spawn("sleep 4")  # holds the only slot while tail -f starts
    queued = system.spawn("echo from-queued")
    assert queued["status"] == "queued"
    result = system.ctl("sessions", "tail", "-f", queued["sessionId"])
    assert result.returncode == 0
    assert "from-queued" in result.stdout


def test_tail_follow_prints_the_log_as_written_without_adding_line_breaks(system):
    record = system.spawn("printf half-; while [ ! -e go ]; do sleep 0.05; done; echo line")
    sid = record["sessionId"]
    wait_for(lambda: "half-" in system.log(sid), message="the first half in the log")
    follower = subprocess.Popen([sys.executable, "-m", "supervisor_sessions.cli", "ctl", "sessions", "tail", "-f", sid],
                                env=dict(system.env, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE)
    seen = b""
    try:
        def printed_first_half():
            nonlocal seen
            if select.select([follower.stdout], [], [], 0)[0]:
                seen += os.read(follower.stdout.fileno(), 4096)
            return b"half-" in seen
        wait_for(printed_first_half, message="tail -f to print the first half")
    finally:
        open(os.path.join(record["sessionDir"], "go"), "w").close()
        seen += follower.communicate(timeout=60)[0]
    assert follower.returncode == 0
    assert b"half-line\n" in seen, seen


# ---- usage --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["sessions"],
    ["sessions", "frobnicate"],
    ["sessions", "spawn", "coder"],
    ["sessions", "spawn", "coder", "gemini"],
    ["sessions", "show"],
    ["sessions", "show", UNKNOWN, UNKNOWN],
    ["sessions", "list", "extra"],
    ["sessions", "tail", "-c", "many", UNKNOWN],
    ["sessions", "spawn", "--frobnicate", "coder", "gemini", "true"],
], ids=lambda args: " ".join(args[1:]) or "nothing")
def test_bad_usage_exits_non_zero_with_an_error_and_the_usage(system, args):
    before = listed(system)
    result = system.ctl(*args)
    assert result.returncode != 0
    assert result.stdout.startswith("ERROR: ")
    assert USAGE_LINE in result.stdout
    assert listed(system) == before


def test_unknown_ids_and_usage_errors_never_leave_a_traceback(system):
    for args in (["sessions", "show", "x" * 5000], ["sessions", "spawn", "-r", "shell", "coder", "gemini", " "]):
        result = system.ctl(*args)
        assert result.returncode != 0
        assert "Traceback" not in result.stdout + result.stderr and not result.stdout.startswith("error: ")
        assert error_lines(result), result.stdout



def test_spawn_of_a_runtime_whose_program_is_missing_exits_non_zero_with_the_reason(system):
    result = system.ctl("sessions", "spawn", "-r", "codex", "-e", "PATH=/nonexistent", "coder", "openai", "x")
    assert result.returncode != 0
    assert "not installed" in result.stdout


def test_a_tail_beyond_what_one_read_returns_is_a_usage_error(system):
    sid = system.run("true")["sessionId"]
    result = system.ctl("sessions", "tail", "-c", "3000000000", sid)
    assert result.returncode != 0 and result.stdout.startswith("ERROR: -c takes 1 to 1048576 bytes")


def test_events_prints_the_change_feed_one_line_an_event(system):
    sid = system.run("exit 4")["sessionId"]
    lines = [line for line in system.ctl("sessions", "events").stdout.splitlines() if sid in line]
    assert [line.split()[3] for line in lines] == ["created", "state", "state", "state"]
    assert lines[-1].endswith("status=failed cause=exit exitCode=4 reason=exit code 4")
    first = int(lines[1].split()[0])
    again = system.ctl("sessions", "events", "--since", str(first)).stdout.splitlines()
    assert int(again[0].split()[0]) == first


def test_events_since_a_negative_seq_is_a_usage_error(system):
    result = system.ctl("sessions", "events", "--since", "-1")
    assert result.returncode != 0 and result.stdout.startswith("ERROR: --since takes a seq >= 0")


@pytest.mark.parametrize("word", ["help", "--help", "-h"])
def test_sessions_help_lists_the_commands_and_succeeds(system, word):
    result = system.ctl("sessions", word)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sessions spawn" in result.stdout and "sessions diff" in result.stdout
