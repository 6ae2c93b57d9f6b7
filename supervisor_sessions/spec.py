"""Validation of a createSession spec: every user string is checked here and nowhere else."""
import re
import urllib.parse
from dataclasses import dataclass, field

from .faults import InvalidSpec
from .naming import is_session_id

DEFAULT_RUNTIME = "agentic-flow"
TASK_MAX_BYTES = 65_536  # in UTF-8; one argv string may hold 128 KiB
NAME_MAX_CHARS = 200
ENV_MAX_ENTRIES = 64
ENV_VALUE_MAX_CHARS = 32_768
# Set by the system for every worker; a spec may not override them.
RESERVED_ENV = frozenset({"HOME", "SESSION_ID", "SESSION_DIR", "SESSION_PORT", "PROXY_PORT", "MCP_CONFIG",
                          "SESSION_MEMORY_MB", "SESSION_CPUS", "SESSION_PIDS", "SESSION_GPUS",
                          "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"})

_IDENTIFIER = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_ENV_KEY = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What XML 1.0, and so XML-RPC, cannot carry: C0 controls but tab, newline and carriage return.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
FIELDS = ("agent", "task", "provider", "runtime", "name", "env", "timeoutSeconds", "limits", "gpus", "labels",
          "clientToken", "webhook", "budget", "stallSeconds", "interactive", "idleTimeoutSeconds", "approvals",
          "resumeFrom", "workspace", "placement")
# auto: tools run without asking (the sandbox is the boundary); ask: each waits for a decision; deny: none runs
APPROVAL_MODES = ("auto", "ask", "deny")
_CLIENT_TOKEN = re.compile(r"\A[\x21-\x7e]{1,128}\Z")
LABELS_MAX = 16
LABEL_VALUE_MAX_CHARS = 128
_LABEL_KEY = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._/-]{0,62}\Z")
LIMIT_FIELDS = {"memoryMB": (16, 2 ** 31 - 1), "cpus": (0.01, 4096), "pids": (8, 4_194_304)}
# What an agent may spend before it is stopped (failed, cause budget): its CLI's own report.
BUDGET_FIELDS = {"maxCostUsd": (0.000001, 1e9), "maxTokens": (1, 10 ** 15), "maxTurns": (1, 10 ** 9)}
_FRACTIONAL = frozenset({"cpus", "maxCostUsd"})
STALL_MAX_SECONDS = 10 ** 7
MAX_GPUS = 64
# What a webhook receives: terminal (a state event whose status is final), or events of a type, or all.
WEBHOOK_EVENTS = ("terminal", "created", "state", "removed", "all")
WEBHOOK_URL_MAX_CHARS = 2048
_NOT_URL = re.compile(r"[^\x21-\x7e]")  # spaces, control characters and non-ASCII (percent-encode them)
WORKSPACE_FIELDS = ("repo", "ref", "branch", "include", "setup", "commit")
# A repository git may clone for a workspace: over the network only (a file:// URL or a transport helper would
# reach what WORKSPACE_ROOTS does not allow, an ssh URL the service's own keys).
WORKSPACE_URL_SCHEMES = ("https", "http", "git")
_GIT_REF = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._/+-]{0,199}\Z")
INCLUDE_MAX = 64
SETUP_MAX_BYTES = 65_536
# Where a session may run on the ray backend: custom resources of the nodes and node labels. CPUs, memory and
# GPUs are asked for with limits and gpus.
PLACEMENT_FIELDS = ("resources", "labels")
PLACEMENT_MAX_ENTRIES = 16
_RESOURCE_NAME = re.compile(r"\A[A-Za-z][A-Za-z0-9_.:/-]{0,62}\Z")
_NODE_LABEL_VALUE = re.compile(r"\A[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?\Z")
RAY_OWN_RESOURCES = frozenset({"CPU", "GPU", "memory", "object_store_memory"})


