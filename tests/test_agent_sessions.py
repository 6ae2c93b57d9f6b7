"""Agent sessions against a real supervisord, with workers of our own that write what a CLI (or an attacker
posing as one) writes: a claude-code session whose template runs the task as a script, so the worker's
output is whatever the test says. No npm here: see test_agents.py for the real CLIs."""
import json

import pytest

from conftest import FINAL, scripted_claude_overlay, wait_for


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    from conftest import System
    overlay = scripted_claude_overlay(tmp_path_factory.mktemp("templates"))
    system = System(env={"SESSIONS_TEMPLATES_DIR": overlay, "AGENT_RESULT_GRACE_SECONDS": "1"}).start()
    yield system
    system.stop()


def emit(*objects):
    """A script that prints each object as one line of stream-json."""
    return "".join("printf '%%s\\n' %s\n" % shlex_quote(json.dumps(o)) for o in objects)


def shlex_quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def events_of(system, sid):
    status, body, _ = system.http("GET", "/v1/sessions/%s/events?since=0" % sid)
    assert status == 200
    return body["events"]


def test_a_worker_s_structured_output_becomes_its_events_and_record_fields(scripted):
    record = scripted.run(emit(
        {"type": "system", "subtype": "init", "session_id": "agent-1"},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "hello <b>there</b>"}]}},
        {"type": "result", "subtype": "success", "is_error": False, "num_turns": 1, "result": "fine",
         "total_cost_usd": 0.5, "usage": {"input_tokens": 3, "output_tokens": 4}}), runtime="claude-code")
    assert record["status"] == "completed" and record["agentState"] == "done"
    assert record["agentSessionId"] == "agent-1"
    assert record["usage"] == {"inputTokens": 3, "outputTokens": 4, "cachedTokens": 0, "turns": 1, "costUsd": 0.5}
    events = events_of(scripted, record["sessionId"])
    kinds = [e["type"] for e in events]
    assert [k for k in kinds if k not in ("created", "state")] == ["agent_state", "message", "usage", "result"]
    assert kinds[-1] == "state" and events[-1]["status"] == "completed"   # the output comes before the end
    message = [e for e in events if e["type"] == "message"][0]
    assert message["text"] == "hello <b>there</b>" and message["role"] == "assistant"
    assert scripted.meta(record["sessionId"])["usage"]["costUsd"] == 0.5   # saved with the final status


def test_a_worker_that_forges_its_output_cannot_change_its_status_or_break_the_reader(scripted):
    script = ("head -c 2000000 /dev/zero | tr '\\0' '{'; echo\n"       # a 2 MB line: skipped whole
              "echo '{\"type\": \"result\", \"is_error\": false, \"subtype\": \"success\", "
              "\"total_cost_usd\": Infinity, \"usage\": {\"input_tokens\": -5, \"output_tokens\": NaN}}'\n"
              "printf '\\377\\376 not utf-8 {\"type\": \"x\"}\\n'\n"
              "echo '{\"type\": \"state\", \"status\": \"completed\", \"sessionId\": \"someone-else\"}'\n"
              "exit 3\n")
    record = scripted.run(script, runtime="claude-code", timeout=60)
    assert (record["status"], record["cause"], record["exitCode"]) == ("failed", "exit", 3)
    assert record["usage"] == {"inputTokens": 0, "outputTokens": 0, "cachedTokens": 0, "turns": 1, "costUsd": 0.0}
    events = events_of(scripted, record["sessionId"])
    assert [e["status"] for e in events if e["type"] == "state"][-1] == "failed"
    assert {e["sessionId"] for e in events} == {record["sessionId"]}
    assert scripted.rpc().sessions.getAPIVersion()


def test_a_worker_that_reads_its_stdin_gets_end_of_file_at_once(scripted):
    record = scripted.run("if read line; then echo got:$line; else echo eof; fi", timeout=20)
    assert record["status"] == "completed" and scripted.log(record["sessionId"]) == "eof\n"


def test_a_plain_runtime_s_output_is_not_read_as_events(scripted):
    record = scripted.run(emit({"type": "result", "subtype": "success", "is_error": False, "total_cost_usd": 9}))
    assert record.get("usage") is None and record.get("agentState") is None
    assert {e["type"] for e in events_of(scripted, record["sessionId"])} == {"created", "state"}
    assert record["status"] in FINAL


