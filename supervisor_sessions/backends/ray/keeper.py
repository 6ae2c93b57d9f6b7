"""The process that keeps one session on a Ray node: `python -I -m supervisor_sessions.backends.ray.keeper
LAUNCH_FILE GRACE_SECONDS`, started by the node's agent (agent.py) with the session's pipes.

It runs our launcher (launch.py, the same one supervisord runs on the local backend) in a process group of
its own and waits for it. It ends the session's whole tree (its process group, and its cgroup where the
launch has one) when it is told to stop (SIGTERM) and also when the agent that started it dies: the kernel
sends it SIGTERM then (PR_SET_PDEATHSIG), so a node whose Ray worker is killed leaves no session running.
It exits as the launcher did (the same code, or the same signal), and notes beside the launch file whether
the OOM killer ended the session (end_file). Stdlib only.
"""
import ctypes
import json
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def end_file(launch_file):
    """Where the keeper of `launch_file` notes how its session ended ({oom})."""
    return launch_file + ".end"


def _die_with_parent(parent):
    """SIGTERM to us when `parent` (the agent's spawning thread) ends; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(1)


def _end_tree(launcher, cgroup_spec, sid, grace):
    """SIGTERM the launcher's group, SIGKILL it (and the session's cgroup) after `grace` seconds."""
    try:
        os.killpg(launcher.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    _kill_rest(launcher, cgroup_spec, sid)


def _kill_rest(launcher, cgroup_spec, sid):
    """SIGKILL what is left of the session: its process group and, where it has one, its cgroup. Returns
    whether the OOM killer ended something in that cgroup (read before it is removed)."""
    try:
        os.killpg(launcher.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    oom = False
    if cgroup_spec:
        from ...cgroups import Cgroups
        groups = Cgroups.from_spec(cgroup_spec)
        oom = groups.oom_killed(sid)
        groups.kill(sid)
        deadline = time.monotonic() + 2
        while not groups.remove(sid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return oom


def main(argv):
    launch_file, grace = argv[1], float(argv[2])
    _die_with_parent(int(os.environ.pop("SESSIONS_KEEPER_PARENT", "0")) or os.getppid())
    with open(launch_file, encoding="utf-8") as f:
        launch = json.load(f)
    sid = launch["sessionEnv"]["SESSION_ID"]
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    launcher = subprocess.Popen([sys.executable, "-I", "-m", "supervisor_sessions.launch", launch_file],
                                start_new_session=True)
    while launcher.poll() is None:
        if stopping:
            _end_tree(launcher, launch.get("cgroup"), sid, grace)
            break
        try:
            launcher.wait(0.1)
        except subprocess.TimeoutExpired:
            pass
    code = launcher.wait()
    # What left the group (a double fork) goes with the cgroup; the agent reads how it ended beside the launch.
    oom = _kill_rest(launcher, launch.get("cgroup"), sid)
    with open(end_file(launch_file), "w", encoding="utf-8") as f:
        json.dump({"oom": oom}, f)
    sys.stdout.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
