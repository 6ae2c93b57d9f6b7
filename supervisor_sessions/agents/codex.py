"""Codex (`codex exec --json`): thread.started, turn.*, item.started/completed (commands, messages, MCP
tool calls), turn.completed with the turn's usage. Tokens only: codex reports no cost.

codex ignores OPENAI_BASE_URL, so where the worker has one it becomes a provider in $CODEX_HOME/config.toml;
the other settings keep it from looking for updates and sending analytics. `codex exec resume <thread id>`
continues a thread whose rollout lies under $CODEX_HOME/sessions."""
import fnmatch
import os

from ..workerfiles import open_dir
from .base import Adapter, Capabilities, Reader, cut, number, summary, usage

PROVIDER = "sessions"


class CodexReader(Reader):
    def events(self, obj):
        kind = obj["type"]
        item = obj.get("item") if isinstance(obj.get("item"), dict) else {}
        item_type, item_id = item.get("type"), cut(item.get("id", ""), 100)
        if kind == "thread.started":
            self._saw_session(obj.get("thread_id"))
            return []
        if kind == "turn.started":
            return [{"type": "agent_state", "state": "working"}]
        if kind == "item.started" and item_type in ("command_execution", "mcp_tool_call"):
            tool = "shell" if item_type == "command_execution" else cut(item.get("tool", "mcp"), 100)
            return [{"type": "tool_call", "tool": tool,
                     "input": summary(item.get("command") or item.get("arguments")), "callId": item_id}]
        if kind == "item.completed":
            if item_type == "agent_message" and item.get("text"):
                return [{"type": "message", "role": "assistant", "text": cut(item["text"])}]
            if item_type == "command_execution":
                return [{"type": "tool_result", "callId": item_id, "ok": item.get("exit_code") == 0,
                         "output": summary(item.get("aggregated_output", ""))}]
            if item_type == "mcp_tool_call":
                return [{"type": "tool_result", "callId": item_id, "ok": item.get("status") == "completed",
                         "output": summary(item.get("result") or item.get("error") or "")}]
            if item_type == "error":
                return [{"type": "error", "message": cut(item.get("message", ""))}]
            return []
        if kind == "turn.completed":
            spent = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
            return [usage(spent.get("input_tokens"), number(spent.get("output_tokens")),
                          spent.get("cached_input_tokens")),
                    {"type": "result", "ok": True, "text": ""}]
        if kind in ("turn.failed", "error"):
            error = obj.get("error") if isinstance(obj.get("error"), dict) else obj
            out = [{"type": "error", "message": cut(error.get("message", ""))}]
            return out + ([{"type": "result", "ok": False, "text": out[0]["message"]}] if kind == "turn.failed" else [])
        return []


def _form_settings(env):
    settings = {"check_for_update_on_startup": False, "analytics": {"enabled": False},
                "features": {"plugins": False}}
    if env.get("OPENAI_BASE_URL"):
        settings["model_provider"] = PROVIDER
        settings["model_providers"] = {PROVIDER: {"name": PROVIDER, "base_url": env["OPENAI_BASE_URL"],
                                                  "env_key": "OPENAI_API_KEY", "wire_api": "responses"}}
    return settings


class CodexAdapter(Adapter):
    def form_settings(self, env):
        return _form_settings(env)

    def carried_over(self, old_dir, new_dir):
        """codex's state database holds the rollouts' absolute paths, in the old directory: without it,
        codex finds the thread by its rollout under sessions/."""
        try:
            codex_home = open_dir(new_dir, ".codex")
        except OSError:
            return
        try:
            for name in fnmatch.filter(os.listdir(codex_home), "state_*.sqlite*"):
                try:
                    os.unlink(name, dir_fd=codex_home)
                except OSError:   # a directory of that name: not codex's, left alone
                    pass
        finally:
            os.close(codex_home)


ADAPTER = CodexAdapter(
    runtime="codex", program="codex", package="@openai/codex",
    capabilities=Capabilities(events=True, usage=True, resume=True),
    endpoint_env=("OPENAI_BASE_URL",), settings_form="codex", approval_modes=("auto", "deny"), reader=CodexReader)