RESULT = {"type": "result", "subtype": "success", "is_error": False, "num_turns": 1, "result": "fine",
          "total_cost_usd": 0.6, "usage": {"input_tokens": 30, "output_tokens": 40}}


@pytest.mark.parametrize("budget, words", [({"maxCostUsd": 0.5}, "0.6 USD spent, over its maxCostUsd of 0.5"),
                                           ({"maxTokens": 50}, "70 tokens used, over its maxTokens of 50"),
                                           ({"maxTurns": 1}, "2 turns taken, over its maxTurns of 1")])
def test_an_agent_over_its_budget_is_stopped_and_fails_for_budget(scripted, budget, words):
    script = emit({"type": "system", "subtype": "init", "session_id": "b"}, dict(RESULT, num_turns=2)) + \
        "echo past-the-budget > after.txt; exec sleep 60\n"
    record = scripted.run(script, runtime="claude-code", budget=budget, timeout=30)
    assert (record["status"], record["cause"]) == ("failed", "budget"), record
    assert record["reason"] == "budget: " + words and record["budget"] == budget


def test_an_agent_within_its_budget_is_left_alone(scripted):
    record = scripted.run(emit(RESULT), runtime="claude-code", budget={"maxCostUsd": 1, "maxTokens": 1000})
    assert (record["status"], record["cause"]) == ("completed", "exit")


def test_an_agent_working_without_a_word_past_its_stall_time_fails_stalled(scripted):
    script = emit({"type": "system", "subtype": "init", "session_id": "s"}) + "exec sleep 60\n"
    record = scripted.run(script, runtime="claude-code", stallSeconds=1, timeout=30)
    assert (record["status"], record["cause"]) == ("failed", "stalled"), record
    assert record["reason"].startswith("stalled: no output for") and record["stallSeconds"] == 1


def test_a_stall_time_of_zero_never_stops_a_quiet_agent(scripted):
    script = emit({"type": "system", "subtype": "init", "session_id": "q"}) + "sleep 7\n" + emit(RESULT)
    record = scripted.run(script, runtime="claude-code", stallSeconds=0, timeout=30)
    assert (record["status"], record["stallSeconds"]) == ("completed", 0)


@pytest.mark.parametrize("result_ok, status", [(True, "completed"), (False, "failed")])
def test_a_cli_that_lingers_after_its_result_is_stopped_and_ends_as_its_result_said(scripted, result_ok, status):
    script = emit(dict(RESULT, is_error=not result_ok)) + "exec sleep 60\n"
    record = scripted.run(script, runtime="claude-code", timeout=30)
    assert (record["status"], record["cause"]) == (status, "exit"), record
    assert "did not exit within 1 s of its final result" in record["reason"]


@pytest.mark.parametrize("field, value", [
    ("budget", {"maxCostUsd": -1}), ("budget", {"maxTokens": 1.5}), ("budget", {"other": 1}), ("budget", "x"),
    ("budget", {"maxTurns": True}), ("stallSeconds", -1), ("stallSeconds", "5"), ("stallSeconds", True),
])
def test_bad_guards_are_refused_naming_the_field(scripted, field, value):
    body = {"agent": "a", "provider": "p", "task": "t", "runtime": "claude-code", field: value}
    status, answer, _ = scripted.http("POST", "/v1/sessions", body)
    assert status == 400 and field in answer["message"]


def test_messages_to_a_session_that_is_not_interactive_are_409_naming_why(scripted):
    sid = scripted.spawn("exec sleep 30")["sessionId"]
    for path, body in (("messages", {"text": "hi"}), ("interrupt", None), ("close", None)):
        status, answer, _ = scripted.http("POST", "/v1/sessions/%s/%s" % (sid, path), body)
        assert status == 409 and "not interactive" in answer["message"], answer
    scripted.rpc().sessions.stopSession(sid)


def test_an_interactive_session_on_a_runtime_without_input_is_refused(scripted):
    status, answer, _ = scripted.http("POST", "/v1/sessions", {"agent": "a", "provider": "p", "task": "t",
                                                              "runtime": "codex", "interactive": True})
    assert status == 400 and "'input' capability" in answer["message"]


@pytest.mark.parametrize("path, body", [("messages", body) for body in (
    {}, {"text": ""}, {"text": 5}, {"text": "x", "more": 1}, ["text"])] + [("approvals/req-1", body) for body in (
    {}, {"decision": "maybe"}, {"decision": "allow", "extra": 1}, {"decision": "deny", "message": 5})])
