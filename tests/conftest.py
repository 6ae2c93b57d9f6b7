"""A real supervisord with the plugin and the API, started with `supervisor-sessions serve` in a temp home."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

import pytest

from supervisor_sessions.client import server_proxy

FINAL = {"completed", "failed", "stopped", "interrupted"}
HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_BIN = os.path.join(HERE, "fake_bin")


# A claude-code template whose worker runs its task as a bash script, so its output is whatever a test says
# (a CLI's structured lines, or an attacker's); the agent session id it resumes, if any, is its $1. The
# launcher writes every MCP form into its directory.
SCRIPTED_CLAUDE = """{% extends "session.conf.j2" %}
{% set argv = ["bash", "--noprofile", "--norc", task_file] + ([resume_id] if resume_id | default("") else []) %}
{% set secrets = [] %}
{% set mcp_forms = ["agentic-flow", "gemini", "codex"] %}
"""


def scripted_claude_overlay(directory):
    """`directory` (made if missing) as a templates overlay whose claude-code is SCRIPTED_CLAUDE."""
    os.makedirs(os.path.join(directory, "runtimes"), exist_ok=True)
    with open(os.path.join(directory, "runtimes", "claude-code.conf.j2"), "w") as f:
        f.write(SCRIPTED_CLAUDE)
    return str(directory)


def wait_for(predicate, timeout=20.0, interval=0.02, message="condition"):
    """Poll `predicate` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.1fs waiting for %s" % (timeout, message))
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids_matching(pattern):
    """Pids of live processes whose command line matches `pattern` (pgrep -f)."""
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class System:
    """One `supervisor-sessions serve` in its own SESSIONS_HOME; talks XML-RPC over the unix socket."""

    def __init__(self, home=None, env=None):
        # A short home: a unix socket path may not exceed 107 bytes.
        self.home = home or tempfile.mkdtemp(prefix="ss", dir="/tmp")
        self.key = "test-key-" + os.urandom(8).hex()
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update(SESSIONS_HOME=self.home, MANAGEMENT_API_KEY=self.key,
                        MANAGEMENT_API_HOST="127.0.0.1", MANAGEMENT_API_PORT=str(self.port),
                        SESSION_STOP_WAIT_SECS="2", MAX_CONCURRENT_SESSIONS="64",
                        PATH=FAKE_BIN + os.pathsep + os.environ.get("PATH", os.defpath))
        if os.environ.get("SESSIONS_TEST_BACKEND") == "ray":   # the ray stage runs contract tests on Ray too
            self.env["SESSIONS_BACKEND"] = "ray"
        self.env.update(env or {})
        self.proc = None
        self.start_with = [sys.executable, "-m", "supervisor_sessions.cli", "serve"]
        self.output_path = os.path.join(self.home, "serve-output.log")

    @property
    def socket(self):
        return os.path.join(self.home, "run", "supervisor.sock")

    def start(self, timeout=30):
        with open(self.output_path, "ab") as out:
            self.proc = subprocess.Popen(self.start_with, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

        def answering():
            if self.proc.poll() is not None:
                pytest.fail("serve exited with %s:\n%s" % (self.proc.returncode, self.output()))
            try:
                self.rpc(timeout=2).sessions.getAPIVersion()
                return self.api_status("/ready") == 200
            except (OSError, xmlrpc.client.ProtocolError):
                return False
        wait_for(answering, timeout, interval=0.05, message="supervisord and the API to answer")
        return self

    def http(self, method, path, body=None, auth=True, token=None, headers=None, raw=None):
        """One request to the API: (status, JSON or text body, [(header, value)] as sent on the wire)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = dict(headers or {})
        if auth:
            sent["Authorization"] = "Bearer " + (self.key if token is None else token)
        if body is not None:
            raw = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=raw, headers=sent)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(payload), response.getheaders()
        return response.status, payload.decode("utf-8", "replace"), response.getheaders()

    def raw(self, method, path, body=None, headers=None, auth=True):
        """One request with a body of bytes: (status, {lower-case header: value}, the body's bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = dict(headers or {})
        if auth:
            sent["Authorization"] = "Bearer " + self.key
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def api_status(self, path):
        """The HTTP status of an unauthenticated GET on the API."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    def output(self):
        with open(self.output_path, errors="replace") as f:
            return f.read()

    def rpc(self, timeout=30):
        return server_proxy(self.socket, timeout=timeout)

    def supervisord_pid(self):
        with open(os.path.join(self.home, "run", "supervisord.pid")) as f:
            return int(f.read())

    def spawn(self, task, runtime="shell", **spec):
        body = {"agent": "coder", "task": task, "provider": "gemini", "runtime": runtime}
        body.update(spec)
        return self.rpc().sessions.createSession(body)

    def wait_status(self, sid, states, timeout=20):
        rpc = self.rpc()
        last = {}

        def reached():
            last.clear()
            last.update(rpc.sessions.getSession(sid))
            return last["status"] in states and dict(last)
        return wait_for(reached, timeout, message="session %s to reach %s (last %s)"
                        % (sid, sorted(states), last.get("status")))

    def run(self, task, runtime="shell", timeout=20, **spec):
        """Spawn a session and wait for its final record."""
        return self.wait_status(self.spawn(task, runtime, **spec)["sessionId"], FINAL, timeout)

    def log(self, sid):
        with open(os.path.join(self.home, "logs", "sessions", sid + ".log"), errors="replace") as f:
            return f.read()

    def meta(self, sid):
        with open(os.path.join(self.home, "state", "sessions", sid, "meta.json")) as f:
            return json.load(f)

    def ctl(self, *args):
        return subprocess.run([sys.executable, "-m", "supervisor_sessions.cli", "ctl"] + list(args),
                              env=self.env, capture_output=True, text=True, timeout=60)

    def kill9(self):
        """SIGKILL supervisord alone (its workers and the API live on, orphaned)."""
        os.kill(self.supervisord_pid(), signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@pytest.fixture(scope="module")
def system():
    """A system shared by the tests of one module."""
    s = System().start()
    yield s
    s.stop()
    shutil.rmtree(s.home, ignore_errors=True)


@pytest.fixture
def make_system():
    """A factory of systems owned by one test (for restarts and special environments)."""
    made = []

    def make(**kwargs):
        s = System(**kwargs)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()
    for home in {s.home for s in made}:
        shutil.rmtree(home, ignore_errors=True)
