"""The Management API: a Bottle app that reaches supervisord only through XML-RPC on its unix socket.

Every /v1/ route needs `Authorization: Bearer <MANAGEMENT_API_KEY>`; errors are JSON
{"error": code, "message": text}. Log followers hold a waitress thread each, so at most half of the threads
follow at once (429 beyond) and the rest of the threads always serve other requests.
"""
import hmac
import json
import logging
import os
import threading
import time
import xmlrpc.client

import bottle

from . import __version__, apifiles, dashboard, httpserver, jsonlog, monitor, procs
from . import mirror as mirror_module
from .mirror import WAIT_SECONDS, Mirror
from .metrics import ApiMetrics
from .client import server_proxy
from .agentevents import AgentOutput
from .backends.ray import placement
from .apihttp import (ERROR_CODES, MAX_BODY_BYTES, ApiError, error_answer, json_answer, query_bool, query_int,
                      read_json_body, session_id_param)
from .events import FINAL, STATUSES, now_ms
from .faults import HTTP_STATUS, InvalidSpec
from .logtail import read_log
from .naming import is_session_id
from .openapi import openapi_document
from .spec import check_label, parse_spec
from .views import close_json, open_json, present, show_event

log = logging.getLogger(__name__)
access = logging.getLogger(__name__ + ".access")

