"""Prometheus metrics of the Management API, in a registry of its own per app (prometheus_client)."""
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .events import STATUSES

SPAWN_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ApiMetrics:
    """Request counts and durations by route and status, spawn latency, sessions by state, queue length."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("sessions_api_requests_total", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.durations = Histogram("sessions_api_request_duration_seconds", "Time to answer an HTTP request",
                                   ["method", "route"], registry=self.registry)
        self.spawns = Histogram("sessions_spawn_duration_seconds", "POST /v1/sessions: createSession until "
                                "the session is running or queued", buckets=SPAWN_BUCKETS, registry=self.registry)
        self.sessions = Gauge("sessions", "Sessions by state", ["state"], registry=self.registry)
        self.queue = Gauge("sessions_queue_length", "Sessions waiting for a slot", registry=self.registry)
        self.workspaces = Gauge("sessions_workspaces", "Sessions with a workspace (a clone in their directory)",
                                registry=self.registry)
        self.workspace_bytes = Gauge("sessions_workspace_disk_bytes",
                                     "Disk their clones took when last measured", registry=self.registry)

    def observe_request(self, method, route, status, seconds):
        self.requests.labels(method, route, str(status)).inc()
        self.durations.labels(method, route).observe(seconds)

    def render(self, counts, workspaces):
        """The exposition text, with the session gauges set from `counts` ({state: n}) and `workspaces`
        ({sessions, diskBytes})."""
        for state in sorted(STATUSES):
            self.sessions.labels(state).set(counts.get(state, 0))
        self.queue.set(counts.get("queued", 0))
        self.workspaces.set(workspaces["sessions"])
        self.workspace_bytes.set(workspaces["diskBytes"])
        return generate_latest(self.registry)
