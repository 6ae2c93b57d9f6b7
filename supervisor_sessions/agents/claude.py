"""Claude Code (`claude -p ... --output-format stream-json --verbose`): system/init, assistant and user
messages with content blocks, and a result with the run's usage and its cumulative cost. With
`--input-format stream-json` it reads user messages and control requests (interrupt) on stdin and stays
alive between turns. `--resume <session id>` continues a session kept under ~/.claude/projects."""
import json
import os
import re

from ..workerfiles import open_dir
from .base import Adapter, Capabilities, Reader, cut, number, summary, usage


class ClaudeReader(Reader):
    def __init__(self):
        super().__init__()
        self._cost = 0.0   # total_cost_usd is cumulative over the turns of one process

    def events(self, obj):
        kind = obj["type"]
        message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        blocks = [b for b in message.get("content", []) if isinstance(b, dict)] \
            if isinstance(message.get("content"), list) else []
        request = obj.get("request") if isinstance(obj.get("request"), dict) else {}
        if kind == "control_request" and request.get("subtype") == "can_use_tool":
            tool_input = request.get("input") if isinstance(request.get("input"), dict) else {}
            return [{"type": "approval_request", "requestId": cut(obj.get("request_id", ""), 100),
                     "tool": cut(request.get("tool_name", ""), 100), "input": summary(tool_input),
                     "_input": tool_input}]
        if kind == "system" and obj.get("subtype") == "init":
            self._saw_session(obj.get("session_id"))
            return [{"type": "agent_state", "state": "working"}]
        if kind == "assistant":
            out = []
            for block in blocks:
                if block.get("type") == "text" and block.get("text"):
                    out.append({"type": "message", "role": "assistant", "text": cut(block["text"])})
                elif block.get("type") == "tool_use":
                    out.append({"type": "tool_call", "tool": cut(block.get("name", ""), 100),
                                "input": summary(block.get("input")), "callId": cut(block.get("id", ""), 100)})
            return out
        if kind == "user":
            return [{"type": "tool_result", "callId": cut(b.get("tool_use_id", ""), 100),
                     "ok": not b.get("is_error", False), "output": summary(b.get("content", ""))}
                    for b in blocks if b.get("type") == "tool_result"]
        if kind == "result":
            self._saw_session(obj.get("session_id"))
            spent = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
            total = number(obj.get("total_cost_usd"))
            cost, self._cost = max(0.0, total - self._cost), max(total, self._cost)
            ok = not obj.get("is_error", False) and obj.get("subtype") == "success"
            return [usage(spent.get("input_tokens"), spent.get("output_tokens"),
                          spent.get("cache_read_input_tokens"), cost, obj.get("num_turns", 1)),
                    {"type": "result", "ok": ok, "text": cut(obj.get("result") or obj.get("subtype") or ""),
                     "turns": int(number(obj.get("num_turns")))}]
        return []


def project_key(path):
    """The folder under ~/.claude/projects where Claude Code keeps the sessions of working directory `path`."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


class ClaudeAdapter(Adapter):
    def carried_over(self, old_dir, new_dir):
        try:
            projects = open_dir(new_dir, ".claude/projects")
        except OSError:
            return
        try:
            os.rename(project_key(old_dir), project_key(new_dir), src_dir_fd=projects, dst_dir_fd=projects)
        except OSError:
            pass
        finally:
            os.close(projects)

    def message(self, text):
        return _line({"type": "user", "message": {"role": "user", "content": text}})

    def interrupt(self, request_id):
        return _line({"type": "control_request", "request_id": request_id, "request": {"subtype": "interrupt"}})

    def decision(self, request_id, allow, message, tool_input):
        answer = {"behavior": "allow", "updatedInput": tool_input} if allow else \
            {"behavior": "deny", "message": message or "denied by the controller"}
        return _line({"type": "control_response", "response": {"subtype": "success", "request_id": request_id,
                                                               "response": answer}})


def _line(obj):
    return (json.dumps(obj) + "\n").encode("utf-8")


ADAPTER = ClaudeAdapter(
    runtime="claude-code", program="claude", package="@anthropic-ai/claude-code",
    capabilities=Capabilities(events=True, usage=True, cost=True, input=True, interrupt=True, approvals=True,
                              resume=True),
    approval_modes=("auto", "ask", "deny"),
    endpoint_env=("ANTHROPIC_BASE_URL",), env={"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
    reader=ClaudeReader)