DEFAULT_TAIL_LINES = 50
MAX_TAIL_LINES = 10_000
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
FOLLOW_POLL_SECONDS = 0.05
KEEPALIVE_SECONDS = 15
LOG_CHUNK = 256 * 1024
EVENTS_PAGE = 1000
FEED_WAIT_SECONDS = 5    # a feed follower waits in supervisord this long per call, then checks its client
MAX_SEQ = 2 ** 31 - 1    # what XML-RPC's int carries to getEvents: `since=2147483647` asks for what comes next
EVENT_TYPES = frozenset(("created", "state", "removed") + AgentOutput.TYPES)
def create_app(settings, api_key, metrics_public=False, mirror=None):
    """A new Bottle app serving the API for `settings`, guarded by `api_key` (no module-level state).

    /metrics needs the key too unless `metrics_public`. Reads of sessions come from `mirror` (a
    mirror.Mirror) while it follows the feed, else from supervisord.
    """
    app = bottle.Bottle()
    local = threading.local()
    max_followers = settings.api_threads // 2
    followers = threading.BoundedSemaphore(max_followers)
    sampler = monitor.TreeSampler()
    metrics = ApiMetrics()
    started = time.time()
    expected = ("Bearer " + api_key).encode("utf-8")
    logins = dashboard.BrowserLogins(api_key)

    def rpc():
        if getattr(local, "proxy", None) is None:
            local.proxy = server_proxy(settings.socket_path, timeout=30.0)
        return local.proxy

    def mirrored():
        return mirror is not None and mirror.live

    def resources_of(record):
        """What a live session's whole tree uses: sampled here, or on the ray backend by its node's agent
        (the cluster's view has it, a second old at most)."""
        if settings.backend == "ray":
            view = placement.load(placement.view_path(settings.run_dir)) or {}
            use = dict((view.get("usage") or {}).get(record["sessionId"]) or {})
            use.pop("node", None)
            return use or None
        return sampler.sample(record["pid"]) if record["pid"] else None

    def read_record(sid):
        """One record: from the mirror, or from supervisord when the mirror is not live or has not seen
        it yet (NO_SUCH_SESSION, a 404, when supervisord has not either)."""
        record = mirror.get(sid) if mirrored() else None
        return record if record is not None else rpc().sessions.getSession(sid)

    def read_log_part(sid, offset, length):
        """[text, nextOffset, overflow] of a session's log (see sessions.tailSessionLog), read straight from
        the file supervisord writes, or through supervisord where this process may not read it."""
        try:
            return read_log(settings.log_file(sid), offset, length, for_xml=False)
        except PermissionError:
            return rpc().sessions.tailSessionLog(sid, offset, length)

    def count_sessions():
        """{status: how many} for every status, plus total."""
        if not mirrored():
            return rpc().sessions.countSessions()
        counts = dict.fromkeys(sorted(STATUSES), 0)
        counts.update(mirror.counts())
        counts["total"] = sum(counts.values())
        return counts

    def check_auth():
        """The bearer token, or (without an Authorization header) a dashboard sign-in (see dashboard.py)."""
        header = bottle.request.get_header("Authorization")
        if header is None and logins.allows(bottle.request):
            return
        given = (header or "").encode("utf-8", "replace")
        if not api_key or not hmac.compare_digest(given, expected):
            raise ApiError(401, "a valid 'Authorization: Bearer <MANAGEMENT_API_KEY>' header is required",
                           {"WWW-Authenticate": 'Bearer realm="supervisor-sessions"'})

    def needs_auth(path):
        return path.startswith("/v1/") or (path == "/metrics" and not metrics_public)

    def guard(callback):
        """Auth for /v1/, and every failure as a JSON error (never a traceback)."""
        def wrapper(*args, **kwargs):
            try:
                if needs_auth(bottle.request.path):
                    check_auth()
                return callback(*args, **kwargs)
            except bottle.HTTPResponse:
                raise
            except ApiError as e:
                return error_answer(e.status, e.message, e.headers)
            except xmlrpc.client.Fault as e:
                status = HTTP_STATUS.get(e.faultCode, 500)
                return error_answer(status, e.faultString, {"Retry-After": "5"} if status == 429 else None)
            except (OSError, xmlrpc.client.ProtocolError) as e:
                local.proxy = None
                return error_answer(503, "supervisord is not answering on %s (%s)" % (settings.socket_path,
                                                                                  type(e).__name__))
            except Exception:
                log.exception("unexpected error on %s %s", bottle.request.method, bottle.request.path)
                return error_answer(500, "internal error; the API's log has the details")
        return wrapper

    def measured(callback, route):
        """Count and time every answer, errors of `guard` included, by its route rule (not the raw path:
        ids would explode the labels)."""
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            out = callback(*args, **kwargs)
            status = out.status_code if isinstance(out, bottle.HTTPResponse) else bottle.response.status_code
            seconds = time.perf_counter() - began
            metrics.observe_request(bottle.request.method, route.rule, status, seconds)
            access.info("request", extra={"fields": {
                "method": bottle.request.method, "route": route.rule, "path": bottle.request.path,
                "status": status, "ms": round(seconds * 1000, 2), "client": bottle.request.remote_addr}})
            return out
        return wrapper

    app.install(_RoutePlugin(measured))  # Bottle applies plugins installed later inside earlier ones
    app.install(guard)

    def default_error(error):
        bottle.response.content_type = "application/json"
        status = error.status_code
        message = {404: "no route %s" % bottle.request.path[:200],
                   405: "method %s not allowed here" % bottle.request.method}.get(status, "request failed")
        return json.dumps({"error": ERROR_CODES.get(status, "error"), "message": message})

    app.default_error_handler = default_error

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/ready")
    def ready():
        try:
            fresh = server_proxy(settings.socket_path, timeout=3.0)   # a new connection: is the socket there now?
            state = fresh.supervisor.getState()
            cluster = fresh.sessions.getCluster()
        except (OSError, xmlrpc.client.Error) as e:
            return error_answer(503, "supervisord is not answering (%s)" % type(e).__name__)
        if not cluster.get("reachable", True):
            return error_answer(503, "the Ray cluster cannot be reached yet (see logs/ray-bridge.log)")
        return {"status": "ready", "supervisord": state.get("statename", ""), "backend": cluster["backend"]}

    @app.get("/v1/openapi.json")
    def openapi():
        return openapi_document(__version__)

    @app.post("/v1/sessions")
    def create_session():
        body = read_json_body()
        key = bottle.request.get_header("Idempotency-Key")
        if key is not None:
            if body.get("clientToken", key) != key:
                raise ApiError(400, "Idempotency-Key and clientToken differ; give one of them")
            body["clientToken"] = key
        try:
            spec = parse_spec({k: v for k, v in body.items() if v is not None}, runtimes=None)
        except InvalidSpec as e:
            raise ApiError(400, e.message) from None
        fields = {"task": spec.task}
        fields.update({k: v for k, v in (("agent", spec.agent), ("provider", spec.provider),
                                         ("runtime", spec.runtime), ("resumeFrom", spec.resume_from),
                                         ("name", spec.name), ("env", spec.env), ("timeoutSeconds", spec.timeout_seconds),
                                         ("limits", spec.limits), ("gpus", spec.gpus), ("labels", spec.labels),
                                         ("clientToken", spec.client_token), ("webhook", spec.webhook),
                                         ("budget", spec.budget), ("placement", spec.placement)) if v})
        if spec.stall_seconds is not None:
            fields["stallSeconds"] = spec.stall_seconds
        if spec.interactive:
            fields["interactive"] = True
        if spec.idle_timeout_seconds:
            fields["idleTimeoutSeconds"] = spec.idle_timeout_seconds
        if spec.approvals != "auto":
            fields["approvals"] = spec.approvals
        if spec.workspace:
            fields["workspace"] = body["workspace"]   # as given (and checked above): the plugin fills defaults
        started = time.perf_counter()
        record = rpc().sessions.createSession(fields)
        metrics.spawns.observe(time.perf_counter() - started)
        if mirror is not None:
            mirror.add(record)
        sid = record["sessionId"]
        message = "Worker session queued" if record["status"] == "queued" else "Worker session created"
        if record.get("replayed"):
            message = "Worker session made earlier with this Idempotency-Key"
        return json_answer(200 if record.get("replayed") else 202, {"sessionId": sid, "status": "accepted", "message": message,
                           "sessionDir": record["sessionDir"], "logFile": record["logFile"]},
                     {"Location": "/v1/sessions/" + sid})

    @app.get("/v1/sessions")
    def list_sessions():
        status = bottle.request.query.get("status")
        if status is not None and status not in STATUSES:
            raise ApiError(400, "status must be one of %s" % ", ".join(sorted(STATUSES)))
        limit = query_int("limit", DEFAULT_LIST_LIMIT, 1, MAX_LIST_LIMIT)
        offset = query_int("offset", 0, 0, 10 ** 9)
        labels = _label_filter(bottle.request.query)
        now = now_ms()
        if mirrored():  # each record's JSON as the mirror keeps it, with its duration now
            shown, count = mirror.page(open_json, lambda opened, r: close_json(opened, r, now), status, labels,
                                       offset, limit)
            return bottle.HTTPResponse('{"sessions": [%s], "count": %d, "limit": %d, "offset": %d}' % (
                ", ".join(shown), count, limit, offset), status=200, headers={"Content-Type": "application/json"})
        proxy = rpc()
        query = {"newestFirst": True, "offset": offset, "limit": limit, "labels": labels}
        if status:
            query["status"] = status
        shown = [present(r, now) for r in proxy.sessions.listSessions(query)]
        count = proxy.sessions.countSessions({"labels": labels})[status or "total"]
        return {"sessions": shown, "count": count, "limit": limit, "offset": offset}

    @app.get("/v1/sessions/<sid>")
    def get_session(sid):
        session_id_param(sid)
        lines = query_int("tail", DEFAULT_TAIL_LINES, 0, MAX_TAIL_LINES)
        shown = present(read_record(sid))
        shown["resources"] = resources_of(shown)
        text = ""
        if lines:
            text, _, _ = read_log_part(sid, -1, min(1024 * 1024, max(64 * 1024, lines * 1024)))
        shown["logTail"] = "\n".join(text.rstrip("\n").split("\n")[-lines:]) if lines else ""
        return shown

    @app.delete("/v1/sessions/<sid>")
    def delete_session(sid):
        session_id_param(sid)
        purge = query_bool("purge")
        proxy = rpc()
        record = proxy.sessions.stopSession(sid)
        if purge:
            deadline = time.monotonic() + settings.stop_wait_secs + 5
            while record["status"] not in FINAL and time.monotonic() < deadline:
                time.sleep(FOLLOW_POLL_SECONDS)
                record = proxy.sessions.getSession(sid)
            if record["status"] not in FINAL:
                raise ApiError(409, "session %s is still %s; try again" % (sid, record["status"]))
            proxy.sessions.removeSession(sid)
            if mirror is not None:
                mirror.discard(sid)
            return {"sessionId": sid, "status": record["status"], "purged": True}
        # the status it is moving to: its worker is being stopped, or it has ended already
        return {"sessionId": sid, "status": record["status"] if record["status"] in FINAL else "stopping",
                "purged": False}

    @app.get("/v1/sessions/<sid>/log")
    def session_log(sid):
        session_id_param(sid)
        follow = query_bool("follow")
        offset = query_int("offset", 0, 0, 2 ** 62)
        resume = bottle.request.get_header("Last-Event-ID")
        if resume:
            if not resume.isdigit() or len(resume) > 19:
                raise ApiError(400, "Last-Event-ID must be a log offset, got %r" % resume[:40])
            offset = int(resume)
        read_record(sid)  # 404 before any streaming starts
        sse = "text/event-stream" in bottle.request.get_header("Accept", "")
        if not follow:
            bottle.response.content_type = "text/plain; charset=utf-8"
            return _read_whole_log(lambda at: read_log_part(sid, at, LOG_CHUNK), offset)
        if not followers.acquire(blocking=False):
            raise ApiError(429, "%d followers already stream logs; try again later" % max_followers,
                           {"Retry-After": "5"})
        disconnected = bottle.request.environ.get("waitress.client_disconnected", lambda: False)
        bottle.response.content_type = "text/event-stream" if sse else "text/plain; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-cache")
        bottle.response.set_header("X-Accel-Buffering", "no")
        return _follow(lambda at: read_log_part(sid, at, LOG_CHUNK), lambda: read_record(sid), offset, sse,
                       disconnected, followers)

    @app.post("/v1/sessions/<sid>/messages")
    def send_message(sid):
        body = read_json_body("text")
        if set(body) != {"text"} or not isinstance(body["text"], str) or not body["text"].strip():
            raise ApiError(400, "the body must be {\"text\": \"...\"} with some text")
        rpc().sessions.sendMessage(session_id_param(sid), body["text"])
        return json_answer(202, {"sessionId": sid, "status": "accepted"})

    @app.post("/v1/sessions/<sid>/interrupt")
    def interrupt(sid):
        rpc().sessions.interruptSession(session_id_param(sid))
        return json_answer(202, {"sessionId": sid, "status": "interrupting"})

    @app.post("/v1/sessions/<sid>/close")
    def close(sid):
        rpc().sessions.closeSession(session_id_param(sid))
        return json_answer(202, {"sessionId": sid, "status": "closing"})

    @app.get("/v1/sessions/<sid>/approvals")
    def approvals(sid):
        pending = rpc().sessions.listApprovals(session_id_param(sid))
        return {"approvals": [dict(r, since=int(r["since"])) for r in pending]}

    @app.post("/v1/sessions/<sid>/approvals/<request_id>")
    def answer_approval(sid, request_id):
        body = read_json_body("decision (allow or deny) and an optional message")
        if set(body) - {"decision", "message"} or body.get("decision") not in ("allow", "deny") \
                or not isinstance(body.get("message", ""), str):
            raise ApiError(400, "the body must be {\"decision\": \"allow\" or \"deny\", \"message\"?: text}")
        rpc().sessions.answerApproval(session_id_param(sid), request_id, body["decision"], body.get("message", ""))
        return {"sessionId": sid, "requestId": request_id, "decision": body["decision"]}

    @app.get("/v1/runtimes")
    def runtimes():
        return {"runtimes": rpc().sessions.listRuntimes()}

    @app.get("/v1/sessions/<sid>/events")
    def session_events(sid):
        read_record(session_id_param(sid))  # 404 for a session that does not exist
        return feed(lambda e: e["sessionId"] == sid)

    @app.get("/v1/events")
    def change_feed():
        return feed(lambda e: True)

    def feed(of_interest):
        """The change feed (of the events `of_interest`) as a JSON page or a stream: see GET /v1/events."""
        since = query_int("since", 0, 0, MAX_SEQ)
        last_seen = bottle.request.get_header("Last-Event-ID")
        if last_seen:
            if not last_seen.isdigit() or len(last_seen) > 10 or int(last_seen) >= MAX_SEQ:
                raise ApiError(400, "Last-Event-ID must be the seq of an event, got %r" % last_seen[:40])
            since = int(last_seen) + 1
        query_wants = _feed_filter(bottle.request.query)
        wanted = lambda e: of_interest(e) and query_wants(e)  # noqa: E731
        proxy = rpc()
        events, next_seq = proxy.sessions.getEvents(since, EVENTS_PAGE)  # EVENTS_GONE (410) before any stream
        accept = bottle.request.get_header("Accept", "")
        stream = "text/event-stream" if "text/event-stream" in accept else \
            "application/x-ndjson" if "application/x-ndjson" in accept else None
        if stream is None:  # a page with at least one wanted event, unless the feed ends first
            shown = [show_event(e) for e in events if wanted(e)]
            while not shown and events:
                events, next_seq = proxy.sessions.getEvents(next_seq, EVENTS_PAGE)
                shown = [show_event(e) for e in events if wanted(e)]
            return {"events": shown, "nextSeq": next_seq}
        if not followers.acquire(blocking=False):
            raise ApiError(429, "%d followers already stream; try again later" % max_followers, {"Retry-After": "5"})
        disconnected = bottle.request.environ.get("waitress.client_disconnected", lambda: False)
        bottle.response.content_type = stream
        bottle.response.set_header("Cache-Control", "no-cache")
        bottle.response.set_header("X-Accel-Buffering", "no")
        return _follow_feed(proxy, events, next_seq, wanted, stream == "text/event-stream", disconnected,
                            followers)

    def workspace_usage():
        """{sessions, diskBytes} of the sessions with a workspace."""
        if mirrored():
            return mirror.workspace_usage()
        return mirror_module.workspace_usage(rpc().sessions.listSessions())

    @app.get("/metrics")
    def prometheus_metrics():
        body = metrics.render(count_sessions(), workspace_usage())
        return bottle.HTTPResponse(body, status=200, headers={"Content-Type": metrics.content_type})

    @app.get("/v1/status")
    def status():
        counts = count_sessions()
        total = counts.pop("total")
        return {
            "timestamp": jsonlog.timestamp(),
            "api": {"uptime": int(time.time() - started), "version": __version__},
            "workers": {"active": counts["starting"] + counts["preparing"] + counts["running"],
                        "queued": counts["queued"], "total": total, "byStatus": counts},
            "workspaces": workspace_usage(),
            "services": rpc().sessions.listServices(),
            "isolation": rpc().sessions.getIsolation(),
            "cluster": rpc().sessions.getCluster(),
            "gpu": monitor.gpu_status(),
            "system": monitor.system_status(settings.home),
        }

    apifiles.add_routes(app, rpc, settings.files_upload_max_mb << 20)
    dashboard.add_routes(app, logins)
    return app


