"""The `sessions` XML-RPC namespace inside supervisord: `[rpcinterface:sessions]`.

Everything public on SessionsNamespaceRPCInterface is callable over the network; helpers start with `_`.
What it does for agents (their output, guards and input) is in agentcontrol.py, which it inherits.
Every call does bounded work on supervisord's single thread (validate, write a few small files, parse the
rendered config, add a group, fork) and never waits on a child.
"""
import base64
import itertools
import json
import os
import shutil
import socket
import time
import traceback
import xmlrpc.client

from supervisor import events
from supervisor.rpcinterface import SupervisorNamespaceRPCInterface
from supervisor.states import RUNNING_STATES, ProcessStates, SupervisorStates, getProcessStateDescription
from supervisor.xmlrpc import Faults as SupervisorFaults
from supervisor.xmlrpc import RPCError

from . import API_VERSION, backends, groups, procs, resume, services, sessionfiles, workspace
from .agentevents import AgentOutput
from .agentcontrol import AgentControl
from .agents import ADAPTERS, adapter_for
from .agents.base import cut
from .agents.installed import runtime_report
from .confinement import Confinement
from .events import ACTIVE, FINAL, INTERRUPTED, LIVE, STATUSES, STOPPED_BY, now_ms, spawn_failure, state_change, stopped_by
from .faults import InvalidSpec, NoSuchSession, NotCapable, QueueFull, SessionActive, SessionError
from .journal import Journal
from .jsonlog import EventLog
from .logtail import read_log
from .longpoll import Waiters
from .naming import group_name, is_session_id, new_session_id, session_id_of_group
from .render import Renderer
from .rpcerrors import as_fault, guarded
from .settings import Settings
from .spec import TASK_MAX_BYTES, check_label, parse_spec
from .store import SessionStore, atomic_write