def test_a_bad_message_or_decision_body_is_400(scripted, path, body):
    sid = scripted.spawn("exec sleep 30")["sessionId"]
    status, answer, _ = scripted.http("POST", "/v1/sessions/%s/%s" % (sid, path), body)
    assert status == 400, answer
    scripted.rpc().sessions.stopSession(sid)


def test_an_interactive_scripted_agent_gets_its_task_then_each_message_on_stdin(scripted):
    script = ("while read -r line; do printf '%s\\n' \"$line\" >> got.jsonl; "
              "printf '%s\\n' '{\"type\": \"result\", \"subtype\": \"success\", \"is_error\": false}'; done\n")
    record = scripted.spawn(script, runtime="claude-code", interactive=True, idleTimeoutSeconds=2)
    sid = record["sessionId"]
    assert record["interactive"] is True and record["idleTimeoutSeconds"] == 2
    scripted.wait_status(sid, {"running"})
    assert scripted.http("POST", "/v1/sessions/%s/messages" % sid, {"text": "second <msg>"})[0] == 202
    final = scripted.wait_status(sid, FINAL, timeout=30)   # the idle timeout closes its input: read ends
    assert final["status"] == "completed"
    with open(record["sessionDir"] + "/got.jsonl") as f:
        got = [json.loads(line) for line in f]
    assert [g["message"]["content"] for g in got] == [script, "second <msg>"]


ASKING = ("read -r task\n"
          "printf '%s\\n' '{\"type\": \"control_request\", \"request_id\": \"req-1\", \"request\": {\"subtype\": "
          "\"can_use_tool\", \"tool_name\": \"Bash\", \"input\": {\"command\": \"echo " + "x" * 300 + "\"}}}'\n"
          "read -r answer; printf '%s\\n' \"$answer\" > answer.json\n"
          "printf '%s\\n' '{\"type\": \"result\", \"subtype\": \"success\", \"is_error\": false}'\n"
          "read -r more || echo input-closed > closed.txt\n")


def answer_of(record):
    with open(record["sessionDir"] + "/answer.json") as f:
        return json.loads(f.read())["response"]


@pytest.mark.parametrize("decision, message", [("allow", None), ("deny", "not that one")])
def test_a_permission_request_waits_for_a_decision_and_the_agent_gets_it(scripted, decision, message):
    sid = scripted.spawn(ASKING, runtime="claude-code", approvals="ask")["sessionId"]
    wait_for(lambda: scripted.rpc().sessions.getSession(sid).get("agentState") == "waiting_approval",
             message="waiting_approval")
    status, body, _ = scripted.http("GET", "/v1/sessions/%s/approvals" % sid)
    assert status == 200 and [(r["requestId"], r["tool"]) for r in body["approvals"]] == [("req-1", "Bash")]
    assert len(body["approvals"][0]["input"]) <= 200   # a summary; the agent gets the whole input back
    answer = {"decision": decision} if message is None else {"decision": decision, "message": message}
    assert scripted.http("POST", "/v1/sessions/%s/approvals/req-1" % sid, answer)[0] == 200
    record = scripted.wait_status(sid, FINAL, timeout=30)
    assert record["status"] == "completed", record
    response = answer_of(record)
    assert response["request_id"] == "req-1"
    if decision == "allow":
        assert response["response"] == {"behavior": "allow", "updatedInput": {"command": "echo " + "x" * 300}}
    else:
        assert response["response"] == {"behavior": "deny", "message": "not that one"}
    with open(record["sessionDir"] + "/closed.txt") as f:   # its input closed after the result
        assert f.read() == "input-closed\n"
    decided = [e for e in events_of(scripted, sid) if e["type"] == "approval_decision"]
    assert [(e["requestId"], e["decision"], e["by"]) for e in decided] == [("req-1", decision, "request")]
    assert scripted.http("POST", "/v1/sessions/%s/approvals/req-1" % sid, answer)[0] == 404   # answered already


