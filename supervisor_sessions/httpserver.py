"""The waitress side of the Management API: limits that keep hostile clients from starving the others, and
the errors waitress answers itself in the API's JSON shape.

- Many connections: waitress' connection limit (100 by default) is raised, and the event loop uses
  poll() (select() cannot watch descriptors above 1023).
- Connections that say nothing: one that has not sent a complete request within the first-request
  timeout is closed. Once a connection has sent a request, waitress' channel timeout governs it (an
  idle keep-alive connection), and a connection with a request in progress (a log follower) is never
  cut for being quiet.
- One address, many connections: accepting more than the cap of open connections from one client
  address answers a short JSON 503 and closes at once.
- Bad requests: waitress' own answers (bad request line, header too large, a body over the limit,
  chunking errors, an unexpected exception) are JSON {"error": code, "message": text}. After such an
  answer the rest of the client's input is read and dropped for a bounded time and size (a lingering
  close) so that a client still sending its body reads the answer instead of a connection reset.
"""
import functools
import json
import logging
import resource
import socket
import threading
import time
from dataclasses import dataclass, field

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher, WSGITask
from waitress.utilities import RequestEntityTooLarge

log = logging.getLogger(__name__)

CHUNKED_FRAMING_SLACK = 65536  # waitress counts chunk framing in a body's size; the decoded size is checked here
LINGER_IDLE_SECONDS = 2        # a lingering close ends after this long without input...
LINGER_MAX_SECONDS = 10        # ...or this long in all...
LINGER_MAX_BYTES = 16 * 1024 * 1024  # ...or once this much input has been dropped
REFUSAL_LOG_INTERVAL = 10.0
FD_HEADROOM = 256  # descriptors besides the connections: listeners, XML-RPC sockets, log files
WAITRESS_ERROR_CODES = {431: "header_too_large", 501: "not_implemented"}  # statuses only waitress answers


@dataclass
class Limits:
    """What the server enforces; `error_codes` maps an HTTP status to the API's error code."""

    max_body: int
    first_request_timeout: float
    per_client: int
    error_codes: dict = field(default_factory=dict)
    upload_max: int = 0            # the body limit of an upload: a request that `is_upload(method, path)`
    is_upload: object = None


class BodyTooLarge(RequestEntityTooLarge):
    def __init__(self, max_body):
        super().__init__("the body may be at most %d bytes" % max_body)


def error_message(error):
    if isinstance(error, BodyTooLarge):
        return error.body
    if error.code == 500:
        return "internal error; the API's log has the details"
    return "%s: %s" % (error.reason.lower(), error.body)


class CanonicalHeaderTask(WSGITask):
    """waitress capitalises header names ('Www-Authenticate'); send RFC 7235's spelling, which clients
    that compare names case-sensitively look for."""

    def build_response_header(self):
        return super().build_response_header().replace(b"\r\nWww-Authenticate:", b"\r\nWWW-Authenticate:")


class JsonErrorTask(ErrorTask):
    """waitress' answer to a request it refuses itself, as the API's JSON error; the connection closes."""

    def execute(self):
        error = self.request.error
        codes = self.channel.server.limits.error_codes
        body = json.dumps({"error": codes.get(error.code, "error"), "message": error_message(error)}).encode()
        self.status = "%d %s" % (error.code, error.reason)
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        log.info("request refused", extra={"fields": {
            "status": error.code, "client": self.channel.client, "message": error_message(error)}})


class Parser(HTTPRequestParser):
    """waitress' parser that refuses a body over `max_body` (declared, or decoded from chunks) as soon as
    it knows, and tells its channel when a request is complete or refused."""

    def __init__(self, adj, channel=None, limits=None):
        super().__init__(adj)
        self.channel = channel
        self.limits = limits

    def _max_body(self):
        limits = self.limits
        if limits.is_upload is not None and limits.is_upload(self.command, self.path):
            return limits.upload_max
        return limits.max_body

    def _too_large(self):
        if self.limits is None or isinstance(self.error, BodyTooLarge):
            return False
        if isinstance(self.error, RequestEntityTooLarge):
            return True  # waitress' own limit (chunk framing included): the same answer as ours
        if self.error is not None or not self.headers_finished:
            return False
        if self.chunked:
            return self.body_rcv is not None and len(self.body_rcv) > self._max_body()
        return self.content_length > self._max_body()

    def received(self, data):
        if self.completed:
            return 0
        consumed = super().received(data)
        if self._too_large():
            self.error = BodyTooLarge(self._max_body() if self.headers_finished else self.limits.max_body)
            self.completed = True
        if not self.completed:
            return consumed
        if self.error is not None:
            # No "100 Continue" for a refused request, and the rest of this read is its body (or garbage),
            # not the next request: the channel drops it.
            self.expect_continue = False
            if self.channel is not None:
                self.channel.refusing = True
            return len(data)
        if not self.empty and self.channel is not None:
            self.channel.had_request = True
        return consumed


