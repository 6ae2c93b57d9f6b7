"""The provider stand-in: alone (HTTP), and driving the real agent CLIs from npm through real turns offline."""
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import agent_clis
from conftest import free_port, wait_for
from supervisor_sessions.standin import Script, StandIn, Step, parse_sse

CLI_TIMEOUT = 120  # seconds a CLI run may take before the test fails (a turn takes about a second here)


def post(standin, path, body, timeout=10):
    """POST JSON to the stand-in; (status, headers, body text)."""
    connection = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=timeout)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def anthropic_request(stream=True, text="hi"):
    return {"model": "claude-x", "max_tokens": 100, "stream": stream, "messages": [{"role": "user", "content": text}],
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]}


def data(events, kind=None):
    return [d for _, d in events if kind is None or (isinstance(d, dict) and d.get("type") == kind)]


# -- the stand-in alone ----------------------------------------------------------------------------------


def test_anthropic_stream_of_a_tool_use_parses_into_its_blocks():
    with StandIn(Script([Step.tool("Bash", {"command": "echo hi"}, text="running it")])) as standin:
        status, headers, body = post(standin, "/v1/messages?beta=true", anthropic_request())
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = parse_sse(body)
    assert [name for name, _ in events] == [d["type"] for _, d in events]
    kinds = [d["type"] for _, d in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    blocks = {}
    for d in data(events):
        if d["type"] == "content_block_start":
            blocks[d["index"]] = dict(d["content_block"], partial="")
        elif d["type"] == "content_block_delta":
            delta = d["delta"]
            blocks[d["index"]]["partial"] += delta.get("text", delta.get("partial_json", ""))
    assert blocks[0]["type"] == "text" and blocks[0]["partial"] == "running it"
    assert blocks[1]["type"] == "tool_use" and blocks[1]["name"] == "Bash" and blocks[1]["id"].startswith("toolu_")
    assert json.loads(blocks[1]["partial"]) == {"command": "echo hi"}
    assert len(data(events, "content_block_stop")) == 2
    start, delta = data(events, "message_start")[0], data(events, "message_delta")[0]
    assert start["message"]["usage"]["input_tokens"] > 0
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["output_tokens"] > 0


def test_anthropic_json_reply_when_not_streaming():
    with StandIn(Script([Step.text("plain", usage=(11, 7))])) as standin:
        status, _, body = post(standin, "/v1/messages", anthropic_request(stream=False))
    reply = json.loads(body)
    assert status == 200 and reply["type"] == "message" and reply["stop_reason"] == "end_turn"
    assert reply["content"] == [{"type": "text", "text": "plain"}]
    assert reply["usage"]["input_tokens"] == 11 and reply["usage"]["output_tokens"] == 7


def test_script_is_consumed_in_order_then_done_and_probes_take_no_step():
    script = Script([Step.text("one"), Step.shell("ls -l"), Step.text("three")])
    with StandIn(script) as standin:
        connection = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=10)
        connection.request("HEAD", "/")
        assert connection.getresponse().status == 200
        connection.close()
        assert post(standin, "/v1/messages/count_tokens", anthropic_request())[0] == 200
        router = {"contents": [{"role": "user", "parts": [{"text": "route"}]}], "generationConfig": {
            "responseMimeType": "application/json", "responseJsonSchema": {"type": "OBJECT", "properties": {
                "complexity_reasoning": {"type": "STRING"}, "complexity_score": {"type": "INTEGER"}}}}}
        status, _, body = post(standin, "/v1beta/models/gemini-x:generateContent", router)
        routed = json.loads(json.loads(body)["candidates"][0]["content"]["parts"][0]["text"])
        assert routed == {"complexity_reasoning": "stand-in", "complexity_score": 1}

        replies = []
        replies.append(json.loads(post(standin, "/v1/messages", anthropic_request(stream=False))[2]))
        replies.append(json.loads(post(standin, "/v1/responses", {"stream": False, "input": [], "tools": [
            {"type": "function", "name": "shell_command"}]})[2]))
        replies.append(json.loads(post(standin, "/v1beta/models/gemini-x:generateContent", {"contents": []})[2]))
        replies.append(json.loads(post(standin, "/v1/messages", anthropic_request(stream=False))[2]))
        assert script.remaining == 0
    assert replies[0]["content"][0]["text"] == "one"
    call = replies[1]["output"][0]
    assert call["type"] == "function_call" and call["name"] == "shell_command"
    assert json.loads(call["arguments"]) == {"command": "ls -l"}
    assert replies[2]["candidates"][0]["content"]["parts"] == [{"text": "three"}]
    assert replies[3]["content"][0]["text"] == "done"
    assert [r.provider for r in standin.turns] == ["anthropic", "openai", "gemini", "anthropic"]
    assert [r.step.kind for r in standin.turns] == ["text", "tool", "text", "text"]
    assert [r.method for r in standin.requests][:3] == ["HEAD", "POST", "POST"]
    assert standin.requests[-1].body["messages"][0]["content"] == "hi"