class _RoutePlugin:
    """A Bottle plugin that hands each callback its route, so a wrapper can label by route rule."""

    api = 2

    def __init__(self, wrap):
        self.wrap = wrap

    def apply(self, callback, route):
        return self.wrap(callback, route)


def _label_filter(query):
    """{name: value} of the query's `label=name=value` parameters (repeatable; every one must match)."""
    labels = {}
    for raw in query.getall("label"):
        try:
            item = raw.encode("latin-1").decode("utf-8")  # bottle hands query values over as latin-1
        except (UnicodeEncodeError, UnicodeDecodeError):
            raise ApiError(400, "label must be UTF-8") from None
        key, sep, value = item.partition("=")
        if not sep:
            raise ApiError(400, "label must be name=value, got %r" % item[:80])
        try:
            check_label(key, value)
        except InvalidSpec as e:
            raise ApiError(400, e.message) from None
        labels[key] = value
    return labels


def _feed_filter(query):
    """A predicate on events from the query's `session`, `type` (comma-separated) and `label` filters."""
    labels = _label_filter(query)
    session = query.get("session")
    if session is not None and not is_session_id(session):
        raise ApiError(400, "session must be a session id, got %r" % session[:80])
    types = set(filter(None, query.get("type", "").split(",")))
    if types - EVENT_TYPES:
        raise ApiError(400, "type must be among %s" % ", ".join(sorted(EVENT_TYPES)))
    return lambda e: ((session is None or e["sessionId"] == session) and (not types or e["type"] in types)
                      and all((e.get("labels") or {}).get(k) == v for k, v in labels.items()))