@dataclass(frozen=True)
class SessionSpec:
    agent: str
    task: str
    provider: str
    runtime: str = DEFAULT_RUNTIME
    name: str = ""
    env: dict = field(default_factory=dict)
    timeout_seconds: int = 0  # 0: the configured default
    limits: dict = field(default_factory=dict)  # of LIMIT_FIELDS; the rest come from the settings
    gpus: int = 0
    labels: dict = field(default_factory=dict)
    client_token: str = ""  # idempotency: the same token within a day gives the same session
    webhook: dict = field(default_factory=dict)  # {url, events} of the session's own receiver, or {}
    budget: dict = field(default_factory=dict)   # of BUDGET_FIELDS
    stall_seconds: int = None  # an agent working this long with no output is stopped (0: never; None: the default)
    interactive: bool = False  # the agent's input stays open for more messages
    idle_timeout_seconds: int = None  # an interactive session with no message this long closes (None: the default)
    resume_from: str = ""  # the ended session whose agent (and directory) this one continues
    workspace: dict = field(default_factory=dict)  # {repo, url, ref, branch, include, setup, commit} or {}
    approvals: str = "auto"  # of APPROVAL_MODES
    placement: dict = field(default_factory=dict)  # {resources: {name: amount}, labels: {key: value}} or {}


def _text(spec, key, required=True):
    value = spec.get(key)
    if value is None:
        if required:
            raise InvalidSpec("'%s' is required" % key)
        return ""
    if not isinstance(value, str):
        raise InvalidSpec("'%s' must be a string, got %s" % (key, type(value).__name__))
    if "\0" in value:
        raise InvalidSpec("'%s' must not contain NUL characters" % key)
    bad = _NOT_XML.search(value)
    if bad:
        raise InvalidSpec("'%s' contains the control character U+%04X, which cannot be passed on"
                          % (key, ord(bad.group())))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidSpec("'%s' is not valid unicode (lone surrogate)" % key) from None
    return value


def _identifier(spec, key, required=True):
    value = _text(spec, key, required)
    if value and not _IDENTIFIER.match(value):
        raise InvalidSpec("'%s' must be 1-64 letters, digits, '.', '_' or '-' starting with a letter "
                          "or digit, got %r" % (key, value[:80]))
    return value


def _env(spec):
    env = spec.get("env")
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise InvalidSpec("'env' must be a struct of strings, got %s" % type(env).__name__)
    if len(env) > ENV_MAX_ENTRIES:
        raise InvalidSpec("'env' may hold at most %d variables, got %d" % (ENV_MAX_ENTRIES, len(env)))
    checked = {}
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise InvalidSpec("env name %r is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)"
                              % (str(key)[:80],))
        if key in RESERVED_ENV:
            raise InvalidSpec("env name %s is set by the system and cannot be overridden" % key)
        value = _text(env, key)
        if len(value) > ENV_VALUE_MAX_CHARS:
            raise InvalidSpec("env %s is longer than %d characters" % (key, ENV_VALUE_MAX_CHARS))
        checked[key] = value
    return checked


def _timeout(spec, maximum):
    value = spec.get("timeoutSeconds")
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise InvalidSpec("'timeoutSeconds' must be an integer from 1 to %d" % maximum)
    return value


def _number(value, integer):
    return (isinstance(value, int) or (not integer and isinstance(value, float))) and not isinstance(value, bool)


def _bounded(spec, name, fields):
    """The struct `name` of the spec, each of its `fields` ({key: (low, high)}) a number in its bounds."""
    given = spec.get(name)
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise InvalidSpec("'%s' must be a struct of %s" % (name, ", ".join(fields)))
    unknown = sorted(str(k) for k in given if k not in fields)
    if unknown:
        raise InvalidSpec("unknown field(s) of %s: %s; known: %s" % (name, ", ".join(unknown)[:200], ", ".join(fields)))
    checked = {}
    for key, value in given.items():
        low, high = fields[key]
        if value is None:
            continue
        if not _number(value, key not in _FRACTIONAL) or not low <= value <= high:
            raise InvalidSpec("%s.%s must be %s from %g to %g" % (
                name, key, "a number" if key in _FRACTIONAL else "an integer", low, high))
        checked[key] = value
    return checked


def _approvals(spec):
    value = spec.get("approvals", "auto")
    if value not in APPROVAL_MODES:
        raise InvalidSpec("'approvals' must be one of %s" % ", ".join(APPROVAL_MODES))
    return value