def test_a_permission_request_left_unanswered_is_denied_at_its_timeout(make_system, tmp_path):
    overlay = scripted_claude_overlay(tmp_path / "templates")
    system = make_system(env={"SESSIONS_TEMPLATES_DIR": overlay, "APPROVAL_TIMEOUT_SECONDS": "1"}).start()
    record = system.run(ASKING, runtime="claude-code", approvals="ask", timeout=30)
    assert answer_of(record)["response"] == {"behavior": "deny", "message": "no decision within 1 s"}
    decided = [e for e in events_of(system, record["sessionId"]) if e["type"] == "approval_decision"]
    assert [(e["decision"], e["by"]) for e in decided] == [("deny", "timeout")]


@pytest.mark.parametrize("runtime, approvals", [("codex", "ask"), ("shell", "deny"), ("claude-code", "sometimes")])
def test_approvals_a_runtime_cannot_honour_are_refused(scripted, runtime, approvals):
    status, answer, _ = scripted.http("POST", "/v1/sessions", {"agent": "a", "provider": "p", "task": "t",
                                                              "runtime": runtime, "approvals": approvals})
    assert status == 400 and "approvals" in answer["message"]


def test_supervisorctl_sessions_events_shows_what_an_agent_did_one_short_line_each(scripted):
    record = scripted.run(emit({"type": "assistant", "message": {"content": [
        {"type": "text", "text": "a long\nmulti-line answer " + "y" * 200}]}}), runtime="claude-code")
    lines = [line for line in scripted.ctl("sessions", "events").stdout.splitlines() if record["sessionId"] in line]
    message = [line for line in lines if line.split()[3] == "message"][0]
    assert "role=assistant text=a long multi-line answer y" in message and message.endswith("…")
    assert len(message) < 250


# Where Claude Code keeps the sessions of the working directory, as the worker computes it.
PROJECT_DIR = '.claude/projects/$(printf %s "$PWD" | tr -c "A-Za-z0-9" "-")'


def agent_session(agent_session_id, then=""):
    """A scripted claude that reports `agent_session_id` as its session, then runs `then`."""
    return emit({"type": "system", "subtype": "init", "session_id": agent_session_id}) + then


def create(system, body):
    """POST /v1/sessions; (status, answer)."""
    status, answer, _ = system.http("POST", "/v1/sessions", body)
    return status, answer


def test_a_resumed_session_continues_the_agent_session_in_a_copy_of_the_ended_one_s_directory(scripted):
    first = scripted.run(agent_session("agent-7", "echo remember > notes.txt; mkdir -p sub %s; "
                                       "echo transcript > %s/agent-7.jsonl; ln -s notes.txt link; mkfifo fifo"
                                       % (PROJECT_DIR, PROJECT_DIR)), runtime="claude-code", name="first")
    assert first["status"] == "completed" and first["agentSessionId"] == "agent-7"
    status, answer = create(scripted, {"task": 'echo "resuming $1"; cat notes.txt; readlink link; '
                                               'test -e fifo || echo no-fifo; cat %s/agent-7.jsonl' % PROJECT_DIR,
                                       "resumeFrom": first["sessionId"]})
    assert status == 202, answer
    second = scripted.wait_status(answer["sessionId"], FINAL)
    log = scripted.log(second["sessionId"])
    assert second["status"] == "completed", log
    assert (second["runtime"], second["agent"], second["provider"]) == ("claude-code", "coder", "gemini")
    assert second["resumedFrom"] == first["sessionId"]
    assert second["sessionDir"] != first["sessionDir"]
    for line in ("resuming agent-7", "remember", "notes.txt", "no-fifo", "transcript"):
        assert line + "\n" in log, log
    # notes.txt, the transcript and the three MCP forms (written afresh after); the FIFO left out
    assert "5 files copied from its directory; 1 left out" in log
    shown = scripted.http("GET", "/v1/sessions/" + second["sessionId"])[1]
    assert shown["resumedFrom"] == first["sessionId"]
    with open("%s/notes.txt" % first["sessionDir"]) as f:   # the ended session is left as it was
        assert f.read() == "remember\n"


def test_a_resumed_session_may_be_resumed_again_from_the_first_agent_session(scripted):
    first = scripted.run(agent_session("agent-a", "echo one >> turns.txt"), runtime="claude-code")
    second = scripted.run("""printf '{"type":"system","subtype":"init","session_id":"%s"}\\n' "$1"; """
                          "echo two >> turns.txt", runtime="claude-code", resumeFrom=first["sessionId"])
    assert second["agentSessionId"] == "agent-a", scripted.log(second["sessionId"])
    third = scripted.run('echo "resuming $1"; cat turns.txt', runtime="claude-code", resumeFrom=second["sessionId"])
    assert "resuming agent-a\none\ntwo\n" in scripted.log(third["sessionId"])