class Channel(HTTPChannel):
    """One client connection: counted per client address, JSON errors, a lingering close after an error."""

    task_class = CanonicalHeaderTask
    error_task_class = JsonErrorTask
    had_request = False  # a complete request arrived: the first-request timeout no longer applies
    refusing = False     # an error answer is due or sent: further input is dropped
    lingering = False    # the answer is sent and writing shut down: reading and dropping until EOF
    linger_since = 0.0
    dropped = 0
    counted = False
    client = None

    def __init__(self, server, sock, addr, adj, map=None):
        super().__init__(server, sock, addr, adj, map)
        self.parser_class = functools.partial(Parser, channel=self, limits=server.limits)
        self.client = addr[0] if isinstance(addr, tuple) and addr else None
        server.clients.opened(self.client)
        self.counted = True

    def received(self, data):
        if self.refusing:
            self.dropped += len(data)
            return True
        return super().received(data)

    def handle_read(self):
        if not self.lingering:
            return super().handle_read()
        try:
            data = self.socket.recv(self.adj.recv_bytes)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self.dropped += len(data)
        if not data or self.dropped > LINGER_MAX_BYTES:
            self.handle_close()
        else:
            self.last_activity = time.time()

    def handle_close(self):
        # After an error answer is flushed, waitress would close with the client's body still unread,
        # which resets the connection before the client reads the answer: shut down writing instead and
        # drop the input until the client closes (or a bound is reached).
        if (self.refusing and not self.lingering and self.will_close and self.socket is not None
                and not self.total_outbufs_len and self.dropped <= LINGER_MAX_BYTES):
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            else:
                self.lingering = True
                self.will_close = False
                self.close_when_flushed = False
                self.linger_since = self.last_activity = time.time()
                return
        super().handle_close()

    def del_channel(self, map=None):
        if self.counted:
            self.counted = False
            self.server.clients.closed(self.client)
        super().del_channel(map)


class ClientCounts:
    """Open connections per client address, shared by the listeners of one server."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def opened(self, client):
        with self.lock:
            self.counts[client] = self.counts.get(client, 0) + 1

    def closed(self, client):
        with self.lock:
            left = self.counts.get(client, 1) - 1
            if left > 0:
                self.counts[client] = left
            else:
                self.counts.pop(client, None)

    def open(self, client):
        with self.lock:
            return self.counts.get(client, 0)


class GuardedServer(TcpWSGIServer):
    """waitress' TCP server with a cap per client address and the first-request and linger timeouts."""

    channel_class = Channel
    last_refusal_log = 0.0
    refused_since_log = 0

    def __init__(self, application, map, limits, clients, **kw):
        self.limits = limits
        self.clients = clients
        body = json.dumps({"error": limits.error_codes.get(503, "error"),
                           "message": "too many open connections from this address; close some and retry"})
        self.refusal = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nConnection: close\r\nRetry-After: 5\r\n\r\n%s"
                        % (len(body), body)).encode()
        super().__init__(application, map, **kw)

    def handle_accept(self):
        try:
            accepted = self.accept()
            if accepted is None:
                return
            conn, addr = accepted
            self.set_socket_options(conn)
        except OSError:
            if self.adj.log_socket_errors:
                self.logger.warning("server accept() threw an exception", exc_info=True)
            return
        addr = self.fix_addr(addr)
        client = addr[0] if isinstance(addr, tuple) and addr else None
        if self.clients.open(client) >= self.limits.per_client:
            self.refuse(conn, client)
            return
        try:
            self.channel_class(self, conn, addr, self.adj, map=self._map)
        except OSError:  # the client is already gone
            conn.close()

    def refuse(self, conn, client):
        """Answer a short JSON 503 and close; input already there is read first (no reset for it)."""
        try:
            conn.setblocking(False)
            conn.send(self.refusal)
            for _ in range(4):
                if not conn.recv(65536):
                    break
        except OSError:
            pass
        finally:
            conn.close()
        self.refused_since_log += 1
        now = time.monotonic()
        if now - self.last_refusal_log >= REFUSAL_LOG_INTERVAL:
            log.warning("connection refused", extra={"fields": {
                "client": client, "refused": self.refused_since_log,
                "perClient": self.limits.per_client,
                "message": "%d open connections is the cap per client address" % self.limits.per_client}})
            self.last_refusal_log = now
            self.refused_since_log = 0

    def maintenance(self, now):
        super().maintenance(now)  # idle past channel_timeout, with no request in progress
        first_cutoff = now - self.limits.first_request_timeout
        for channel in list(self.active_channels.values()):
            if getattr(channel, "lingering", False):
                if (now - channel.last_activity > LINGER_IDLE_SECONDS
                        or now - channel.linger_since > LINGER_MAX_SECONDS):
                    channel.will_close = True
            elif (not getattr(channel, "had_request", True) and not channel.requests
                  and channel.creation_time < first_cutoff):
                channel.will_close = True


def ensure_fd_room(connection_limit):
    """Raise the soft limit on open files to hold `connection_limit` connections, within the hard limit;
    log when it cannot (supervisord, with minfds=4096, usually starts us with enough)."""
    need = connection_limit + FD_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft < need:
        log.warning("open files limited to %d: fewer than the %d connections allowed can be served",
                    soft, connection_limit)


def create_server(app, *, host, port, threads, client_timeout, connection_limit, first_request_timeout,
                  per_client, max_body, error_codes, ident, upload_max=0, is_upload=None):
    """waitress' server for `app` with the limits above (call .run() to serve)."""
    adj = Adjustments(host=host, port=port, threads=threads, channel_request_lookahead=1,
                      channel_timeout=client_timeout, cleanup_interval=1, connection_limit=connection_limit,
                      asyncore_use_poll=True,
                      max_request_body_size=max(max_body, upload_max) + CHUNKED_FRAMING_SLACK, ident=ident)
    limits = Limits(max_body=max_body, first_request_timeout=first_request_timeout, per_client=per_client,
                    error_codes={**WAITRESS_ERROR_CODES, **error_codes}, upload_max=upload_max,
                    is_upload=is_upload)
    sock_map = {}
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    clients = ClientCounts()
    listeners = [GuardedServer(app, sock_map, limits, clients, dispatcher=dispatcher, adj=adj, sockinfo=info)
                 for info in adj.listen]
    if len(listeners) == 1:
        return listeners[0]
    return MultiSocketServer(sock_map, adj, [(s.effective_host, s.effective_port) for s in listeners],
                             dispatcher, listeners[-1].log_info)
