"""`supervisor-sessions client COMMAND`: the Management API from a terminal or a script, through the SDK.

Tables for people by default, --json for programs. A session ID may be the start of one that no other
session id starts with.
"""
import argparse
import itertools
import json
import os
import sys

from .ctlplugin import diff_stat_lines, event_line, one_line, when
from .sdk import DEFAULT_URL, FINAL_STATUSES, AmbiguousId, ApiError, Client, WaitTimeout
from .settings import KEY_FILE_NAME, Settings

EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_WAIT_TIMEOUT = 124   # as timeout(1)
EXIT_INTERRUPTED = 130
SETTINGS = """settings:
  SESSIONS_URL         the API (default %s); --url overrides it
  MANAGEMENT_API_KEY   its bearer token; --key-file overrides it; without either, the key file that
                       `supervisor-sessions serve` writes: $SESSIONS_HOME/%s
  SESSIONS_HOME        where that file is (default $XDG_DATA_HOME/supervisor-sessions or
                       ~/.local/share/supervisor-sessions)

ID: a session id, or enough of its start that no other session id starts so.
exit status: 0 done; 1 the API refused or could not be reached (its message on stderr), or no
session has the ID; 2 bad usage, or an ID that several session ids start with""" % (DEFAULT_URL, KEY_FILE_NAME)
WAIT_EXIT = """
wait: the session's exit code once it has ended (0 when it completed), 1 when it ended without one
(stopped, interrupted, killed by a signal, not started); %d when --timeout ran out""" % EXIT_WAIT_TIMEOUT
SHOWN_TIMES = ("createdAt", "startTime", "endTime")


# ---- options ------------------------------------------------------------------------------------------

def _pair(text):
    """NAME=VALUE as a (name, value) pair."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE, got %r" % text)
    return name, value


def _count(text):
    """A number >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError("expected a number >= 0, got %r" % text)
    return int(text)


def _add_connection_options(parser, suppress):
    """--url, --key-file and --json; `suppress`: no defaults (on a command, so that they may come before it)."""
    default = (lambda value: argparse.SUPPRESS) if suppress else (lambda value: value)
    parser.add_argument("--url", default=default(None), help="the API's URL (default: $SESSIONS_URL, else %s)"
                        % DEFAULT_URL)
    parser.add_argument("--key-file", default=default(None), metavar="PATH",
                        help="a file holding the API key (default: $MANAGEMENT_API_KEY, else serve's key file)")
    parser.add_argument("--json", action="store_true", default=default(False), help="JSON instead of text")


