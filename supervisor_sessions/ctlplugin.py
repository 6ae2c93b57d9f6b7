"""`supervisorctl sessions ...`: list, spawn, resume, show, stop, rm, tail, events and diff of sessions, and
where they run (cluster)."""
import argparse
import shlex
import time
import xmlrpc.client
from datetime import datetime

from supervisor.supervisorctl import ControllerPluginBase

from .events import FINAL
from .sdk import AmbiguousId, UnknownId, is_partial_id, unique_id

USAGE = """sessions list                                  all sessions, oldest first
sessions spawn [-r RUNTIME] [-n NAME] [-e K=V]... AGENT PROVIDER [--] TASK...
                                               create and start a session (the words after
                                               PROVIDER are the task, options included)
sessions resume ID [--] TASK...                continue the agent of an ended session in a
                                               new session, with TASK as its next message
sessions show ID                               one session's record
sessions stop ID...                            stop sessions (their whole process tree)
sessions rm ID...                              remove ended sessions (config, directory, log)
sessions tail [-f] [-c BYTES] ID               the end of a session's log; -f follows it
sessions events [-f] [--since SEQ]             the change feed (one line an event); -f follows it
sessions diff [--stat] ID                      what a session with a workspace changed (a patch;
                                               --stat: lines added and removed per file)
sessions cluster                               where sessions run: the backend, and on Ray its
                                               nodes, their free resources and live sessions
An ID may be the start of a session id that no other session id starts with."""
FOLLOW_POLL_SECONDS = 0.2
EVENT_DETAILS = ("status", "cause", "exitCode", "reason", "state", "role", "tool", "input", "ok", "text",
                 "decision", "requestId")   # what a line of `sessions events` shows of an event
EVENTS_WAIT_SECONDS = 25  # a follower of the feed waits this long inside supervisord for the next event
MAX_TAIL_BYTES = 1024 * 1024  # what sessions.tailSessionLog returns at most


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _parsers():
    root = _Parser(prog="sessions", add_help=False)
    sub = root.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", add_help=False)
    spawn = sub.add_parser("spawn", add_help=False)
    spawn.add_argument("-r", "--runtime", default=None)
    spawn.add_argument("-n", "--name", default=None)
    spawn.add_argument("-e", "--env", action="append", default=[])
    spawn.add_argument("agent")
    spawn.add_argument("provider")
    spawn.add_argument("task", nargs=argparse.REMAINDER)  # everything after PROVIDER, `-n` included
    resume = sub.add_parser("resume", add_help=False)
    resume.add_argument("id")
    resume.add_argument("task", nargs=argparse.REMAINDER)
    sub.add_parser("show", add_help=False).add_argument("id")
    for name in ("stop", "rm"):
        sub.add_parser(name, add_help=False).add_argument("ids", nargs="+")
    tail = sub.add_parser("tail", add_help=False)
    tail.add_argument("-f", "--follow", action="store_true")
    tail.add_argument("-c", "--bytes", type=int, default=4096)
    tail.add_argument("id")
    diff = sub.add_parser("diff", add_help=False)
    diff.add_argument("--stat", action="store_true")
    diff.add_argument("id")
    sub.add_parser("cluster", add_help=False)
    events = sub.add_parser("events", add_help=False)
    events.add_argument("-f", "--follow", action="store_true")
    events.add_argument("--since", type=int, default=0)
    return root


def _task(words, missing):
    """The task a command's remaining words make (a leading `--` dropped); UsageError(missing) when none."""
    words = words[1:] if words[:1] == ["--"] else words
    if not words:
        raise UsageError(missing)
    return " ".join(words)


def when(ms):
    """A time in ms since the epoch as local date and time ("-" for none)."""
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def one_line(text, width):
    """`text` on one line of at most `width` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def event_line(event):
    """An event of the change feed on one line: seq, time, type, session id and its details."""
    details = " ".join("%s=%s" % (k, one_line(event[k], 80)) for k in EVENT_DETAILS if k in event)
    return "%d %s %s %s %s" % (event["seq"], when(event["time"]), event["type"], event["sessionId"], details)


def diff_stat_lines(files, changes):
    """The lines of a diff's numbers: one per file (`+insertions -deletions path`), then the totals."""
    for entry in files:
        counts = "binary" if entry["binary"] else "+%d -%d" % (entry["insertions"], entry["deletions"])
        yield "%-12s %s" % (counts, entry["path"])
    yield "%d files, +%d -%d, %d commits" % (changes["files"], changes["insertions"], changes["deletions"],
                                             changes["commits"])


