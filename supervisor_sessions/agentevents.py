"""The output of live agent sessions, read inside supervisord as it is logged, turned into change-feed
events and the record's agent fields (agentState, usage, agentSessionId).

supervisord hands each chunk of a worker's output to the plugin (the program's stdout_events_enabled); the
chunks are cut into lines here and each line is read by the runtime's adapter. What a worker writes is
not trusted: lines are bounded, numbers checked, text cut (see agents/base.py), and nothing it writes can
change a session's status. Usage and cost are the CLI's own report.
"""
import time

LINE_MAX = 1024 * 1024   # a longer line is skipped whole


class AgentStream:
    """One session's reader, the part of a line not complete yet, and what the record shows so far."""

    def __init__(self, adapter, interactive, price):
        self.reader = adapter.reader()
        self.price = price        # (input, output) USD per million tokens, for a CLI that reports no cost
        self.after_result = "waiting_input" if interactive else "done"
        self.pending = b""
        self.skipping = False     # inside a line longer than LINE_MAX
        self.usage = {"inputTokens": 0, "outputTokens": 0, "cachedTokens": 0, "turns": 0, "costUsd": 0.0}
        self.last_output = time.monotonic()

    def lines(self, data):
        """The complete lines that `data` ends."""
        parts = (self.pending + data).split(b"\n")
        self.pending = parts.pop()
        if len(self.pending) > LINE_MAX:
            self.pending, self.skipping = b"", True
        for part in parts:
            if self.skipping:
                self.skipping = False
                continue
            if len(part) <= LINE_MAX:
                yield part.decode("utf-8", "replace")


class AgentOutput:
    """The streams of the live agent sessions. `emit(type, sid, **fields)` puts an event in the feed;
    `on_event(sid, type, event, changed)` hears of each event first (with its private `_` fields) and of the
    record fields it changes (the feed's event carries those as `set`, for readers that keep records)."""

    TYPES = ("message", "tool_call", "tool_result", "usage", "agent_state", "error", "result", "approval_request",
             "approval_decision")

    def __init__(self, emit, on_event, prices=None):
        self._emit, self._on_event = emit, on_event
        self._prices = prices or {}
        self._streams = {}
        self._named = set()       # sessions whose agentSessionId is set (the first one counts: resume needs it)

    def start(self, sid, adapter, interactive=False):
        """Read the output of a session that starts now; an interactive one waits for input after a result."""
        if adapter.capabilities.events:
            self._streams[sid] = AgentStream(adapter, interactive, self._prices.get(adapter.runtime))

    def feed(self, sid, data):
        """A chunk of the session's output."""
        stream = self._streams.get(sid)
        if stream is None:
            return
        stream.last_output = time.monotonic()
        for line in stream.lines(data):
            self._apply(sid, stream, stream.reader.read(line))

    def quiet_for(self, sid):
        """Seconds since the session's worker last wrote anything (None for a session not read here)."""
        stream = self._streams.get(sid)
        return None if stream is None else time.monotonic() - stream.last_output

    def end(self, sid):
        """The session's worker has ended: what its reader held back, and the stream goes."""
        stream = self._streams.pop(sid, None)
        self._named.discard(sid)
        if stream is not None:
            for line in stream.lines(b"\n"):
                self._apply(sid, stream, stream.reader.read(line))
            self._apply(sid, stream, stream.reader.finish())

    def _apply(self, sid, stream, events):
        for event in events:
            kind = event.pop("type")
            changed = {}
            if stream.reader.session_id and sid not in self._named:
                changed["agentSessionId"] = stream.reader.session_id
                self._named.add(sid)
            if kind == "usage" and "costUsd" not in event and stream.price:
                event["costUsd"] = round((event["inputTokens"] * stream.price[0]
                                          + event["outputTokens"] * stream.price[1]) / 1e6, 6)
                event["costEstimated"] = True   # from AGENT_PRICES, not the CLI
            if kind == "usage":
                for key in ("inputTokens", "outputTokens", "cachedTokens", "turns"):
                    stream.usage[key] += event[key]
                stream.usage["costUsd"] = round(stream.usage["costUsd"] + event.get("costUsd", 0.0), 6)
                changed["usage"] = dict(stream.usage)
            elif kind == "agent_state":
                changed["agentState"] = event["state"]
            elif kind == "result":
                changed["agentState"] = stream.after_result
            elif kind == "approval_request":
                changed["agentState"] = "waiting_approval"
            self._on_event(sid, kind, event, changed)
            shown = {k: v for k, v in event.items() if not k.startswith("_")}
            if changed:
                shown["set"] = changed
            self._emit(kind, sid, **shown)


def over_budget(budget, usage):
    """What of `budget` ({maxCostUsd, maxTokens, maxTurns}) the `usage` totals passed, in words ("" when
    nothing or no usage yet)."""
    if not budget or not usage:
        return ""
    spent = (("maxCostUsd", usage["costUsd"], "%.4g USD spent"),
             ("maxTokens", usage["inputTokens"] + usage["outputTokens"], "%d tokens used"),
             ("maxTurns", usage["turns"], "%d turns taken"))
    for key, value, words in spent:
        if key in budget and value > budget[key]:
            return "%s, over its %s of %g" % (words % value, key, budget[key])
    return ""
