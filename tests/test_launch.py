"""The worker launcher: an allow-listed environment, the MCP files, then exec of the runtime's argv."""
import json
import os
import stat
import subprocess
import sys

import pytest

from supervisor_sessions.launch import BASE_ENV, EXIT_NOT_INSTALLED, build_environment

SESSION_ENV = {"SESSION_ID": "sid-1", "SESSION_DIR": "/work/s", "HOME": "/work/s", "SESSION_PORT": "4000",
               "PROXY_PORT": "4000", "MCP_CONFIG": "/work/s/.mcp.json"}
PARENT = {
    "PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8", "TZ": "UTC", "TERM": "xterm", "USER": "root",
    "GEMINI_API_KEY": "gem", "ANTHROPIC_API_KEY": "ant", "OPENAI_API_KEY": "oai",
    "MANAGEMENT_API_KEY": "mgmt-key-8f3a", "SECRET_TOKEN": "secret-token-71c2", "AWS_SECRET_ACCESS_KEY": "aws",
    "PYTHONPATH": "/evil", "LD_PRELOAD": "/evil.so", "SUPERVISOR_SERVER_URL": "unix:///x", "SESSIONS_HOME": "/h",
    "VNC_PASSWORD": "vnc", "CODE_SERVER_PASSWORD": "cs",
}
UNDECLARED = ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "MANAGEMENT_API_KEY", "SECRET_TOKEN", "AWS_SECRET_ACCESS_KEY",
              "PYTHONPATH", "LD_PRELOAD", "SUPERVISOR_SERVER_URL", "SESSIONS_HOME", "VNC_PASSWORD",
              "CODE_SERVER_PASSWORD"]


def launch_spec(secrets=("GEMINI_API_KEY",), env=None, session_env=None):
    return {"secrets": list(secrets), "env": env or {}, "sessionEnv": dict(SESSION_ENV, **(session_env or {}))}


# ---- build_environment -----------------------------------------------------------------------------------------

def test_the_worker_environment_is_the_allow_list_the_declared_secrets_and_the_session_vars():
    assert build_environment(launch_spec(env={"DEBUG": "1"}), PARENT) == dict(
        {k: PARENT[k] for k in ("PATH", "LANG", "TZ", "TERM", "USER")}, GEMINI_API_KEY="gem", DEBUG="1",
        **SESSION_ENV)


@pytest.mark.parametrize("name", UNDECLARED)
def test_a_secret_not_declared_never_passes(name):
    assert name not in build_environment(launch_spec(), PARENT)


def test_a_declared_secret_passes_only_when_supervisord_has_it():
    env = build_environment(launch_spec(secrets=["GEMINI_API_KEY", "GOOGLE_API_KEY"]), PARENT)
    assert env["GEMINI_API_KEY"] == "gem" and "GOOGLE_API_KEY" not in env


@pytest.mark.parametrize("name", BASE_ENV)
def test_each_base_variable_passes_when_set(name):
    assert build_environment(launch_spec(secrets=()), {name: "v-" + name})[name] == "v-" + name


def test_without_a_path_the_worker_gets_the_default_path():
    assert build_environment(launch_spec(), {})["PATH"] == os.defpath


@pytest.mark.parametrize("name", ["HOME", "SESSION_ID", "SESSION_DIR", "MCP_CONFIG", "PROXY_PORT"])
def test_the_session_vars_win_over_the_spec_env(name):
    assert build_environment(launch_spec(env={name: "from-spec"}), PARENT)[name] == SESSION_ENV[name]


@pytest.mark.parametrize("name", ["PATH", "LANG", "GEMINI_API_KEY", "NPM_CONFIG_CACHE"])
def test_the_spec_env_wins_over_what_is_taken_from_supervisord(name):
    assert build_environment(launch_spec(env={name: "from-spec"}), PARENT)[name] == "from-spec"


@pytest.mark.parametrize("parent", [{"HOME": "/home/op"}, {"HOME": "/home/op", "NPM_CONFIG_CACHE": "/cache/npm"}])
def test_each_session_has_its_own_npm_cache_in_its_own_home(parent):
    env = build_environment(launch_spec(), parent)
    assert "NPM_CONFIG_CACHE" not in env and env["HOME"] == SESSION_ENV["HOME"]


def test_gpu_variables_pass_only_when_the_session_holds_gpus():
    parent = dict(PARENT, LD_LIBRARY_PATH="/usr/local/cuda/lib64")
    assert "LD_LIBRARY_PATH" not in build_environment(launch_spec(), parent)
    spec = dict(launch_spec(), passEnv=["LD_LIBRARY_PATH", "CUDA_HOME"])
    env = build_environment(spec, parent)
    assert env["LD_LIBRARY_PATH"] == "/usr/local/cuda/lib64" and "CUDA_HOME" not in env


# ---- main, run as supervisord runs it ------------------------------------------------------------------------------

@pytest.fixture
def session(tmp_path):
    directory = tmp_path / "session"
    directory.mkdir()
    return directory