def test_openai_stream_has_what_codex_needs():
    offered = [{"type": "function", "name": "exec_command"}, {"type": "function", "name": "write_stdin"}]
    with StandIn(Script([Step.shell("echo hi > f"), Step.text("all done")])) as standin:
        _, _, first = post(standin, "/v1/responses", {"stream": True, "input": [], "tools": offered})
        _, _, second = post(standin, "/v1/responses", {"stream": True, "input": [], "tools": offered})
    events = data(parse_sse(first))
    kinds = [d["type"] for d in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    call = data(parse_sse(first), "response.output_item.done")[0]["item"]
    assert call["type"] == "function_call" and call["name"] == "exec_command" and call["call_id"]
    assert json.loads(call["arguments"]) == {"cmd": "echo hi > f"}
    completed = events[-1]["response"]
    assert completed["id"] and completed["usage"]["input_tokens"] > 0 and completed["usage"]["output_tokens"] > 0
    message = data(parse_sse(second), "response.output_item.done")[0]["item"]
    assert message["type"] == "message" and message["content"][0] == {
        "type": "output_text", "text": "all done", "annotations": []}
    assert "".join(d["delta"] for d in data(parse_sse(second), "response.output_text.delta")) == "all done"


def test_gemini_stream_has_a_function_call_and_usage():
    with StandIn(Script([Step.shell("echo hi")])) as standin:
        status, _, body = post(standin, "/v1beta/models/gemini-x:streamGenerateContent?alt=sse", {"contents": []})
    chunks = data(parse_sse(body))
    assert status == 200 and len(chunks) == 1
    candidate = chunks[0]["candidates"][0]
    assert candidate["content"]["parts"] == [{"functionCall": {"name": "run_shell_command",
                                                               "args": {"command": "echo hi"}}}]
    assert candidate["finishReason"] == "STOP" and chunks[0]["usageMetadata"]["promptTokenCount"] > 0
    assert standin.turns[0].query == {"alt": ["sse"]}


def test_errors_come_in_each_providers_shape_or_as_given():
    script = Script([Step.error(400), Step.error(429), Step.error(503), Step.error(500, body="plain text")])
    with StandIn(script) as standin:
        anthropic = post(standin, "/v1/messages", anthropic_request())
        openai = post(standin, "/v1/responses", {"input": []})
        gemini = post(standin, "/v1beta/models/g:streamGenerateContent?alt=sse", {"contents": []})
        custom = post(standin, "/v1/messages", anthropic_request())
    assert anthropic[0] == 400 and json.loads(anthropic[2])["error"]["type"] == "invalid_request_error"
    assert openai[0] == 429 and json.loads(openai[2])["error"]["message"]
    assert gemini[0] == 503 and json.loads(gemini[2])["error"]["status"] == "UNAVAILABLE"
    assert custom[0] == 500 and custom[2] == "plain text"


def test_a_delay_holds_the_answer_back():
    with StandIn(Script([Step.text("slow", delay=0.6), Step.text("fast")])) as standin:
        started = time.monotonic()
        slow = post(standin, "/v1/messages", anthropic_request(stream=False))
        middle = time.monotonic()
        fast = post(standin, "/v1/messages", anthropic_request(stream=False))
        ended = time.monotonic()
    assert json.loads(slow[2])["content"][0]["text"] == "slow" and middle - started >= 0.6
    assert json.loads(fast[2])["content"][0]["text"] == "fast" and ended - middle < 0.5


def test_a_hang_never_answers_until_the_standin_stops():
    standin = StandIn(Script([Step.hang(), Step.hang(after_start=True)])).start()
    try:
        with pytest.raises(OSError):  # socket.timeout is an OSError
            post(standin, "/v1/messages", anthropic_request(), timeout=0.5)
        # Mid-stream: the headers and message_start come, then nothing.
        connection = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=5)
        connection.request("POST", "/v1/messages", json.dumps(anthropic_request()))
        response = connection.getresponse()
        assert response.status == 200
        connection.sock.settimeout(0.5)
        received = b""
        with pytest.raises(OSError):
            for line in iter(response.fp.readline, b""):  # the end of the stream would fail the test
                received += line
        assert b"event: message_start" in received and b"content_block" not in received
        connection.close()

        # A third caller hangs too, until stop() releases it.
        outcome = []
        standin.script.extend([Step.hang()])
        caller = threading.Thread(target=lambda: outcome.append(_try_post(standin)), daemon=True)
        caller.start()
        wait_for(lambda: len(standin.turns) == 3, timeout=10, message="the third request")
        assert caller.is_alive()
    finally:
        standin.stop()
    caller.join(10)
    assert not caller.is_alive() and outcome and outcome[0] != 200


