"""The agent side of the plugin, inside supervisord: reading the agents' output (through agentevents),
their guards (budget, stall, the grace after a result), and talking to them on their stdin (messages,
interrupts, answers to permission requests). SessionsNamespaceRPCInterface (rpcinterface.py) inherits it
and keeps the public sessions.* methods (supervisor lists only a namespace class's own methods).
"""
import os
import time
import traceback

from .agentevents import over_budget
from .agents import adapter_for
from .events import LIVE, now_ms
from .faults import NotCapable
from .naming import session_id_of_group


class AgentControl:
    """Needs of the class it is mixed into: _records, _active, _approvals, _idle, _agent_output, settings,
    _log, _emit, _end, _set_deadline, _process, _record."""

    def _on_output(self, event):
        """A chunk of an agent session's output (its program has stdout_events_enabled); must never raise."""
        try:
            sid = session_id_of_group(event.process.config.name)
            if sid is not None:
                self._agent_output.feed(sid, event.data)
        except Exception:
            self._log.critical("sessions: agent output reader failed: %s" % traceback.format_exc())

    def _on_agent_event(self, sid, kind, event, changed):
        """What an agent session's event means for its record and its guards (see AgentOutput). Changed
        fields are kept in memory and saved on the next tick or with the next status change; a budget
        passed stops the session; a permission request waits for a decision; after a result an
        interactive session waits for input, one that asked for approvals has its input closed, and a
        CLI that does not exit gets a short grace."""
        record = self._records[sid]
        if changed:
            record.update(changed)
            self._unsaved.add(sid)
        over = over_budget(record.get("budget"), changed.get("usage"))
        if over:
            self._end(sid, {"status": "failed", "cause": "budget", "reason": "budget: " + over})
        elif kind == "approval_request":
            self._approvals.setdefault(sid, {})[event["requestId"]] = {
                "requestId": event["requestId"], "tool": event["tool"], "input": event["input"], "since": now_ms(),
                "fullInput": event["_input"], "deadline": time.time() + self.settings.approval_timeout_seconds}
        elif kind == "result" and record.get("interactive"):
            self._idle[sid] = time.time() + record["idleTimeoutSeconds"]
        elif kind == "result":
            if record.get("approvals") == "ask":
                self._close_input(sid)   # its input was only for the answers: the run is over
            self._set_deadline(sid, self.settings.result_grace_seconds, {
                "status": "completed" if event["ok"] else "failed", "cause": "exit",
                "reason": "its CLI did not exit within %d s of its final result" % self.settings.result_grace_seconds})

    def _decide(self, sid, request, allow, message, by):
        """Answer a pending permission request of a session's agent; `by` is request or timeout."""
        self._approvals.get(sid, {}).pop(request["requestId"], None)
        adapter = adapter_for(self._records[sid]["runtime"])
        self._write_input(sid, adapter.decision(request["requestId"], allow, message, request["fullInput"]))
        self._emit("approval_decision", sid, requestId=request["requestId"], decision="allow" if allow else "deny",
                   by=by)
        if not self._approvals.get(sid):
            self._records[sid]["agentState"] = "working"
            self._unsaved.add(sid)
            self._emit("agent_state", sid, state="working", set={"agentState": "working"})

    def _watch_agents(self):
        """Stop the agent sessions that have been working without a word for longer than their stallSeconds."""
        for sid, record in list(self._active.items()):
            stall = record.get("stallSeconds")
            quiet = self._agent_output.quiet_for(sid)
            if stall and quiet is not None and quiet > stall and record.get("agentState") == "working":
                self._end(sid, {"status": "failed", "cause": "stalled",
                                "reason": "stalled: no output for %d s while working" % int(quiet)})

    def _write_input(self, sid, data):
        """Give `data` to a live session's worker on its stdin (supervisord's pipe)."""
        process = self._process(sid)
        try:
            if process is None:
                raise OSError("no process")
            process.write(data)
        except OSError:
            raise NotCapable("session %s's input is closed" % sid) from None

    def _close_input(self, sid):
        """Close a live session's stdin, so its agent ends after the current turn. supervisord keeps the
        pipe open for the process's whole life and only marks a dispatcher closed, so the fd is closed here
        and forgotten by the process (nothing closes it twice, nothing polls it)."""
        process = self._process(sid)
        fd = process.pipes.get("stdin") if process is not None and process.pipes else None
        if fd is None:
            return
        dispatcher = process.dispatchers.pop(fd, None)
        if dispatcher is not None:
            dispatcher.close()
        process.pipes["stdin"] = None
        os.close(fd)

    def _interactive(self, sid):
        """The record of a live interactive session, else a fault that says what it is."""
        record = self._record(sid)
        if not record.get("interactive"):
            raise NotCapable("session %s is not interactive (create it with interactive: true, on a runtime "
                             "that supports input)" % sid)
        if record["status"] not in LIVE:
            raise NotCapable("session %s is %s: it takes no messages" % (sid, record["status"]))
        return record

    def _enforce_agent_deadlines(self, now):
        """Close the input of interactive sessions idle past their time; deny the permission requests left
        unanswered past APPROVAL_TIMEOUT_SECONDS."""
        for sid in [sid for sid, when in self._idle.items() if when <= now]:
            del self._idle[sid]
            self._close_input(sid)
        for sid, pending in list(self._approvals.items()):
            for request in [r for r in pending.values() if r["deadline"] <= now]:
                try:
                    self._decide(sid, request, False, "no decision within %d s" % self.settings.approval_timeout_seconds,
                                 "timeout")
                except NotCapable:
                    pending.pop(request["requestId"], None)
