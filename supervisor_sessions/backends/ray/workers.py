"""The plugin's side of the ray backend (inside supervisord: stdlib only, bounded work): a session's program
is the stub (stub.py); a queued session starts only where the cluster's view (placement.py) has room for it;
the stub's first line says the node it runs on; a session whose node was lost ends `interrupted`."""
import json
import os
import sys

from . import placement
from .stub import EXIT_LOST, PLACED, REMOTE_FILE
from .. import LocalWorkers
from ...confinement import oom_reason
from ...faults import InvalidSpec, NotCapable

ONLY_LOCAL = "the ray backend does not offer %s yet: its sessions' directories are on their nodes"


class RayWorkers(LocalWorkers):
    """Sessions run on the nodes of a Ray cluster (see the package's docstring)."""

    name = "ray"
    local = False

    def command(self, launch_file):
        return [sys.executable, "-I", "-m", "supervisor_sessions.backends.ray.stub", launch_file]

    def check(self, spec):
        if spec.workspace:
            raise InvalidSpec(ONLY_LOCAL % "workspaces")
        if spec.resume_from:
            raise InvalidSpec(ONLY_LOCAL % "resumeFrom")
        view = self._view()
        asked = placement.request(self._limits_of(spec), spec.gpus, spec.placement)
        if view is not None and placement.place(view["nodes"], asked, spec.placement.get("labels"), "total") is None:
            raise InvalidSpec("no node of the Ray cluster has %s%s (see GET /v1/status, cluster)" % (
                ", ".join("%s %g" % item for item in sorted(asked.items())),
                " with labels %s" % spec.placement["labels"] if spec.placement.get("labels") else ""))

    def _limits_of(self, spec):
        return dict({"memoryMB": self.settings.session_memory_mb, "cpus": self.settings.session_cpus}, **spec.limits)

    def launch_part(self, limits, spec):
        return {"ray": dict(self.record_part(limits, spec)["ray"], runDir=self.settings.run_dir)}

    def record_part(self, limits, spec):
        return {"ray": {"resources": placement.request(limits, spec.gpus, spec.placement),
                        "labels": spec.placement.get("labels") or {}}}

    def admissible(self, active, chosen):
        pending = [r for r in active.values() if r["status"] == "starting" and not r.get("node")]
        return placement.admissible(self._view(), pending, chosen)

    def _view(self):
        return placement.load(placement.view_path(self.settings.run_dir))

    def placed(self, sid, data):
        if b"\n" + PLACED.encode("ascii") not in b"\n" + data:
            return None
        note = self._note(sid)
        return {"node": note["node"]} if note.get("node") else None

    def _note(self, sid):
        try:
            with open(os.path.join(self.settings.session_state_dir(sid), REMOTE_FILE), encoding="utf-8") as f:
                note = json.load(f)
            return note if isinstance(note, dict) else {}
        except (OSError, ValueError):
            return {}

    def ending(self, sid, record, update):
        note = self._note(sid)
        fields = {"node": note["node"]} if note.get("node") and not record.get("node") else {}
        if update["status"] == "failed" and note.get("lost") and update.get("exitCode") == EXIT_LOST:
            fields.update(status="interrupted", cause="node", reason=note["lost"])
        elif update["status"] == "failed" and note.get("failed"):
            fields.update(cause="spawn", reason=note["failed"])
        elif update["status"] == "failed" and note.get("oom"):
            fields.update(cause="oom", reason=oom_reason(record))
        return fields

    def check_files(self, record):
        raise NotCapable(ONLY_LOCAL % "files and diffs")

    def cluster(self, active):
        view = self._view()
        if view is None:
            return {"backend": self.name, "nodes": [], "reachable": False}
        return {"backend": self.name, "reachable": True, "nodes": view["nodes"]}
