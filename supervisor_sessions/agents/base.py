"""What every agent adapter is: how its CLI runs non-interactively, what it can do, and a reader that turns
its structured output (one JSON object a line) into normalized events. Stdlib only: the worker launcher
imports the adapters too.

Normalized events (dicts with a `type`): message {role, text}, tool_call {tool, input, callId},
tool_result {callId, ok, output}, approval_request {requestId, tool, input} (with the whole input under
`_input`, for the plugin alone), usage {inputTokens, outputTokens, cachedTokens, turns, costUsd?} (what a
turn added), agent_state {state}, error {message}, result {ok, text, turns?}. Text is cut to a bounded size:
the log keeps everything as the CLI wrote it.
"""
import json
from dataclasses import dataclass, field

TEXT_MAX = 4000      # characters of a message or result kept in its event
SUMMARY_MAX = 200    # characters of a tool's input or output kept in its event


@dataclass(frozen=True)
class Capabilities:
    """What a runtime supports, as GET /v1/runtimes shows it."""
    events: bool = False      # structured output turned into events
    usage: bool = False       # token counts
    cost: bool = False        # cost in USD reported by the CLI itself
    input: bool = False       # further messages to a running agent
    approvals: bool = False   # asks the controller before a tool runs
    interrupt: bool = False   # stops the current turn, the session lives on
    resume: bool = False      # continues an earlier agent session

    def as_dict(self):
        return dict(vars(self))


def cut(text, limit=TEXT_MAX):
    """`text` (any value: non-strings become compact JSON) at most `limit` characters, marked when cut."""
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def summary(value):
    """A short text of a tool's input or output: its command where it has one."""
    if isinstance(value, dict) and isinstance(value.get("command"), (str, list)):
        value = value["command"] if isinstance(value["command"], str) else " ".join(map(str, value["command"]))
    if isinstance(value, list):  # content blocks: their text
        value = " ".join(block.get("text", "") for block in value if isinstance(block, dict)) or value
    return cut(value, SUMMARY_MAX)


def number(value):
    """`value` when it is a finite number >= 0 (not a bool; JSON as Python reads it may hold Infinity and
    NaN), else 0: what a worker wrote is not trusted."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return value if 0 <= value < 1e18 else 0   # NaN and Infinity fail the comparison or the bound


def usage(input_tokens=0, output_tokens=0, cached_tokens=0, cost_usd=None, turns=1):
    """A usage event: what one turn (or `turns` of the CLI's own counting) added."""
    event = {"type": "usage", "inputTokens": int(number(input_tokens)), "outputTokens": int(number(output_tokens)),
             "cachedTokens": int(number(cached_tokens)), "turns": int(number(turns))}
    if cost_usd is not None:
        event["costUsd"] = float(number(cost_usd))
    return event


class Reader:
    """Turns one session's output lines into events; `session_id` is the CLI's own session id once seen."""

    def __init__(self):
        self.session_id = None

    def read(self, line):
        """The events of one line of output (a str); [] for a line that is not one of the CLI's objects."""
        line = line.strip()
        if not line.startswith("{"):
            return []
        try:
            obj = json.loads(line)
        except ValueError:
            return []
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            return []
        return self.events(obj)

    def events(self, obj):
        return []

    def finish(self):
        """Events still held back when the output ends."""
        return []

    def _saw_session(self, value):
        if self.session_id is None and isinstance(value, str) and value:
            self.session_id = value[:200]


@dataclass(frozen=True)
class Adapter:
    """One agent runtime. `runtime` names its template, `program` its CLI, `package` the npm package."""
    runtime: str
    program: str
    package: str = ""
    capabilities: Capabilities = field(default_factory=Capabilities)
    endpoint_env: tuple = ()        # provider endpoint variables, passed to the worker like its keys
    env: dict = field(default_factory=dict)   # variables every worker of this runtime gets
    settings_form: str = ""         # the MCP form (see mcp.py) that is this runtime's whole config file
    approval_modes: tuple = ("auto",)   # the `approvals` its template can honour (see spec.APPROVAL_MODES)
    reader: type = Reader

    def form_settings(self, env):
        """Settings the runtime's own config files need (merged into its MCP forms), from the worker's env."""
        return {}

    def carried_over(self, old_dir, new_dir):
        """After the directory of an ended session (`old_dir`) was copied into `new_dir` for a resume, move
        what the CLI files by working directory so it finds it in the new one. Runs in the launcher before
        the worker starts."""

    def message(self, text):
        """The bytes that give a running agent its next user message (capabilities.input)."""
        raise NotImplementedError

    def interrupt(self, request_id):
        """The bytes that stop the agent's current turn (capabilities.interrupt)."""
        raise NotImplementedError

    def decision(self, request_id, allow, message, tool_input):
        """The bytes that answer a permission request (capabilities.approvals)."""
        raise NotImplementedError