def _flag(spec, key):
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise InvalidSpec("'%s' must be true or false" % key)
    return value


def _idle_timeout(spec):
    value = spec.get("idleTimeoutSeconds")
    if value is None:
        return None
    if not _number(value, True) or not 1 <= value <= STALL_MAX_SECONDS:
        raise InvalidSpec("'idleTimeoutSeconds' must be an integer from 1 to %d" % STALL_MAX_SECONDS)
    return value


def _stall_seconds(spec):
    value = spec.get("stallSeconds")
    if value is None:
        return None
    if not _number(value, True) or not 0 <= value <= STALL_MAX_SECONDS:
        raise InvalidSpec("'stallSeconds' must be an integer from 0 (never) to %d" % STALL_MAX_SECONDS)
    return value


def _gpus(spec):
    value = spec.get("gpus")
    if value is None:
        return 0
    if not _number(value, True) or not 0 <= value <= MAX_GPUS:
        raise InvalidSpec("'gpus' must be an integer from 0 to %d" % MAX_GPUS)
    return value


def check_label(key, value):
    """Raise InvalidSpec unless key=value is a valid label (also used for label filters)."""
    if not isinstance(key, str) or not _LABEL_KEY.match(key):
        raise InvalidSpec("label name %r must be 1-63 letters, digits, '.', '_', '/' or '-', starting with a "
                          "letter or digit" % (str(key)[:80],))
    if not isinstance(value, str) or len(value) > LABEL_VALUE_MAX_CHARS or _CONTROL.search(value):
        raise InvalidSpec("label %s must be a string of at most %d characters without control characters"
                          % (key, LABEL_VALUE_MAX_CHARS))


def _labels(spec):
    labels = spec.get("labels")
    if labels is None:
        return {}
    if not isinstance(labels, dict) or len(labels) > LABELS_MAX:
        raise InvalidSpec("'labels' must be a struct of at most %d name: value strings" % LABELS_MAX)
    for key, value in labels.items():
        check_label(key, value)
    return dict(labels)


def git_ref(value, what):
    """`value` when git takes it as a ref name and no command line can mistake it for an option."""
    if not isinstance(value, str) or not _GIT_REF.match(value) or ".." in value or "//" in value \
            or value.endswith((".lock", "/", ".")) or "/." in value:
        raise InvalidSpec("'workspace.%s' must be a git ref name (letters, digits, '.', '_', '/', '+', '-'; not "
                          "starting with '-' or '.'), got %r" % (what, str(value)[:80]))
    return value


def _workspace_repo(repo):
    """(repo, is_url): an absolute local path, or a URL of WORKSPACE_URL_SCHEMES with a host."""
    if not isinstance(repo, str) or not repo or len(repo) > 4096 or _CONTROL.search(repo):
        raise InvalidSpec("'workspace.repo' must be a path or URL of at most 4096 characters")
    if repo.startswith("/"):
        return repo, False
    parsed = urllib.parse.urlsplit(repo)
    if parsed.scheme not in WORKSPACE_URL_SCHEMES or not parsed.hostname or _NOT_URL.search(repo) \
            or parsed.username or parsed.password:
        raise InvalidSpec("'workspace.repo' must be an absolute path (under WORKSPACE_ROOTS) or a %s URL "
                          "with a host and no credentials" % ", ".join(WORKSPACE_URL_SCHEMES))
    return repo, True


def _include(paths):
    if not isinstance(paths, list) or len(paths) > INCLUDE_MAX:
        raise InvalidSpec("'workspace.include' must be a list of at most %d relative paths" % INCLUDE_MAX)
    for path in paths:
        parts = path.split("/") if isinstance(path, str) else None
        if not parts or not path or path.startswith("/") or ".." in parts or len(path) > 1024 \
                or _CONTROL.search(path):
            raise InvalidSpec("'workspace.include' entries are paths inside the repository, got %r"
                              % str(path)[:80])
    return list(paths)