def _follow_feed(proxy, events, next_seq, wanted, sse, disconnected, followers):
    """Stream the change feed from `events` on, then new events as they come, until the client leaves.

    SSE frames carry `id: <seq>`, so a client that reconnects with Last-Event-ID misses nothing."""
    try:
        if sse:
            yield b": following\n\n"
        last_write = time.monotonic()
        while not disconnected():
            for event in filter(wanted, events):
                shown = json.dumps(show_event(event))
                yield ("id: %d\nevent: %s\ndata: %s\n\n" % (event["seq"], event["type"], shown) if sse
                       else shown + "\n").encode("utf-8")
                last_write = time.monotonic()
            if not events and sse and time.monotonic() - last_write > KEEPALIVE_SECONDS:
                yield b": keepalive\n\n"
                last_write = time.monotonic()
            events, next_seq = proxy.sessions.getEvents(next_seq, EVENTS_PAGE, FEED_WAIT_SECONDS)
    except (OSError, xmlrpc.client.Error) as e:
        log.warning("follow of the change feed ended: %s", e)
    finally:
        followers.release()


def _read_whole_log(read_part, offset):
    while True:
        text, offset, _ = read_part(offset)
        if not text:
            return
        yield text.encode("utf-8")


def _sse(text, event=None, event_id=None):
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    frame = "".join("data: %s\n" % line for line in lines)
    head = ("id: %d\n" % event_id if event_id is not None else "") + ("event: %s\n" % event if event else "")
    return (head + frame + "\n").encode("utf-8")


