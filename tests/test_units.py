"""Fast unit tests of the pure modules: validation, rendering, config parsing, MCP forms, log reading."""
import json
import os
import shlex
import stat
import subprocess
import sys
import tomllib
from types import SimpleNamespace

import pytest
from supervisor import xmlrpc as supervisor_xmlrpc
from supervisor.options import ServerOptions
from supervisor.states import ProcessStates

from supervisor_sessions import mcp
from supervisor_sessions.events import exit_reason, state_change
from supervisor_sessions.faults import HTTP_STATUS, Faults, InvalidSpec
from supervisor_sessions.groups import ConfigRejected, parse_group, quarantine_broken_configs
from supervisor_sessions.launch import build_environment
from supervisor_sessions.logtail import MAX_CHUNK, read_log
from supervisor_sessions.render import Renderer, ini_value, shell_join
from supervisor_sessions.settings import Settings, ensure_api_key
from supervisor_sessions.spec import TASK_MAX_BYTES, parse_spec

RUNTIMES = Renderer().runtimes
VALID = {"agent": "coder", "task": "do it", "provider": "gemini"}
HOSTILE = "hi\n[program:evil]\ncommand=x\n%(ENV_HOME)s ; x # y 'q' \"d\" ✓"


# ---- spec ------------------------------------------------------------------------------------------

def test_a_minimal_spec_gets_the_defaults():
    spec = parse_spec(VALID, RUNTIMES)
    assert (spec.runtime, spec.name, spec.env) == ("agentic-flow", "", {})


