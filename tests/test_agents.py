"""The real agent CLIs from npm, run as sessions (sandboxed as the machine allows), against our provider
stand-in: their output becomes events and the record's agent fields."""
import os

import pytest

from supervisor_sessions.standin import Script, StandIn, Step

import agent_clis
from conftest import FINAL, System, wait_for

pytestmark = pytest.mark.agents


@pytest.fixture(scope="module")
def standin():
    with StandIn() as server:
        yield server


@pytest.fixture(scope="module")
def agents(standin):
    """A system whose PATH has the real CLIs and whose environment points them at the stand-in."""
    agent_clis.install()
    url = standin.url
    system = System(env={
        "PATH": os.path.dirname(agent_clis.cli_path("claude")) + os.pathsep + os.environ.get("PATH", os.defpath),
        "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-ant-standin",
        "OPENAI_BASE_URL": url + "/v1", "OPENAI_API_KEY": "sk-standin",
        "GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "standin-key"}).start()
    yield system
    system.stop()


def run_agent(system, standin, runtime, steps, task="make the proof"):
    standin.script = Script(steps)
    record = system.run(task, runtime=runtime, timeout=120)
    return record, session_events(system, record["sessionId"])


def session_events(system, sid):
    events, since = [], 0
    while True:
        status, body, _ = system.http("GET", "/v1/sessions/%s/events?since=%d" % (sid, since))
        assert status == 200, body
        if not body["events"]:
            return events
        events += body["events"]
        since = body["nextSeq"]


def of_type(events, kind):
    return [e for e in events if e["type"] == kind]


@pytest.mark.parametrize("runtime, tool", [("claude-code", "Bash"), ("codex", "shell"),
                                           ("gemini-cli", "run_shell_command")])
def test_a_one_shot_agent_runs_a_tool_and_its_events_and_usage_are_recorded(agents, standin, runtime, tool):
    record, events = run_agent(agents, standin, runtime,
                               [Step.shell("echo from-the-tool > proof.txt"), Step.text("all done")])
    assert record["status"] == "completed", (record, agents.log(record["sessionId"])[-3000:])
    with open(os.path.join(record["sessionDir"], "proof.txt")) as f:
        assert f.read() == "from-the-tool\n"
    calls = of_type(events, "tool_call")
    assert calls and calls[0]["tool"] == tool and "echo from-the-tool" in calls[0]["input"]
    results = of_type(events, "tool_result")
    assert results and results[0]["ok"] and results[0]["callId"] == calls[0]["callId"]
    assert any("all done" in e["text"] for e in of_type(events, "message"))
    assert of_type(events, "result")[-1]["ok"]
    shown = agents.http("GET", "/v1/sessions/" + record["sessionId"])[1]
    assert shown["agentState"] == "done" and shown["agentSessionId"]
    assert shown["usage"]["inputTokens"] > 0 and shown["usage"]["outputTokens"] > 0
    if runtime == "claude-code":
        assert shown["usage"]["costUsd"] > 0
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_a_provider_error_fails_the_session_and_says_so_in_its_events(agents, standin):
    record, events = run_agent(agents, standin, "claude-code", [Step.error(400)])
    assert record["status"] == "failed" and record["cause"] == "exit"
    assert of_type(events, "result")[-1]["ok"] is False


def test_runtimes_lists_the_real_clis_with_their_versions_and_capabilities(agents):
    status, body, _ = agents.http("GET", "/v1/runtimes")
    assert status == 200
    runtimes = {r["runtime"]: r for r in body["runtimes"]}
    for runtime, program in (("claude-code", "claude"), ("codex", "codex"), ("gemini-cli", "gemini")):
        package, version = agent_clis.PACKAGES[program]
        assert runtimes[runtime]["installed"] and runtimes[runtime]["version"] == version
        assert runtimes[runtime]["supports"]["events"] and runtimes[runtime]["supports"]["usage"]
    assert runtimes["claude-code"]["supports"]["cost"] and not runtimes["codex"]["supports"]["cost"]
    assert runtimes["shell"]["installed"] and not runtimes["shell"]["supports"]["events"]


def test_a_session_s_events_are_a_404_for_an_unknown_session(agents):
    status, body, _ = agents.http("GET", "/v1/sessions/0b5f2c1e-8d4a-4c3b-9e6f-2a1b3c4d5e6f/events")
    assert status == 404 and body["error"] == "not_found"


def test_a_shell_session_has_no_agent_fields(agents):
    record = agents.run("echo '{\"type\": \"result\", \"is_error\": false}'")
    shown = agents.http("GET", "/v1/sessions/" + record["sessionId"])[1]
    assert shown["agentState"] is None and shown["usage"] is None
    assert not [e for e in session_events(agents, record["sessionId"]) if e["type"] not in ("created", "state")]



def wait_agent(system, sid, predicate, message):
    def check():
        record = system.rpc().sessions.getSession(sid)
        return predicate(record) and record
    return wait_for(check, timeout=90, message=message)


def results_of(system, sid):
    return of_type(session_events(system, sid), "result")


def test_an_interactive_session_takes_three_messages_as_three_turns_and_waits_between(agents, standin):
    standin.script = Script([Step.text("one"), Step.text("two"), Step.text("three")])
    sid = agents.spawn("first", runtime="claude-code", interactive=True)["sessionId"]
    for turn, text in enumerate(["second", "third", None], start=1):
        wait_for(lambda: len(results_of(agents, sid)) == turn, timeout=90, message="turn %d's result" % turn)
        record = wait_agent(agents, sid, lambda r: r.get("agentState") == "waiting_input", "waiting_input")
        assert record["status"] == "running"
        if text:
            status, body, _ = agents.http("POST", "/v1/sessions/%s/messages" % sid, {"text": text})
            assert status == 202, body
    assert len(standin.turns) >= 3
    assert agents.http("POST", "/v1/sessions/%s/close" % sid)[0] == 202
    record = agents.wait_status(sid, FINAL, timeout=60)
    assert record["status"] == "completed", record
    said = [e["text"] for e in of_type(session_events(agents, sid), "message") if e["role"] == "assistant"]
    assert said == ["one", "two", "three"]


def test_an_interrupt_stops_a_slow_turn_and_the_session_lives_on_for_the_next_message(agents, standin):
    standin.script = Script([Step.text("too slow", delay=30), Step.text("after the interrupt")])
    sid = agents.spawn("take your time", runtime="claude-code", interactive=True)["sessionId"]
    wait_for(lambda: standin.turns, timeout=60, message="the slow turn to reach the stand-in")
    assert agents.http("POST", "/v1/sessions/%s/interrupt" % sid)[0] == 202
    wait_for(lambda: results_of(agents, sid), timeout=30, message="the interrupted turn's result")
    assert results_of(agents, sid)[0]["ok"] is False
    assert agents.rpc().sessions.getSession(sid)["status"] == "running"
    assert agents.http("POST", "/v1/sessions/%s/messages" % sid, {"text": "go on"})[0] == 202
    wait_for(lambda: len(results_of(agents, sid)) == 2, timeout=60, message="the next turn's result")
    assert results_of(agents, sid)[1]["ok"]
    agents.http("POST", "/v1/sessions/%s/close" % sid)
    assert agents.wait_status(sid, FINAL, timeout=60)["status"] == "completed"


@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_approvals_ask_holds_the_real_claude_s_tool_until_a_decision(agents, standin, decision):
    standin.script = Script([Step.shell("echo approved > proof.txt"), Step.text("finished")])
    record = agents.spawn("make the proof", runtime="claude-code", approvals="ask")
    sid = record["sessionId"]
    wait_agent(agents, sid, lambda r: r.get("agentState") == "waiting_approval", "waiting_approval")
    pending = agents.http("GET", "/v1/sessions/%s/approvals" % sid)[1]["approvals"]
    assert len(pending) == 1 and pending[0]["tool"] == "Bash" and "echo approved" in pending[0]["input"]
    assert not os.path.exists(os.path.join(record["sessionDir"], "proof.txt"))
    status, body, _ = agents.http("POST", "/v1/sessions/%s/approvals/%s" % (sid, pending[0]["requestId"]),
                                  {"decision": decision, "message": "no, thanks"})
    assert status == 200, body
    final = agents.wait_status(sid, FINAL, timeout=90)
    assert final["status"] == "completed", (final, agents.log(sid)[-2000:])
    assert os.path.exists(os.path.join(record["sessionDir"], "proof.txt")) == (decision == "allow")
    results = of_type(session_events(agents, sid), "tool_result")
    assert results and results[0]["ok"] == (decision == "allow")


def test_a_provider_that_stops_answering_ends_the_real_claude_stalled(agents, standin):
    standin.script = Script([Step.hang()])
    started = agents.spawn("wait for me", runtime="claude-code", stallSeconds=3)["sessionId"]
    record = agents.wait_status(started, FINAL, timeout=60)
    assert (record["status"], record["cause"]) == ("failed", "stalled"), record


def test_a_budget_below_one_turn_s_cost_stops_the_real_claude_before_its_next_turn_runs_a_tool(agents, standin):
    standin.script = Script([Step.text("first turn"), Step.shell("echo too-late > late.txt", delay=5),
                             Step.text("x")])
    record = agents.spawn("first", runtime="claude-code", interactive=True, budget={"maxCostUsd": 0.000001})
    agents.wait_status(record["sessionId"], {"running"})
    agents.http("POST", "/v1/sessions/%s/messages" % record["sessionId"], {"text": "now run the tool"})
    final = agents.wait_status(record["sessionId"], FINAL, timeout=90)
    assert (final["status"], final["cause"]) == ("failed", "budget"), final
    assert final["usage"]["costUsd"] > 0.000001
    assert not os.path.exists(os.path.join(record["sessionDir"], "late.txt"))


@pytest.mark.parametrize("runtime", ["claude-code", "codex"])
def test_a_resumed_real_agent_continues_its_conversation_in_a_copy_of_its_directory(agents, standin, runtime):
    first, _ = run_agent(agents, standin, runtime, [Step.shell("echo kept > notes.txt"), Step.text("noted")],
                         task="remember the word pelican")
    assert first["status"] == "completed" and first["agentSessionId"], agents.log(first["sessionId"])[-3000:]
    standin.script = Script([Step.shell("cat notes.txt > seen.txt"), Step.text("it was pelican")])
    before = len(standin.requests)
    status, answer, _ = agents.http("POST", "/v1/sessions", {"task": "which word was it?",
                                                             "resumeFrom": first["sessionId"]})
    assert status == 202, answer
    resumed = agents.wait_status(answer["sessionId"], FINAL, timeout=120)
    assert resumed["status"] == "completed", agents.log(resumed["sessionId"])[-3000:]
    assert (resumed["runtime"], resumed["resumedFrom"]) == (runtime, first["sessionId"])
    turns = [r for r in standin.requests[before:] if r.step is not None]
    assert turns and b"pelican" in turns[0].raw and b"which word was it?" in turns[0].raw  # the old turns went along
    with open(os.path.join(resumed["sessionDir"], "seen.txt")) as f:   # the directory came along
        assert f.read() == "kept\n"
    assert agents.http("GET", "/v1/sessions/" + resumed["sessionId"])[1]["agentSessionId"]


def test_gemini_cannot_resume_and_says_so(agents, standin):
    first, _ = run_agent(agents, standin, "gemini-cli", [Step.text("hello")])
    status, answer, _ = agents.http("POST", "/v1/sessions", {"task": "go on", "resumeFrom": first["sessionId"]})
    assert status == 409 and "runtime gemini-cli cannot resume a session" in answer["message"], answer