def run_launcher(session, argv, mcp_source=None, forms=("agentic-flow",), extra_env=None):
    """Write a launch spec into `session` and run the launcher on it the way supervisord does."""
    spec = {"argv": argv, "secrets": ["GEMINI_API_KEY"], "env": {"USER_VAR": "from spec"},
            "sessionEnv": dict(SESSION_ENV, SESSION_DIR=str(session), HOME=str(session),
                               MCP_CONFIG=str(session / ".mcp.json")),
            "mcpSource": str(mcp_source or session / "no-mcp.json"), "mcpForms": list(forms)}
    launch_file = session / ".session-launch.json"
    launch_file.write_text(json.dumps(spec), encoding="utf-8")
    env = dict(PARENT, PATH=os.environ.get("PATH", os.defpath), **(extra_env or {}))
    done = subprocess.run([sys.executable, "-I", "-m", "supervisor_sessions.launch", str(launch_file)],
                          cwd=str(session), env=env, capture_output=True, text=True, timeout=60)
    assert not launch_file.exists(), "the launch spec (it may hold secrets) must be deleted"
    return done


def test_the_launcher_execs_the_runtime_with_the_worker_environment(session):
    done = run_launcher(session, ["sh", "-c", "echo $SESSION_ID; env"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "sid-1"
    env = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert (env["HOME"], env["SESSION_DIR"], env["GEMINI_API_KEY"], env["USER_VAR"]) == (
        str(session), str(session), "gem", "from spec")
    assert "NPM_CONFIG_CACHE" not in env
    assert not set(UNDECLARED) & set(env)
    assert "mgmt-key-8f3a" not in done.stdout and "secret-token-71c2" not in done.stdout


def test_the_launcher_writes_the_canonical_mcp_file_and_the_runtimes_form(session, tmp_path):
    source = tmp_path / "mcp.json"
    source.write_text(json.dumps({"mcpServers": {"fs": {
        "command": "mcp-fs", "args": ["${SESSION_DIR}", "${GEMINI_API_KEY}"], "env": {"T": "${NOT_SET_ANYWHERE}"}}}}))
    done = run_launcher(session, ["true"], mcp_source=source)
    assert done.returncode == 0
    canonical = json.loads((session / ".mcp.json").read_text())
    assert canonical == {"mcpServers": {"fs": {"command": "mcp-fs", "args": [str(session), "gem"], "env": {"T": ""}}}}
    assert stat.S_IMODE(os.stat(session / ".mcp.json").st_mode) == 0o600
    assert json.loads((session / ".agentic-flow" / "mcp-config.json").read_text())["servers"]["fs"]["enabled"] is True
    assert "MCP config names variables this session does not have: NOT_SET_ANYWHERE" in done.stderr


def test_mcp_placeholders_are_never_filled_from_supervisords_secrets(session, tmp_path):
    source = tmp_path / "mcp.json"
    source.write_text(json.dumps({"mcpServers": {"x": {"command": "x", "args": [
        "${MANAGEMENT_API_KEY}", "${SECRET_TOKEN}", "${ANTHROPIC_API_KEY}", "${USER_VAR}"]}}}))
    assert run_launcher(session, ["true"], mcp_source=source).returncode == 0
    written = (session / ".mcp.json").read_text()
    assert json.loads(written)["mcpServers"]["x"]["args"] == ["", "", "", "from spec"]
    assert "mgmt-key-8f3a" not in written and "secret-token-71c2" not in written


def test_without_an_mcp_file_the_canonical_file_holds_no_servers(session):
    assert run_launcher(session, ["true"], forms=()).returncode == 0
    assert json.loads((session / ".mcp.json").read_text()) == {"mcpServers": {}}


def test_a_broken_mcp_file_is_reported_and_the_worker_still_runs(session, tmp_path):
    source = tmp_path / "mcp.json"
    source.write_text(json.dumps({"mcpServers": {"h": {"type": "http", "url": "http://x"}}}))
    done = run_launcher(session, ["sh", "-c", "echo ran"], mcp_source=source)
    assert (done.returncode, done.stdout) == (0, "ran\n")
    assert "supervisor-sessions: MCP config not used: MCP server 'h'" in done.stderr
    assert json.loads((session / ".mcp.json").read_text()) == {"mcpServers": {}}


def test_a_runtime_that_is_not_installed_exits_127_saying_so(session):
    done = run_launcher(session, ["no-such-agent-cli", "--task", "x"])
    assert done.returncode == EXIT_NOT_INSTALLED == 127
    assert done.stdout == ""
    assert [line for line in done.stderr.splitlines() if line.startswith(
        "supervisor-sessions: runtime program 'no-such-agent-cli' is not installed (not found on PATH=")]


def test_the_launcher_without_a_launch_file_prints_its_usage():
    done = subprocess.run([sys.executable, "-I", "-m", "supervisor_sessions.launch"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "usage: python -m supervisor_sessions.launch LAUNCH_FILE" in done.stderr
