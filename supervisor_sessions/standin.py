"""A stand-in for the model providers, so the real agent CLIs complete turns without keys or internet.

It speaks just enough of three APIs on one port:

* Anthropic Messages (`POST /v1/messages`, streaming or not, `/v1/messages/count_tokens`) for Claude Code:
      ANTHROPIC_BASE_URL=http://127.0.0.1:PORT ANTHROPIC_API_KEY=any CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \\
          claude -p "task" --output-format stream-json --verbose --allowedTools Bash
* OpenAI Responses (`POST /v1/responses`) for Codex, which ignores OPENAI_BASE_URL; in `$CODEX_HOME/config.toml`:
      model = "gpt-5.5"
      model_provider = "p"
      check_for_update_on_startup = false
      [analytics]
      enabled = false
      [features]
      plugins = false
      [model_providers.p]
      name = "p"
      base_url = "http://127.0.0.1:PORT/v1"
      env_key = "P_API_KEY"
      wire_api = "responses"
  then `P_API_KEY=any codex exec --json --skip-git-repo-check -s workspace-write "task" </dev/null`.
* Gemini (`POST /v1beta/models/<model>:generateContent` and `:streamGenerateContent?alt=sse`) for Gemini CLI:
      GEMINI_API_KEY=any GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:PORT GEMINI_CLI_TRUST_WORKSPACE=true \\
          gemini -p "task" --output-format stream-json --yolo
  with `~/.gemini/settings.json` = {"security": {"auth": {"selectedType": "gemini-api-key"}},
  "privacy": {"usageStatisticsEnabled": false}, "telemetry": {"enabled": false},
  "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false}}.

Each model request takes the next `Step` of a `Script` (a text reply, a tool call, an HTTP error, a delay,
a hang); once the script is spent every reply is the text "done". Requests that are not a turn (Gemini's
JSON side queries such as its model router, token counts, probes like Claude's `HEAD /`) are answered
without using a step. Every reply carries token usage. Every request is recorded (`StandIn.requests`).

    python -m supervisor_sessions.standin --port 8765     # text replies only, until Ctrl-C
"""
import argparse
import itertools
import json
import shlex
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SHELL = "shell"
# Any of these names asks for the provider's own shell tool, so one script can drive every CLI.
SHELL_NAMES = frozenset({SHELL, "Bash", "exec_command", "shell_command", "run_shell_command"})
ANTHROPIC, OPENAI, GEMINI = "anthropic", "openai", "gemini"
MODEL = {ANTHROPIC: "claude-standin", OPENAI: "gpt-standin", GEMINI: "gemini-standin"}


class Step:
    """One scripted answer to one model request. Build it with the class methods."""

    def __init__(self, kind, text=None, name=None, input=None, status=None, body=None, delay=0.0,
                 usage=None, after_start=False):
        self.kind = kind            # "text", "tool", "error" or "hang"
        self.text = text            # the reply's text (for a tool step: optional text before the call)
        self.name = name            # the tool's name; any of SHELL_NAMES means the provider's shell tool
        self.input = input or {}    # the tool's input, a dict
        self.status = status        # an error's HTTP status
        self.body = body            # an error's body (str or JSON-able); None: the provider's own shape
        self.delay = float(delay)   # seconds to wait before answering
        self.usage = usage          # (input_tokens, output_tokens); None: estimated from the sizes
        self.after_start = after_start  # a hang: send the headers and the stream's first event first

    @classmethod
    def text(cls, text="done", delay=0.0, usage=None):
        return cls("text", text=text, delay=delay, usage=usage)

    @classmethod
    def tool(cls, name, input, text=None, delay=0.0, usage=None):
        return cls("tool", text=text, name=name, input=dict(input), delay=delay, usage=usage)

    @classmethod
    def shell(cls, command, **kwargs):
        """The provider's shell tool running `command` (Bash, exec_command, run_shell_command)."""
        return cls.tool(SHELL, {"command": command}, **kwargs)

    @classmethod
    def error(cls, status, body=None, delay=0.0):
        return cls("error", status=int(status), body=body, delay=delay)

    @classmethod
    def hang(cls, after_start=False):
        """Never answer (until the stand-in stops); `after_start`: stall mid-stream instead."""
        return cls("hang", after_start=after_start)

    def __repr__(self):
        fields = {k: v for k, v in vars(self).items() if v not in (None, {}, 0.0, False) and k != "kind"}
        return "Step.%s(%s)" % (self.kind, ", ".join("%s=%r" % kv for kv in fields.items()))


