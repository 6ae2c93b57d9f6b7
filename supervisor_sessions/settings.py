"""Every knob of the system, its default and its parser, in one place."""
import configparser
import functools
import os
import secrets
import sys
from dataclasses import dataclass

from .spec import check_webhook_url, webhook_events

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL
KEY_FILE_NAME = ".management-api-key"


_RESOURCE_MARKERS = {"templates": "session.conf.j2", "conf.d": "sessions.conf"}


def resource_dir(name):
    """The directory of `templates` or `conf.d`: beside the package in a checkout, else installed data."""
    for base in (os.path.dirname(PACKAGE_DIR), os.path.join(sys.prefix, "share", "supervisor-sessions")):
        path = os.path.join(base, name)
        if os.path.isfile(os.path.join(path, _RESOURCE_MARKERS[name])):
            return path
    raise FileNotFoundError("cannot find the %r directory of supervisor-sessions" % name)


class _Names(dict):
    """An empty environment that notes every variable asked of it."""

    def __init__(self):
        super().__init__()
        self.asked = []

    def get(self, key, default=None):
        self.asked.append(key)
        return default


# Settings read where they are used, not by Settings: secrets (never kept in a Settings that might be
# shown) and switches of single programs.
OTHER_SETTINGS = ("MANAGEMENT_API_KEY", "WEBHOOK_SECRET", "METRICS_PUBLIC", "ENABLE_DESKTOP", "ENABLE_CODE_SERVER",
                  "VNC_PORT", "NOVNC_PORT", "CODE_SERVER_PORT", "VNC_PASSWORD", "CODE_SERVER_PASSWORD")


def setting_names():
    """Every environment variable of ours: those Settings.from_env reads, in its order, then OTHER_SETTINGS."""
    env = _Names()
    Settings.from_env(env)
    return list(dict.fromkeys(env.asked + list(OTHER_SETTINGS)))


def socket_of_config(path):
    """The unix socket a supervisord config serves on (its [unix_http_server] file, `%(here)s` expanded);
    ValueError when it names none."""
    parser = configparser.RawConfigParser()
    if not parser.read(path):
        raise ValueError("SUPERVISORD_CONFIG: cannot read %s" % path)
    if not parser.has_option("unix_http_server", "file"):
        raise ValueError("SUPERVISORD_CONFIG: %s has no [unix_http_server] file (the socket to reach it)" % path)
    socket = parser.get("unix_http_server", "file").replace("%(here)s", os.path.dirname(os.path.abspath(path)))
    return os.path.join(os.path.dirname(os.path.abspath(path)), socket)


def default_home():
    """A per-user data directory: $XDG_DATA_HOME/supervisor-sessions or ~/.local/share/supervisor-sessions."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "supervisor-sessions")


def default_max_concurrent():
    """Two workers per core, but no more than one per GiB of memory, and at least one."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2 ** 30
    return max(1, min(2 * (os.cpu_count() or 1), memory_gib))


def memory_mb():
    """The machine's memory in MiB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2 ** 20


def _names(env, name, default=()):
    """A ','- or ':'-separated list of names or paths; `default` when unset."""
    raw = env.get(name)
    if raw is None:
        return tuple(default)
    return tuple(part.strip() for part in raw.replace(",", ":").split(":") if part.strip())


def _number(env, name, default, minimum, maximum, kind=int):
    """The variable `name` parsed as `kind` (int or float) within bounds; `default` when unset or empty."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError("%s must be %s, got %r" % (name, "an integer" if kind is int else "a number", raw)) from None
    if not minimum <= value <= maximum:
        raise ValueError("%s must be between %g and %g, got %g" % (name, minimum, maximum, value))
    return value


def _choice(env, name, choices):
    """One of `choices` (the first is the default)."""
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ValueError("%s must be one of %s, got %r" % (name, ", ".join(choices), value))
    return value


def _prices(env):
    """AGENT_PRICES: `runtime=input/output` USD per million tokens, comma-separated (e.g.
    `codex=1.25/10,gemini-cli=0.3/2.5`): the cost of the runtimes whose CLI reports tokens only."""
    prices = {}
    for item in filter(None, (part.strip() for part in env.get("AGENT_PRICES", "").split(","))):
        runtime, _, pair = item.partition("=")
        rates = pair.split("/")
        try:
            rates = tuple(float(rate) for rate in rates)
        except ValueError:
            rates = ()
        if not runtime.strip() or len(rates) != 2 or not all(0 <= rate < 1e6 for rate in rates):
            raise ValueError("AGENT_PRICES: %r is not runtime=input/output (USD per million tokens)" % item[:80])
        prices[runtime.strip()] = rates
    return prices


