"""Where a session's worker runs: the one thing that differs between backends.

The plugin (rpcinterface.py) keeps what every backend shares, once: validation, the queue, records, the
event journal, agent events and guards, stop and timeouts, the log. A session is a supervisord program on
every backend; its backend says which program that is, what it can and cannot do, where a queued session
fits, and what its ending adds to the record:

  local (SESSIONS_BACKEND=supervisord, the default)  the launcher, on this machine (launch.py)
  ray   (SESSIONS_BACKEND=ray)                        a stub that has the bridge run the launcher on the node
                                                      Ray places it on (ray/)
"""
import sys

from ..faults import InvalidSpec


class LocalWorkers:
    """Sessions run by supervisord on this machine."""

    name = "supervisord"
    local = True

    def __init__(self, settings):
        self.settings = settings

    def command(self, launch_file):
        """The argv of a session's program."""
        return [sys.executable, "-I", "-m", "supervisor_sessions.launch", launch_file]

    def check(self, spec):
        """Raise InvalidSpec for what this backend cannot do."""
        if spec.placement:
            raise InvalidSpec("'placement' chooses a node of a Ray cluster: it needs SESSIONS_BACKEND=ray")

    def launch_part(self, limits, spec):
        """What the launch spec needs besides what every backend's has."""
        return {}

    def record_part(self, limits, spec):
        """What the record keeps besides what every backend's does."""
        return {}

    def admissible(self, active, chosen):
        """Of `chosen` (queued records the plugin's own bounds let start now), those that may start."""
        return chosen

    def placed(self, sid, data):
        """The record fields that a line of the session's program says (where it runs), or None."""
        return None

    def ending(self, sid, record, update):
        """The record fields a session's ending adds (cause and reason, where its backend knows better)."""
        return {}

    def check_files(self, record):
        """Raise NotCapable where the session's files are not on this machine."""

    def cluster(self, active):
        """The backend and its nodes, for /v1/status."""
        return {"backend": self.name, "nodes": []}


def for_settings(settings):
    """The backend SESSIONS_BACKEND names."""
    if settings.backend == "ray":
        from .ray.workers import RayWorkers
        return RayWorkers(settings)
    return LocalWorkers(settings)