@pytest.mark.parametrize("change, words", [
    ({"agent": None}, "'agent' is required"),
    ({"task": ""}, "must not be empty"),
    ({"task": "   \n"}, "must not be empty"),
    ({"task": 5}, "must be a string"),
    ({"task": "a\0b"}, "NUL"),
    ({"task": "a\x1bb"}, "U+001B"),
    ({"task": "\ud800"}, "lone surrogate"),
    ({"task": "é" * (TASK_MAX_BYTES // 2 + 1)}, "bytes in UTF-8"),
    ({"agent": "coder\n[program:x]"}, "'agent' must be"),
    ({"agent": "-x"}, "'agent' must be"),
    ({"provider": "a b"}, "'provider' must be"),
    ({"runtime": "nosuch"}, "unknown runtime"),
    ({"name": "x" * 201}, "'name'"),
    ({"name": "a\tb"}, "'name'"),
    ({"env": []}, "'env' must be a struct"),
    ({"env": {"1X": "v"}}, "not a valid variable name"),
    ({"env": {"SESSION_ID": "v"}}, "cannot be overridden"),
    ({"env": {"X": None}}, "'X' is required"),
    ({"env": {"X": "v" * 40000}}, "longer than"),
    ({"env": {"V%d" % i: "" for i in range(65)}}, "at most 64"),
    ({"colour": "red"}, "unknown field"),
])
def test_a_bad_spec_is_refused_saying_what_is_wrong(change, words):
    spec = {k: v for k, v in dict(VALID, **change).items() if v is not None}
    with pytest.raises(InvalidSpec) as info:
        parse_spec(spec, RUNTIMES)
    assert words in info.value.message


def test_a_spec_that_is_not_a_struct_is_refused():
    with pytest.raises(InvalidSpec):
        parse_spec(["coder"], RUNTIMES)


def test_without_a_runtime_list_the_runtime_is_left_to_the_plugin():
    assert parse_spec(dict(VALID, runtime="future-runtime"), None).runtime == "future-runtime"


# ---- rendering and parsing ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\0b", "100%", " a", "a ", "", "a ;b", "a #b", ";a", "#a"])
def test_ini_value_refuses_what_supervisor_would_misread(value):
    with pytest.raises(ValueError):
        ini_value(value)


@pytest.mark.parametrize("value", ["a;b", "a#b", "/srv/x y/z", "sess-1"])
def test_ini_value_keeps_what_supervisor_reads_literally(value):
    assert ini_value(value) == value


def test_shell_join_round_trips_through_shlex():
    argv = ["/bin/x", "it's", 'a "b"', "$HOME", "a b", "", "✓"]
    assert shlex.split(shell_join(argv)) == argv


def render_session(runtime, tmp_path, task=HOSTILE):
    sid = "0b5f2c1e-8d4a-4c3b-9e6f-2a1b3c4d5e6f"
    session_dir = str(tmp_path / sid)
    command = [sys.executable, "-I", "-m", "supervisor_sessions.launch", session_dir + "/.session-launch.json"]
    rendered = Renderer().render(runtime, {
        "session_id": sid, "group": "sess-" + sid, "session_dir": session_dir,
        "task_file": session_dir + "/.session-task", "log_file": str(tmp_path / "x.log"), "agent": "coder",
        "task": task, "provider": "gemini", "name": "", "port": 4000, "command": command,
        "log_max_bytes": 1024, "stop_wait_secs": 3})
    return sid, command, rendered


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_every_runtime_renders_one_program_without_the_task(runtime, tmp_path):
    sid, command, rendered = render_session(runtime, tmp_path)
    assert HOSTILE not in rendered.ini and "evil" not in rendered.ini
    config = parse_group(ServerOptions(), rendered.ini, "sess-" + sid, str(tmp_path), command)
    process = config.process_configs[0]
    assert shlex.split(process.command) == command
    assert (process.autostart, process.startsecs, process.stopasgroup, process.killasgroup) == (False, 0, True, True)
    assert (process.stdout_logfile, process.stdout_logfile_maxbytes, process.stdout_logfile_backups) == (
        str(tmp_path / "x.log"), 512, 1)
    assert process.directory == str(tmp_path / sid) and process.redirect_stderr
    assert HOSTILE in rendered.argv or rendered.argv[-1].endswith("/.session-task")
    assert set(rendered.mcp_forms) <= set(mcp.FORMS)
    assert all(isinstance(name, str) for name in rendered.secrets)


@pytest.mark.parametrize("text, command", [
    ("[program:sess-x]\ncommand=a\n[program:evil]\ncommand=b\n", None),
    ("[program:sess-x]\ncommand=a b\n", ["a", "c"]),
    ("[program:sess-x]\ncommand=%(ENV_NOPE_NOT_SET)s\n", None),
    ("not an ini file", None),
])
def test_parse_group_rejects_what_is_not_exactly_the_program_we_meant(text, command, tmp_path):
    with pytest.raises(ConfigRejected):
        parse_group(ServerOptions(), text, "sess-x", str(tmp_path), command)


def test_broken_session_configs_are_quarantined_and_good_ones_stay(tmp_path):
    sid, command, rendered = render_session("shell", tmp_path)
    conf_dir, quarantine = tmp_path / "conf", tmp_path / "quarantine"
    conf_dir.mkdir()
    (conf_dir / ("sess-%s.conf" % sid)).write_text(rendered.ini)
    bad = "sess-00000000-0000-4000-8000-000000000000.conf"
    (conf_dir / bad).write_text("[program:sess-00000000-0000-4000-8000-000000000000]\ncommand=echo 100% x\n")
    (conf_dir / "other.conf").write_text("[program:other]\ncommand=true\n")
    logged = []
    moved = quarantine_broken_configs(str(conf_dir), str(quarantine), logged.append)
    assert sorted(os.listdir(quarantine)) == sorted([bad, "other.conf"]) == sorted(map(os.path.basename, moved))
    assert os.listdir(conf_dir) == ["sess-%s.conf" % sid]
    assert len(logged) == 2 and all("quarantined" in line for line in logged)


# ---- events --------------------------------------------------------------------------------------------

def process(**fields):
    defaults = {"pid": 42, "laststart": 100.0, "laststop": 101.5, "exitstatus": 0, "spawnerr": ""}
    return SimpleNamespace(**dict(defaults, **fields))


@pytest.mark.parametrize("state, fields, expected, shutting_down, result", [
    (ProcessStates.RUNNING, {}, True, False, {"status": "running", "pid": 42, "startTime": 100000}),
    (ProcessStates.EXITED, {}, True, False,
     {"status": "completed", "cause": "exit", "exitCode": 0, "endTime": 101500}),
    (ProcessStates.EXITED, {"exitstatus": 3}, False, False,
     {"status": "failed", "cause": "exit", "exitCode": 3, "reason": "exit code 3", "endTime": 101500}),
    (ProcessStates.EXITED, {"exitstatus": 137}, False, False,
     {"status": "failed", "cause": "signal", "exitCode": 137, "reason": "killed by signal 9 (exit code 137)",
      "endTime": 101500}),
    (ProcessStates.STOPPED, {"exitstatus": -1}, True, False,
     {"status": "stopped", "cause": "request", "exitCode": -1, "reason": "stopped on request", "endTime": 101500}),
    (ProcessStates.STOPPED, {"exitstatus": -1}, True, True,
     {"status": "interrupted", "cause": "shutdown", "exitCode": -1,
      "reason": "supervisord stopped while the worker ran", "endTime": 101500}),
    (ProcessStates.STOPPED, {"laststart": 0}, True, False, None),
    (ProcessStates.STARTING, {}, True, False, None),
])
def test_state_changes_map_to_session_states(state, fields, expected, shutting_down, result):
    assert state_change(process(**fields), state, expected, shutting_down) == result


def test_a_spawn_failure_fails_with_supervisors_reason():
    update = state_change(process(spawnerr="Exited too quickly"), ProcessStates.FATAL, False, False)
    assert (update["status"], update["cause"], update["reason"]) == ("failed", "spawn", "Exited too quickly")



def test_exit_reasons_name_signals_and_missing_programs():
    assert exit_reason(-1) == "killed by a signal"
    assert "not found" in exit_reason(127) and exit_reason(9) == "exit code 9"


# ---- faults ---------------------------------------------------------------------------------------------

def test_our_fault_codes_clash_with_none_of_supervisors():
    ours = {v for k, v in vars(Faults).items() if not k.startswith("_")}
    theirs = {v for k, v in vars(supervisor_xmlrpc.Faults).items() if not k.startswith("_")}
    assert not ours & theirs and all(1000 <= code < 1100 for code in ours)
    assert ours | {supervisor_xmlrpc.Faults.SHUTDOWN_STATE} == set(HTTP_STATUS)


# ---- MCP forms -------------------------------------------------------------------------------------------

CANONICAL = {"mcpServers": {
    "fs": {"command": "mcp-fs", "args": ["/data", "${ROOT}"], "type": "stdio", "env": {"TOKEN": "${TOKEN}"}},
    'odd "name"': {"command": "x\\y", "args": ["é ✓", 'a"b']}}}


def test_placeholders_are_filled_and_missing_names_reported(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(CANONICAL))
    missing = set()
    servers = mcp.fill_placeholders(mcp.load_servers(str(path)), {"TOKEN": "t0k"}, missing)
    assert servers["fs"] == {"command": "mcp-fs", "args": ["/data", ""], "env": {"TOKEN": "t0k"}}
    assert missing == {"ROOT"}


@pytest.mark.parametrize("document, words", [
    ({"servers": {}}, "no 'mcpServers'"),
    ({"mcpServers": {"h": {"type": "http", "url": "http://x"}}}, "not a stdio server"),
    ({"mcpServers": {"a": {"command": "x", "args": "-y"}}}, "'args' must be a list"),
])
def test_a_bad_canonical_file_is_refused_clearly(tmp_path, document, words):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError) as info:
        mcp.load_servers(str(path))
    assert words in str(info.value)


def test_a_missing_canonical_file_means_no_servers(tmp_path):
    assert mcp.load_servers(str(tmp_path / "none.json")) == {}


def test_every_form_is_written_as_its_runtime_reads_it(tmp_path):
    source = tmp_path / "mcp.json"
    source.write_text(json.dumps(CANONICAL))
    servers = mcp.load_servers(str(source))
    written = mcp.write_forms(servers, str(tmp_path), mcp.FORMS)
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in written)
    assert json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"] == servers
    agentic = json.loads((tmp_path / ".agentic-flow" / "mcp-config.json").read_text())["servers"]
    assert agentic["fs"] == dict(servers["fs"], enabled=True)
    assert json.loads((tmp_path / ".gemini" / "settings.json").read_text())["mcpServers"] == servers
    codex = tomllib.loads((tmp_path / ".codex" / "config.toml").read_text())["mcp_servers"]
    assert codex == {name: {k: v for k, v in s.items() if v != {}} for name, s in servers.items()}


# ---- launcher --------------------------------------------------------------------------------------------

LAUNCH = {"secrets": ["GOOGLE_GEMINI_API_KEY"], "env": {"USER_X": "1", "PATH": "/custom/bin"},
          "sessionEnv": {"SESSION_ID": "s", "SESSION_DIR": "/d", "HOME": "/d"}}


def test_the_worker_environment_is_an_allow_list():
    parent = {"PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8", "GOOGLE_GEMINI_API_KEY": "g",
              "ANTHROPIC_API_KEY": "a", "MANAGEMENT_API_KEY": "m", "PYTHONPATH": "/p", "SUPERVISOR_ENABLED": "1"}
    env = build_environment(LAUNCH, parent)
    assert env == {"PATH": "/custom/bin", "LANG": "C.UTF-8", "GOOGLE_GEMINI_API_KEY": "g", "USER_X": "1",
                   "SESSION_ID": "s", "SESSION_DIR": "/d", "HOME": "/d"}


def launch(tmp_path, argv):
    spec = dict(LAUNCH, argv=argv, env={}, mcpSource=str(tmp_path / "none.json"), mcpForms=["agentic-flow"],
                sessionEnv={"SESSION_ID": "s1", "SESSION_DIR": str(tmp_path), "HOME": str(tmp_path)})
    path = tmp_path / ".session-launch.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, "-I", "-m", "supervisor_sessions.launch", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert not path.exists()
    return done


def test_the_launcher_execs_the_runtime_and_deletes_its_spec(tmp_path):
    done = launch(tmp_path, ["sh", "-c", "echo id=$SESSION_ID home=$HOME"])
    assert (done.returncode, done.stdout) == (0, "id=s1 home=%s\n" % tmp_path)
    assert (tmp_path / ".mcp.json").exists() and (tmp_path / ".agentic-flow" / "mcp-config.json").exists()


def test_the_launcher_says_when_the_runtime_is_not_installed(tmp_path):
    done = launch(tmp_path, ["no-such-agent-cli"])
    assert done.returncode == 127
    assert "'no-such-agent-cli' is not installed" in done.stderr


# ---- log reading -------------------------------------------------------------------------------------------

def test_reading_in_small_chunks_never_splits_a_character(tmp_path):
    text = "a é € 𝄞 z\n" * 20
    path = tmp_path / "log"
    path.write_bytes(text.encode())
    for length in range(4, 9):
        seen, offset = "", 0
        while True:
            chunk, offset, overflow = read_log(str(path), offset, length)
            assert not overflow and "\ufffd" not in chunk
            if not chunk:
                break
            seen += chunk
        assert seen == text


def test_log_reading_edges(tmp_path):
    path = tmp_path / "log"
    assert read_log(str(path), 0, 10) == ("", 0, False)
    path.write_bytes(b"one\ntwo\x00\x1b\x0b\t\r\n")
    assert read_log(str(path), 0, 100) == ("one\ntwo\ufffd\ufffd\ufffd\t\r\n", 13, False)
    assert read_log(str(path), -1, 5) == ("\ufffd\ufffd\t\r\n", 13, False)
    assert read_log(str(path), 50, 4) == ("one\n", 4, True)
    path.write_bytes(b"x" * (MAX_CHUNK + 10))
    assert len(read_log(str(path), 0, MAX_CHUNK * 2)[0]) == MAX_CHUNK


# ---- settings --------------------------------------------------------------------------------------------------

def test_settings_defaults_and_derived_paths(tmp_path):
    settings = Settings.from_env({"SESSIONS_HOME": str(tmp_path)})
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 9090)
    assert settings.socket_path == str(tmp_path / "run" / "supervisor.sock")
    assert settings.log_file("x") == str(tmp_path / "logs" / "sessions" / "x.log")
    assert settings.mcp_config == str(tmp_path / ".config" / "agentic-flow" / "mcp.json")


