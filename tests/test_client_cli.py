"""`supervisor-sessions client ...` through the real command line against a real system: tables and --json,
exit statuses by outcome (`wait`: the session's own), where the key comes from, and session ids by a unique
prefix, here and in `supervisorctl sessions`."""
import json
import os
import subprocess
import sys

import pytest

import test_sdk
from test_sdk import SHELL, UNKNOWN, shared_prefix, unique_prefix, unknown_prefix, url

from conftest import FINAL
from supervisor_sessions.sdk import Client

COMMANDS = ("spawn", "ls", "show", "logs", "events", "stop", "rm", "wait", "diff")
workspace_session = test_sdk.workspace_session   # the fixture: (system, an ended session with a workspace)


def cli(system, *args, key=True, env=None):
    """Run `supervisor-sessions client ARGS` against `system` (SESSIONS_URL and, with `key`, MANAGEMENT_API_KEY
    set; `env` on top)."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("SESSIONS_URL", "SESSIONS_HOME", "MANAGEMENT_API_KEY")}
    environment["SESSIONS_URL"] = url(system)
    if key:
        environment["MANAGEMENT_API_KEY"] = system.key
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "supervisor_sessions.cli", "client"] + list(args),
                          env=environment, capture_output=True, text=True, timeout=60)


def ok(result):
    """The stdout of a command that exited 0."""
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def failed(result, status, words):
    """The command exited `status` saying `words` on stderr, and nothing on stdout."""
    assert (result.returncode, result.stdout) == (status, ""), (result.returncode, result.stdout, result.stderr)
    assert "supervisor-sessions client" in result.stderr and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def client(system):
    return Client(url(system), system.key)


def spawn(system, task, *options):
    """The id `client spawn` prints for a shell session."""
    return ok(cli(system, "spawn", "-r", "shell", *options, "coder", "gemini", task)).strip()


# ---- spawn and wait -----------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [0, 7, 255])
def test_wait_exits_with_the_sessions_exit_code(system, code):
    sid = spawn(system, "echo hi; exit %d" % code)
    result = cli(system, "wait", sid)
    assert result.returncode == code, result.stderr
    assert result.stdout.split()[:3] == [sid, "completed" if code == 0 else "failed", str(code)]


def test_spawn_passes_its_options_and_the_task_words_on(system, client):
    sid = spawn(system, "printf %s \"$WHO\"", "-n", "named", "-e", "WHO=a b", "-l", "team=cli", "--timeout-seconds",
                "60")
    record = client.wait(sid)
    assert (record.status, record.name, record.labels, record.timeout_seconds) == ("completed", "named",
                                                                                  {"team": "cli"}, 60)
    assert client.log(sid) == "a b"
    words = ok(cli(system, "spawn", "-r", "shell", "coder", "gemini", "echo", "-n", "x")).strip()
    assert client.wait(words).task == "echo -n x"


def test_spawn_json_and_an_idempotency_key(system):
    first = json.loads(ok(cli(system, "spawn", "--json", "-r", "shell", "--idempotency-key", "k-cli-1", "coder",
                              "gemini", "true")))
    again = json.loads(ok(cli(system, "spawn", "--json", "-r", "shell", "--idempotency-key", "k-cli-1", "coder",
                              "gemini", "true")))
    assert first["status"] == "accepted" and first["sessionId"] == again["sessionId"]


def test_wait_of_a_stopped_session_exits_1_and_a_timeout_124(system, client):
    sid = spawn(system, "sleep 60")
    assert ok(cli(system, "wait", "--for", "running", sid)).split()[:2] == [sid, "running"]
    failed(cli(system, "wait", "--timeout", "0.3", sid), 124, "is still running")
    assert ok(cli(system, "stop", sid)).split() in ([sid, "stopping"], [sid, "stopped"])
    result = cli(system, "wait", "--json", sid)
    assert result.returncode == 1 and json.loads(result.stdout)["status"] == "stopped"


# ---- ls, show, logs and events ------------------------------------------------------------------------

def test_ls_prints_a_table_newest_first_and_json(system, client):
    tag = "run=%s" % os.urandom(6).hex()
    ids = [spawn(system, "exit %d" % code, "-l", tag) for code in (0, 3)]
    for sid in ids:
        client.wait(sid)
    lines = ok(cli(system, "ls", "-l", tag)).splitlines()
    assert lines[0].split() == ["ID", "STATUS", "EXIT", "RUNTIME", "AGENT", "CREATED", "TASK"]
    assert [line.split()[:5] for line in lines[1:]] == [[ids[1], "failed", "3", "shell", "coder"],
                                                        [ids[0], "completed", "0", "shell", "coder"]]
    assert lines[1].endswith("exit 3") and lines[0].index("TASK") == lines[1].index("exit 3")
    listed = json.loads(ok(cli(system, "--json", "ls", "-l", tag, "--limit", "1")))
    assert [r["sessionId"] for r in listed] == ids[1:] and listed[0]["exitCode"] == 3
    assert [r["sessionId"] for r in json.loads(ok(cli(system, "ls", "--json", "--status", "completed", "-l", tag)))] \
        == ids[:1]


def test_show_prints_the_record_as_key_value_lines_and_json(system, client):
    sid = spawn(system, "exit 5")
    client.wait(sid)
    fields = dict(line.split(":", 1) for line in ok(cli(system, "show", sid)).splitlines())
    fields = {key: value.strip() for key, value in fields.items()}
    assert (fields["sessionId"], fields["status"], fields["exitCode"], fields["reason"]) == (sid, "failed", "5",
                                                                                         "exit code 5")
    assert "pid" not in fields and len(fields["createdAt"]) == len("2024-01-01 00:00:00")
    assert json.loads(fields["limits"])["pids"] > 0
    assert json.loads(ok(cli(system, "show", "--json", sid)))["exitCode"] == 5


def test_logs_prints_the_log_and_follows_it_to_the_end(system, client):
    sid = spawn(system, "for i in 1 2 3; do echo line-$i; sleep 0.2; done; printf tail")
    expected = "line-1\nline-2\nline-3\ntail"
    assert ok(cli(system, "logs", "-f", sid)) == expected
    assert client.wait(sid).status == "completed"
    assert ok(cli(system, "logs", sid)) == expected
    assert ok(cli(system, "logs", "--offset", "7", sid)) == expected[7:]


def test_events_prints_lines_json_lines_and_follows(system, client):
    sid = spawn(system, "exit 4")
    client.wait(sid)
    lines = ok(cli(system, "events", "--session", sid)).splitlines()
    assert [line.split()[3:5] for line in lines] == [["created", sid]] + [["state", sid]] * 3
    assert lines[-1].endswith("status=failed cause=exit exitCode=4 reason=exit code 4")
    events = [json.loads(line) for line in ok(cli(system, "events", "--json", "--type", "state", "--session", sid,
                                                   "--since", lines[2].split()[0])).splitlines()]
    assert [e["seq"] for e in events] == [int(line.split()[0]) for line in lines[2:]]
    follower = subprocess.Popen([sys.executable, "-m", "supervisor_sessions.cli", "client", "events", "-f",
                                 "--session", sid], env=dict(os.environ, SESSIONS_URL=url(system),
                                                             MANAGEMENT_API_KEY=system.key),
                                stdout=subprocess.PIPE, text=True)
    try:
        followed = [follower.stdout.readline() for _ in lines]   # the feed is followed for ever: read what is known
    finally:
        follower.terminate()
        follower.wait(10)
    assert [line.rstrip("\n") for line in followed] == lines


# ---- stop, rm and diff --------------------------------------------------------------------------------

def test_stop_and_rm_of_several_sessions(system, client):
    running, done = spawn(system, "sleep 60"), spawn(system, "true")
    client.wait(done)
    failed(cli(system, "rm", running), 1, "the session is running: stop it first, or rm -f")
    result = cli(system, "stop", running, done, UNKNOWN)
    assert result.returncode == 1 and "%s: NO_SUCH_SESSION" % UNKNOWN in result.stderr
    assert result.stdout.splitlines()[1:] == ["%s completed" % done]
    assert result.stdout.split()[:2] in ([running, "stopping"], [running, "stopped"])
    assert client.wait(running).status == "stopped"
    assert json.loads(ok(cli(system, "rm", "--json", running)))[0] == {"sessionId": running, "status": "stopped",
                                                                       "purged": True}
    assert ok(cli(system, "rm", "-f", done)) == "%s removed\n" % done
    failed(cli(system, "show", done), 1, "NO_SUCH_SESSION")


def test_rm_f_stops_and_removes_a_running_session(system, client):
    sid = spawn(system, "sleep 60")
    assert ok(cli(system, "rm", "-f", sid)) == "%s removed\n" % sid
    assert not any(s.session_id == sid for s in client.iter_sessions())


def test_diff_prints_the_patch_and_the_numbers(workspace_session):
    system, record = workspace_session
    sid = record["sessionId"]
    assert "+two" in ok(cli(system, "diff", sid)) and "+new" in ok(cli(system, "diff", sid))
    lines = ok(cli(system, "diff", "--stat", sid)).splitlines()
    assert [line.split() for line in lines] == [["+1", "-0", "a.txt"], ["+1", "-0", "new.txt"],
                                                ["2", "files,", "+2", "-0,", "0", "commits"]]
    assert json.loads(ok(cli(system, "diff", "--stat", "--json", sid)))["changes"]["files"] == 2


def test_the_diff_of_a_session_without_a_workspace_is_an_api_error(system, client):
    sid = spawn(system, "true")
    client.wait(sid)
    failed(cli(system, "diff", sid), 1, "NOT_CAPABLE")


# ---- session ids by prefix ----------------------------------------------------------------------------

def test_a_unique_prefix_names_its_session_and_others_are_errors(system, client):
    shared = shared_prefix(client)
    ids = [s.session_id for s in client.iter_sessions()]
    prefix = unique_prefix(ids, ids[0])
    assert ok(cli(system, "show", prefix)).splitlines()[0].split() == ["sessionId:", ids[0]]
    assert ok(cli(system, "logs", prefix)) == client.log(ids[0])
    failed(cli(system, "show", shared), 2, "give more of the id")
    failed(cli(system, "wait", shared), 2, "give more of the id")
    failed(cli(system, "show", unknown_prefix(ids)), 1, "no session id starts with")


def test_the_ctl_plugin_takes_a_unique_prefix_too(system, client):
    sid = client.create("echo from-ctl; sleep 60", **SHELL).session_id
    client.wait(sid, "running")
    ids = [s.session_id for s in client.iter_sessions()]
    prefix = unique_prefix(ids, sid)
    shown = system.ctl("sessions", "show", prefix)
    assert shown.returncode == 0 and shown.stdout.split()[:2] == ["sessionId:", sid]
    assert system.ctl("sessions", "stop", prefix).stdout.strip() == "%s stopping" % sid   # as the plugin says it
    assert system.wait_status(sid, FINAL)["status"] == "stopped"
    assert system.ctl("sessions", "tail", prefix).stdout == "from-ctl\n"
    for command in (["resume", prefix, "next"], ["diff", prefix]):   # the whole id reached supervisord
        assert "ERROR: NOT_CAPABLE: " in system.ctl("sessions", *command).stdout, command
    assert system.ctl("sessions", "rm", prefix).stdout.strip() == "%s removed" % sid
    for bad, words in ((shared_prefix(client), "give more of the id"), (unknown_prefix(ids), "NO_SUCH_SESSION")):
        for command in ("show", "tail", "diff", "stop", "rm"):
            result = system.ctl("sessions", command, bad)
            assert result.returncode != 0 and result.stdout.startswith("ERROR: ") and words in result.stdout, \
                (command, result.stdout)


# ---- usage, help and the key --------------------------------------------------------------------------

@pytest.mark.parametrize("args", [[], ["frobnicate"], ["ls", "--limit", "x"], ["ls", "--limit", "-1"],
                                  ["spawn", "coder", "gemini"], ["spawn", "-e", "NOEQUALS", "coder", "gemini", "x"],
                                  ["show"], ["--url", "ftp://host", "ls"]], ids=" ".join)
def test_bad_usage_exits_2(system, args):
    failed(cli(system, *args), 2, "")


@pytest.mark.parametrize("command", [None] + list(COMMANDS))
def test_help_of_every_command_names_the_settings_it_reads(system, command):
    text = ok(cli(system, *([command] if command else []), "--help"))
    for setting in ("SESSIONS_URL", "MANAGEMENT_API_KEY", "SESSIONS_HOME", "--url", "--key-file", "--json"):
        assert setting in text, (command, setting)


def test_the_key_comes_from_key_file_then_the_environment_then_sessions_home(system, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(system.key + "\n")
    ok(cli(system, "ls", "--key-file", str(key_file), key=False))
    ok(cli(system, "ls", "--key-file", str(key_file), env={"MANAGEMENT_API_KEY": "wrong"}))
    (tmp_path / ".management-api-key").write_text(system.key)
    ok(cli(system, "ls", key=False, env={"SESSIONS_HOME": str(tmp_path)}))
    failed(cli(system, "ls", key=False, env={"SESSIONS_HOME": str(tmp_path / "none")}), 2, "no API key")
    failed(cli(system, "ls", "--key-file", str(tmp_path / "missing"), key=False), 2, "no key file")
    wrong = "wrong-" + system.key
    result = cli(system, "ls", key=False, env={"MANAGEMENT_API_KEY": wrong})
    failed(result, 1, "unauthorized")
    assert wrong not in result.stderr and system.key not in result.stderr
