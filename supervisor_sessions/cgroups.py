"""One cgroup per session under one parent that caps all sessions together: v2 where its memory, pids and
cpu controllers are usable, else v1 (memory, pids, cpu, freezer hierarchies).

The launcher (still root) creates its session's group, writes the limits and moves itself in before it
drops privileges; whatever the worker forks stays inside. The plugin kills the whole group when the
session ends, reads whether the OOM killer struck, and removes the group once it is empty.
Stdlib only: the worker launcher imports it.
"""
import os
import signal

ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "pids", "cpu", "freezer")
V2_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def _counter(text, name):
    """The number after `name` in a 'key value' per line file (memory.events, memory.oom_control)."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return int(value)
    return 0


def parent_name(home):
    """The parent group of one instance: several instances (tests) on one machine never share it."""
    import hashlib  # here, not at the top: the launcher imports this module and must start fast
    return "supervisor-sessions/" + hashlib.sha256(os.fsencode(home)).hexdigest()[:12]


class Cgroups:
    """The session groups of one instance: version (1 or 2), and the directory of each controller."""

    def __init__(self, version, parent_dirs):
        self.version = version
        self.parent_dirs = dict(parent_dirs)   # controller (or "unified") -> parent directory

    @classmethod
    def detect(cls, parent, root=ROOT):
        """(Cgroups, None) when we may create groups here, else (None, the reason)."""
        unified = root if os.path.exists(os.path.join(root, "cgroup.controllers")) \
            else os.path.join(root, "unified")
        try:
            available = _read(os.path.join(unified, "cgroup.controllers")).split()
        except OSError:
            available = []
        if all(c in available for c in V2_CONTROLLERS) and os.access(unified, os.W_OK):
            return cls(2, {"unified": os.path.join(unified, parent)}), None
        mounted = [c for c in V1_CONTROLLERS if os.path.exists(os.path.join(root, c, "cgroup.procs"))]
        if len(mounted) == len(V1_CONTROLLERS):
            if all(os.access(os.path.join(root, c), os.W_OK) for c in mounted):
                return cls(1, {c: os.path.join(root, c, parent) for c in mounted}), None
            return None, "cgroup v1 hierarchies are not writable by this user (uid %d)" % os.geteuid()
        return None, ("no usable cgroups: v2 controllers %s (need %s), v1 hierarchies %s (need %s)"
                      % (available or "none", ", ".join(V2_CONTROLLERS), mounted or "none", ", ".join(V1_CONTROLLERS)))

    def to_spec(self):
        """What the launcher needs to find the groups again (JSON)."""
        return {"version": self.version, "parents": self.parent_dirs}

    @classmethod
    def from_spec(cls, spec):
        return cls(spec["version"], spec["parents"])

    def _dirs(self, name=None):
        return {c: os.path.join(p, name) if name else p for c, p in self.parent_dirs.items()}

    def _limit(self, name, memory_mb, cpus, pids):
        """Write the limits of group `name` (None: the parent)."""
        dirs = self._dirs(name)
        memory = memory_mb * 2 ** 20
        if self.version == 2:
            d = dirs["unified"]
            _write(os.path.join(d, "memory.max"), memory)
            _write(os.path.join(d, "memory.high"), memory * 9 // 10)
            if os.path.exists(os.path.join(d, "memory.swap.max")):
                _write(os.path.join(d, "memory.swap.max"), 0)
            _write(os.path.join(d, "pids.max"), pids)
            _write(os.path.join(d, "cpu.max"), "%d %d" % (int(cpus * CPU_PERIOD_US), CPU_PERIOD_US))
            return
        _write(os.path.join(dirs["memory"], "memory.limit_in_bytes"), memory)
        _write(os.path.join(dirs["memory"], "memory.soft_limit_in_bytes"), memory * 9 // 10)
        swap = os.path.join(dirs["memory"], "memory.memsw.limit_in_bytes")
        if os.path.exists(swap):
            _write(swap, memory)  # memory plus swap: no escape into swap
        _write(os.path.join(dirs["pids"], "pids.max"), pids)
        _write(os.path.join(dirs["cpu"], "cpu.cfs_period_us"), CPU_PERIOD_US)
        _write(os.path.join(dirs["cpu"], "cpu.cfs_quota_us"), int(cpus * CPU_PERIOD_US))

    def setup_parent(self, memory_mb, cpus, pids):
        """Create the parent group with the caps of all sessions together."""
        for directory in self._dirs().values():
            os.makedirs(directory, exist_ok=True)
        if self.version == 2:
            for directory in self._parents_to_enable():
                _write(os.path.join(directory, "cgroup.subtree_control"), " ".join("+" + c for c in V2_CONTROLLERS))
        self._limit(None, memory_mb, cpus, pids)

    def _parents_to_enable(self):
        """v2: every level from the mount point down to our parent must delegate the controllers."""
        parent = self.parent_dirs["unified"]
        levels, directory = [], parent
        while os.path.exists(os.path.join(os.path.dirname(directory), "cgroup.subtree_control")):
            directory = os.path.dirname(directory)
            levels.append(directory)
        return list(reversed(levels)) + [parent]

    def create(self, name, memory_mb, cpus, pids):
        """Make group `name` with its limits (it may exist already from an earlier try)."""
        for directory in self._dirs(name).values():
            os.makedirs(directory, exist_ok=True)
        self._limit(name, memory_mb, cpus, pids)

    def join(self, name, pid):
        """Move `pid` into group `name` in every hierarchy."""
        for directory in self._dirs(name).values():
            _write(os.path.join(directory, "cgroup.procs"), pid)

    def pids(self, name):
        """Pids in group `name` (the pids hierarchy, or the unified one); [] when it does not exist."""
        directory = self._dirs(name)["pids" if self.version == 1 else "unified"]
        try:
            return [int(p) for p in _read(os.path.join(directory, "cgroup.procs")).split()]
        except OSError:
            return []

    def kill(self, name):
        """SIGKILL every process of group `name`, frozen first so none can fork away; True if any was there."""
        directories = self._dirs(name)
        if self.version == 2:
            kill_file = os.path.join(directories["unified"], "cgroup.kill")
            if os.path.exists(kill_file):
                found = bool(self.pids(name))
                try:
                    _write(kill_file, 1)
                except OSError:
                    pass
                return found
        freezer = os.path.join(directories["freezer"], "freezer.state") if self.version == 1 else \
            os.path.join(directories["unified"], "cgroup.freeze")
        frozen = self._set(freezer, "FROZEN" if self.version == 1 else 1)
        found = False
        for pid in self.pids(name):
            try:
                os.kill(pid, signal.SIGKILL)
                found = True
            except ProcessLookupError:
                pass
        if frozen:
            self._set(freezer, "THAWED" if self.version == 1 else 0)
        return found

    @staticmethod
    def _set(path, value):
        try:
            _write(path, value)
            return True
        except OSError:
            return False

    def oom_killed(self, name):
        """How many processes of group `name` the OOM killer ended."""
        directory = self._dirs(name)["memory" if self.version == 1 else "unified"]
        try:
            text = _read(os.path.join(directory, "memory.oom_control" if self.version == 1 else "memory.events"))
        except OSError:
            return 0
        return _counter(text, "oom_kill")

    def remove(self, name):
        """Remove group `name` once it is empty; True when it is gone."""
        gone = True
        for directory in self._dirs(name).values():
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError:
                gone = False
        return gone