def _workspace(spec):
    workspace = spec.get("workspace")
    if workspace is None:
        return {}
    if not isinstance(workspace, dict) or "repo" not in workspace or set(workspace) - set(WORKSPACE_FIELDS):
        raise InvalidSpec("'workspace' must be a struct {%s} with repo" % ", ".join(WORKSPACE_FIELDS))
    repo, is_url = _workspace_repo(workspace["repo"])
    setup = workspace.get("setup", "")
    if not isinstance(setup, str) or len(setup.encode("utf-8")) > SETUP_MAX_BYTES or _NOT_XML.search(setup):
        raise InvalidSpec("'workspace.setup' must be a shell command of at most %d bytes" % SETUP_MAX_BYTES)
    include = _include(workspace.get("include", []))
    if include and is_url:
        raise InvalidSpec("'workspace.include' copies untracked files of a local repository, not of a URL")
    commit = workspace.get("commit", False)
    if not isinstance(commit, bool):
        raise InvalidSpec("'workspace.commit' must be true or false")
    return {"repo": repo, "url": is_url, "ref": git_ref(workspace.get("ref", "HEAD"), "ref"),
            "branch": git_ref(workspace["branch"], "branch") if "branch" in workspace else "",
            "include": include, "setup": setup, "commit": commit}


def _placement(spec):
    placement = spec.get("placement")
    if placement is None:
        return {}
    if not isinstance(placement, dict) or set(placement) - set(PLACEMENT_FIELDS):
        raise InvalidSpec("'placement' must be a struct {resources?, labels?}")
    resources, labels = placement.get("resources", {}), placement.get("labels", {})
    if not isinstance(resources, dict) or len(resources) > PLACEMENT_MAX_ENTRIES:
        raise InvalidSpec("'placement.resources' must be a struct of at most %d name: amount" % PLACEMENT_MAX_ENTRIES)
    for name, amount in resources.items():
        if not isinstance(name, str) or not _RESOURCE_NAME.match(name) or name in RAY_OWN_RESOURCES:
            raise InvalidSpec("'placement.resources' names a custom resource (1-63 letters, digits, '_', '.', ':', "
                              "'/', '-'; CPUs, memory and GPUs are asked with limits and gpus), got %r"
                              % (str(name)[:80],))
        if not _number(amount, False) or not 0 < amount <= 1e6:
            raise InvalidSpec("'placement.resources.%s' must be a number above 0 and at most 1e6" % name)
    if not isinstance(labels, dict) or len(labels) > PLACEMENT_MAX_ENTRIES:
        raise InvalidSpec("'placement.labels' must be a struct of at most %d key: value strings" % PLACEMENT_MAX_ENTRIES)
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key) or key.startswith("ray.io/"):
            raise InvalidSpec("'placement.labels' keys are node label names (1-63 letters, digits, '.', '_', '/', "
                              "'-'), got %r" % (str(key)[:80],))
        if not isinstance(value, str) or not _NODE_LABEL_VALUE.match(value):
            raise InvalidSpec("'placement.labels.%s' must be a label value (1-63 letters, digits, '.', '_', '-')" % key)
    return {"resources": {k: float(v) for k, v in resources.items()}, "labels": dict(labels)}


def _resume_from(spec):
    value = spec.get("resumeFrom")
    if value is None:
        return ""
    if not is_session_id(value):
        raise InvalidSpec("'resumeFrom' must be the id of an ended session")
    return value


def _client_token(spec):
    token = spec.get("clientToken")
    if token is None:
        return ""
    if not isinstance(token, str) or not _CLIENT_TOKEN.match(token):
        raise InvalidSpec("'clientToken' (Idempotency-Key) must be 1-128 printable ASCII characters without spaces")
    return token


def check_webhook_url(url):
    """Raise ValueError unless `url` can receive webhooks: http or https with a host, printable ASCII, at most
    WEBHOOK_URL_MAX_CHARS, no credentials (receivers check the signature instead)."""
    if not isinstance(url, str) or not url:
        raise ValueError("must be an http or https URL")
    if len(url) > WEBHOOK_URL_MAX_CHARS:
        raise ValueError("is longer than %d characters" % WEBHOOK_URL_MAX_CHARS)
    if _NOT_URL.search(url):
        raise ValueError("%r must be printable ASCII without spaces (percent-encode the rest)" % url[:80])
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # raises ValueError when it is not a port number
    except ValueError as e:
        raise ValueError("%r is not a valid URL (%s)" % (url[:80], e)) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("%r must be an http:// or https:// URL with a host" % url[:80])
    if "@" in parts.netloc:
        raise ValueError("must not hold credentials (user@host): receivers check the signature instead")