TIME_FIELDS = ("createdAt", "startTime", "endTime")
PRIVATE_FIELDS = frozenset({"exclusive", "clientToken"})
MAX_WAIT_SECONDS = 60           # the longest getEvents may wait for an event
WAIT_RECHECK_SECONDS = 0.2      # how often (at most) a waiting getEvents looks at the clock
IDEMPOTENCY_MS = 24 * 3600 * 1000  # how long a clientToken names the session it made
MAX_EVENTS_PER_CALL = 1000
_CHUNK_BASE64_MAX = 4 * (sessionfiles.CHUNK_MAX // 3 + 1)
TIMED_OUT = {"status": "failed", "cause": "timeout", "reason": "timeout"}
_ENDED_STATES = (ProcessStates.EXITED, ProcessStates.STOPPED, ProcessStates.FATAL)


def _labels_query(query):
    """The labels a query asks for ({} for none), checked; every one must match (AND)."""
    labels = query.get("labels", {})
    if not isinstance(labels, dict):
        raise InvalidSpec("labels must be a struct of name: value strings")
    for key, value in labels.items():
        check_label(key, value)
    return labels


def _matches(record, labels):
    have = record.get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


def _list_query(query):
    """(newest_first, offset, limit, predicate) of a listSessions query, checked; the predicate says
    whether a record is wanted, or is None when all are."""
    query = {} if query is None else query
    if not isinstance(query, dict):
        raise InvalidSpec("the query must be a struct")
    unknown = sorted(set(query) - {"status", "newestFirst", "offset", "limit", "labels", "endedBefore", "afterId"})
    if unknown:
        raise InvalidSpec("unknown query field(s) %s" % ", ".join(map(str, unknown))[:200])
    status = query.get("status", "")
    if status and status not in STATUSES:
        raise InvalidSpec("status must be one of %s" % ", ".join(sorted(STATUSES)))
    numbers = [query.get(k, 0) for k in ("offset", "limit")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        raise InvalidSpec("offset and limit must be integers >= 0")
    ended_before = query.get("endedBefore")
    if ended_before is not None and (not isinstance(ended_before, (int, float)) or isinstance(ended_before, bool)):
        raise InvalidSpec("endedBefore must be a time in ms since the epoch")
    labels = _labels_query(query)
    tests = []
    if status:
        tests.append(lambda r: r["status"] == status)
    if labels:
        tests.append(lambda r: _matches(r, labels))
    if ended_before is not None:
        tests.append(lambda r: r["status"] in FINAL and (r.get("endTime") or r.get("createdAt", 0)) < ended_before)
    wanted = (lambda r: all(test(r) for test in tests)) if tests else None
    after = query.get("afterId")
    if after is not None:
        _session_id(after)
    return bool(query.get("newestFirst", False)), numbers[0], numbers[1], wanted, after


def _check_ints(**values):
    """InvalidSpec unless every value is an integer (not a bool)."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidSpec("%s must be an integer" % name)


def _whole(value, name):
    """`value` (an int, or a double with no fraction) as an int >= 0; InvalidSpec else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0 \
            or value >= 2 ** 53 or value != int(value):
        raise InvalidSpec("%s must be a whole number >= 0" % name)
    return int(value)


def _session_id(value):
    if not is_session_id(value):
        raise NoSuchSession("no session %r: a session id is a UUID like "
                            "'0b5f2c1e-8d4a-4c3b-9e6f-2a1b3c4d5e6f'" % (str(value)[:80],))
    return value


def _wire(record):
    """A record as XML-RPC can carry it: times in ms exceed its 32-bit int, so they travel as doubles."""
    wire = dict(record)
    for key in TIME_FIELDS:
        if wire.get(key) is not None:
            wire[key] = float(wire[key])
    return wire


def _wire_event(event):
    """An event as XML-RPC can carry it (its times, and those of the record a `created` event holds)."""
    wire = _wire(event)
    wire["time"] = float(event["time"])
    if "session" in event:
        wire["session"] = _wire(event["session"])
    return wire


def _public(record):
    """A record without what only the plugin uses (the exclusive resources it holds, its client token)."""
    return {k: v for k, v in record.items() if k not in PRIVATE_FIELDS}


class SessionsNamespaceRPCInterface(AgentControl):
    """Creates, stops, lists and removes worker sessions, one supervisord program group each."""

    def __init__(self, supervisord, settings, renderer=None, event_log=None, journal=None):
        self.supervisord = supervisord
        self.settings = settings
        self.store = SessionStore(settings)
        self.renderer = renderer or Renderer(settings.templates_overlay)
        self._supervisor = SupervisorNamespaceRPCInterface(supervisord)
        self._log = supervisord.options.logger
        self._events = event_log or EventLog(os.path.join(settings.logs_dir, "sessions-events.log"))
        self.journal = journal or Journal(os.path.join(settings.state_dir, "events.jsonl"), settings.journal_retain)
        self._records = {}        # every session, in creation order
        self._active = {}         # the queued and live ones, in creation order: what admission looks at
        self._stop_snapshots = {}
        self._deadlines = {}      # session id -> (time.time() by which its worker must have ended, how it ends then)
        self._ending = {}         # session id -> the status, cause and reason of a session we are stopping
        self._idle = {}           # interactive session id -> time.time() at which its input is closed
        self._stopped_by = {}     # session id -> who asked to stop it (request, cleanup)
        self.confinement = None   # limits, sandbox, users and GPUs of workers: set up in _start
        self.workers = backends.for_settings(settings)   # where workers run: this machine or a Ray cluster
        self._tokens = {}         # clientToken -> the session it made
        self._waiters = Waiters(supervisord.options.get_socket_map(), WAIT_RECHECK_SECONDS)
        self._agent_output = AgentOutput(self._emit, self._on_agent_event, dict(settings.agent_prices))
        self._approvals = {}      # session id -> {request id: a permission request its agent waits on}
        self._unsaved = set()     # sessions whose agent fields changed since their meta was saved
        self._workspaces_ready = set()  # live sessions whose launcher said their workspace is ready

    # ---- life cycle inside supervisord -------------------------------------------------------------

    def _start(self):
        """Find out what the sandbox can enforce, load every session from the state directory, settle the
        ones a restart interrupted (killing what is left of them), subscribe to events."""
        self.confinement = Confinement(self.settings, self._log)
        for sid in self.store.purge_trash():
            self._log.warn("sessions: removed the directory of session %s, whose state is gone (a removal or a "
                           "crash cut short)" % sid)
        loaded = self.store.load_all(
            lambda sid, e: self._log.warn("sessions: meta of %s unreadable: %s" % (sid, e)))
        for name in self.supervisord.process_groups:
            sid = session_id_of_group(name)
            if sid is not None and sid not in loaded:
                loaded[sid] = self._recovered_record(sid)
        # Kept in creation order, which listSessions serves without sorting.
        self._records = dict(sorted(loaded.items(), key=lambda item: item[1].get("createdAt", 0)))
        self._active = {sid: r for sid, r in self._records.items() if r["status"] in ACTIVE}
        self._tokens = {r["clientToken"]: sid for sid, r in self._records.items() if r.get("clientToken")}
        for sid, record in self._records.items():
            if record.get("status") in LIVE:
                if record.get("pid") and procs.kill_orphaned_worker(record["pid"], record.get("startTime", 0)):
                    self._log.warn("sessions: killed orphaned worker %s of %s" % (record["pid"], sid))
                self._reclaim(sid)
                self._update(sid, dict(INTERRUPTED, endTime=now_ms()))
            elif record.get("status") in FINAL and group_name(sid) in self.supervisord.process_groups:
                self._detach(sid)
        events.subscribe(events.ProcessStateEvent, self._on_state)
        events.subscribe(events.ProcessLogStdoutEvent, self._on_output)
        events.subscribe(events.ProcessLogStdoutEvent, self._on_workspace_output)
        if not self.workers.local:
            events.subscribe(events.ProcessLogStderrEvent, self._on_placement_output)
        events.subscribe(events.Tick5Event, self._on_tick)
        events.subscribe(events.SupervisorRunningEvent, self._on_supervisor_running)

    def _is_subscribed(self):
        return (events.ProcessStateEvent, self._on_state) in events.callbacks

    def _recovered_record(self, sid):
        """What is known of a session whose group exists but whose meta file cannot be read."""
        try:
            created = int(os.path.getmtime(self.settings.conf_file(group_name(sid))) * 1000)
        except OSError:
            created = 0
        return {"sessionId": sid, "name": "", "agent": "", "task": "", "provider": "", "runtime": "",
                "status": "failed", "reason": "session meta file missing or unreadable",
                "createdAt": created, "port": 0, "group": group_name(sid),
                "sessionDir": self.store.session_dir(sid), "logFile": self.settings.log_file(sid)}

    def _on_state(self, event):
        """Process-state listener; runs inside supervisord's main loop, so it must never raise."""
        try:
            process = event.process
            sid = session_id_of_group(process.config.name)
            if sid is None or sid not in self._records:
                return
            new_state = process.get_state()
            shutting_down = self.supervisord.options.mood < SupervisorStates.RUNNING
            update = state_change(process, new_state, event.expected, shutting_down,
                                  self._stopped_by.get(sid, "request"))
            if update and update["status"] == "running" and self._records[sid].get("workspace") \
                    and sid not in self._workspaces_ready:
                update["status"] = "preparing"
            if update and update["status"] == "running" and not self.workers.local \
                    and not self._records[sid].get("node"):
                update["status"] = "starting"   # until its stub says where it runs (_on_placement_output)
            if update and update["status"] in ("preparing", "running") and self._records[sid].get("timeoutSeconds"):
                self._set_deadline(sid, self._records[sid]["timeoutSeconds"], TIMED_OUT)
            if update and update["status"] in FINAL:
                self._agent_output.end(sid)
                if self._records[sid].get("agentState") not in (None, "done"):
                    update["agentState"] = "done"
                self._deadlines.pop(sid, None)
                self._idle.pop(sid, None)
                self._approvals.pop(sid, None)
                self._stopped_by.pop(sid, None)
                oom = update["status"] == "failed" and self.confinement.oom_reason(sid, self._records[sid])
                self._workspaces_ready.discard(sid)
                if self._records[sid].get("workspace"):
                    update.update(self._workspace_ending(sid, update))
                update.update(self.workers.ending(sid, self._records[sid], update))
                ending = self._ending.pop(sid, None)
                if ending:
                    update.update(ending)
                elif oom:
                    update.update(cause="oom", reason=oom)
            if update:
                self._update(sid, update)
            if new_state in _ENDED_STATES:
                if process.pid:
                    procs.kill_group(process.pid)
                procs.kill_snapshot(self._stop_snapshots.pop(sid, ()))
                self._reclaim(sid)
            if update and update["status"] in FINAL and not shutting_down:
                self._admit(from_event=True)
        except Exception:
            self._log.critical("sessions: state listener failed: %s" % traceback.format_exc())

    def _on_workspace_output(self, event):
        """A launcher's line says its session's workspace is ready: the session runs (see workspace.py). Only
        its setup command (the user's) writes before that line, and only the first one counts."""
        try:
            sid = session_id_of_group(event.process.config.name)
            record = self._records.get(sid)
            if record is None or not record.get("workspace") or sid in self._workspaces_ready:
                return
            data = event.data if isinstance(event.data, bytes) else str(event.data).encode("utf-8", "replace")
            if b"\n" + workspace.READY.encode("ascii") not in b"\n" + data:
                return
            self._workspaces_ready.add(sid)
            state = workspace.load_state(self.settings.session_state_dir(sid)) or {}
            fields = {"workspace": dict(record["workspace"], base=state.get("base"), diskBytes=state.get("diskBytes"))}
            if record["status"] == "preparing":
                fields["status"] = "running"
            self._update(sid, fields)
        except Exception:
            self._log.critical("sessions: workspace output listener failed: %s" % traceback.format_exc())

    def _on_placement_output(self, event):
        """A stub's line on its own stderr, where nothing of the session's own output goes, says where its
        session runs (ray backend): the session runs there."""
        try:
            sid = session_id_of_group(event.process.config.name)
            record = self._records.get(sid)
            if record is None or record.get("node") or record["status"] != "starting":
                return
            data = event.data if isinstance(event.data, bytes) else str(event.data).encode("utf-8", "replace")
            fields = self.workers.placed(sid, data)
            if fields and record.get("pid"):   # supervisord has it running: so does the session now (pid and
                # startTime again: the feed said nothing when its stub started, the status stayed starting)
                self._update(sid, dict(fields, status="running", pid=record["pid"], startTime=record["startTime"]))
                if record.get("timeoutSeconds"):
                    self._set_deadline(sid, record["timeoutSeconds"], TIMED_OUT)
            elif fields:   # placed before supervisord said RUNNING: _on_state makes it running then
                self._update(sid, fields)
        except Exception:
            self._log.critical("sessions: placement output listener failed: %s" % traceback.format_exc())

    def _workspace_ending(self, sid, update):
        """The record fields a session's workspace adds to its ending: why it failed while preparing, or what
        its worker changed (the launcher's state file says)."""
        state = workspace.load_state(self.settings.session_state_dir(sid)) or {}
        if state.get("phase") == "failed":
            return {"cause": state["cause"], "reason": state["reason"]} if update["status"] == "failed" else {}
        if state.get("phase") != "finished":
            return {}
        shown = {key: state[key] for key in ("base", "diskBytes", "exported", "exportError", "changesError",
                                             "patchTruncated") if key in state}
        fields = {"workspace": dict(self._records[sid]["workspace"], **shown)}
        if "changes" in state:
            fields["changes"] = state["changes"]
        return fields

    def _on_supervisor_running(self, event):
        """supervisord's main loop begins: start the sessions that were still queued when it stopped."""
        try:
            self._admit(from_event=True)
        except Exception:
            self._log.critical("sessions: admission failed: %s" % traceback.format_exc())

    def _on_tick(self, event):
        """Every 5 s: stop workers past their deadline (calls also check, so clients that poll see it sooner),
        remove cgroups that were still busy, admit what waited for memory pressure to fall."""
        try:
            self._enforce_deadlines()
            self._watch_agents()
            self.journal.sync()
            for sid in [sid for sid in self._unsaved if sid in self._records]:
                self._save(sid)
            self._unsaved.clear()
            for sid in self.confinement.pending():
                self._reclaim(sid)
            if any(r["status"] == "queued" for r in self._active.values()):
                self._admit(from_event=True)
        except Exception:
            self._log.critical("sessions: tick failed: %s" % traceback.format_exc())

    def _reclaim(self, sid):
        """Kill and remove what is left of an ended session's confinement; True when nothing is left."""
        return self.confinement.reclaim(sid, self._records.get(sid), self.store.session_dir(sid))

    def _set_deadline(self, sid, seconds, ending):
        """Stop the session in `seconds` (unless an earlier deadline holds), to end as `ending` says."""
        when = time.time() + seconds
        if sid not in self._deadlines or when < self._deadlines[sid][0]:
            self._deadlines[sid] = (when, ending)

    def _enforce_deadlines(self):
        now = time.time()
        for sid in [sid for sid, (when, _) in self._deadlines.items() if when <= now]:
            self._end(sid, self._deadlines.pop(sid)[1])
        self._enforce_agent_deadlines(now)

    def _end(self, sid, ending):
        """Stop a live session's worker, the session to end with `ending` (status, cause, reason)."""
        process = self._process(sid)
        if process is not None and process.get_state() in RUNNING_STATES and sid not in self._ending:
            self._log.warn("sessions: stopping %s: %s" % (sid, ending["reason"]))
            self._ending[sid] = ending
            self._stop_process(sid, process)

    def _admissible(self, newcomer=None):
        """Ids of the queued sessions (and of `newcomer`, a record not stored yet) that may start now:
        oldest first, while slots are free and their exclusive resources are not held. A session waiting
        for a resource does not hold back those behind it."""
        live = [r for r in self._active.values() if r["status"] in LIVE]
        slots = self.settings.max_concurrent - len(live)
        room, free_gpus = self.confinement.room(self._active)
        if room is not None:
            slots = min(slots, room)
        if not self.workers.local:
            free_gpus = float("inf")   # the cluster's GPUs are Ray's to count (workers.admissible)
        held = {name for r in live for name in r.get("exclusive", ())}
        waiting = [r for r in self._active.values() if r["status"] == "queued"] + ([newcomer] if newcomer else [])
        waiting = self.workers.admissible(self._active, waiting)
        chosen = []
        for record in waiting:
            if slots <= 0:
                break
            if not held.intersection(record.get("exclusive", ())) and record.get("gpus", 0) <= free_gpus:
                chosen.append(record["sessionId"])
                slots -= 1
                held.update(record.get("exclusive", ()))
                free_gpus -= record.get("gpus", 0)
        return chosen

    def _grant(self, sid):
        """Give a session that starts now its user and its GPUs, in its launch spec; return its record fields."""
        path = self.store.launch_file(sid)
        with open(path, encoding="utf-8") as f:
            launch = json.load(f)
        fields = self.confinement.grant(launch, self._records[sid], self._active, local_gpus=self.workers.local)
        atomic_write(path, json.dumps(launch).encode("utf-8"))
        return fields

    def _admit(self, from_event=False):
        """Start every queued session that may start now."""
        for sid in self._admissible():
            self._launch(sid, from_event)

    def _launch(self, sid, from_event=False):
        """Start a created session's worker. Inside an event callback supervisord is in the middle of
        reaping, so the process is only spawned and the main loop carries it on; from an RPC call the
        stock startProcess also reports a spawn error at once."""
        process = self._process(sid)
        if process is None:  # its config was quarantined or deleted while it waited
            self._update(sid, spawn_failure("its program is no longer in supervisord's config"))
            return
        try:
            grant = self._grant(sid)
        except (OSError, ValueError) as e:
            self._update(sid, spawn_failure("its launch spec cannot be read: %s" % e))
            return
        self._update(sid, dict(grant, status="starting"))
        record = self._records[sid]
        adapter = adapter_for(record["runtime"])
        self._agent_output.start(sid, adapter, record.get("interactive", False))
        try:
            if from_event:
                process.spawn()
            else:
                self._supervisor.startProcess(group_name(sid), False)
        except RPCError as e:
            if self._records[sid]["status"] in LIVE:
                self._update(sid, spawn_failure("could not spawn: %s" % e.text))
        if (record.get("interactive") or record.get("approvals") == "ask") and record["status"] in LIVE:
            try:
                self._write_input(sid, adapter.message(record["task"]))  # the first message is the task
            except NotCapable as e:
                self._log.warn("sessions: %s" % e.message)

    def _emit(self, event_type, sid, **fields):
        """One change of a session: into the journal (the change feed, with the session's labels) and the
        events log."""
        labels = self._records[sid].get("labels")
        if labels:
            fields["labels"] = labels
        self.journal.append(event_type, sid, now_ms(), **fields)
        self._waiters.wake()
        self._events.write("session-" + event_type, sessionId=sid,
                           **{k: v for k, v in fields.items() if k != "session"})

    def _update(self, sid, fields):
        """Change a session's record, save it, and put the change in the feed (every field it sets, so a
        reader of the feed can keep a copy of the record)."""
        record = self._records[sid]
        if fields.get("status", record["status"]) != record["status"]:
            self._emit("state", sid, **fields)
            if fields.get("cause") == "spawn":   # no worker wrote a word: its log says why
                self._say_in_log(sid, fields.get("reason", ""))
        record.update(fields)
        if record["status"] in FINAL:
            record.pop("pid", None)
            self._active.pop(sid, None)
        self._save(sid)
        if record["status"] in FINAL:
            self._detach(sid)

    def _say_in_log(self, sid, text):
        """Add a line of ours to a session's log (a log follower sees why nothing else came)."""
        try:
            fd = os.open(self.settings.log_file(sid), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write("supervisor-sessions: %s\n" % text)
        except OSError as e:
            self._log.warn("sessions: cannot write to the log of %s: %s" % (sid, e))

    def _save(self, sid):
        self._unsaved.discard(sid)
        try:
            self.store.save(self._records[sid])
        except (OSError, SessionError) as e:
            self._log.error("sessions: cannot save the meta of %s: %s" % (sid, e))

    def _detach(self, sid):
        """Take an ended session's group out of supervisord and its config out of the include glob.

        supervisord's main loop and every reply it sends cost time in proportion to its groups, so only
        live sessions keep one; the record stays in the store and the config in the session directory.
        """
        group = group_name(sid)
        groups.uninstall(self.supervisord, group, self.settings.conf_file(group),
                         keep_as=self.store.program_file(sid))

    def _record(self, session_id):
        record = self._records.get(_session_id(session_id))
        if record is None:
            raise NoSuchSession("no session %s" % session_id)
        return record

    def _process(self, sid):
        group = self.supervisord.process_groups.get(group_name(sid))
        return group.processes.get(group_name(sid)) if group else None

    def _free_port(self):
        taken = {r.get("port") for r in self._active.values()}
        for _ in range(32):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in taken:
                return port
        raise RuntimeError("no free TCP port found for the session")

    def _launcher(self, sid):
        return self.workers.command(self.store.launch_file(sid))

    # ---- the sessions.* methods ----------------------------------------------------------------------

    @guarded
    def getAPIVersion(self):
        """Return the version of the sessions API.

        @return string version  the API version, e.g. "1.0"
        """
        return API_VERSION

    @guarded
    def createSession(self, spec):
        """Create a worker session and start it.

        spec holds agent, task and provider (strings), and optionally runtime (default agentic-flow),
        name (a label), env (a struct of strings for the worker's environment, never echoed back),
        timeoutSeconds, limits {memoryMB, cpus, pids}, gpus, labels {name: value}, clientToken, webhook
        (a URL or {url, events}) and, for agent runtimes, budget {maxCostUsd, maxTokens, maxTurns},
        stallSeconds, interactive, idleTimeoutSeconds, approvals and resumeFrom (the id of an ended session
        whose agent this one continues, in a copy of its directory; runtime, agent and provider default to
        its own) (see the README's Agents). The
        task reaches the worker out of band; it never enters a config file or a shell command line. Over
        MAX_CONCURRENT_SESSIONS, or while an exclusive resource, a worker user or the GPUs it needs are
        held, the session waits as queued; past MAX_QUEUED_SESSIONS it is refused (QUEUE_FULL). A spec
        whose clientToken made a session within 24 hours creates nothing: that session's record is
        returned, with replayed: true.

        @param struct spec  {agent, task, provider, runtime?, name?, env?, timeoutSeconds?, limits?, gpus?,
                            labels?, clientToken?, webhook?, budget?, stallSeconds?, interactive?,
                            idleTimeoutSeconds?, approvals?, resumeFrom?}
        @return struct session  the session record (status queued, starting, running or failed)
        """
        if self.supervisord.options.mood < SupervisorStates.RUNNING:
            raise RPCError(SupervisorFaults.SHUTDOWN_STATE, "supervisord is stopping or reloading; try again")
        spec = parse_spec(resume.inherited(spec, self._records), self.renderer.runtimes, self.settings.timeout_max)
        made = self._made_with(spec.client_token)
        if made is not None:
            return dict(_wire(made), replayed=True)
        self.workers.check(spec)
        adapter = adapter_for(spec.runtime)
        if spec.resume_from:
            source = self._records.get(spec.resume_from)
            source_dir = self.store.session_dir(spec.resume_from)
            resume_id = resume.agent_session_to_resume(spec, source, adapter, source_dir)
        limits = self.confinement.limits(spec, local=self.workers.local)
        sid = new_session_id()
        group = group_name(sid)
        session_dir = self.store.session_dir(sid)
        port = self._free_port()
        command = self._launcher(sid)
        if spec.interactive and not adapter.capabilities.input:
            raise InvalidSpec("runtime %s cannot take messages: interactive needs the 'input' capability "
                              "(see GET /v1/runtimes)" % spec.runtime)
        if spec.workspace and spec.resume_from:
            raise InvalidSpec("resumeFrom continues in a copy of the resumed session's directory, its workspace "
                              "included: give no workspace with it")
        if spec.approvals not in adapter.approval_modes:
            raise InvalidSpec("runtime %s cannot honour approvals %r; it can: %s"
                              % (spec.runtime, spec.approvals, ", ".join(adapter.approval_modes)))
        rendered = self.renderer.render(spec.runtime, {
            "agent_events": adapter.capabilities.events, "interactive": spec.interactive,
            "approvals": spec.approvals, "resume_id": resume_id if spec.resume_from else "",
            "workspace": bool(spec.workspace), "remote": not self.workers.local,
            "session_id": sid, "group": group, "session_dir": session_dir,
            "task_file": self.store.task_file(sid), "log_file": self.settings.log_file(sid),
            "agent": spec.agent, "task": spec.task, "provider": spec.provider, "name": spec.name,
            "port": port, "command": command, "log_max_bytes": self.settings.log_max_bytes,
            "stop_wait_secs": self.settings.stop_wait_secs})
        config = groups.parse_group(self.supervisord.options, rendered.ini, group,
                                    self.settings.session_conf_dir, command)
        self._check_queue_room({"sessionId": sid, "status": "queued", "exclusive": list(rendered.exclusive),
                                "gpus": spec.gpus})
        record = {"sessionId": sid, "name": spec.name, "agent": spec.agent, "task": spec.task,
                  "provider": spec.provider, "runtime": spec.runtime, "status": "queued",
                  "createdAt": now_ms(), "port": port, "group": group, "sessionDir": session_dir,
                  "logFile": self.settings.log_file(sid), "exclusive": list(rendered.exclusive),
                  "timeoutSeconds": spec.timeout_seconds or self.settings.timeout_default,
                  "limits": limits, "gpus": spec.gpus, "labels": spec.labels}
        record.update(self.workers.record_part(limits, spec))
        if spec.placement:
            record["placement"] = spec.placement
        if spec.client_token:
            record["clientToken"] = spec.client_token
        if spec.webhook:
            record["webhook"] = spec.webhook
        if spec.resume_from:
            record["resumedFrom"] = spec.resume_from
        if spec.workspace:
            launch_workspace, record["workspace"] = self._workspace_plan(spec.workspace, sid)
        if adapter.capabilities.events:
            record.update(budget=spec.budget, approvals=spec.approvals, stallSeconds=self.settings.stall_seconds
                          if spec.stall_seconds is None else spec.stall_seconds)
        if spec.interactive:
            record.update(interactive=True, idleTimeoutSeconds=spec.idle_timeout_seconds
                          or self.settings.idle_timeout_seconds)
        session_env = {"SESSION_ID": sid, "SESSION_DIR": session_dir, "HOME": session_dir,
                       "SESSION_PORT": str(port), "PROXY_PORT": str(port),
                       "MCP_CONFIG": os.path.join(session_dir, ".mcp.json"), "SESSION_GPUS": str(spec.gpus),
                       "SESSION_MEMORY_MB": str(limits["memoryMB"]), "SESSION_CPUS": "%g" % limits["cpus"],
                       "SESSION_PIDS": str(limits["pids"])}
        worker_path = spec.env.get("PATH") or os.environ.get("PATH") or os.defpath
        session_env.update(adapter.env)
        worker_view = dict({k: os.environ[k] for k in adapter.endpoint_env if k in os.environ}, **spec.env)
        launch = {"argv": rendered.argv, "secrets": list(rendered.secrets) + list(adapter.endpoint_env),
                  "env": spec.env, "sessionEnv": session_env, "mcpSource": self.settings.mcp_config,
                  "mcpForms": list(rendered.mcp_forms), "task": spec.task, "taskFile": self.store.task_file(sid),
                  "formSettings": {adapter.settings_form: adapter.form_settings(worker_view)}
                  if adapter.settings_form else {},
                  "interactive": spec.interactive or spec.approvals == "ask"}   # stdin stays a pipe
        launch.update(self.confinement.launch_spec(limits, spec.gpus, worker_path))
        launch.update(self.workers.launch_part(limits, spec))
        if spec.resume_from:
            launch["resume"] = resume.launch_part(source, source_dir, self._worker_uids(source),
                                                  self.settings.resume_max_mb)
        if spec.workspace:
            launch["workspace"] = launch_workspace
            session_env["WORKSPACE_DIR"] = record["workspace"]["path"]
        self.store.create(sid, launch, record)
        self._records[sid] = self._active[sid] = record
        if spec.client_token:
            self._tokens[spec.client_token] = sid
        self._emit("created", sid, session=_public(record))
        conf_path = self.settings.conf_file(group)
        try:
            groups.install(self.supervisord, config, conf_path, rendered.ini)
        except BaseException:
            groups.uninstall(self.supervisord, group, conf_path)
            self.store.remove(sid)
            del self._records[sid], self._active[sid]
            raise
        self._log.info("sessions: created %s (runtime %s, agent %s)" % (sid, spec.runtime, spec.agent))
        if shutil.which(rendered.argv[0], path=worker_path) is None:
            os.unlink(self.store.launch_file(sid))
            self._update(sid, spawn_failure("runtime %s needs the program %r, which is not installed (not found "
                                            "on PATH)" % (spec.runtime, rendered.argv[0])))
            return _wire(record)
        self._admit()
        if record["status"] == "queued":
            self._log.info("sessions: %s queued" % sid)
        self.journal.sync()  # an acknowledged create is never lost
        return _wire(record)

    def _workspace_plan(self, ws, sid):
        """(the launch spec's workspace, the record's) of a new session; InvalidSpec when its repository may
        not be used or its branch exists there already."""
        repo = ws["repo"]
        if not ws["url"]:
            try:
                repo = workspace.check_source(repo, self.settings.workspace_roots)
            except ValueError as e:
                raise InvalidSpec("workspace.repo: %s" % e) from None
        branch = ws["branch"] or "sessions/" + sid
        if not ws["url"] and os.path.exists(os.path.join(repo, ".git", "refs", "heads", branch)):
            raise InvalidSpec("workspace.branch: %s exists in %s already" % (branch, ws["repo"]))
        launch = dict(ws, repo=repo, branch=branch, stateDir=self.settings.session_state_dir(sid),
                      cacheDir=self.settings.workspace_cache_dir, timeoutSeconds=self.settings.workspace_clone_timeout)
        shown = {"repo": ws["repo"], "ref": ws["ref"], "branch": branch, "commit": ws["commit"],
                 "path": os.path.join(self.store.session_dir(sid), workspace.WORK_DIR)}
        return launch, shown

    def _made_with(self, token):
        """The record of the session that `token` made within IDEMPOTENCY_MS, or None."""
        record = self._records.get(self._tokens.get(token)) if token else None
        if record is None or now_ms() - record["createdAt"] > IDEMPOTENCY_MS:
            return None
        return record

    def _check_queue_room(self, newcomer):
        """Raise QueueFull when `newcomer` would have to wait and MAX_QUEUED_SESSIONS already wait."""
        if newcomer["sessionId"] in self._admissible(newcomer):
            return
        waiting = sum(r["status"] == "queued" for r in self._active.values())
        if waiting >= self.settings.max_queued:
            raise QueueFull("%d sessions may run and %d may wait (MAX_CONCURRENT_SESSIONS, "
                            "MAX_QUEUED_SESSIONS), and both are full; try again when one ends"
                            % (self.settings.max_concurrent, self.settings.max_queued))

    @guarded
    def getSession(self, sessionId):
        """Return one session's record.

        @param string sessionId  the session id
        @return struct session   sessionId, agent, task, provider, runtime, status, ... (absent keys are unknown)
        """
        return _wire(self._record(sessionId))

    @guarded
    def listSessions(self, query=None):
        """Return session records, oldest first; query may filter and page them.

        query (optional) holds status (only sessions in that state), labels (a struct: every one must
        match), endedBefore (only sessions that ended before that time, in ms since the epoch),
        newestFirst (boolean), afterId (only the sessions after that one, in the order asked for: a
        cursor that, unlike offset, no removal shifts; NO_SUCH_SESSION once that session is gone),
        offset and limit (integers; limit 0 means all).

        @param struct query     {status?, labels?, endedBefore?, newestFirst?, afterId?, offset?, limit?}
        @return array sessions  an array of session records
        """
        newest_first, offset, limit, wanted, after = _list_query(query)
        records = self._records.values()
        if newest_first:
            records = reversed(records)
        if after is not None:
            self._record(after)
            records = itertools.dropwhile(lambda r: r["sessionId"] != after, records)
            next(records)
        if wanted:
            records = filter(wanted, records)
        stop = offset + limit if limit else None
        return [_wire(r) for r in itertools.islice(records, offset, stop)]

    @guarded
    def countSessions(self, query=None):
        """Return how many sessions are in each state; query may hold labels (every one must match).

        @param struct query    {labels?} (optional)
        @return struct counts  {status: number} for every status, plus total
        """
        query = {} if query is None else query
        if not isinstance(query, dict) or set(query) - {"labels"}:
            raise InvalidSpec("the query must be a struct with labels only")
        labels = _labels_query(query)
        counts = dict.fromkeys(sorted(STATUSES), 0)
        total = 0
        for record in self._records.values():
            if not labels or _matches(record, labels):
                counts[record["status"]] += 1
                total += 1
        counts["total"] = total
        return counts

    @guarded
    def stopSession(self, sessionId, by="request"):
        """Stop a session's worker and its whole process tree; a session already ended is left as it is.

        The worker's process group gets SIGTERM, then SIGKILL after the grace period; whatever of its
        tree is left when the worker is gone is killed. The session ends stopped, with cause `by`.

        @param string sessionId  the session id
        @param string by         who asks: request (the default) or cleanup
        @return struct session   the record; status becomes stopped once the worker has gone
        """
        record = self._record(sessionId)
        if by not in STOPPED_BY:
            raise InvalidSpec("by must be one of %s" % ", ".join(STOPPED_BY))
        if record["status"] not in ACTIVE:
            return _wire(record)
        process = self._process(sessionId)
        if process is None or process.get_state() not in RUNNING_STATES:
            self._update(sessionId, dict(stopped_by(by), endTime=now_ms()))
            return _wire(record)
        self._stop_process(sessionId, process, by)
        self._log.info("sessions: stopping %s" % sessionId)
        return _wire(record)

    def _stop_process(self, sid, process, by="request"):
        self._stopped_by[sid] = by
        if process.pid:
            self._stop_snapshots[sid] = procs.snapshot_descendants(process.pid)
        self._supervisor.stopProcess(group_name(sid), False)

    @guarded
    def removeSession(self, sessionId):
        """Remove a session that is not running: its program group, config, directory and log.

        @param string sessionId  the session id
        @return boolean result   always true unless a fault is raised
        """
        record = self._record(sessionId)
        if record["status"] in ACTIVE:
            raise SessionActive("session %s is %s; stop it before removing it" % (sessionId, record["status"]))
        group = group_name(sessionId)
        if not self._reclaim(sessionId):
            raise SessionActive("session %s still has processes in its cgroup; try again" % sessionId)
        if not groups.uninstall(self.supervisord, group, self.settings.conf_file(group)):
            raise SessionActive("session %s still has a process running; stop it first" % sessionId)
        self.store.remove(sessionId)
        self._emit("removed", sessionId)
        self._tokens.pop(record.get("clientToken"), None)
        del self._records[sessionId]
        self._stop_snapshots.pop(sessionId, None)
        self._log.info("sessions: removed %s" % sessionId)
        return True

    @guarded
    def listServices(self):
        """Return every program of ours besides sessions: the API, cleanup and the optional services.

        @return array services  [{name, service, enabled, state, reason?}]; state is supervisord's state
                                name, or "disabled", or "unavailable" with the reason
        """
        states = {name: group.processes[name].get_state() for name, group in self.supervisord.process_groups.items()
                  if name in group.processes and session_id_of_group(name) is None}
        return services.report(os.environ, {name: getProcessStateDescription(state)
                                            for name, state in states.items()})

    @guarded
    def tailSessionLog(self, sessionId, offset, length):
        """Read a session's log.

        With offset >= 0, return up to length bytes from offset on (read again from nextOffset to
        follow). With offset < 0, return the last length bytes. overflow is true when output between
        offset and the text was lost because the log was truncated at its size cap. Characters XML
        cannot carry are replaced by U+FFFD.

        @param string sessionId  the session id
        @param int offset        byte offset to read from, or -1 for the end of the log
        @param int length        the most bytes to return (at most 1 MiB)
        @return array result     [string text, int nextOffset, boolean overflow]
        """
        self._record(sessionId)
        _check_ints(offset=offset, length=length)
        if length <= 0:
            raise InvalidSpec("length must be positive")
        return list(read_log(self.settings.log_file(sessionId), offset, length))

    @guarded
    def getSessionFile(self, sessionId, path, offset=0, length=sessionfiles.CHUNK_MAX):
        """Read what stands at a path inside a session's directory, never through a link.

        A directory gives its entries (links, FIFOs and the like shown by type, not followed); a file up to
        length bytes from offset. Only what the session's worker owns is served: a link, a special file or
        a file of another user is an INVALID_SPEC naming why; nothing there is NO_SUCH_PATH.

        @param string sessionId  the session id
        @param string path       relative to the session directory ("" for the directory itself)
        @param double offset     where to start reading a file (an int or a whole double: files pass 2 GiB)
        @param int length        the most bytes to return (at most 1 MiB)
        @return struct found     {type: "dir", entries: [{name, type, size, mtime}], truncated} or
                                 {type: "file", size, mtime, offset, data (base64)}; sizes, offsets and
                                 mtimes (ms) are doubles, as XML-RPC's int stops at 2**31
        """
        record = self._record(sessionId)
        self.workers.check_files(record)
        _check_ints(length=length)
        found = sessionfiles.read(self.store.session_dir(sessionId), path, self._worker_uids(record),
                                  _whole(offset, "offset"), length)
        for item in [found] + found.get("entries", []):
            item.update({key: float(item[key]) for key in ("size", "mtime", "offset") if key in item})
        if found["type"] == "file":
            found["data"] = xmlrpc.client.Binary(found["data"])
        return found

    @guarded
    def putSessionFile(self, sessionId, path, uploadId, offset, data, final):
        """Write one chunk of an upload into a session's directory, never through a link.

        Chunks of one upload (same uploadId) go at their offset into a temp file beside the path (offset 0
        starts it afresh); the final chunk puts it in place of whatever stands at the path. Directories on
        the way are made. What is written belongs to the session's worker user.

        @param string sessionId  the session id
        @param string path       relative to the session directory
        @param string uploadId   1-32 letters and digits naming this upload
        @param double offset     where this chunk goes (an int or a whole double)
        @param string data       the chunk (at most 1 MiB) in base64, as a string: supervisor's parser
                                 turns a base64 value into text, which binary data does not survive
        @param boolean final     true for the last chunk
        @return double size      the bytes written so far
        """
        record = self._record(sessionId)
        self.workers.check_files(record)
        offset = _whole(offset, "offset")
        if not isinstance(uploadId, str) or not uploadId.isalnum() or not 1 <= len(uploadId) <= 32 \
                or not uploadId.isascii():
            raise InvalidSpec("uploadId must be 1-32 letters and digits")
        try:
            chunk = base64.b64decode(data, validate=True) if len(data) <= _CHUNK_BASE64_MAX else None
        except (TypeError, ValueError):
            chunk = None
        if chunk is None or len(chunk) > sessionfiles.CHUNK_MAX:
            raise InvalidSpec("data must be a string of base64 of at most %d bytes" % sessionfiles.CHUNK_MAX)
        if record["status"] == "queued" and self.confinement.isolation.users:
            raise SessionActive("session %s is queued: the user its files belong to is known once it starts"
                                % sessionId)
        return float(sessionfiles.write(self.store.session_dir(sessionId), path, self._worker_user(record),
                                        uploadId, offset, chunk, bool(final)))

    @guarded
    def getSessionDiff(self, sessionId, offset=0, length=sessionfiles.CHUNK_MAX):
        """Read what a session with a workspace changed, recorded when its worker ended.

        The patch (a unified diff with binary changes, against the commit its workspace started from: the
        commits on its branch and what was left uncommitted) in chunks; with offset 0 also each file
        changed. A session without a workspace is NOT_CAPABLE; one still live, SESSION_ACTIVE.

        @param string sessionId  the session id
        @param double offset     where to start reading the patch
        @param int length        the most bytes to return (at most 1 MiB)
        @return struct diff      {size, offset, data (base64), truncated, changes {files, insertions,
                                 deletions, commits}, files [{path, insertions, deletions, binary}] (offset 0)}
        """
        record = self._record(sessionId)
        self.workers.check_files(record)
        _check_ints(length=length)
        offset = _whole(offset, "offset")
        if not record.get("workspace"):
            raise NotCapable("session %s has no workspace: its changes are not recorded" % sessionId)
        if record["status"] not in FINAL:
            raise SessionActive("session %s is %s: its changes are recorded when it ends" % (sessionId, record["status"]))
        state_dir = self.settings.session_state_dir(sessionId)
        state = workspace.load_state(state_dir) or {}
        if "changes" not in state:
            raise NotCapable("session %s recorded no changes: %s" % (sessionId, state.get(
                "changesError") or state.get("reason") or "its worker was killed before they could be"))
        with open(os.path.join(state_dir, workspace.PATCH_FILE), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(offset)
            data = f.read(max(0, min(length, sessionfiles.CHUNK_MAX)))
        diff = {"size": float(size), "offset": float(offset), "data": xmlrpc.client.Binary(data),
                "truncated": bool(state.get("patchTruncated")), "changes": state["changes"]}
        if offset == 0:
            diff["files"] = state.get("files", [])
        return diff

    def _worker_uids(self, record):
        """The uids whose files in a session's directory are its worker's."""
        return {record["uid"]} if record.get("uid") is not None else {os.geteuid()}

    def _worker_user(self, record):
        """(uid, gid) of a session's worker user, or None where workers run as we do."""
        if record.get("uid") is None:
            return None
        return record["uid"], dict(self.confinement.isolation.users).get(record["uid"], record["uid"])

    @guarded
    def getEvents(self, sinceSeq, limit, waitSeconds=0):
        """Return the change feed from seq sinceSeq on: every creation (with the whole record), status
        change (with every field it set) and removal of a session, oldest first, each with its seq
        (1, 2, ...: never repeated, also across restarts).

        Pass nextSeq back to continue. With waitSeconds > 0 and no event yet, the answer waits until one
        comes or that time has passed (supervisord goes on meanwhile); it may come back empty sooner
        (when the events hold non-ASCII text): ask again. Events older than the journal
        keeps are a fault (EVENTS_GONE) that names the oldest seq still there. Times travel as doubles
        (ms since the epoch).

        @param int sinceSeq     the first seq wanted (0: the oldest kept)
        @param int limit        the most events to return (1 to 1000)
        @param int waitSeconds  how long to wait for an event when there is none (0 to 60; default 0)
        @return array result    [array events, int nextSeq]
        """
        for name, value in (("sinceSeq", sinceSeq), ("limit", limit), ("waitSeconds", waitSeconds)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidSpec("%s must be an integer" % name)
        if not 1 <= limit <= MAX_EVENTS_PER_CALL:
            raise InvalidSpec("limit must be between 1 and %d" % MAX_EVENTS_PER_CALL)
        if not 0 <= waitSeconds <= MAX_WAIT_SECONDS:
            raise InvalidSpec("waitSeconds must be between 0 and %d" % MAX_WAIT_SECONDS)
        answer = self._events_page(sinceSeq, limit)
        if answer[0] or not waitSeconds:
            return answer
        return self._waiters.wait(lambda: self.journal.next_seq > answer[1],
                                  lambda: as_fault(self._waited_page, answer[1], limit),
                                  time.monotonic() + waitSeconds)

    def _waited_page(self, since, limit):
        """The page a waiting getEvents answers. supervisord sends a waited answer with a Content-Length
        in characters, not bytes, which cuts one holding non-ASCII text short: such a page is answered
        empty, at the same seq, and the client's next call gets it at once (unwaited, sent whole)."""
        page = self._events_page(since, limit)
        if page[0] and not xmlrpc.client.dumps((page,), methodresponse=True).isascii():
            return [[], since]
        return page

    def _events_page(self, since, limit):
        events = self.journal.since(since, limit)
        next_seq = events[-1]["seq"] + 1 if events else min(max(since, self.journal.oldest), self.journal.next_seq)
        return [[_wire_event(e) for e in events], next_seq]

    @guarded
    def sendMessage(self, sessionId, text):
        """Give a running interactive session's agent its next message (a turn of its own, queued after
        the current one).

        @param string sessionId  the session id
        @param string text       the message
        @return boolean result   always true unless a fault is raised (NOT_CAPABLE: not interactive, or
                                 its input is closed)
        """
        record = self._interactive(sessionId)
        if not isinstance(text, str) or not text.strip() or len(text.encode("utf-8")) > TASK_MAX_BYTES:
            raise InvalidSpec("text must be a non-empty string of at most %d bytes" % TASK_MAX_BYTES)
        self._write_input(sessionId, adapter_for(record["runtime"]).message(text))
        self._idle.pop(sessionId, None)
        self._emit("message", sessionId, role="user", text=cut(text))
        return True

    @guarded
    def interruptSession(self, sessionId):
        """Stop an interactive session's current turn; the session lives on for the next message.

        @param string sessionId  the session id
        @return boolean result   always true unless a fault is raised
        """
        record = self._interactive(sessionId)
        self._write_input(sessionId, adapter_for(record["runtime"]).interrupt("interrupt-%d" % now_ms()))
        return True

    @guarded
    def closeSession(self, sessionId):
        """Close an interactive session's input: its agent finishes the current turn and the session ends.

        @param string sessionId  the session id
        @return boolean result   always true unless a fault is raised
        """
        self._interactive(sessionId)
        self._idle.pop(sessionId, None)
        self._close_input(sessionId)
        return True

    @guarded
    def listApprovals(self, sessionId):
        """Return the permission requests a session's agent waits on (approvals: ask).

        @param string sessionId  the session id
        @return array requests   [{requestId, tool, input (a summary), since (ms)}], oldest first
        """
        self._record(sessionId)
        return [{k: (float(v) if k == "since" else v) for k, v in r.items() if k in ("requestId", "tool", "input", "since")}
                for r in self._approvals.get(sessionId, {}).values()]

    @guarded
    def answerApproval(self, sessionId, requestId, decision, message=""):
        """Answer a permission request of a session's agent: allow runs the tool, deny tells the model no
        (with `message`).

        @param string sessionId  the session id
        @param string requestId  the request's id (see listApprovals)
        @param string decision   allow or deny
        @param string message    why, for a deny (optional)
        @return boolean result   always true unless a fault is raised (NO_SUCH_SESSION: no such request)
        """
        self._record(sessionId)
        if decision not in ("allow", "deny"):
            raise InvalidSpec("decision must be allow or deny")
        if not isinstance(message, str) or len(message) > 2000:
            raise InvalidSpec("message must be a string of at most 2000 characters")
        request = self._approvals.get(sessionId, {}).get(requestId) if isinstance(requestId, str) else None
        if request is None:
            raise NoSuchSession("session %s waits on no permission request %r" % (sessionId, str(requestId)[:100]))
        self._decide(sessionId, request, decision == "allow", message, "request")
        return True

    @guarded
    def listRuntimes(self):
        """Return every runtime a session may use: whether its program is installed (on supervisord's
        PATH), its version (from its npm package), and what it supports.

        @return array runtimes  [{runtime, program, installed, version, supports: {events, usage, cost,
                                input, approvals, interrupt, resume}}]
        """
        path = os.environ.get("PATH", os.defpath)
        reports = []
        for runtime in sorted(self.renderer.runtimes):
            adapter = ADAPTERS.get(runtime) or adapter_for(runtime, self.renderer.program(runtime))
            report = runtime_report(adapter, path)
            reports.append({k: v for k, v in report.items() if v is not None})
        return reports

    @guarded
    def getCluster(self):
        """Return where sessions run: the backend and, on the ray backend, the cluster's nodes.

        @return struct cluster  {backend, nodes: [{id, address, hostname, alive, head, total, available,
                                labels, sessions}], reachable}; sessions counts the live sessions on a node
        """
        cluster = self.workers.cluster(self._active)
        on_node = {}
        for record in self._active.values():
            node = (record.get("node") or {}).get("id")
            if node:
                on_node[node] = on_node.get(node, 0) + 1
        for node in cluster["nodes"]:
            node["sessions"] = on_node.get(node["id"], 0)
        return cluster

    @guarded
    def getIsolation(self):
        """Return what the sandbox enforces on every worker on this machine, and why the rest is not.

        @return struct isolation  {root, sandbox, bwrap, enforced: {namespaces, identity, cgroups, limits,
                                  landlockTcpBind}, landlockAbi, workerUsers, notEnforced: {part: reason}}
        """
        return self.confinement.isolation.report()


_instances = {}


def make_sessions_rpcinterface(supervisord, **config):
    """Factory of `[rpcinterface:sessions]` (supervisor.rpcinterface_factory).

    Options: sessions_home (default $SESSIONS_HOME). supervisord calls this once per HTTP server and again
    after each reload (which clears event subscriptions), so one instance serves each generation.
    """
    current = _instances.get(id(supervisord))
    if current is not None and current.supervisord is supervisord and current._is_subscribed():
        return current
    env = dict(os.environ)
    if config.get("sessions_home"):
        env["SESSIONS_HOME"] = config["sessions_home"]
    settings = Settings.from_env(env)
    settings.make_dirs()
    instance = SessionsNamespaceRPCInterface(supervisord, settings,
                                             event_log=current._events if current is not None else None,
                                             journal=current.journal if current is not None else None)
    instance._start()
    _instances[id(supervisord)] = instance
    return instance