def _parser():
    root = argparse.ArgumentParser(prog="supervisor-sessions client", description=__doc__, epilog=SETTINGS + WAIT_EXIT,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_connection_options(root, suppress=False)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, run, summary, epilog=SETTINGS):
        sub = commands.add_parser(name, help=summary, description=summary, epilog=epilog,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_connection_options(sub, suppress=True)
        sub.set_defaults(run=run)
        return sub

    spawn = command("spawn", _spawn, "create a session; prints its id (the words after PROVIDER are the task, "
                                     "so options come before AGENT)")
    spawn.add_argument("-r", "--runtime")
    spawn.add_argument("-n", "--name")
    spawn.add_argument("-e", "--env", type=_pair, action="append", default=[], metavar="KEY=VALUE")
    spawn.add_argument("-l", "--label", type=_pair, action="append", default=[], metavar="NAME=VALUE")
    spawn.add_argument("--timeout-seconds", type=int, metavar="N")
    spawn.add_argument("--idempotency-key", metavar="KEY", help="the same key within 24 h gives the same session")
    spawn.add_argument("agent")
    spawn.add_argument("provider")
    spawn.add_argument("task", nargs=argparse.REMAINDER)
    ls = command("ls", _ls, "list sessions, newest first")
    ls.add_argument("--status")
    ls.add_argument("-l", "--label", type=_pair, action="append", default=[], metavar="NAME=VALUE")
    ls.add_argument("--limit", type=_count, metavar="N", help="at most N (default: all)")
    command("show", _show, "one session's record").add_argument("id", metavar="ID")
    logs = command("logs", _logs, "a session's log; -f follows it until the session ends")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--offset", type=int, default=0, help="the byte to start from")
    logs.add_argument("id", metavar="ID")
    events = command("events", _events, "the change feed, one line an event (--json: one object a line); "
                                        "-f follows it")
    events.add_argument("-f", "--follow", action="store_true")
    events.add_argument("--since", type=int, default=0, metavar="SEQ")
    events.add_argument("--session", metavar="ID")
    events.add_argument("--type", metavar="TYPE[,TYPE...]")
    events.add_argument("-l", "--label", type=_pair, action="append", default=[], metavar="NAME=VALUE")
    command("stop", _stop, "stop sessions (their whole process tree)").add_argument("ids", nargs="+", metavar="ID")
    rm = command("rm", _rm, "remove ended sessions (directory, log, config); -f stops live ones first")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("ids", nargs="+", metavar="ID")
    wait = command("wait", _wait, "wait for a session to end (or to reach --for)", SETTINGS + WAIT_EXIT)
    wait.add_argument("--timeout", type=float, metavar="SECONDS")
    wait.add_argument("--for", dest="statuses", default=",".join(sorted(FINAL_STATUSES)), metavar="STATUS[,...]")
    wait.add_argument("id", metavar="ID")
    diff = command("diff", _diff, "what a session with a workspace changed: the patch; --stat: the numbers")
    diff.add_argument("--stat", action="store_true")
    diff.add_argument("id", metavar="ID")
    return root


def _client(options):
    """A Client for the URL and key the options and the environment give; ValueError when there is no key."""
    return Client(options.url or os.environ.get("SESSIONS_URL") or DEFAULT_URL, _api_key(options.key_file))


def _api_key(key_file):
    """The key of --key-file, else MANAGEMENT_API_KEY, else the one serve keeps in SESSIONS_HOME."""
    if not key_file and os.environ.get("MANAGEMENT_API_KEY"):
        return os.environ["MANAGEMENT_API_KEY"]
    path = key_file or Settings.from_env().key_file
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        if key_file:
            raise ValueError("no key file %s" % path) from None
        raise ValueError("no API key: set MANAGEMENT_API_KEY, give --key-file, or run where serve wrote %s" % path) \
            from None
    except OSError as e:
        raise ValueError("cannot read the key file %s: %s" % (path, e.strerror)) from None


# ---- output -------------------------------------------------------------------------------------------

def _print_json(value):
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _table(header, rows):
    """Columns as wide as their widest cell; the last one as it is."""
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header) - 1)]
    for row in [header] + rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