def _id_error(error):
    """The message of an id that names no single session, as a fault would say it."""
    return "NO_SUCH_SESSION: " + error.message if isinstance(error, UnknownId) else str(error)


class SessionsControllerPlugin(ControllerPluginBase):
    """The `sessions` command of supervisorctl."""

    name = "sessions"

    def __init__(self, controller, **config):
        ControllerPluginBase.__init__(self, controller)

    def _rpc(self):
        return self.ctl.get_server_proxy("sessions")

    def _fail(self, message):
        self.ctl.output("ERROR: %s" % message)
        self.ctl.exitstatus = 1

    def _session_id(self, value):
        """The whole session id `value` names: itself, or the one id that starts with it."""
        if not is_partial_id(value):
            return value
        return unique_id(value, [r["sessionId"] for r in self._rpc().listSessions()])

    def help_sessions(self):
        self.ctl.output(USAGE)

    def do_sessions(self, arg):
        if arg.strip() in ("help", "-h", "--help"):
            self.help_sessions()
            return
        try:
            options = _parsers().parse_args(shlex.split(arg))
        except (UsageError, ValueError) as e:
            self._fail("%s\n%s" % (e, USAGE))
            return
        try:
            getattr(self, "_cmd_" + options.command)(options)
        except xmlrpc.client.Fault as e:
            self._fail(e.faultString)
        except (UnknownId, AmbiguousId) as e:
            self._fail(_id_error(e))
        except UsageError as e:
            self._fail("%s\n%s" % (e, USAGE))

    def _cmd_list(self, options):
        records = self._rpc().listSessions()
        self.ctl.output("%-36s  %-11s  %-12s  %-10s  %-19s  %s" % ("ID", "STATUS", "RUNTIME", "AGENT",
                                                                   "CREATED", "TASK"))
        for r in records:
            self.ctl.output("%-36s  %-11s  %-12s  %-10s  %-19s  %s" % (
                r["sessionId"], r["status"], r["runtime"], r["agent"], when(r.get("createdAt")),
                one_line(r["task"], 40)))

    def _cmd_spawn(self, options):
        env = {}
        for pair in options.env:
            key, sep, value = pair.partition("=")
            if not sep:
                raise UsageError("--env takes KEY=VALUE, got %r" % pair)
            env[key] = value
        spec = {"agent": options.agent, "provider": options.provider,
                "task": _task(options.task, "spawn needs a TASK after AGENT and PROVIDER")}
        for key, value in (("runtime", options.runtime), ("name", options.name), ("env", env or None)):
            if value:
                spec[key] = value
        self._create(spec)

    def _cmd_resume(self, options):
        self._create({"resumeFrom": self._session_id(options.id),
                      "task": _task(options.task, "resume needs a TASK after ID")})

    def _create(self, spec):
        """Create a session and print `<id> <status>[ pid N]`; a session that failed at once fails the command."""
        record = self._rpc().createSession(spec)
        self.ctl.output("%s %s%s" % (record["sessionId"], record["status"],
                                     " pid %d" % record["pid"] if record.get("pid") else ""))
        if record["status"] == "failed":
            self._fail(record.get("reason", "failed"))

    def _cmd_show(self, options):
        record = self._rpc().getSession(self._session_id(options.id))
        for key in ("sessionId", "name", "status", "reason", "runtime", "agent", "provider", "pid", "port",
                    "exitCode", "createdAt", "startTime", "endTime", "sessionDir", "logFile", "task"):
            if record.get(key, "") == "":
                continue
            value = record[key]
            if key in ("createdAt", "startTime", "endTime"):
                value = when(value)
            self.ctl.output("%-10s %s" % (key + ":", value))

    def _for_each(self, ids, action, said):
        """Run `action` on the session each id (or prefix) names; said(result) is what to print for it."""
        for given in ids:
            try:
                sid = self._session_id(given)
                self.ctl.output("%s %s" % (sid, said(action(sid))))
            except xmlrpc.client.Fault as e:
                self._fail("%s: %s" % (given, e.faultString))
            except (UnknownId, AmbiguousId) as e:
                self._fail("%s: %s" % (given, _id_error(e)))

    def _cmd_stop(self, options):
        rpc = self._rpc()

        def stop(sid):
            status = rpc.getSession(sid)["status"]
            return "already %s" % status if status in FINAL else rpc.stopSession(sid) and "stopping"
        self._for_each(options.ids, stop, lambda said: said)

    def _cmd_rm(self, options):
        self._for_each(options.ids, self._rpc().removeSession, lambda result: "removed")

    def _cmd_tail(self, options):
        if not 0 < options.bytes <= MAX_TAIL_BYTES:
            raise UsageError("-c takes 1 to %d bytes" % MAX_TAIL_BYTES)
        rpc = self._rpc()
        sid = self._session_id(options.id)
        text, offset, _ = rpc.tailSessionLog(sid, -1, options.bytes)
        self._write(text)
        while options.follow:
            ended = rpc.getSession(sid)["status"] in FINAL  # a queued session is followed too
            text, offset, _ = rpc.tailSessionLog(sid, offset, 65536)
            if text:
                self._write(text)
            elif ended:
                return
            else:
                time.sleep(FOLLOW_POLL_SECONDS)

    def _cmd_diff(self, options):
        rpc = self._rpc()
        sid = self._session_id(options.id)
        diff = rpc.getSessionDiff(sid, 0, MAX_TAIL_BYTES)
        if options.stat:
            for line in diff_stat_lines(diff["files"], diff["changes"]):
                self.ctl.output(line)
            return
        offset, size = 0, int(diff["size"])
        while True:
            data = diff["data"].data
            self._write(data.decode("utf-8", "replace"))
            offset += len(data)
            if not data or offset >= size:
                return
            diff = rpc.getSessionDiff(sid, offset, MAX_TAIL_BYTES)

    def _cmd_events(self, options):
        if options.since < 0:
            raise UsageError("--since takes a seq >= 0")
        rpc = self._rpc()
        since = options.since
        while True:
            events, since = rpc.getEvents(since, 1000, EVENTS_WAIT_SECONDS if options.follow else 0)
            for event in events:
                self.ctl.output(event_line(event))
            if not events and not options.follow:
                return

    def _cmd_cluster(self, options):
        cluster = self._rpc().getCluster()
        self.ctl.output("backend: %s%s" % (cluster["backend"], "" if cluster.get("reachable", True)
                                           else " (the cluster cannot be reached)"))
        if not cluster["nodes"]:
            return
        self.ctl.output("%-12s  %-15s  %-5s  %-8s  %-22s  %s" % ("NODE", "ADDRESS", "ALIVE", "SESSIONS",
                                                                 "FREE CPU / MEMORY", "OTHER FREE, LABELS"))
        for node in cluster["nodes"]:
            free = node["available"]
            other = {k: v for k, v in free.items() if k not in ("CPU", "memory")}
            self.ctl.output("%-12s  %-15s  %-5s  %-8d  %-22s  %s" % (
                node["id"][:12] + (" (head)" if node.get("head") else ""), node["address"],
                "yes" if node["alive"] else "no", node.get("sessions", 0),
                "%g / %d MB" % (free.get("CPU", 0), free.get("memory", 0) // 2 ** 20),
                " ".join(["%s=%g" % item for item in sorted(other.items())]
                         + ["%s=%s" % item for item in sorted(node.get("labels", {}).items())])))

    def _write(self, text):
        """Log text exactly as written (supervisorctl's output() would end every chunk with a newline)."""
        if text:
            self.ctl.stdout.write(text)
            self.ctl.stdout.flush()


def make_sessions_controllerplugin(controller, **config):
    """Factory of `[ctlplugin:sessions]` (supervisor.ctl_factory)."""
    return SessionsControllerPlugin(controller, **config)
