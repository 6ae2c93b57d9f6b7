"""Gemini CLI (`gemini -p ... --output-format stream-json`): init, messages (the assistant's in deltas,
gathered here into one message), tool_use / tool_result, and a result with the run's token stats. Tokens
only: gemini reports no cost. It runs only in a trusted folder (GEMINI_CLI_TRUST_WORKSPACE) and its
settings turn off telemetry, usage statistics and auto-update."""
from .base import Adapter, Capabilities, Reader, cut, summary, usage


class GeminiReader(Reader):
    def __init__(self):
        super().__init__()
        self._said = []   # the assistant's deltas not yet given as a message

    def events(self, obj):
        kind = obj["type"]
        if kind == "message":
            if obj.get("role") == "assistant" and isinstance(obj.get("content"), str):
                self._said.append(obj["content"])
            return []
        out = self.finish()
        if kind == "init":
            self._saw_session(obj.get("session_id"))
            out.append({"type": "agent_state", "state": "working"})
        elif kind == "tool_use":
            out.append({"type": "tool_call", "tool": cut(obj.get("tool_name", ""), 100),
                        "input": summary(obj.get("parameters")), "callId": cut(obj.get("tool_id", ""), 100)})
        elif kind == "tool_result":
            out.append({"type": "tool_result", "callId": cut(obj.get("tool_id", ""), 100),
                        "ok": obj.get("status") == "success", "output": summary(obj.get("output", ""))})
        elif kind == "error":
            out.append({"type": "error", "message": cut(obj.get("message", ""))})
        elif kind == "result":
            stats = obj.get("stats") if isinstance(obj.get("stats"), dict) else {}
            out.append(usage(stats.get("input_tokens"), stats.get("output_tokens"), stats.get("cached")))
            out.append({"type": "result", "ok": obj.get("status") == "success", "text": ""})
        return out

    def finish(self):
        said, self._said = "".join(self._said), []
        return [{"type": "message", "role": "assistant", "text": cut(said)}] if said else []


class GeminiAdapter(Adapter):
    def form_settings(self, env):
        return {"privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False},
                "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
                "security": {"auth": {"selectedType": "gemini-api-key"}}}


ADAPTER = GeminiAdapter(
    runtime="gemini-cli", program="gemini", package="@google/gemini-cli",
    capabilities=Capabilities(events=True, usage=True),
    endpoint_env=("GOOGLE_GEMINI_BASE_URL",), env={"GEMINI_CLI_TRUST_WORKSPACE": "true"},
    settings_form="gemini", approval_modes=("auto", "deny"), reader=GeminiReader)
