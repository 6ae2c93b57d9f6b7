"""The OpenAPI 3.1 document of the Management API, served at /v1/openapi.json."""
from .agentevents import AgentOutput
from .events import CAUSES, STATUSES
from .spec import WEBHOOK_EVENTS, WEBHOOK_URL_MAX_CHARS

_STATUSES = sorted(STATUSES)
_EVENT_TYPES = ["created", "state", "removed"] + list(AgentOutput.TYPES)
_CAUSES = sorted({cause for causes in CAUSES.values() for cause in causes})
_WEBHOOK_URL = {"type": "string", "format": "uri", "pattern": "^https?://[\\x21-\\x7e]+$",
                "maxLength": WEBHOOK_URL_MAX_CHARS}
_NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
_MS = {"type": ["integer", "null"], "description": "ms since the epoch"}
_CHANGES = {"type": "object", "description": "what the worker changed against the workspace's base commit",
            "properties": {"files": {"type": "integer"}, "insertions": {"type": "integer"},
                           "deletions": {"type": "integer"}, "commits": {"type": "integer"}}}
_FILE_PATH = {"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
              "description": "relative to the session directory; '..', absolute paths and links are refused"}
_ARCHIVE = {"name": "archive", "in": "query", "schema": {"enum": ["tar.gz"]},
            "description": "a directory as a gzipped tar"}
_LISTING = {"application/json": {"schema": {"type": "object", "required": ["path", "entries", "truncated"], "properties": {
    "path": {"type": "string"}, "truncated": {"type": "boolean", "description": "more than 10,000 entries"},
    "entries": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "type": {"enum": ["file", "dir", "link", "other"]},
        "size": {"type": "integer"}, "mtime": {"type": "integer", "description": "ms since the epoch"}}}}}}},
            "application/gzip": {}}


def _error_response(description):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _errors(*statuses):
    text = {400: "bad request: a field, query or body is invalid", 401: "missing or wrong bearer token",
            404: "no such session or route", 409: "conflict with the session's state",
            410: "the events asked for are older than the journal keeps (the message names the oldest seq)",
            411: "an upload without a Content-Length or a chunked body", 413: "body too large", 429: "the queue is full, or too many log followers (see Retry-After)", 503: "supervisord is not answering",
            507: "the disk is full"}
    return {str(s): _error_response(text[s]) for s in statuses}


def _session_id_parameter():
    return {"name": "sessionId", "in": "path", "required": True,
            "schema": {"type": "string", "format": "uuid"}}


def _query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _json_content(ref):
    return {"application/json": {"schema": {"$ref": "#/components/schemas/" + ref}}}


