"""User text never changes the config; workers get only what they need; MCP servers reach every runtime."""
import glob
import json
import os
import shutil
import tempfile
import xmlrpc.client

import pytest

from supervisor_sessions.faults import Faults

from conftest import FAKE_BIN, System, wait_for

SECRETS = {"SECRET_TOKEN": "s3cr3t-never-leaks", "GOOGLE_GEMINI_API_KEY": "gemini-key-for-the-worker",
           "ANTHROPIC_API_KEY": "anthropic-key-not-for-gemini", "CONTEXT7_API_KEY": "ctx7-key"}
HOSTILE_TASKS = {
    "section": "hi\n[program:evil]\ncommand=touch /tmp/evil-was-here\nautostart=true",
    "continuation": "hi\n  --extra-arg",
    "expansion": "%(ENV_HOME)s %(ENV_SECRET_TOKEN)s %(here)s",
    "percent": "100% done",
    "semicolon": "step1 ; rm -rf /",
    "hash": "fix bug # 12",
    "quotes": "it's \"quoted\" `whoami` $(whoami) $HOME",
    "unicode": "héllo wörld ✓ 🚀 \u202e",
    "backslashes": "a\\nb\\\\c\\",
}


@pytest.fixture(scope="module")
def isolated():
    """A system with secrets in supervisord's environment and a canonical mcp.json."""
    mcp_dir = tempfile.mkdtemp(prefix="ssmcp", dir="/tmp")
    mcp_file = os.path.join(mcp_dir, "mcp.json")
    with open(mcp_file, "w") as f:
        json.dump({"mcpServers": {
            "fake": {"command": os.path.join(FAKE_BIN, "fake-mcp-server"), "args": [], "type": "stdio",
                     "env": {"FAKE_TOOL": "lookup-${CONTEXT7_API_KEY}"}},
            "context7": {"command": "npx", "args": ["-y", "@upstash/context7-mcp"], "type": "stdio",
                         "env": {"CONTEXT7_API_KEY": "${CONTEXT7_API_KEY}"}}}}, f)
    s = System(env=dict(SECRETS, MCP_CONFIG=mcp_file)).start()
    yield s
    s.stop()
    shutil.rmtree(s.home, ignore_errors=True)
    shutil.rmtree(mcp_dir, ignore_errors=True)