def _follow(read_part, read_record, offset, sse, disconnected, followers):
    """Stream the log from byte `offset` (read_part(offset) -> [text, next offset, overflow]), then new
    output as it comes, until the session has ended (read_record() -> its record).

    Each SSE chunk carries `id: <the offset after it>`, so a follower that reconnects with Last-Event-ID
    continues without loss or repeats; the last event, `end`, carries the final status and reason.
    waitress sends the headers with the first non-empty chunk: a plain follower of a silent worker
    sees them with its first output; an event stream starts with a comment so they go out at once.
    """
    try:
        if sse:
            yield b": following\n\n"  # headers go out with the first chunk: send them now
        last_write = time.monotonic()
        while not disconnected():
            ended = read_record()["status"] in FINAL
            text, offset, _ = read_part(offset)
            if text:
                yield _sse(text, event_id=offset) if sse else text.encode("utf-8")
                last_write = time.monotonic()
                continue
            if ended:
                if sse:
                    record = read_record()
                    yield _sse(json.dumps({"sessionId": record["sessionId"], "status": record["status"],
                                           "cause": record.get("cause"), "reason": record.get("reason")}),
                               event="end")
                return
            if sse and time.monotonic() - last_write > KEEPALIVE_SECONDS:
                yield b": keepalive\n\n"
                last_write = time.monotonic()
            time.sleep(FOLLOW_POLL_SECONDS)
    except (OSError, xmlrpc.client.Error) as e:
        log.warning("follow of a log ended: %s", e)
    finally:
        followers.release()