def _shown(key, value):
    if key in SHOWN_TIMES:
        return when(value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


def _write(text):
    sys.stdout.write(text)
    sys.stdout.flush()


# ---- commands -----------------------------------------------------------------------------------------

def _spawn(client, options):
    words = options.task[1:] if options.task[:1] == ["--"] else options.task
    if not words:
        raise _UsageError("spawn needs a TASK after AGENT and PROVIDER")
    accepted = client.create(" ".join(words), agent=options.agent, provider=options.provider,
                             runtime=options.runtime, name=options.name, env=dict(options.env) or None,
                             labels=dict(options.label) or None, timeout_seconds=options.timeout_seconds,
                             idempotency_key=options.idempotency_key)
    if options.json:
        return _print_json(accepted.raw)
    print(accepted.session_id)


def _ls(client, options):
    sessions = list(itertools.islice(client.iter_sessions(options.status, dict(options.label)), options.limit))
    if options.json:
        return _print_json([s.raw for s in sessions])
    _table(["ID", "STATUS", "EXIT", "RUNTIME", "AGENT", "CREATED", "TASK"], [
        [s.session_id, s.status, "" if s.exit_code is None else str(s.exit_code), s.runtime or "", s.agent or "",
         when(s.created_at), one_line(s.task or "", 50)] for s in sessions])


def _show(client, options):
    session = client.get(client.resolve(options.id), tail=0)
    if options.json:
        return _print_json(session.raw)
    for key, value in session.raw.items():
        if value not in (None, "") and key != "logTail":
            print("%-20s %s" % (key + ":", _shown(key, value)))


def _logs(client, options):
    sid = client.resolve(options.id)
    if not options.follow:
        return _write(client.log(sid, options.offset))
    for text in client.follow_log(sid, options.offset):
        _write(text)


def _events(client, options):
    session = client.resolve(options.session) if options.session else None
    query = (session, options.type.split(",") if options.type else None, dict(options.label))
    events = client.follow_events(options.since, *query) if options.follow else _pages(client, options.since, query)
    for event in events:
        print(json.dumps(event.raw, ensure_ascii=False) if options.json else event_line(event.raw), flush=True)


def _pages(client, since, query):
    """Every event from `since` on, page after page, to the end of the feed."""
    while True:
        page = client.events(since, *query)
        if not page.events:
            return
        yield from page.events
        since = page.next_seq


def _for_each(client, options, action):
    """`action(client, id)` -> (Stopped, what to say) on each session given, whatever happens to the others;
    the exit status of the worst failure."""
    answers, status = [], 0
    for given in options.ids:
        try:
            answer, said = action(client, client.resolve(given))
        except (ApiError, AmbiguousId, _Refused) as e:
            _error("%s: %s" % (given, e))
            status = max(status, EXIT_USAGE if isinstance(e, AmbiguousId) else EXIT_API_ERROR)
            continue
        answers.append(answer.raw)
        if not options.json:
            print("%s %s" % (answer.session_id, said))
    if options.json:
        _print_json(answers)
    return status


def _stop(client, options):
    def stop(client, sid):
        answer = client.stop(sid)
        return answer, answer.status
    return _for_each(client, options, stop)


def _rm(client, options):
    def remove(client, sid):
        if not options.force:
            session = client.get(sid, tail=0)
            if not session.ended:
                raise _Refused("the session is %s: stop it first, or rm -f" % session.status)
        return client.remove(sid), "removed"
    return _for_each(client, options, remove)


def _wait(client, options):
    sid = client.resolve(options.id)
    try:
        session = client.wait(sid, options.statuses.split(","), options.timeout)
    except WaitTimeout as e:
        _error(str(e))
        return EXIT_WAIT_TIMEOUT
    if options.json:
        _print_json(session.raw)
    else:
        print(" ".join(str(part) for part in (session.session_id, session.status, session.exit_code, session.reason)
                       if part is not None))
    return exit_status_of(session) if session.ended else 0


def exit_status_of(session):
    """What `wait` exits with for an ended session: 0 when it completed, else its exit code where it is one
    (1-255), else 1."""
    if session.status == "completed":
        return 0
    return session.exit_code if session.exit_code and 0 < session.exit_code < 256 else 1


def _diff(client, options):
    sid = client.resolve(options.id)
    if not options.stat:
        return _write(client.diff(sid))
    stat = client.diff_stat(sid)
    if options.json:
        return _print_json(stat.raw)
    for line in diff_stat_lines(stat.files, stat.changes):
        print(line)


# ---- main ---------------------------------------------------------------------------------------------

class _UsageError(Exception):
    """Arguments that argparse could not judge (exit status 2)."""


class _Refused(Exception):
    """What the command itself will not do (exit status 1)."""


def _error(message):
    print("supervisor-sessions client: %s" % message, file=sys.stderr)


def main(argv=None):
    """Run one command; its exit status (see SETTINGS and WAIT_EXIT)."""
    parser = _parser()
    options = parser.parse_args(argv)
    try:
        client = _client(options)
    except ValueError as e:
        parser.error(str(e))
    try:
        return options.run(client, options) or 0
    except (AmbiguousId, _UsageError) as e:
        _error(e)
        return EXIT_USAGE
    except ApiError as e:
        _error(e)
        return EXIT_API_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:   # a reader that left (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_API_ERROR
