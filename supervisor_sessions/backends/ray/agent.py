"""The agent of one Ray node: a long-lived actor (one per node, named for it, pinned to it) that runs the
sessions Ray placed there as processes, a keeper (keeper.py) and our launcher each, and keeps their output
until the API side has read it.

One actor per node and not one per session: a session then starts in milliseconds on a warm process instead
of the second a new Ray worker costs, and costs no Ray worker (about 40 MB) of its own. What a session
holds of the cluster's resources is held by its placement group, which the bridge makes (bridge.py).
Secrets come sealed (sealed.py) and are opened here with the node's own key; the launch spec is written
to a node-local file only root reads, which the launcher deletes once read.
"""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from . import keeper, sealed
from ... import gpus
from ...launch import BASE_ENV
from ...monitor import TreeSampler
from ...store import atomic_write

OUTPUT_KEPT_MAX = 16 * 1024 * 1024   # output not read yet that a session may pile up; beyond, its oldest is dropped
READ_MAX = 1024 * 1024               # the most one read returns


class _Run:
    """One session on this node: its keeper, its output not read yet, how it ended."""

    def __init__(self, sid, process, launch_file):
        self.sid = sid
        self.process = process
        self.launch_file = launch_file
        self.output = bytearray()
        self.base = 0          # the offset of output[0] in all the output the session wrote
        self.dropped = 0
        self.ended = None      # {"code": int or None, "signal": int or None} once the keeper exited
        self.gpus = []         # the indices of this node's GPUs it holds