def report(record):
    with open(os.path.join(record["sessionDir"], "fake-report.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("kind", sorted(HOSTILE_TASKS))
def test_a_hostile_task_reaches_the_worker_as_literal_text(isolated, kind):
    task = HOSTILE_TASKS[kind]
    record = isolated.run(task, runtime="agentic-flow")
    assert record["status"] == "completed", record
    argv = report(record)["argv"]
    assert argv[1:] == ["--agent", "coder", "--task", task, "--provider", "gemini"]
    assert isolated.rpc().sessions.getSession(record["sessionId"])["task"] == task


def test_hostile_tasks_create_no_program_and_leave_one_section_per_file(isolated):
    for task in HOSTILE_TASKS.values():
        isolated.run(task, runtime="shell")
    groups = {p["group"] for p in isolated.rpc().supervisor.getAllProcessInfo()}
    assert all(g in ("management-api", "session-cleanup", "session-webhooks") or g.startswith("sess-") for g in groups)
    assert not os.path.exists("/tmp/evil-was-here")
    programs = glob.glob(os.path.join(isolated.home, "state", "sessions", "*", "program.conf"))
    assert len(programs) >= len(HOSTILE_TASKS)
    for path in programs:
        with open(path) as f:
            text = f.read()
        assert text.count("[") == 1 and "evil" not in text and "ENV_" not in text


def test_a_shell_task_runs_as_that_exact_script(isolated):
    task = "cat \"$0\" > seen.txt\n# %(ENV_HOME)s ; [program:x]\necho 'quote\"s' ✓"
    record = isolated.run(task)
    assert record["status"] == "completed"
    with open(os.path.join(record["sessionDir"], "seen.txt")) as f:
        assert f.read() == task
    assert "quote\"s ✓" in isolated.log(record["sessionId"])


def test_supervisor_config_reread_sees_no_change_after_hostile_sessions(isolated):
    isolated.run(HOSTILE_TASKS["section"])
    assert isolated.rpc().supervisor.reloadConfig() == [[[], [], []]]


@pytest.mark.parametrize("spec, words", [
    ({"agent": "coder\n[program:evil]"}, "agent"),
    ({"provider": "gemini ; x"}, "provider"),
    ({"runtime": "../../etc/passwd"}, "runtime"),
    ({"runtime": "nosuch"}, "unknown runtime"),
    ({"name": "line\nbreak"}, "name"),
    ({"env": {"BAD KEY": "x"}}, "env name"),
    ({"env": {"HOME": "/"}}, "HOME"),
    ({"env": {"X": 1}}, "must be a string"),
    ({"task": 7}, "must be a string"),
    ({"extra": "field"}, "unknown field"),
])
def test_a_bad_spec_is_refused_with_a_clear_fault(isolated, spec, words):
    body = {"agent": "coder", "task": "true", "provider": "gemini", "runtime": "shell"}
    body.update(spec)
    before = len(isolated.rpc().sessions.listSessions())
    with pytest.raises(xmlrpc.client.Fault) as info:
        isolated.rpc().sessions.createSession(body)
    assert info.value.faultCode == Faults.INVALID_SPEC
    assert words in info.value.faultString
    assert len(isolated.rpc().sessions.listSessions()) == before


def test_a_task_with_nul_cannot_cross_xml_rpc_and_creates_nothing(isolated):
    before = len(isolated.rpc().sessions.listSessions())
    with pytest.raises(xmlrpc.client.ProtocolError) as info:
        isolated.rpc().sessions.createSession({"agent": "coder", "task": "a\0b", "provider": "gemini"})
    assert info.value.errcode == 400
    assert len(isolated.rpc().sessions.listSessions()) == before


def test_the_worker_gets_its_provider_key_and_no_other_secret(isolated):
    record = isolated.run("x", runtime="agentic-flow", env={"USER_VALUE": "a\nb ; %(ENV_HOME)s \"'"})
    env = report(record)["env"]
    assert env["GOOGLE_GEMINI_API_KEY"] == SECRETS["GOOGLE_GEMINI_API_KEY"]
    for name in ("SECRET_TOKEN", "ANTHROPIC_API_KEY", "CONTEXT7_API_KEY", "MANAGEMENT_API_KEY",
                 "SUPERVISOR_SERVER_URL", "PYTHONPATH"):
        assert name not in env
    assert env["USER_VALUE"] == "a\nb ; %(ENV_HOME)s \"'"
    assert env["HOME"] == env["SESSION_DIR"] == record["sessionDir"] == report(record)["cwd"]
    assert env["SESSION_ID"] == record["sessionId"]


def test_secrets_and_env_values_stay_out_of_records_meta_files_and_our_logs(isolated):
    record = isolated.run("x", runtime="agentic-flow", env={"PRIVATE": "user-secret-value"})
    sid = record["sessionId"]
    assert not os.path.exists(os.path.join(record["sessionDir"], ".session-launch.json"))
    exposed = json.dumps(isolated.rpc().sessions.getSession(sid)) + json.dumps(isolated.meta(sid))
    exposed += isolated.output() + isolated.log(sid)
    with open(os.path.join(isolated.home, "logs", "supervisord.log")) as f:
        exposed += f.read()
    for value in list(SECRETS.values()) + ["user-secret-value", isolated.key]:
        assert value not in exposed


def test_two_live_workers_get_different_ports_as_proxy_port(isolated):
    rpc = isolated.rpc()
    first, second = (isolated.spawn("echo $PROXY_PORT; sleep 30") for _ in range(2))
    assert first["port"] != second["port"]
    for record in (first, second):
        def printed():
            return [line for line in isolated.log(record["sessionId"]).splitlines()
                    if not line.startswith("supervisor-sessions:")]
        wait_for(printed, message="the port to be printed")
        rpc.sessions.stopSession(record["sessionId"])
        isolated.wait_status(record["sessionId"], {"stopped"})
        assert printed() == [str(record["port"])]


def test_an_agentic_flow_worker_starts_the_configured_mcp_servers(isolated):
    record = isolated.run("use the tools", runtime="agentic-flow",
                          env={"CONTEXT7_API_KEY": SECRETS["CONTEXT7_API_KEY"]})
    seen = report(record)
    assert seen["tools"]["fake"] == ["lookup-" + SECRETS["CONTEXT7_API_KEY"]]
    servers = json.loads(seen["mcp"])["servers"]
    assert servers["context7"] == {"enabled": True, "command": "npx", "args": ["-y", "@upstash/context7-mcp"],
                                   "env": {"CONTEXT7_API_KEY": SECRETS["CONTEXT7_API_KEY"]}}


@pytest.mark.parametrize("runtime, argv_head", [
    ("claude-code", ["-p", "the task", "--output-format", "stream-json", "--verbose", "--permission-mode",
                     "bypassPermissions", "--mcp-config"]),
    ("gemini-cli", ["-p", "the task", "--output-format", "stream-json", "--yolo"]),
    ("codex", ["exec", "--json", "--skip-git-repo-check", "-s", "workspace-write", "the task"]),
])
def test_every_agent_runtime_receives_the_task_and_its_mcp_servers(isolated, runtime, argv_head):
    record = isolated.run("the task", runtime=runtime)
    assert record["status"] == "completed", record
    seen = report(record)
    assert seen["argv"][1:1 + len(argv_head)] == argv_head
    assert "fake-mcp-server" in seen["mcp"] and "context7-mcp" in seen["mcp"]


def test_a_runtime_whose_program_is_missing_fails_saying_so(isolated):
    record = isolated.spawn("x", runtime="codex", env={"PATH": "/nonexistent"})
    assert record["status"] == "failed"
    assert "codex" in record["reason"] and "not installed" in record["reason"]
    assert record["cause"] == "spawn"
    assert isolated.meta(record["sessionId"])["status"] == "failed"


def test_a_worker_exit_code_from_the_runtime_is_kept(isolated):
    record = isolated.run("x", runtime="agentic-flow", env={"FAKE_EXIT": "1"})
    assert (record["status"], record["exitCode"]) == ("failed", 1)