def _try_post(standin):
    try:
        return post(standin, "/v1/messages", anthropic_request(), timeout=30)[0]
    except (OSError, http.client.HTTPException) as error:
        return error


def test_python_dash_m_serves_text_replies():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "supervisor_sessions.standin", "--port", str(port),
                             "--text", "hello offline"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def answer():
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("POST", "/v1/messages", json.dumps(anthropic_request(stream=False)))
                return json.loads(connection.getresponse().read())
            except OSError:
                return None
        reply = wait_for(answer, timeout=20, message="python -m supervisor_sessions.standin to answer")
        assert reply["content"][0]["text"] == "hello offline"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert b"provider stand-in on http://127.0.0.1:%d" % port in proc.stdout.read()


# -- the real CLIs against it ----------------------------------------------------------------------------


class Cli:
    """A CLI process whose stdout is read line by line on a thread; every wait has a deadline."""

    def __init__(self, argv, cwd, env, stdin=False):
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines, self.errors = [], []
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into):
        for line in iter(stream.readline, b""):
            into.append(line.decode("utf-8", "replace").rstrip("\n"))

    @property
    def events(self):
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def output(self):
        return "stdout:\n%s\nstderr:\n%s" % ("\n".join(self.lines[-40:]), "\n".join(self.errors[-40:]))

    def wait_for_events(self, predicate, timeout=CLI_TIMEOUT, message="an event"):
        def check():
            value = predicate(self.events)
            if not value and self.proc.poll() is not None:
                for reader in self._readers:
                    reader.join(5)
                value = predicate(self.events)
                if not value:
                    pytest.fail("the CLI exited %s before %s\n%s" % (self.proc.returncode, message, self.output()))
            return value
        return wait_for(check, timeout=timeout, interval=0.05, message=message)

    def send(self, obj):
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, timeout=CLI_TIMEOUT):
        """Its exit status once it ends; fails the test (and kills it) at the deadline."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("the CLI did not exit within %ss\n%s" % (timeout, self.output()))
        for reader in self._readers:
            reader.join(10)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


@pytest.fixture
def run_cli():
    started = []

    def start(argv, cwd, env, stdin=False):
        cli = Cli(argv, cwd, env, stdin)
        started.append(cli)
        return cli
    yield start
    for cli in started:
        cli.kill()


@pytest.fixture
def dirs(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    return str(home), str(cwd)


def of_type(events, kind, **fields):
    return [e for e in events if e.get("type") == kind and all(e.get(k) == v for k, v in fields.items())]


def content_blocks(events, role):
    return [block for e in of_type(events, role) for block in e["message"]["content"] if isinstance(block, dict)]


PROOF = "echo from-the-tool > proof.txt"


def read_proof(cwd):
    with open(os.path.join(cwd, "proof.txt")) as f:
        return f.read()


@pytest.mark.agents
def test_claude_runs_a_tool_and_finishes_the_turn(dirs, run_cli):
    home, cwd = dirs
    claude = agent_clis.claude_path()
    with StandIn(Script([Step.tool("Bash", {"command": PROOF}), Step.text("wrote proof.txt")])) as standin:
        cli = run_cli([claude, "-p", "write proof.txt", "--output-format", "stream-json", "--verbose",
                       "--allowedTools", "Bash"], cwd, agent_clis.claude_env(standin.url, home))
        assert cli.wait() == 0, cli.output()
    events = cli.events
    assert read_proof(cwd) == "from-the-tool\n"
    assert of_type(events, "system", subtype="init")
    uses = [b for b in content_blocks(events, "assistant") if b["type"] == "tool_use"]
    assert len(uses) == 1 and uses[0]["name"] == "Bash" and uses[0]["input"]["command"] == PROOF
    results = [b for b in content_blocks(events, "user") if b["type"] == "tool_result"]
    assert len(results) == 1 and results[0]["tool_use_id"] == uses[0]["id"] and results[0]["is_error"] is False
    result = of_type(events, "result")[-1]
    assert result["subtype"] == "success" and result["is_error"] is False and result["result"] == "wrote proof.txt"
    assert result["num_turns"] == 2 and result["total_cost_usd"] > 0
    assert result["usage"]["input_tokens"] > 0 and result["usage"]["output_tokens"] > 0
    turns = standin.turns
    assert len(turns) == 2 and all(t.provider == "anthropic" for t in turns)
    sent = [block for message in turns[1].body["messages"] if isinstance(message["content"], list)
            for block in message["content"] if block.get("type") == "tool_result"]
    assert [b["tool_use_id"] for b in sent] == [uses[0]["id"]]


@pytest.mark.agents
def test_claude_takes_two_turns_on_stdin(dirs, run_cli):
    home, cwd = dirs
    claude = agent_clis.claude_path()
    with StandIn(Script([Step.text("first answer"), Step.text("second answer")])) as standin:
        cli = run_cli([claude, "-p", "--input-format", "stream-json", "--output-format", "stream-json",
                       "--verbose"], cwd, agent_clis.claude_env(standin.url, home), stdin=True)
        cli.send({"type": "user", "message": {"role": "user", "content": "first question"}})
        cli.wait_for_events(lambda events: of_type(events, "result"), message="the first result")
        cli.send({"type": "user", "message": {"role": "user", "content": [{"type": "text",
                                                                             "text": "second question"}]}})
        cli.wait_for_events(lambda events: len(of_type(events, "result")) == 2, message="the second result")
        cli.proc.stdin.close()
        assert cli.wait() == 0, cli.output()
    first, second = of_type(cli.events, "result")
    assert (first["result"], second["result"]) == ("first answer", "second answer")
    assert first["session_id"] == second["session_id"] and not first["is_error"] and not second["is_error"]
    assert second["total_cost_usd"] >= first["total_cost_usd"] > 0
    turns = standin.turns
    assert len(turns) == 2
    assert "first question" in turns[1].text and "first answer" in turns[1].text and "second question" in turns[1].text


@pytest.mark.agents
def test_claude_reports_a_provider_error_and_exits_1(dirs, run_cli):
    home, cwd = dirs
    claude = agent_clis.claude_path()
    with StandIn(Script([Step.error(400)])) as standin:
        cli = run_cli([claude, "-p", "task", "--output-format", "stream-json", "--verbose"], cwd,
                      agent_clis.claude_env(standin.url, home))
        assert cli.wait() == 1, cli.output()
    result = of_type(cli.events, "result")[-1]
    assert result["is_error"] is True
    assert any("400" in b.get("text", "") for b in content_blocks(cli.events, "assistant")), cli.output()
    assert len(standin.turns) == 1  # a 4xx is not retried


@pytest.mark.agents
def test_codex_runs_a_shell_command_and_finishes_the_turn(dirs, run_cli):
    home, cwd = dirs
    codex = agent_clis.codex_path()
    with StandIn(Script([Step.shell(PROOF), Step.text("wrote proof.txt")])) as standin:
        cli = run_cli([codex, "exec", "--json", "--skip-git-repo-check", "-s", "workspace-write",
                       "write proof.txt"], cwd, agent_clis.codex_env(standin.url, home))
        assert cli.wait() == 0, cli.output()
    events = cli.events
    assert read_proof(cwd) == "from-the-tool\n"
    assert of_type(events, "thread.started")[0]["thread_id"]
    items = [e["item"] for e in of_type(events, "item.completed")]
    commands = [i for i in items if i["type"] == "command_execution"]
    assert len(commands) == 1 and "proof.txt" in commands[0]["command"] and commands[0]["exit_code"] == 0
    assert [i["text"] for i in items if i["type"] == "agent_message"] == ["wrote proof.txt"]
    usage = of_type(events, "turn.completed")[-1]["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    turns = standin.turns
    assert len(turns) == 2 and all(t.provider == "openai" for t in turns)
    call = [i for i in turns[1].body["input"] if i.get("type") == "function_call"][-1]
    outputs = [i for i in turns[1].body["input"] if i.get("type") == "function_call_output"]
    assert call["name"] == "exec_command" and [o["call_id"] for o in outputs] == [call["call_id"]]


@pytest.mark.agents
def test_gemini_runs_a_shell_command_and_finishes_the_turn(dirs, run_cli):
    home, cwd = dirs
    gemini = agent_clis.gemini_path()
    with StandIn(Script([Step.shell(PROOF), Step.text("wrote proof.txt")])) as standin:
        cli = run_cli([gemini, "-p", "write proof.txt", "--output-format", "stream-json", "--yolo"], cwd,
                      agent_clis.gemini_env(standin.url, home))
        assert cli.wait() == 0, cli.output()
    events = cli.events
    assert read_proof(cwd) == "from-the-tool\n"
    uses = of_type(events, "tool_use", tool_name="run_shell_command")
    assert len(uses) == 1 and uses[0]["parameters"]["command"] == PROOF
    assert of_type(events, "tool_result", tool_id=uses[0]["tool_id"], status="success")
    assert "".join(e["content"] for e in of_type(events, "message", role="assistant")) == "wrote proof.txt"
    result = of_type(events, "result")[-1]
    assert result["status"] == "success" and result["stats"]["tool_calls"] == 1
    assert result["stats"]["input_tokens"] > 0 and result["stats"]["output_tokens"] > 0
    turns = standin.turns
    assert len(turns) == 2 and all(":streamGenerateContent" in t.path for t in turns)
    responses = [p["functionResponse"] for c in turns[1].body["contents"] for p in c["parts"]
                 if "functionResponse" in p]
    assert [r["name"] for r in responses] == ["run_shell_command"]