def webhook_events(value):
    """The kinds of events a webhook wants, from a list or a comma-separated string of WEBHOOK_EVENTS names;
    raise ValueError naming the known ones."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError("must be a list of %s" % ", ".join(WEBHOOK_EVENTS))
    names = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not names or set(names) - set(WEBHOOK_EVENTS):
        raise ValueError("must name some of %s, got %r" % (", ".join(WEBHOOK_EVENTS), str(value)[:80]))
    return names


def _webhook(spec):
    """The session's own webhook as {url, events}: from a URL or a struct {url, events?} (default terminal)."""
    webhook = spec.get("webhook")
    if webhook is None:
        return {}
    if isinstance(webhook, str):
        webhook = {"url": webhook}
    if not isinstance(webhook, dict) or "url" not in webhook or set(webhook) - {"url", "events"}:
        raise InvalidSpec("'webhook' must be a URL or a struct {url, events?}")
    try:
        check_webhook_url(webhook["url"])
    except ValueError as e:
        raise InvalidSpec("'webhook' url %s" % e) from None
    events = webhook.get("events")
    try:
        events = webhook_events(["terminal"] if events is None else events)
    except ValueError as e:
        raise InvalidSpec("'webhook' events %s" % e) from None
    return {"url": webhook["url"], "events": list(events)}


def parse_spec(spec, runtimes, timeout_max=2 ** 31 - 1):
    """Check a raw spec struct and return a SessionSpec; raise InvalidSpec saying what is wrong.

    `runtimes` is the set of known runtime names, or None to leave that check to the plugin. With resumeFrom,
    runtime, agent and provider may be left empty: the plugin takes them from the session it names.
    """
    if not isinstance(spec, dict):
        raise InvalidSpec("the spec must be a struct with agent, task and provider")
    unknown = sorted(str(k) for k in spec if k not in FIELDS)
    if unknown:
        raise InvalidSpec("unknown field(s) %s; known: %s" % (", ".join(unknown)[:200], ", ".join(FIELDS)))
    task = _text(spec, "task")
    if not task.strip():
        raise InvalidSpec("'task' must not be empty")
    if len(task.encode("utf-8")) > TASK_MAX_BYTES:
        raise InvalidSpec("'task' is longer than %d bytes in UTF-8" % TASK_MAX_BYTES)
    resume_from = _resume_from(spec)   # a resumed session's runtime, agent and provider default to its source's
    runtime = _identifier(spec, "runtime", required=False) or ("" if resume_from else DEFAULT_RUNTIME)
    if runtimes is not None and runtime and runtime not in runtimes:
        raise InvalidSpec("unknown runtime %r; known: %s" % (runtime, ", ".join(sorted(runtimes))))
    name = _text(spec, "name", required=False)
    if len(name) > NAME_MAX_CHARS or _CONTROL.search(name):
        raise InvalidSpec("'name' must be at most %d characters without control characters" % NAME_MAX_CHARS)
    return SessionSpec(agent=_identifier(spec, "agent", not resume_from), task=task,
                       provider=_identifier(spec, "provider", not resume_from),
                       runtime=runtime, name=name, env=_env(spec), timeout_seconds=_timeout(spec, timeout_max),
                       limits=_bounded(spec, "limits", LIMIT_FIELDS), gpus=_gpus(spec), labels=_labels(spec),
                       client_token=_client_token(spec), webhook=_webhook(spec),
                       budget=_bounded(spec, "budget", BUDGET_FIELDS), stall_seconds=_stall_seconds(spec),
                       interactive=_flag(spec, "interactive"), idle_timeout_seconds=_idle_timeout(spec),
                       approvals=_approvals(spec), resume_from=resume_from, workspace=_workspace(spec),
                       placement=_placement(spec))