class Script:
    """The steps the stand-in answers with, in order; `default` once they are spent."""

    def __init__(self, steps=(), default=None):
        self._steps = list(steps)
        self.default = default or Step.text("done")
        self.used = []
        self._lock = threading.Lock()

    def next(self):
        with self._lock:
            step = self._steps.pop(0) if self._steps else self.default
            self.used.append(step)
            return step

    def extend(self, steps):
        with self._lock:
            self._steps.extend(steps)

    @property
    def remaining(self):
        with self._lock:
            return len(self._steps)


class Request:
    """What the stand-in received: method, path, query (dict of lists), headers, raw body, parsed JSON."""

    def __init__(self, method, path, query, headers, raw):
        self.method, self.path, self.query, self.headers, self.raw = method, path, query, headers, raw
        self.received_at = time.monotonic()
        self.provider = None
        self.step = None            # the Step it consumed; None for side queries and probes
        try:
            self.body = json.loads(raw) if raw else None
        except ValueError:
            self.body = None

    @property
    def text(self):
        return self.raw.decode("utf-8", "replace")

    def __repr__(self):
        return "<Request %s %s provider=%s step=%r>" % (self.method, self.path, self.provider, self.step)


def parse_sse(text):
    """An SSE body as a list of (event name or None, parsed data) pairs."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            payload = "\n".join(data)
            try:
                payload = json.loads(payload)
            except ValueError:
                pass
            events.append((name, payload))
    return events


def _shell_command(step):
    command = step.input.get("command", step.input.get("cmd", ""))
    return command if isinstance(command, str) else " ".join(shlex.quote(str(a)) for a in command)


def _estimate(step, raw):
    if step.usage:
        return tuple(step.usage)
    out = len(step.text or "") + len(json.dumps(step.input) if step.kind == "tool" else "")
    return max(1, len(raw) // 4), max(1, out // 4)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300
    server_version = "standin/1"

    def log_message(self, format, *args):
        if self.server.standin.verbose:
            sys.stderr.write("standin: %s\n" % (format % args))

    # -- plumbing --------------------------------------------------------------------------------
    def _read(self):
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = Request(self.command, url.path, parse_qs(url.query), dict(self.headers.items()), raw)
        self.server.standin._record(request)
        return request

    def _json(self, status, payload, headers=None):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _wait(self, seconds=None):
        """Sleep (or, with None, block) until the stand-in stops; True if it stopped."""
        return self.server.standin._stopping.wait(seconds)

    def _play(self, request, provider, events, respond_json, error_body):
        """Answer `request` with its next step: `events(step)` yields SSE blocks; `respond_json(step)` a body."""
        request.provider = provider
        step = request.step = self.server.standin.script.next()
        if step.delay and self._wait(step.delay):
            return self._drop()
        if step.kind == "hang":
            if step.after_start and events is not None:
                self._start_stream()
                self._chunk(next(iter(events(Step.text("")))))
            self._wait()
            return self._drop()
        if step.kind == "error":
            body = step.body if step.body is not None else error_body(step.status)
            if isinstance(body, str):
                body = body.encode()
            return self._json(step.status, body)
        if events is None:
            return self._json(200, respond_json(step))
        self._start_stream()
        for block in events(step):
            self._chunk(block)
        self._end_stream()

    def _drop(self):
        self.close_connection = True

    # -- dispatch --------------------------------------------------------------------------------
    def do_HEAD(self):
        self._read()
        self._json(200, {})

    def do_GET(self):
        request = self._read()
        if request.path.rstrip("/").endswith("/models"):
            return self._json(200, {"object": "list", "data": [], "models": []})
        self._json(200, {})

    do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_GET

    def do_POST(self):
        request = self._read()
        path, body = request.path, request.body if isinstance(request.body, dict) else {}
        try:
            if path.endswith("/messages/count_tokens"):
                request.provider = ANTHROPIC
                return self._json(200, {"input_tokens": max(1, len(request.raw) // 4)})
            if path.endswith("/messages"):
                return self._anthropic(request, body)
            if path.endswith("/responses"):
                return self._openai(request, body)
            if ":" in path.rsplit("/", 1)[-1]:
                return self._gemini(request, body, path.rsplit(":", 1)[-1])
            self._json(200, {})
        except (BrokenPipeError, ConnectionResetError):
            self._drop()

    # -- Anthropic Messages --------------------------------------------------------------------------
    def _anthropic(self, request, body):
        ids = self.server.standin._ids
        model = body.get("model") or MODEL[ANTHROPIC]

        def blocks(step):
            out = []
            if step.text or step.kind == "text":
                out.append({"type": "text", "text": step.text or ""})
            if step.kind == "tool":
                name, args = step.name, dict(step.input)
                if name in SHELL_NAMES:
                    name = "Bash"
                    args.pop("cmd", None)
                    args["command"] = _shell_command(step)
                out.append({"type": "tool_use", "id": "toolu_standin_%d" % next(ids), "name": name, "input": args})
            return out

        def message(step, content, output_tokens=None):
            tokens_in, tokens_out = _estimate(step, request.raw)
            return {"id": "msg_standin_%d" % next(ids), "type": "message", "role": "assistant", "model": model,
                    "content": content, "stop_reason": "tool_use" if step.kind == "tool" else "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": tokens_in, "output_tokens": output_tokens or tokens_out,
                              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}

        def sse(kind, data):
            data = dict(type=kind, **data)
            return ("event: %s\ndata: %s\n\n" % (kind, json.dumps(data))).encode()

        def events(step):
            full = message(step, [])
            stop_reason, tokens_out = full["stop_reason"], full["usage"]["output_tokens"]
            full.update(stop_reason=None)
            full["usage"]["output_tokens"] = 1
            yield sse("message_start", {"message": full})
            for index, block in enumerate(blocks(step)):
                if block["type"] == "text":
                    yield sse("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
                    text = block["text"]
                    for at in range(0, max(len(text), 1), 40):
                        yield sse("content_block_delta", {"index": index,
                                                          "delta": {"type": "text_delta", "text": text[at:at + 40]}})
                else:
                    start = dict(block, input={})
                    yield sse("content_block_start", {"index": index, "content_block": start})
                    yield sse("content_block_delta", {"index": index, "delta": {
                        "type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
                yield sse("content_block_stop", {"index": index})
            yield sse("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                        "usage": {"output_tokens": tokens_out}})
            yield sse("message_stop", {})

        def error_body(status):
            kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
            return {"type": "error", "error": {"type": kind, "message": "stand-in error %d" % status}}

        streaming = body.get("stream") is True
        self._play(request, ANTHROPIC, events if streaming else None,
                   lambda step: message(step, blocks(step)), error_body)

    # -- OpenAI Responses ----------------------------------------------------------------------------
    def _openai(self, request, body):
        ids = self.server.standin._ids
        model = body.get("model") or MODEL[OPENAI]
        offered = {t.get("name") for t in body.get("tools") or () if isinstance(t, dict)}
        response_id = "resp_standin_%d" % next(ids)

        def items(step):
            out = []
            if step.text or step.kind == "text":
                out.append({"type": "message", "id": "msg_standin_%d" % next(ids), "role": "assistant",
                            "status": "completed",
                            "content": [{"type": "output_text", "text": step.text or "", "annotations": []}]})
            if step.kind == "tool":
                name, args = step.name, dict(step.input)
                if name in SHELL_NAMES:
                    command = _shell_command(step)
                    args.pop("command", None)
                    args.pop("cmd", None)
                    # The shell tool codex offers depends on its version and the model's family.
                    if "exec_command" in offered or not offered & {"shell_command", "shell"}:
                        name, args = "exec_command", dict(args, cmd=command)
                    elif "shell_command" in offered:
                        name, args = "shell_command", dict(args, command=command)
                    else:
                        name, args = "shell", dict(args, command=["bash", "-lc", command])
                out.append({"type": "function_call", "id": "fc_standin_%d" % next(ids), "status": "completed",
                            "call_id": "call_standin_%d" % next(ids), "name": name, "arguments": json.dumps(args)})
            return out

        def response(step, status, output):
            tokens_in, tokens_out = _estimate(step, request.raw)
            usage = {"input_tokens": tokens_in, "input_tokens_details": {"cached_tokens": 0},
                     "output_tokens": tokens_out, "output_tokens_details": {"reasoning_tokens": 0},
                     "total_tokens": tokens_in + tokens_out}
            return {"id": response_id, "object": "response", "created_at": int(time.time()), "model": model,
                    "status": status, "output": output, "usage": usage if status == "completed" else None}

        sequence = itertools.count()

        def sse(kind, data):
            data = dict(type=kind, sequence_number=next(sequence), **data)
            return ("event: %s\ndata: %s\n\n" % (kind, json.dumps(data))).encode()

        def events(step):
            yield sse("response.created", {"response": response(step, "in_progress", [])})
            done = items(step)
            for index, item in enumerate(done):
                if item["type"] == "message":
                    yield sse("response.output_item.added", {"output_index": index, "item": dict(item, content=[])})
                    yield sse("response.output_text.delta", {"output_index": index, "item_id": item["id"],
                                                             "content_index": 0, "delta": item["content"][0]["text"]})
                else:
                    yield sse("response.output_item.added", {"output_index": index,
                                                             "item": dict(item, arguments="", status="in_progress")})
                    yield sse("response.function_call_arguments.delta", {"output_index": index, "item_id": item["id"],
                                                                         "delta": item["arguments"]})
                yield sse("response.output_item.done", {"output_index": index, "item": item})
            yield sse("response.completed", {"response": response(step, "completed", done)})

        def error_body(status):
            return {"error": {"message": "stand-in error %d" % status, "code": None, "param": None,
                              "type": "invalid_request_error" if status < 500 else "server_error"}}

        streaming = body.get("stream") is True
        self._play(request, OPENAI, events if streaming else None,
                   lambda step: response(step, "completed", items(step)), error_body)

    # -- Gemini --------------------------------------------------------------------------------------
    def _gemini(self, request, body, method):
        request.provider = GEMINI
        if method == "countTokens":
            return self._json(200, {"totalTokens": max(1, len(request.raw) // 4)})
        config = body.get("generationConfig") or {}
        if method == "generateContent" and config.get("responseMimeType") == "application/json":
            # A side query (the model router, the next-speaker check, ...): an answer fitting its schema.
            schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}
            return self._json(200, self._gemini_response(Step.text(json.dumps(_from_schema(schema))), request,
                                                         body))

        def events(step):
            yield ("data: %s\r\n\r\n" % json.dumps(self._gemini_response(step, request, body))).encode()

        def error_body(status):
            name = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                    429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(status, "INTERNAL")
            return {"error": {"code": status, "message": "stand-in error %d" % status, "status": name}}

        self._play(request, GEMINI, events if method == "streamGenerateContent" else None,
                   lambda step: self._gemini_response(step, request, body), error_body)

    def _gemini_response(self, step, request, body):
        parts = []
        if step.text or step.kind == "text":
            parts.append({"text": step.text or ""})
        if step.kind == "tool":
            name, args = step.name, dict(step.input)
            if name in SHELL_NAMES:
                name = "run_shell_command"
                args.pop("cmd", None)
                args["command"] = _shell_command(step)
            parts.append({"functionCall": {"name": name, "args": args}})
        tokens_in, tokens_out = _estimate(step, request.raw)
        return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": tokens_in, "candidatesTokenCount": tokens_out,
                                  "totalTokenCount": tokens_in + tokens_out},
                "modelVersion": MODEL[GEMINI], "responseId": "standin-%d" % next(self.server.standin._ids)}


def _from_schema(schema):
    """A small value that fits a JSON schema (first enum value, 1 for numbers, "stand-in" for strings)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        return {k: _from_schema(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return []
    if kind in ("number", "integer"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    return "stand-in"


class StandIn:
    """The stand-in server: `with StandIn(Script([...])) as s: ... s.url ... s.requests`."""

    def __init__(self, script=None, host="127.0.0.1", port=0, verbose=False):
        self.script = script if script is not None else Script()
        self.host, self.port, self.verbose = host, port, verbose
        self._requests = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.standin = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="standin-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving; hung and delayed answers end (their connections close)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _record(self, request):
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self):
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def turns(self):
        """The requests that consumed a step of the script (model turns, not probes or side queries)."""
        return [r for r in self.requests if r.step is not None]

    def wait_for(self, predicate, timeout=10.0):
        """Poll until `predicate(requests)` is truthy; its value, or None at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self.requests)
            if value or time.monotonic() > deadline:
                return value or None
            time.sleep(0.02)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m supervisor_sessions.standin",
                                     description="Serve a provider stand-in (text replies only) for the agent CLIs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--text", default="done", help="the text of every reply")
    parser.add_argument("--verbose", action="store_true", help="log each request on stderr")
    args = parser.parse_args(argv)
    standin = StandIn(Script(default=Step.text(args.text)), host=args.host, port=args.port, verbose=args.verbose)
    standin.start()
    print("provider stand-in on %s (Anthropic /v1/messages, OpenAI /v1/responses, Gemini /v1beta); "
          "Ctrl-C stops it" % standin.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
