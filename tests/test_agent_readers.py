"""The adapters' readers alone: lines as the CLIs write them (shapes from agent-protocols.md and the real
builds) and lines a hostile worker writes, turned into normalized events; the line splitter of agentevents."""
import json

import pytest

from supervisor_sessions.agentevents import LINE_MAX, AgentOutput, AgentStream
from supervisor_sessions.agents import ADAPTERS, adapter_for
from supervisor_sessions.agents.base import SUMMARY_MAX, TEXT_MAX


def read(runtime, *objects):
    reader = ADAPTERS[runtime].reader()
    events = []
    for obj in objects:
        events += reader.read(obj if isinstance(obj, str) else json.dumps(obj))
    return events + reader.finish(), reader


CLAUDE_RUN = [
    {"type": "system", "subtype": "init", "session_id": "first-id", "tools": ["Bash"]},
    {"type": "assistant", "message": {"content": [
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "echo hi > a.txt"}}]}},
    {"type": "user", "message": {"content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "done", "is_error": False}]}},
    {"type": "assistant", "message": {"content": [{"type": "text", "text": "finished"}]}},
    {"type": "result", "subtype": "success", "is_error": False, "num_turns": 2, "result": "finished",
     "total_cost_usd": 0.25, "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 5},
     "session_id": "first-id"},
]


def test_a_claude_run_becomes_state_tool_call_result_message_usage_and_result():
    events, reader = read("claude-code", *CLAUDE_RUN)
    assert [e["type"] for e in events] == ["agent_state", "tool_call", "tool_result", "message", "usage", "result"]
    assert events[1] == {"type": "tool_call", "tool": "Bash", "input": "echo hi > a.txt", "callId": "toolu_1"}
    assert events[2] == {"type": "tool_result", "callId": "toolu_1", "ok": True, "output": "done"}
    assert events[4] == {"type": "usage", "inputTokens": 100, "outputTokens": 20, "cachedTokens": 5, "turns": 2,
                         "costUsd": 0.25}
    assert events[5] == {"type": "result", "ok": True, "text": "finished", "turns": 2}
    assert reader.session_id == "first-id"


def test_claude_s_cumulative_cost_becomes_what_each_turn_added_and_the_first_session_id_stays():
    second = dict(CLAUDE_RUN[-1], total_cost_usd=0.40, session_id="later-id")
    events, reader = read("claude-code", CLAUDE_RUN[-1], {"type": "system", "subtype": "init", "session_id": "x"},
                          second)
    costs = [e["costUsd"] for e in events if e["type"] == "usage"]
    assert costs == [0.25, pytest.approx(0.15)]
    assert reader.session_id == "first-id"


def test_claude_s_error_result_is_not_ok_even_though_its_subtype_says_success():
    events, _ = read("claude-code", {"type": "result", "subtype": "success", "is_error": True,
                                     "result": "API Error: 400", "total_cost_usd": 0})
    assert events[-1]["ok"] is False and "400" in events[-1]["text"]


def test_a_codex_run_becomes_events_with_its_turn_usage():
    events, reader = read("codex",
                          {"type": "thread.started", "thread_id": "thread-1"}, {"type": "turn.started"},
                          {"type": "item.started", "item": {"id": "item_0", "type": "command_execution",
                                                            "command": "bash -lc 'echo hi'", "status": "in_progress"}},
                          {"type": "item.completed", "item": {"id": "item_0", "type": "command_execution",
                                                              "aggregated_output": "hi\n", "exit_code": 0}},
                          {"type": "item.completed", "item": {"id": "item_1", "type": "agent_message", "text": "ok"}},
                          {"type": "turn.completed", "usage": {"input_tokens": 10, "cached_input_tokens": 3,
                                                               "output_tokens": 4}})
    assert [e["type"] for e in events] == ["agent_state", "tool_call", "tool_result", "message", "usage", "result"]
    assert events[1]["tool"] == "shell" and events[2] == {"type": "tool_result", "callId": "item_0", "ok": True,
                                                          "output": "hi\n"}
    assert events[4] == {"type": "usage", "inputTokens": 10, "outputTokens": 4, "cachedTokens": 3, "turns": 1}
    assert reader.session_id == "thread-1"


def test_a_failed_codex_turn_is_an_error_and_a_result_that_is_not_ok():
    events, _ = read("codex", {"type": "turn.failed", "error": {"message": "unexpected status 400"}})
    assert events == [{"type": "error", "message": "unexpected status 400"},
                      {"type": "result", "ok": False, "text": "unexpected status 400"}]


def test_gemini_s_deltas_are_gathered_into_one_message_before_the_next_event():
    events, _ = read("gemini-cli", {"type": "init", "session_id": "g-1", "model": "auto"},
                     {"type": "message", "role": "user", "content": "the task"},
                     {"type": "message", "role": "assistant", "content": "Hel", "delta": True},
                     {"type": "message", "role": "assistant", "content": "lo", "delta": True},
                     {"type": "tool_use", "tool_name": "run_shell_command", "tool_id": "t1",
                      "parameters": {"command": "ls"}},
                     {"type": "tool_result", "tool_id": "t1", "status": "error", "output": "no"},
                     {"type": "message", "role": "assistant", "content": "bye", "delta": True},
                     {"type": "result", "status": "success", "stats": {"input_tokens": 7, "output_tokens": 2}})
    assert [(e["type"], e.get("text")) for e in events] == [
        ("agent_state", None), ("message", "Hello"), ("tool_call", None), ("tool_result", None),
        ("message", "bye"), ("usage", None), ("result", "")]
    assert events[3]["ok"] is False and events[5]["inputTokens"] == 7


@pytest.mark.parametrize("runtime", ["claude-code", "codex", "gemini-cli"])
@pytest.mark.parametrize("line", [
    "plain text", "{not json", "[1, 2]", "null", '{"no": "type"}', '{"type": 7}', "{" + "x" * 100,
    '{"type": "result", "usage": "lots", "total_cost_usd": -5, "num_turns": true, "stats": [1]}',
    '{"type": "assistant", "message": {"content": "not a list"}}',
    '{"type": "item.completed", "item": ["not", "a", "dict"]}',
    '{"type": "tool_use", "parameters": null, "tool_name": {"a": 1}}',
    '{"type": "result", "total_cost_usd": Infinity, "usage": {"input_tokens": NaN, "output_tokens": 1e999}}',
    '{"type": "turn.completed", "usage": {"input_tokens": -Infinity, "output_tokens": 1e300}}',
])
def test_what_a_hostile_worker_writes_gives_no_exception_and_no_number_below_zero(runtime, line):
    events, _ = read(runtime, line)
    for event in events:
        for key in ("inputTokens", "outputTokens", "cachedTokens", "costUsd", "turns"):
            assert event.get(key, 0) >= 0


def test_long_texts_are_cut_in_events():
    events, _ = read("claude-code", {"type": "assistant", "message": {"content": [
        {"type": "text", "text": "y" * (TEXT_MAX * 3)},
        {"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": "z" * (SUMMARY_MAX * 3)}}]}})
    assert len(events[0]["text"]) == TEXT_MAX and events[0]["text"].endswith("…")
    assert len(events[1]["input"]) == SUMMARY_MAX