@pytest.mark.parametrize("env, words", [
    ({"MANAGEMENT_API_PORT": "http"}, "MANAGEMENT_API_PORT must be an integer"),
    ({"MANAGEMENT_API_PORT": "70000"}, "between"),
    ({"SESSION_STOP_WAIT_SECS": "0"}, "SESSION_STOP_WAIT_SECS"),
    ({"SESSIONS_HOME": "/tmp/100%"}, "'%'"),
])
def test_bad_settings_are_refused_naming_the_variable(env, words):
    with pytest.raises(ValueError) as info:
        Settings.from_env(dict({"SESSIONS_HOME": "/tmp/x"}, **env))
    assert words in str(info.value)


def test_a_socket_path_too_long_is_refused():
    with pytest.raises(ValueError):
        Settings.from_env({"SESSIONS_HOME": "/tmp/" + "x" * 120}).check_socket_path()


def test_the_generated_api_key_is_private_and_stable(tmp_path):
    settings = Settings.from_env({"SESSIONS_HOME": str(tmp_path)})
    assert ensure_api_key(settings, {"MANAGEMENT_API_KEY": "given"}) == ("given", False)
    key, generated = ensure_api_key(settings, {})
    assert generated and len(key) >= 40
    assert stat.S_IMODE(os.stat(settings.key_file).st_mode) == 0o600
    assert ensure_api_key(settings, {}) == (key, False)


def test_reading_from_the_end_continues_into_the_rotated_half(tmp_path):
    path = tmp_path / "log"
    (tmp_path / "log.1").write_bytes(b"old-1\nold-2\n")
    path.write_bytes(b"new\n")
    assert read_log(str(path), -1, 10) == ("old-2\nnew\n", 4, False)
    assert read_log(str(path), 0, 10) == ("new\n", 4, False)


@pytest.mark.parametrize("text, share", [
    ("some avg10=12.50 avg60=3.00 avg300=1.00 total=123\nfull avg10=1.00 avg60=0 avg300=0 total=1\n", 12.5),
    ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 0.0),
    ("garbage\n", 0.0),
])
def test_memory_pressure_is_the_last_10_seconds_share_of_psi(tmp_path, text, share):
    from supervisor_sessions.confinement import memory_pressure
    path = tmp_path / "memory"
    path.write_text(text)
    assert memory_pressure(str(path)) == share
    assert memory_pressure(str(tmp_path / "missing")) == 0.0