def openapi_document(version):
    """The whole document; `version` is the server's version."""
    feed_parameters = [
        _query("since", {"type": "integer", "minimum": 0}, "the first seq wanted (0: the oldest kept)"),
        _query("session", {"type": "string", "format": "uuid"}, "only this session's events"),
        _query("type", {"type": "string"}, "only these types, comma-separated: " + ", ".join(_EVENT_TYPES)),
        _query("label", {"type": "string", "pattern": "^[^=]+=.*$"}, "name=value; repeatable, every one must match")]
    feed_responses = {"200": {"description": "events (a JSON page holds at least one, unless the feed ends)",
                              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventPage"}},
                                          "text/event-stream": {"schema": {"type": "string"}},
                                          "application/x-ndjson": {"schema": {"type": "string"}}}},
                      **_errors(400, 401, 404, 410, 429, 503)}
    session_fields = {
        "sessionId": {"type": "string", "format": "uuid"},
        "name": {"type": ["string", "null"]},
        "agent": {"type": ["string", "null"]}, "task": {"type": ["string", "null"]},
        "provider": {"type": ["string", "null"]}, "runtime": {"type": ["string", "null"]},
        "status": {"type": "string", "enum": _STATUSES},
        "cause": {"type": ["string", "null"], "enum": _CAUSES + [None],
                  "description": "why it ended, in a word (completed: exit; failed: exit, signal, timeout, oom, "
                                 "spawn; stopped: request or cleanup; interrupted: shutdown)"},
        "reason": {"type": ["string", "null"]},
        "createdAt": _MS, "startTime": _MS, "endTime": _MS,
        "duration": {"type": ["integer", "null"], "description": "ms from start to end (or now)"},
        "exitCode": {"type": ["integer", "null"]}, "pid": {"type": ["integer", "null"]},
        "port": {"type": ["integer", "null"]},
        "timeoutSeconds": {"type": ["integer", "null"]},
        "limits": {"type": ["object", "null"], "description": "the limits in force (the spec's, else the defaults)",
                   "properties": {"memoryMB": {"type": "integer"}, "cpus": {"type": "number"},
                                  "pids": {"type": "integer"}}},
        "gpus": {"type": ["integer", "null"], "description": "GPUs asked for"},
        "gpuDevices": {"type": ["array", "null"], "items": {"type": "integer"},
                       "description": "the GPUs it holds (indices)"},
        "uid": {"type": ["integer", "null"], "description": "the user it runs as (root installs only)"},
        "labels": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        "agentState": {"type": ["string", "null"], "enum": ["working", "waiting_input", "waiting_approval",
                                                            "stalled", "done", None],
                       "description": "what the agent is doing (null for runtimes that are not agents)"},
        "usage": {"type": ["object", "null"], "description": "the agent's own report, summed over its turns",
                  "properties": {"inputTokens": {"type": "integer"}, "outputTokens": {"type": "integer"},
                                 "cachedTokens": {"type": "integer"}, "costUsd": {"type": "number"}}},
        "agentSessionId": {"type": ["string", "null"], "description": "the agent CLI's own (first) session id"},
        "resumedFrom": {"type": ["string", "null"], "format": "uuid",
                        "description": "the ended session whose agent this one continues"},
        "workspace": {"type": ["object", "null"], "description": "its clone (see Workspaces in the README)",
                      "properties": {"repo": {"type": "string"}, "ref": {"type": "string"},
                                     "branch": {"type": "string"}, "path": {"type": "string"},
                                     "commit": {"type": "boolean"}, "base": {"type": ["string", "null"]},
                                     "exported": {"type": "boolean"}, "exportError": {"type": "string"},
                                     "changesError": {"type": "string"}, "patchTruncated": {"type": "boolean"}}},
        "changes": dict(_CHANGES, type=["object", "null"]),
        "placement": {"type": ["object", "null"], "description": "what the spec asked of the cluster (ray backend)"},
        "ray": {"type": ["object", "null"], "description": "the resources and labels its placement group asked "
                                                          "Ray for (ray backend)"},
        "node": {"type": ["object", "null"], "description": "the Ray node it runs or ran on (ray backend)",
                 "properties": {"id": {"type": "string"}, "address": {"type": "string"},
                                "hostname": {"type": "string"}}},
        "sessionDir": {"type": ["string", "null"]}, "logFile": {"type": ["string", "null"]},
    }
    schemas = {
        "Error": {"type": "object", "required": ["error", "message"],
                  "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
        "SessionRequest": {
            "type": "object", "required": ["task"], "additionalProperties": False,
            "anyOf": [{"required": ["agent", "provider"]}, {"required": ["resumeFrom"]}],
            "properties": {
                "agent": _NAME, "provider": _NAME,
                "task": {"type": "string", "minLength": 1, "description": "at most 65536 bytes of UTF-8"},
                "runtime": {"type": "string", "enum": ["agentic-flow", "claude-code", "gemini-cli", "codex",
                                                       "shell"], "default": "agentic-flow"},
                "name": {"type": "string", "maxLength": 200},
                "env": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 64,
                        "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,127}$"}},
                "timeoutSeconds": {"type": "integer", "minimum": 1,
                                   "description": "stop the worker after this long (status failed, reason timeout)"},
                "limits": {"type": "object", "additionalProperties": False,
                           "description": "cgroup limits; the settings give the defaults",
                           "properties": {"memoryMB": {"type": "integer", "minimum": 16},
                                          "cpus": {"type": "number", "minimum": 0.01, "maximum": 4096},
                                          "pids": {"type": "integer", "minimum": 8, "maximum": 4194304}}},
                "gpus": {"type": "integer", "minimum": 0, "maximum": 64,
                         "description": "GPUs to hold exclusively; queued until that many are free"},
                "clientToken": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$",
                                "description": "as the Idempotency-Key header"},
                "labels": {"type": "object", "maxProperties": 16,
                           "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$"},
                           "additionalProperties": {"type": "string", "maxLength": 128},
                           "description": "name: value strings, shown in records and events, filterable"},
                "webhook": {"description": "a receiver of this session's events (see Webhooks in the README): a URL, "
                                           "or {url, events} where events picks terminal (the default), created, "
                                           "state, removed or all",
                            "oneOf": [_WEBHOOK_URL, {
                                "type": "object", "required": ["url"], "additionalProperties": False,
                                "properties": {"url": _WEBHOOK_URL, "events": {
                                    "type": "array", "minItems": 1, "items": {"enum": list(WEBHOOK_EVENTS)}}}}]},
                "budget": {"type": "object", "additionalProperties": False,
                           "description": "agents: stop it (failed, cause budget) once its own report passes one",
                           "properties": {"maxCostUsd": {"type": "number", "exclusiveMinimum": 0},
                                          "maxTokens": {"type": "integer", "minimum": 1},
                                          "maxTurns": {"type": "integer", "minimum": 1}}},
                "stallSeconds": {"type": "integer", "minimum": 0,
                                 "description": "agents: stop one working with no output this long (failed, "
                                                "cause stalled); 0 never; default AGENT_STALL_SECONDS"},
                "interactive": {"type": "boolean", "description": "keep the agent's input open for messages "
                                                                   "(runtimes that support input)"},
                "approvals": {"enum": ["auto", "ask", "deny"], "description": "auto: tools run without asking; "
                              "ask: each waits for a decision (runtimes that support approvals); deny: none runs"},
                "idleTimeoutSeconds": {"type": "integer", "minimum": 1,
                                       "description": "an interactive session with no message this long closes"},
                "workspace": {"type": "object", "required": ["repo"], "additionalProperties": False,
                              "description": "a clone of a repository on a branch of its own as the working "
                                             "directory (see Workspaces in the README)",
                              "properties": {
                                  "repo": {"type": "string", "description": "a path under WORKSPACE_ROOTS, or "
                                                                            "an https, http or git URL"},
                                  "ref": {"type": "string", "default": "HEAD"},
                                  "branch": {"type": "string", "description": "default sessions/<id>"},
                                  "include": {"type": "array", "maxItems": 64, "items": {"type": "string"},
                                              "description": "untracked files of the source to copy (.env)"},
                                  "setup": {"type": "string", "description": "a shell command run in the clone "
                                                                             "before the worker"},
                                  "commit": {"type": "boolean", "description": "commit what the worker left "
                                                                               "uncommitted on its branch"}}},
                "resumeFrom": {"type": "string", "format": "uuid",
                               "description": "agents: continue the agent of this ended session, in a copy of "
                                              "its directory (runtimes that support resume); runtime, agent and "
                                              "provider default to its own"},
                "placement": {"type": "object", "additionalProperties": False,
                              "description": "the ray backend: where the session may run (CPUs, memory and GPUs "
                                             "come from limits and gpus)",
                              "properties": {
                                  "resources": {"type": "object", "maxProperties": 16,
                                                "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
                                                "description": "custom resources of the nodes, e.g. {\"nodeB\": 1}"},
                                  "labels": {"type": "object", "maxProperties": 16,
                                             "additionalProperties": {"type": "string"},
                                             "description": "node labels the node must have"}}},
            }},
        "Accepted": {"type": "object", "required": ["sessionId", "status", "message", "sessionDir", "logFile"],
                     "properties": {"sessionId": {"type": "string", "format": "uuid"},
                                    "status": {"const": "accepted"}, "message": {"type": "string"},
                                    "sessionDir": {"type": "string"}, "logFile": {"type": "string"}}},
        "Session": {"type": "object", "required": ["sessionId", "status"], "properties": session_fields},
        "SessionDetail": {"allOf": [{"$ref": "#/components/schemas/Session"},
                                    {"type": "object", "required": ["logTail"],
                                     "properties": {"logTail": {"type": "string"}}}]},
        "SessionList": {"type": "object", "required": ["sessions", "count"], "properties": {
            "sessions": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}},
            "count": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"}}},
        "Event": {"type": "object", "required": ["seq", "type", "sessionId", "time"], "properties": {
            "seq": {"type": "integer", "minimum": 1}, "type": {"type": "string", "enum": _EVENT_TYPES},
            "sessionId": {"type": "string", "format": "uuid"}, "time": {"type": "integer"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "session": {"$ref": "#/components/schemas/Session", "description": "created: the record"},
            "status": {"type": "string", "enum": _STATUSES}, "cause": {"type": "string", "enum": _CAUSES},
            "reason": {"type": "string"}, "exitCode": {"type": "integer"}, "pid": {"type": "integer"},
            "startTime": {"type": "integer"}, "endTime": {"type": "integer"}},
            "description": "state: every field the change set (status, and pid, startTime, endTime, exitCode, "
                           "cause, reason as they come)"},
        "EventPage": {"type": "object", "required": ["events", "nextSeq"], "properties": {
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
            "nextSeq": {"type": "integer", "description": "pass as since to continue"}}},
        "Stopped": {"type": "object", "required": ["sessionId", "status"], "properties": {
            "sessionId": {"type": "string"},
            "status": {"type": "string", "enum": _STATUSES + ["stopping"],
                       "description": "the status it is moving to: stopping, or the final one"},
            "purged": {"type": "boolean"}}},
        "Runtimes": {"type": "object", "required": ["runtimes"], "properties": {"runtimes": {"type": "array", "items": {
            "type": "object", "required": ["runtime", "program", "installed", "supports"], "properties": {
                "runtime": {"type": "string"}, "program": {"type": "string"}, "installed": {"type": "boolean"},
                "version": {"type": "string", "description": "from its npm package, when it has one"},
                "supports": {"type": "object", "additionalProperties": {"type": "boolean"},
                             "description": "events, usage, cost, input, approvals, interrupt, resume"}}}}}},
        "Status": {"type": "object", "required": ["timestamp", "api", "workers", "services", "gpu", "system"],
                   "properties": {
            "timestamp": {"type": "string"},
            "api": {"type": "object", "properties": {"uptime": {"type": "integer"}, "version": {"type": "string"}}},
            "workers": {"type": "object", "properties": {"active": {"type": "integer"},
                                                         "queued": {"type": "integer"},
                                                         "total": {"type": "integer"},
                                                         "byStatus": {"type": "object"}}},
            "workspaces": {"type": "object", "description": "sessions with a workspace and the disk their clones "
                                                            "took when last measured (at start and at end)",
                           "properties": {"sessions": {"type": "integer"}, "diskBytes": {"type": "integer"}}},
            "services": {"type": "array", "items": {"type": "object", "required": ["name", "enabled", "state"],
                                                    "properties": {"name": {"type": "string"},
                                                                   "service": {"type": "string"},
                                                                   "enabled": {"type": "boolean"},
                                                                   "state": {"type": "string"},
                                                                   "reason": {"type": "string"}}}},
            "gpu": {"type": "object", "required": ["available", "gpus"], "properties": {
                "available": {"type": "boolean"}, "reason": {"type": "string"},
                "gpus": {"type": "array", "items": {"type": "object", "properties": {
                    "index": {"type": "integer"}, "name": {"type": "string"}, "uuid": {"type": "string"},
                    "memoryTotal": {"type": "integer"}, "memoryUsed": {"type": "integer"},
                    "utilization": {"type": ["integer", "null"]},
                    "temperature": {"type": ["integer", "null"]}}}}}},
            "system": {"type": "object"},
            "isolation": {"type": "object", "description": "what the sandbox enforces here, and why not the rest"},
            "cluster": {"type": "object", "required": ["backend", "nodes"],
                        "description": "where sessions run: supervisord (this machine, no nodes) or ray",
                        "properties": {
                            "backend": {"enum": ["supervisord", "ray"]}, "reachable": {"type": "boolean"},
                            "nodes": {"type": "array", "items": {"type": "object", "properties": {
                                "id": {"type": "string"}, "address": {"type": "string"},
                                "hostname": {"type": "string"}, "alive": {"type": "boolean"},
                                "head": {"type": "boolean"}, "total": {"type": "object"},
                                "available": {"type": "object"}, "labels": {"type": "object"},
                                "sessions": {"type": "integer", "description": "its live sessions"}}}}}}}},
    }
    sid = _session_id_parameter()
    paths = {
        "/health": {"get": {"summary": "The process is alive", "security": [],
                            "responses": {"200": {"description": "alive"}}}},
        "/ready": {"get": {"summary": "supervisord answers over XML-RPC", "security": [],
                           "responses": {"200": {"description": "ready"}, **_errors(503)}}},
        "/": {"get": {"summary": "The dashboard (HTML; see The dashboard in the README)", "security": [],
                      "responses": {"200": {"description": "the page", "content": {"text/html": {}}}}}},
        "/ui/{name}": {"get": {"summary": "The dashboard's script and style sheet", "security": [],
                               "parameters": [{"name": "name", "in": "path", "required": True,
                                               "schema": {"enum": ["app.js", "app.css"]}}],
                               "responses": {"200": {"description": "the file"}, **_errors(404)}}},
        "/ui/login": {"post": {"summary": "Sign a browser in: the key, once, for a session cookie (HttpOnly, "
                                          "SameSite=Strict) and a CSRF token to send as X-CSRF-Token",
                               "security": [],
                               "requestBody": {"required": True, "content": {"application/json": {"schema": {
                                   "type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}}}}},
                               "responses": {"200": {"description": "signed in: {csrf}, and the cookie"},
                                             **_errors(400, 401)}}},
        "/ui/session": {"get": {"summary": "Whether this browser is signed in: {signedIn, csrf?}", "security": [],
                                "responses": {"200": {"description": "the answer"}}}},
        "/ui/logout": {"post": {"summary": "Sign this browser out (cookie and X-CSRF-Token)", "security": [],
                                "responses": {"200": {"description": "signed out"}, **_errors(401)}}},
        "/v1/openapi.json": {"get": {"summary": "This document",
                                     "responses": {"200": {"description": "OpenAPI 3.1"}, **_errors(401)}}},
        "/v1/sessions": {
            "post": {"summary": "Spawn a worker session",
                     "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                     "schema": {"type": "string", "maxLength": 128},
                                     "description": "the same key within 24 h gives the same session (200)"}],
                     "requestBody": {"required": True, "content": _json_content("SessionRequest")},
                     "responses": {"202": {"description": "accepted", "content": _json_content("Accepted")},
                                   "200": {"description": "made earlier with this Idempotency-Key",
                                           "content": _json_content("Accepted")},
                                   **_errors(400, 401, 413, 429, 503, 507)}},
            "get": {"summary": "List sessions, newest first",
                    "parameters": [_query("status", {"type": "string", "enum": _STATUSES}, "only this status"),
                                   _query("label", {"type": "string", "pattern": "^[^=]+=.*$"}, "name=value; repeatable, every one must match"),
                                   _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                                    "default": 100}, "page size"),
                                   _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "skip")],
                    "responses": {"200": {"description": "sessions", "content": _json_content("SessionList")},
                                  **_errors(400, 401, 503)}}},
        "/v1/sessions/{sessionId}": {
            "get": {"summary": "A session with the end of its log", "parameters": [
                sid, _query("tail", {"type": "integer", "minimum": 0, "maximum": 10000, "default": 50},
                            "lines of log")],
                    "responses": {"200": {"description": "the session",
                                          "content": _json_content("SessionDetail")},
                                  **_errors(400, 401, 404, 503)}},
            "delete": {"summary": "Stop the worker and its process tree", "parameters": [
                sid, _query("purge", {"type": "boolean", "default": False},
                            "also remove its directory, log and config once stopped")],
                       "responses": {"200": {"description": "stopping or stopped",
                                             "content": _json_content("Stopped")},
                                     **_errors(400, 401, 404, 409, 503)}}},
        "/v1/sessions/{sessionId}/log": {
            "get": {"summary": "The session log; follow=true streams it until the session ends",
                    "parameters": [sid, _query("follow", {"type": "boolean", "default": False},
                                               "stream new output (text/event-stream with that Accept)"),
                                   _query("offset", {"type": "integer", "minimum": 0, "default": 0},
                                          "the byte to start from; an SSE chunk's id is the offset after it, "
                                          "so Last-Event-ID resumes a follow")],
                    "responses": {"200": {"description": "the log", "content": {
                        "text/plain": {"schema": {"type": "string"}},
                        "text/event-stream": {"schema": {"type": "string"}}}},
                        **_errors(400, 401, 404, 429, 503)}}},
        "/v1/sessions/{sessionId}/events": {
            "get": {"summary": "One session's events (its agent's too): the change feed of that session, paged "
                               "and streamed as GET /v1/events",
                    "parameters": [sid] + feed_parameters[:1] + feed_parameters[2:],
                    "responses": feed_responses}},
        "/v1/events": {
            "get": {"summary": "The change feed: every creation, state change and removal of a session and what "
                               "its agent did, in seq order; a page as JSON, or a stream (text/event-stream with "
                               "`id: <seq>` so Last-Event-ID resumes; application/x-ndjson)",
                    "parameters": feed_parameters, "responses": feed_responses}},
        "/v1/sessions/{sessionId}/messages": {
            "post": {"summary": "The next message for an interactive session's agent (a turn of its own)",
                     "parameters": [sid], "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"type": "object", "required": ["text"], "additionalProperties": False,
                                    "properties": {"text": {"type": "string", "minLength": 1}}}}}},
                     "responses": {"202": {"description": "queued"}, **_errors(400, 401, 404, 409, 503)}}},
        "/v1/sessions/{sessionId}/interrupt": {
            "post": {"summary": "Stop the current turn of an interactive session; it lives on for the next message",
                     "parameters": [sid], "responses": {"202": {"description": "interrupting"},
                                                         **_errors(401, 404, 409, 503)}}},
        "/v1/sessions/{sessionId}/close": {
            "post": {"summary": "Close an interactive session's input: it ends after the current turn",
                     "parameters": [sid], "responses": {"202": {"description": "closing"},
                                                         **_errors(401, 404, 409, 503)}}},
        "/v1/sessions/{sessionId}/approvals": {
            "get": {"summary": "The permission requests the session's agent waits on (approvals: ask)",
                    "parameters": [sid], "responses": {"200": {"description": "pending requests", "content": {
                        "application/json": {"schema": {"type": "object", "properties": {"approvals": {
                            "type": "array", "items": {"type": "object", "properties": {
                                "requestId": {"type": "string"}, "tool": {"type": "string"},
                                "input": {"type": "string"}, "since": {"type": "integer"}}}}}}}}},
                        **_errors(401, 404, 503)}}},
        "/v1/sessions/{sessionId}/approvals/{requestId}": {
            "post": {"summary": "Allow or deny one permission request",
                     "parameters": [sid, {"name": "requestId", "in": "path", "required": True,
                                          "schema": {"type": "string"}}],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["decision"], "additionalProperties": False,
                         "properties": {"decision": {"enum": ["allow", "deny"]}, "message": {"type": "string"}}}}}},
                     "responses": {"200": {"description": "answered"}, **_errors(400, 401, 404, 409, 503)}}},
        "/v1/sessions/{sessionId}/files": {
            "get": {"summary": "The session directory: its entries as JSON, or with archive=tar.gz its files and "
                               "directories (no links, no special files) as a gzipped tar",
                    "parameters": [sid, _ARCHIVE],
                    "responses": {"200": {"description": "a listing, or the archive", "content": _LISTING},
                                  **_errors(400, 401, 404, 503)}}},
        "/v1/sessions/{sessionId}/files/{path}": {
            "get": {"summary": "A file (application/octet-stream), or a directory's entries (JSON) or archive; "
                               "never through a link, nothing the worker does not own",
                    "parameters": [sid, _FILE_PATH, _ARCHIVE],
                    "responses": {"200": {"description": "the file's bytes, a listing or an archive",
                                          "content": dict(_LISTING, **{"application/octet-stream": {}})},
                                  **_errors(400, 401, 404, 503)}},
            "put": {"summary": "Upload a file (at most FILES_UPLOAD_MAX_MB); directories on the way are made; "
                               "it belongs to the session's worker",
                    "parameters": [sid, _FILE_PATH],
                    "requestBody": {"required": True, "content": {"application/octet-stream": {}}},
                    "responses": {"201": {"description": "written", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["path", "size"],
                        "properties": {"path": {"type": "string"}, "size": {"type": "integer"}}}}}},
                                  **_errors(400, 401, 404, 409, 411, 413, 503)}}},
        "/v1/sessions/{sessionId}/diff": {
            "get": {"summary": "What a session with a workspace changed, recorded when it ended: a patch against "
                               "the commit it started from (its branch's commits and what was left uncommitted); "
                               "?stat=true: the numbers per file",
                    "parameters": [sid, {"name": "stat", "in": "query", "schema": {"type": "boolean"}}],
                    "responses": {"200": {"description": "the patch (text/x-diff), or the numbers", "content": {
                        "text/x-diff": {}, "application/json": {"schema": {"type": "object", "properties": {
                            "changes": _CHANGES, "patchTruncated": {"type": "boolean"},
                            "files": {"type": "array", "items": {"type": "object", "properties": {
                                "path": {"type": "string"}, "insertions": {"type": "integer"},
                                "deletions": {"type": "integer"}, "binary": {"type": "boolean"}}}}}}}}},
                                  **_errors(401, 404, 409, 503)}}},
        "/v1/runtimes": {
            "get": {"summary": "Every runtime: installed or not, its version, what it supports",
                    "responses": {"200": {"description": "runtimes", "content": _json_content("Runtimes")},
                                  **_errors(401, 503)}}},
        "/v1/status": {"get": {"summary": "Workers, GPUs and the machine",
                               "responses": {"200": {"description": "status", "content": _json_content("Status")},
                                             **_errors(401, 503)}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "supervisor-sessions Management API", "version": version},
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