def test_lines_are_cut_from_chunks_and_a_line_over_the_limit_is_skipped_whole():
    stream = AgentStream(ADAPTERS["claude-code"], interactive=False, price=None)
    assert list(stream.lines(b'{"a": ')) == []
    assert list(stream.lines(b'1}\n{"b"')) == ['{"a": 1}']
    assert list(stream.lines(b': 2}\n')) == ['{"b": 2}']
    assert list(stream.lines(b"x" * (LINE_MAX + 1))) == []
    assert list(stream.lines(b"still the long line\nnext\n")) == ["next"]
    assert list(stream.lines("é".encode("utf-8")[:1] + b"\n")) == ["\ufffd"]


def test_the_output_of_a_session_sets_the_record_fields_and_emits_events_with_what_they_set():
    emitted, changed = [], []
    output = AgentOutput(lambda kind, sid, **fields: emitted.append((kind, fields)),
                         lambda sid, kind, event, fields: fields and changed.append(fields))
    output.start("s", ADAPTERS["claude-code"])
    output.start("plain", adapter_for("shell"))
    data = "".join(json.dumps(obj) + "\n" for obj in CLAUDE_RUN).encode()
    output.feed("s", data[:37])
    output.feed("s", data[37:])
    output.feed("plain", data)
    output.end("s")
    assert [kind for kind, _ in emitted] == ["agent_state", "tool_call", "tool_result", "message", "usage", "result"]
    assert emitted[0][1]["set"] == {"agentSessionId": "first-id", "agentState": "working"}
    assert emitted[4][1]["set"] == {"usage": {"inputTokens": 100, "outputTokens": 20, "cachedTokens": 5, "turns": 2,
                                              "costUsd": 0.25}}
    assert changed[-1] == {"agentState": "done"}


def test_a_cli_that_reports_tokens_only_gets_its_cost_from_the_price_table():
    emitted = []
    output = AgentOutput(lambda kind, sid, **fields: emitted.append((kind, fields)),
                         lambda sid, kind, event, changed: None, {"codex": (2.0, 10.0)})
    output.start("s", ADAPTERS["codex"])
    output.feed("s", b'{"type": "turn.completed", "usage": {"input_tokens": 1000000, "output_tokens": 500000}}\n')
    usage = [fields for kind, fields in emitted if kind == "usage"][0]
    assert (usage["costUsd"], usage["costEstimated"]) == (7.0, True)
    assert usage["set"]["usage"]["costUsd"] == 7.0


@pytest.mark.parametrize("raw", ["codex", "codex=1", "codex=a/b", "=1/2", "codex=-1/2", "codex=1/2/3"])
def test_a_bad_price_table_is_refused_naming_the_setting(raw):
    from supervisor_sessions.settings import Settings
    with pytest.raises(ValueError, match="AGENT_PRICES"):
        Settings.from_env({"SESSIONS_HOME": "/tmp/x", "AGENT_PRICES": raw})


def test_a_price_table_is_read():
    from supervisor_sessions.settings import Settings
    settings = Settings.from_env({"SESSIONS_HOME": "/tmp/x", "AGENT_PRICES": "codex=1.25/10, gemini-cli=0.3/2.5"})
    assert dict(settings.agent_prices) == {"codex": (1.25, 10.0), "gemini-cli": (0.3, 2.5)}
