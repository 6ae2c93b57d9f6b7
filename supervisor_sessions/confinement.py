"""The plugin's side of confining workers: the limits a session gets, the sandbox part of its launch spec,
the user and GPUs it is granted when it starts, and what is left to reclaim when it ends.

The launcher does the confining itself (see launch.py); this decides what it is told. Every method does
bounded work on supervisord's thread: a few small files, one cgroup directory.
"""
import os

from . import gpus, identity, sandbox
from .events import LIVE
from .faults import InvalidSpec
from .isolation import Isolation


def memory_pressure(path="/proc/pressure/memory"):
    """The share of the last 10 s in which some task waited for memory (PSI), in percent; 0 without PSI."""
    try:
        with open(path) as f:
            first = f.readline().split()
        return float(dict(field.split("=", 1) for field in first[1:])["avg10"])
    except (OSError, ValueError, KeyError, IndexError):
        return 0.0


def oom_reason(record):
    """The reason of a session (its record) that the OOM killer ended."""
    return ("memory: the OOM killer ended it at its limit of %s MB (limits.memoryMB)"
            % record.get("limits", {}).get("memoryMB", "?"))


class Confinement:
    """What this machine enforces (Isolation) turned into each session's limits, grants and clean-up."""

    def __init__(self, settings, log):
        self.settings = settings
        self._log = log
        self.isolation = Isolation(settings, log.warn)
        self.gpus = gpus.indices()
        self._roots = {}               # PATH -> the read-only roots that make its programs run in the sandbox
        self._cgroups_to_remove = {}   # session id -> the uid it ran as, held until its cgroup is gone

    def limits(self, spec, local=True):
        """The session's limits: the spec's, else the settings' defaults; raise InvalidSpec beyond what this
        machine has (`local`: the session runs here; elsewhere its node's resources are the backend's to check)."""
        settings = self.settings
        limits = {"memoryMB": settings.session_memory_mb, "cpus": settings.session_cpus, "pids": settings.session_pids}
        limits.update(spec.limits)
        if not local:
            return limits
        if limits["memoryMB"] > settings.total_memory_mb:
            raise InvalidSpec("limits.memoryMB %d is more than all sessions together may use (%d MB, "
                              "SESSIONS_MEMORY_MB)" % (limits["memoryMB"], settings.total_memory_mb))
        if limits["cpus"] > settings.total_cpus:
            raise InvalidSpec("limits.cpus %g is more than all sessions together may use (%g, SESSIONS_CPUS)"
                              % (limits["cpus"], settings.total_cpus))
        if spec.gpus > len(self.gpus):
            raise InvalidSpec("gpus: %d asked, but this machine has %s" % (
                spec.gpus, "no GPU" if not self.gpus else "%d GPUs" % len(self.gpus)))
        return limits

    def launch_spec(self, limits, gpus_asked, worker_path):
        """The launch spec's confinement fields for a session with these limits and this PATH."""
        cgroups = self.isolation.cgroups
        return {"limits": limits, "passEnv": list(self.settings.gpu_env) if gpus_asked else [],
                "cgroup": cgroups.to_spec() if cgroups else None, "sandbox": self._sandbox(worker_path)}

    def _sandbox(self, worker_path):
        if not self.isolation.bwrap:
            return None
        if worker_path not in self._roots:
            roots = sandbox.readonly_roots(worker_path.split(os.pathsep), self.settings.sandbox_readonly_paths,
                                           protected=[self.settings.home])
            if self.isolation.users:  # bwrap binds as the worker's user: what it cannot reach, it cannot bind
                uid, gid = self.isolation.users[0]
                blocked = {root: identity.blocked_path(uid, gid, [root]) for root in roots}
                for root, where in blocked.items():
                    if where:
                        self._log.warn("sessions: %s is not bound into sandboxes: worker users cannot pass "
                                       "through %s" % (root, where))
                roots = [root for root in roots if not blocked[root]]
            self._roots[worker_path] = roots
        return {"bwrap": self.isolation.bwrap, "roots": self._roots[worker_path], "landlock": self.isolation.landlock}

    def room(self, active):
        """(how many more sessions the users and memory pressure allow now, or None for no such bound;
        how many GPUs are free), given the `active` records (queued and live)."""
        room = None
        if self.isolation.users:
            room = len(self._free_users(active))
        if memory_pressure() > self.settings.admission_memory_pressure > 0:
            room = 0
        return room, len(self._free_gpus(active))

    def _free_users(self, active):
        """Worker users that no live session holds, nor one whose cgroup is still being emptied."""
        taken = {r.get("uid") for r in active.values() if r["status"] in LIVE}
        taken.update(self._cgroups_to_remove.values())
        return [user for user in self.isolation.users if user[0] not in taken]

    def _free_gpus(self, active):
        taken = {i for r in active.values() if r["status"] in LIVE for i in r.get("gpuDevices", ())}
        return [i for i in self.gpus if i not in taken]

    def grant(self, launch, record, active, local_gpus=True):
        """Give a session that starts now its user and its GPUs (of this machine, when it runs here: see
        `local_gpus`): updates `launch` (the launch spec) and returns the record fields that say what it holds."""
        fields = {}
        if self.isolation.users:
            uid, gid = self._free_users(active)[0]
            launch["user"] = {"uid": uid, "gid": gid}
            fields["uid"] = uid
        if self.gpus and local_gpus:
            held = self._free_gpus(active)[:record.get("gpus", 0)]
            visible = ",".join(map(str, held))
            launch["sessionEnv"].update(CUDA_VISIBLE_DEVICES=visible, NVIDIA_VISIBLE_DEVICES=visible or "void")
            if launch.get("sandbox"):
                launch["sandbox"]["devices"] = gpus.device_files(held)
            fields["gpuDevices"] = held
        return fields

    def oom_reason(self, sid, record):
        """The reason of a session the OOM killer ended, or None."""
        cgroups = self.isolation.cgroups
        if cgroups is None or not cgroups.oom_killed(sid):
            return None
        return oom_reason(record)

    def reclaim(self, sid, record, session_dir):
        """After a session's worker ended: kill what is left in its cgroup, remove the group (retried by
        reclaim_pending while it is still busy) and take its directory back from its user. True when
        nothing of it is left."""
        cgroups = self.isolation.cgroups
        if cgroups is not None:
            cgroups.kill(sid)
            if cgroups.remove(sid):
                self._cgroups_to_remove.pop(sid, None)
            else:
                self._cgroups_to_remove[sid] = (record or {}).get("uid")
        if record and record.get("uid") and sid not in self._cgroups_to_remove:
            try:
                os.chown(session_dir, os.geteuid(), os.getegid())
            except OSError:
                pass
        return sid not in self._cgroups_to_remove

    def pending(self):
        """Sessions whose cgroup still has to be removed."""
        return list(self._cgroups_to_remove)