def _webhook_urls(env):
    """WEBHOOK_URLS: http(s) URLs separated by spaces or commas (a comma inside one is written %2C)."""
    urls = tuple(dict.fromkeys(env.get("WEBHOOK_URLS", "").replace(",", " ").split()))
    for url in urls:
        try:
            check_webhook_url(url)
        except ValueError as e:
            raise ValueError("WEBHOOK_URLS: %s" % e) from None
    return urls


def _webhook_events(env):
    """WEBHOOK_EVENTS: which events the WEBHOOK_URLS receive (default terminal)."""
    try:
        return webhook_events(env.get("WEBHOOK_EVENTS", "").strip() or "terminal")
    except ValueError as e:
        raise ValueError("WEBHOOK_EVENTS %s" % e) from None


@dataclass(frozen=True)
class Settings:
    """Configuration read from the environment; paths are derived from `home`."""

    home: str
    api_host: str = "127.0.0.1"
    api_port: int = 9090
    log_max_bytes: int = 50 * 1024 * 1024
    stop_wait_secs: int = 10
    mcp_config: str = ""
    max_concurrent: int = 4
    max_queued: int = 100
    timeout_default: int = 0
    timeout_max: int = 86400
    stall_seconds: int = 600          # an agent working with no output this long is stopped (0: never)
    result_grace_seconds: int = 10    # a one-shot agent still running this long after its result is stopped
    idle_timeout_seconds: int = 600   # an interactive agent with no message this long has its input closed
    resume_max_mb: int = 4096  # a session resuming another copies at most this much of its directory
    files_upload_max_mb: int = 100  # the largest file PUT into a session directory
    supervisor_socket: str = ""     # supervisord's unix socket, where it is not serve's
    supervisor_config: str = ""     # an existing supervisord's config (see "Into an existing supervisord")
    workspace_roots: tuple = ()     # directories whose git repositories a session's workspace may clone
    workspace_clone_timeout: int = 300  # seconds a workspace's clone (or fetch of a URL) may take
    approval_timeout_seconds: int = 300   # a permission request with no decision this long is denied
    agent_prices: tuple = ()   # (runtime, (input, output) USD per million tokens) pairs, from AGENT_PRICES
    templates_overlay: str = ""
    cleanup_interval: int = 3600
    client_timeout: int = 60
    api_threads: int = 16
    retention_hours: float = 24.0
    sandbox: str = "auto"
    sandbox_readonly_paths: tuple = ()
    service_user: str = "supervisor-sessions"
    uid_base: int = 61000
    session_memory_mb: int = 4096
    session_cpus: float = 2.0
    session_pids: int = 1024
    total_memory_mb: int = 0
    total_cpus: float = 0.0
    total_pids: int = 32768
    admission_memory_pressure: float = 40.0
    journal_retain: int = 100_000
    gpu_env: tuple = ("LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_PATH", "CUDA_CACHE_PATH",
                      "NVIDIA_DRIVER_CAPABILITIES", "NVIDIA_REQUIRE_CUDA", "NCCL_DEBUG")
    api_connection_limit: int = 1000
    api_first_request_timeout: int = 5
    api_connections_per_client: int = 200
    webhook_urls: tuple = ()
    webhook_events: tuple = ("terminal",)
    webhook_retry_seconds: int = 3600
    backend: str = "supervisord"    # where workers run: supervisord (this machine) or ray (a Ray cluster)
    ray_address: str = ""           # an existing Ray cluster (host:port); empty: serve starts a head of its own
    ray_key_file: str = ""          # the secret that seals what sessions get through Ray (every node has it)

    @classmethod
    def from_env(cls, env=None):
        """Read the settings from `env` (default os.environ); raise ValueError on a bad value."""
        env = os.environ if env is None else env
        home = os.path.abspath(os.path.expanduser(env.get("SESSIONS_HOME") or default_home()))
        if "%" in home:
            raise ValueError("SESSIONS_HOME must not contain '%%' (supervisor expands it): %r" % home)
        cores = os.cpu_count() or 1
        # All sessions together: 85% of the memory by default, so the rest of the machine keeps some.
        total_memory = _number(env, "SESSIONS_MEMORY_MB", memory_mb() * 85 // 100, 16, memory_mb())
        return cls(
            home=home,
            api_host=env.get("MANAGEMENT_API_HOST") or "127.0.0.1",
            api_port=_number(env, "MANAGEMENT_API_PORT", 9090, 0, 65535),
            log_max_bytes=_number(env, "SESSION_LOG_MAX_BYTES", 50 * 1024 * 1024, 1024, 2 ** 40),
            stop_wait_secs=_number(env, "SESSION_STOP_WAIT_SECS", 10, 1, 3600),
            mcp_config=env.get("MCP_CONFIG") or os.path.join(home, ".config", "agentic-flow", "mcp.json"),
            max_concurrent=_number(env, "MAX_CONCURRENT_SESSIONS", default_max_concurrent(), 1, 100_000),
            max_queued=_number(env, "MAX_QUEUED_SESSIONS", 100, 0, 100_000),
            timeout_default=_number(env, "SESSION_TIMEOUT_SECONDS", 0, 0, 2 ** 31 - 1),
            timeout_max=_number(env, "SESSION_TIMEOUT_MAX_SECONDS", 86400, 1, 2 ** 31 - 1),
            stall_seconds=_number(env, "AGENT_STALL_SECONDS", 600, 0, 10 ** 7),
            result_grace_seconds=_number(env, "AGENT_RESULT_GRACE_SECONDS", 10, 1, 3600),
            idle_timeout_seconds=_number(env, "AGENT_IDLE_TIMEOUT_SECONDS", 600, 1, 10 ** 7),
            resume_max_mb=_number(env, "RESUME_MAX_MB", 4096, 1, 2 ** 31 - 1),
            files_upload_max_mb=_number(env, "FILES_UPLOAD_MAX_MB", 100, 1, 1 << 20),
            supervisor_socket=os.path.abspath(env["SUPERVISOR_SOCKET"]) if env.get("SUPERVISOR_SOCKET") else "",
            supervisor_config=os.path.abspath(env["SUPERVISORD_CONFIG"]) if env.get("SUPERVISORD_CONFIG") else "",
            workspace_roots=tuple(os.path.abspath(p) for p in _names(env, "WORKSPACE_ROOTS")),
            workspace_clone_timeout=_number(env, "WORKSPACE_CLONE_TIMEOUT_SECONDS", 300, 1, 86400),
            approval_timeout_seconds=_number(env, "APPROVAL_TIMEOUT_SECONDS", 300, 1, 10 ** 7),
            agent_prices=tuple(_prices(env).items()),
            templates_overlay=env.get("SESSIONS_TEMPLATES_DIR") or os.path.join(home, "templates"),
            cleanup_interval=_number(env, "CLEANUP_INTERVAL", 3600, 1, 10 ** 7),
            client_timeout=_number(env, "MANAGEMENT_API_CLIENT_TIMEOUT", 60, 1, 3600),
            api_threads=_number(env, "MANAGEMENT_API_THREADS", 16, 4, 1024),
            retention_hours=_number(env, "SESSION_RETENTION_HOURS", 24.0, 0.0, 10.0 ** 6, float),
            sandbox=_choice(env, "SESSIONS_SANDBOX", ("auto", "off")),
            sandbox_readonly_paths=tuple(os.path.abspath(p) for p in _names(env, "SANDBOX_READONLY_PATHS")),
            service_user=env.get("SESSIONS_SERVICE_USER") or "supervisor-sessions",
            uid_base=_number(env, "SANDBOX_UID_BASE", 61000, 1000, 2 ** 31 - 200_000),
            session_memory_mb=_number(env, "SESSION_MEMORY_MB", min(4096, total_memory), 16, total_memory),
            session_cpus=_number(env, "SESSION_CPUS", float(min(2, cores)), 0.01, float(cores), float),
            session_pids=_number(env, "SESSION_PIDS", 1024, 8, 4_194_304),
            total_memory_mb=total_memory,
            total_cpus=_number(env, "SESSIONS_CPUS", float(cores), 0.01, float(cores), float),
            total_pids=_number(env, "SESSIONS_PIDS", 32768, 16, 4_194_304),
            admission_memory_pressure=_number(env, "ADMISSION_MEMORY_PRESSURE", 40.0, 0.0, 100.0, float),
            journal_retain=_number(env, "EVENTS_RETAINED", 100_000, 10, 10_000_000),
            gpu_env=_names(env, "GPU_ENV_PASSTHROUGH", cls.gpu_env),
            api_connection_limit=_number(env, "MANAGEMENT_API_CONNECTION_LIMIT", 1000, 10, 100_000),
            api_first_request_timeout=_number(env, "MANAGEMENT_API_FIRST_REQUEST_TIMEOUT", 5, 1, 3600),
            api_connections_per_client=_number(env, "MANAGEMENT_API_CONNECTIONS_PER_CLIENT", 200, 1, 100_000),
            webhook_urls=_webhook_urls(env),
            webhook_events=_webhook_events(env),
            webhook_retry_seconds=_number(env, "WEBHOOK_RETRY_SECONDS", 3600, 1, 30 * 86400),
            backend=_choice(env, "SESSIONS_BACKEND", ("supervisord", "ray")),
            ray_address=env.get("RAY_ADDRESS", "").strip(),
            ray_key_file=os.path.abspath(env["SESSIONS_RAY_KEY_FILE"]) if env.get("SESSIONS_RAY_KEY_FILE") else "",
        )

    @property
    def ray_secrets_key_file(self):
        """The secret that seals what sessions get through Ray: SESSIONS_RAY_KEY_FILE, else one in the home."""
        return self.ray_key_file or os.path.join(self.home, ".ray-secrets-key")

    @property
    def sessions_dir(self):
        return os.path.join(self.home, "workspace", "sessions")

    @property
    def session_logs_dir(self):
        return os.path.join(self.home, "logs", "sessions")

    @property
    def logs_dir(self):
        return os.path.join(self.home, "logs")

    @property
    def run_dir(self):
        return os.path.join(self.home, "run")

    @functools.cached_property
    def socket_path(self):
        """supervisord's unix socket: SUPERVISOR_SOCKET, else the one SUPERVISORD_CONFIG names (read once),
        else serve's."""
        if self.supervisor_socket:
            return self.supervisor_socket
        if self.supervisor_config:
            return socket_of_config(self.supervisor_config)
        return os.path.join(self.run_dir, "supervisor.sock")

    @property
    def ctl_config(self):
        """The config supervisorctl reads: an existing supervisord's (SUPERVISORD_CONFIG), else serve's."""
        return self.supervisor_config or self.supervisord_conf

    @property
    def pid_file(self):
        return os.path.join(self.run_dir, "supervisord.pid")

    @property
    def supervisord_conf(self):
        return os.path.join(self.run_dir, "supervisord.conf")

    @property
    def session_conf_dir(self):
        """The include directory that holds one rendered `sess-<id>.conf` per session."""
        return os.path.join(self.home, "conf", "sessions")

    @property
    def quarantine_dir(self):
        return os.path.join(self.home, "conf", "quarantine")

    @property
    def key_file(self):
        """Where a generated API key is kept between starts (0600)."""
        return os.path.join(self.home, KEY_FILE_NAME)

    @property
    def api_key_file(self):
        """The file through which the API gets its key at each start (0600): never the environment."""
        return os.path.join(self.run_dir, "api-key")

    @property
    def webhook_secret_file(self):
        """The secret that signs webhooks (0600): WEBHOOK_SECRET, else generated here once."""
        return os.path.join(self.run_dir, "webhook-secret")

    @property
    def webhooks_dir(self):
        """The webhook deliverer's own directory (0700; the service user's under root): its progress."""
        return os.path.join(self.home, "webhooks")

    @property
    def webhooks_state_file(self):
        return os.path.join(self.webhooks_dir, "state.json")

    @property
    def state_dir(self):
        """The service's own state (0700): session records, launch specs, rendered configs. No worker
        ever sees or writes it; nothing under the session directories is read back as truth."""
        return os.path.join(self.home, "state")

    @property
    def workspace_cache_dir(self):
        """Bare mirrors of the repository URLs that workspaces clone, shared by the sessions."""
        return os.path.join(self.state_dir, "workspace-cache")

    def session_state_dir(self, session_id):
        return os.path.join(self.state_dir, "sessions", session_id)

    def session_dir(self, session_id):
        return os.path.join(self.sessions_dir, session_id)

    def log_file(self, session_id):
        return os.path.join(self.session_logs_dir, session_id + ".log")

    def conf_file(self, group):
        return os.path.join(self.session_conf_dir, group + ".conf")

    def make_dirs(self):
        """Create every directory the system writes to."""
        for path in (self.sessions_dir, self.session_logs_dir, self.session_conf_dir, self.run_dir,
                     os.path.join(self.state_dir, "sessions")):
            os.makedirs(path, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        # The run dir holds the socket (0700, owned by the service user when root runs us): others may
        # pass through it to that socket, but not list it.
        os.chmod(self.run_dir, 0o711)

    def check_socket_path(self):
        """Raise ValueError when the unix socket path is too long for the kernel."""
        if len(os.fsencode(self.socket_path)) > SOCKET_PATH_MAX:
            raise ValueError("the socket path %s is %d bytes; unix sockets allow %d: choose a shorter "
                             "SESSIONS_HOME" % (self.socket_path, len(os.fsencode(self.socket_path)),
                                                SOCKET_PATH_MAX))


def ensure_secret(given, path):
    """(secret, generated): `given` when set, else the one kept in `path` (generated once, mode 0600)."""
    if given:
        return given, False
    try:
        with open(path) as f:
            secret = f.read().strip()
    except FileNotFoundError:
        secret = ""
    if secret:
        return secret, False
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret, True


def ensure_api_key(settings, env):
    """Return (key, generated): MANAGEMENT_API_KEY from env, else the key kept in the home (made once, 0600)."""
    return ensure_secret(env.get("MANAGEMENT_API_KEY", ""), settings.key_file)