class NodeAgent:
    """Starts, feeds, stops and reads the sessions of this node (see the module's docstring)."""

    def __init__(self, state_dir):
        self._state_dir = state_dir      # node-local: launch specs wait here for their launcher
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        self._runs = {}
        self._gpus = gpus.indices()     # this node's GPUs; Ray counts them (the placement group), we pick which
        self._launching = threading.Lock()
        self._sampler = TreeSampler()
        self._changed = threading.Condition()
        self._spawns = queue.Queue()
        # Keepers die with the thread that forked them (PR_SET_PDEATHSIG): one thread forks them all, and
        # lives as long as this actor.
        threading.Thread(target=self._spawner, name="keeper-spawner", daemon=True).start()

    def launch(self, sid, launch, sealed_env, grace):
        """Start session `sid` from its launch spec, with the environment in `sealed_env` (opened with this
        node's key); return the keeper's pid. ValueError when the secrets cannot be opened."""
        opened = {}
        if sealed_env:
            opened = sealed.unseal(sealed.load_key(os.environ.get(sealed.KEY_FILE_ENV, "")), sealed_env)
        launch = dict(launch, env=opened.get("env", {}))
        with self._launching:   # the GPUs one launch picks are not picked by another
            return self._start(sid, launch, opened, grace)

    def _start(self, sid, launch, opened, grace):
        held = self._hold_gpus(int(launch["sessionEnv"].get("SESSION_GPUS", "0")))
        if held:
            visible = ",".join(map(str, held))
            launch["sessionEnv"] = dict(launch["sessionEnv"], CUDA_VISIBLE_DEVICES=visible, NVIDIA_VISIBLE_DEVICES=visible)
            if launch.get("sandbox"):
                launch["sandbox"] = dict(launch["sandbox"], devices=gpus.device_files(held))
        for path in (launch["sessionEnv"]["SESSION_DIR"], os.path.dirname(launch["taskFile"])):
            os.makedirs(path, mode=0o700, exist_ok=True)
        launch_file = os.path.join(self._state_dir, sid + ".launch.json")
        atomic_write(launch_file, json.dumps(launch).encode("utf-8"))
        env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
        env.update(opened.get("secretEnv", {}), SESSIONS_KEEPER_PARENT=str(os.getpid()))
        argv = [sys.executable, "-I", "-m", "supervisor_sessions.backends.ray.keeper", launch_file, "%g" % grace]
        done = queue.Queue()
        self._spawns.put((argv, env, launch["sessionEnv"]["SESSION_DIR"], done))
        process = done.get()
        if isinstance(process, BaseException):
            raise process
        run = _Run(sid, process, launch_file)
        run.gpus = held
        with self._changed:
            self._runs[sid] = run
        threading.Thread(target=self._pump, args=(run,), name="output-" + sid, daemon=True).start()
        return process.pid

    def _hold_gpus(self, count):
        """`count` GPUs of this node no session of ours holds; ValueError when there are not that many."""
        if not count:
            return []
        with self._changed:
            taken = {i for run in self._runs.values() if run.ended is None for i in run.gpus}
            free = [i for i in self._gpus if i not in taken]
        if len(free) < count:
            raise ValueError("this node has %d GPUs free of the %d asked" % (len(free), count))
        return free[:count]

    def _spawner(self):
        while True:
            argv, env, cwd, done = self._spawns.get()
            try:
                done.put(subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, start_new_session=True))
            except OSError as e:
                done.put(e)

    def _pump(self, run):
        """Move a session's output into its buffer as it comes; note how it ended."""
        fd = run.process.stdout.fileno()
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            with self._changed:
                run.output += data
                excess = len(run.output) - OUTPUT_KEPT_MAX
                if excess > 0:
                    del run.output[:excess]
                    run.base += excess
                    run.dropped += excess
                self._changed.notify_all()
        code = run.process.wait()
        ended = {"code": code if code >= 0 else None, "signal": -code if code < 0 else None, "oom": False}
        try:
            with open(keeper.end_file(run.launch_file), encoding="utf-8") as f:
                ended["oom"] = bool(json.load(f).get("oom"))
            os.unlink(keeper.end_file(run.launch_file))
        except (OSError, ValueError):
            pass
        with self._changed:
            run.ended = ended
            self._changed.notify_all()

    def read(self, sid, offset, wait_seconds):
        """(output from `offset` on, the offset after it, how it ended or None), waiting up to `wait_seconds`
        for something new. Reading from `offset` lets go of what came before it. None when `sid` is unknown
        here (this agent never ran it, or was restarted)."""
        deadline = time.monotonic() + wait_seconds
        with self._changed:
            run = self._runs.get(sid)
            if run is None:
                return None
            while run.base + len(run.output) <= offset and run.ended is None and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            if offset > run.base:
                del run.output[:min(offset - run.base, len(run.output))]
                run.base = offset
            start = max(offset, run.base)
            data = bytes(run.output[start - run.base:start - run.base + READ_MAX])
            end = start + len(data)
            ended = run.ended if end == run.base + len(run.output) else None
            return data, end, ended

    def write(self, sid, data):
        """Write `data` to the session's stdin; False when it has no open stdin."""
        run = self._runs.get(sid)
        try:
            run.process.stdin.write(data)
            run.process.stdin.flush()
            return True
        except (AttributeError, OSError, ValueError):
            return False

    def close_input(self, sid):
        """Close the session's stdin."""
        run = self._runs.get(sid)
        if run is not None:
            try:
                run.process.stdin.close()
            except OSError:
                pass

    def stop(self, sid):
        """Stop the session: its keeper ends the whole tree (SIGTERM, then SIGKILL after the grace)."""
        run = self._runs.get(sid)
        if run is not None and run.process.poll() is None:
            run.process.send_signal(signal.SIGTERM)

    def forget(self, sid):
        """Drop what is kept of an ended session (the API side has read all of it)."""
        with self._changed:
            run = self._runs.get(sid)
            if run is not None and run.ended is not None:
                del self._runs[sid]

    def running(self):
        """{session id: its tree's CPU percent, RSS, processes and GPU memory, or None} of the sessions
        whose keeper is still running."""
        return {sid: self._sampler.sample(run.process.pid) for sid, run in list(self._runs.items())
                if run.ended is None}