@pytest.fixture(scope="module")
def resumable(scripted):
    """Ended sessions to resume: one with an agent session, one without, one whose worker forged its id."""
    made = {"plain": scripted.run("true", runtime="claude-code"),
            "forged": scripted.run(agent_session("--dangerously-skip-permissions"), runtime="claude-code"),
            "shell": scripted.run("true"),
            "good": scripted.run(agent_session("agent-9"), runtime="claude-code")}
    return {name: record["sessionId"] for name, record in made.items()}


@pytest.mark.parametrize("source, extra, code, words", [
    ("unknown", {}, 400, "there is no session"),
    ("not-an-id", {}, 400, "'resumeFrom' must be the id of an ended session"),
    ("good", {"runtime": "codex"}, 400, "ran runtime claude-code, not codex"),
    ("plain", {}, 409, "has no agent session to continue"),
    ("forged", {}, 409, "is not one that can be passed to its CLI"),
    ("shell", {}, 409, "runtime shell cannot resume a session"),
])
def test_a_session_that_cannot_be_resumed_is_refused_saying_why(scripted, resumable, source, extra, code, words):
    name = {"unknown": "00000000-0000-4000-8000-000000000000", "not-an-id": "../etc"}.get(source) \
        or resumable[source]
    status, answer = create(scripted, dict({"task": "go on", "resumeFrom": name}, **extra))
    assert (status, answer["error"]) == (code, {400: "invalid_request", 409: "conflict"}[code]), answer
    assert words in answer["message"]


def test_a_running_session_cannot_be_resumed_until_it_ends(scripted):
    running = scripted.spawn(agent_session("agent-live", "exec sleep 60"), runtime="claude-code")
    sid = running["sessionId"]
    wait_for(lambda: scripted.rpc().sessions.getSession(sid).get("agentSessionId"), message="its agent session")
    status, answer = create(scripted, {"task": "go on", "resumeFrom": sid})
    assert status == 409 and "is running; a session is resumed once it has ended" in answer["message"], answer
    scripted.rpc().sessions.stopSession(sid)
    scripted.wait_status(sid, FINAL)
    assert create(scripted, {"task": "true", "resumeFrom": sid})[0] == 202   # a stopped one can


def test_a_removed_session_cannot_be_resumed(scripted):
    ended = scripted.run(agent_session("agent-gone"), runtime="claude-code")
    assert scripted.http("DELETE", "/v1/sessions/%s?purge=true" % ended["sessionId"])[0] == 200
    status, answer = create(scripted, {"task": "go on", "resumeFrom": ended["sessionId"]})
    assert status == 400 and "there is no session" in answer["message"]


def test_supervisorctl_sessions_resume_continues_an_ended_agent_with_the_words_as_its_task(scripted):
    first = scripted.run(agent_session("agent-ctl"), runtime="claude-code")
    result = scripted.ctl("sessions", "resume", first["sessionId"], "--", "echo", "resuming", "$1")
    assert result.returncode == 0, result.stdout + result.stderr
    sid = result.stdout.split()[0]
    record = scripted.wait_status(sid, FINAL)
    assert (record["resumedFrom"], record["task"]) == (first["sessionId"], "echo resuming $1")
    assert "resuming agent-ctl\n" in scripted.log(sid)
    refused = scripted.ctl("sessions", "resume", sid, "go", "on")   # it has no agent session of its own
    assert refused.returncode != 0 and "has no agent session to continue" in refused.stdout + refused.stderr


def test_a_directory_larger_than_the_resume_limit_fails_the_resumed_session_saying_so(make_system, tmp_path):
    overlay = scripted_claude_overlay(tmp_path / "templates")
    system = make_system(env={"SESSIONS_TEMPLATES_DIR": overlay, "RESUME_MAX_MB": "1"}).start()
    big = system.run(agent_session("agent-big", "head -c 1100000 /dev/zero > big.bin"), runtime="claude-code")
    resumed = system.run("echo should-not-run", runtime="claude-code", resumeFrom=big["sessionId"])
    log = system.log(resumed["sessionId"])
    assert resumed["status"] == "failed" and "should-not-run" not in log
    assert "RESUME_MAX_MB" in log, log