def serve(settings, api_key, after_bind=None):
    """Run the API with waitress on settings.api_host:settings.api_port (blocks); see httpserver for the
    limits that keep hostile clients from starving the others. `after_bind` runs once the port is bound
    (to drop privileges: a port below 1024 works under root)."""
    jsonlog.use_json_lines()
    procs.exit_with_parent()
    mirror = Mirror(lambda: server_proxy(settings.socket_path, timeout=WAIT_SECONDS + 10))
    mirror.start()
    app = create_app(settings, api_key, mirror=mirror,
                     metrics_public=os.environ.get("METRICS_PUBLIC", "").lower() in ("1", "true", "yes"))
    httpserver.ensure_fd_room(settings.api_connection_limit)
    server = httpserver.create_server(
        app, host=settings.api_host, port=settings.api_port, threads=settings.api_threads,
        client_timeout=settings.client_timeout, connection_limit=settings.api_connection_limit,
        first_request_timeout=settings.api_first_request_timeout,
        per_client=settings.api_connections_per_client, max_body=MAX_BODY_BYTES, error_codes=ERROR_CODES,
        ident="supervisor-sessions", upload_max=settings.files_upload_max_mb << 20, is_upload=apifiles.is_upload)
    if after_bind:
        after_bind()
    server.print_listen("Management API on http://{}:{}")
    server.run()
