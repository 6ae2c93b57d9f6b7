"""Ray nodes of our own: `ray start --block` with a temp dir, ports and auth token of ours, never Ray's defaults.

`serve` runs the head of the embedded cluster (SESSIONS_BACKEND=ray without RAY_ADDRESS) as the supervisord
program `ray-head` (run_embedded_head): `ray start --head --block` in a process group of its own, killed whole
when the program stops or supervisord dies (`ray stop` would stop every Ray on the machine). The tests start the nodes of their multi-node clusters with the same argv.
"""
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys

from ...settings import ensure_secret

# Ray's own settings that turn token authentication on for every process that has them in its environment.
AUTH_MODE, AUTH_TOKEN_PATH = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"


def free_ports(count):
    """`count` distinct TCP ports free on 127.0.0.1 now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def auth_env(token_path):
    """The environment that makes a Ray process (node, driver or worker) use the cluster's token."""
    return {AUTH_MODE: "token", AUTH_TOKEN_PATH: token_path}


def ensure_token(path):
    """The cluster's auth token, kept in `path` (made once, mode 0600)."""
    return ensure_secret("", path)[0]


def ray_program():
    """The `ray` command beside the Python we run on."""
    beside = os.path.join(os.path.dirname(sys.executable), "ray")
    return beside if os.path.exists(beside) else shutil.which("ray") or "ray"


OBJECT_STORE_BYTES = 128 * 1024 * 1024   # sessions put nothing in Ray's object store; Ray's default is 30% of memory
# With this, Ray (whose own default is the address the machine reaches the world with) binds and advertises
# 127.0.0.1: a cluster of one machine that nothing outside it can join.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def node_argv(temp_dir, head_port=None, address=None, num_cpus=None, num_gpus=None, resources=None, labels=None,
              memory_bytes=None):
    """The argv of one node: the head (`head_port`, its GCS port) or a node joining `address` (host:port).
    Every port is chosen here (free now), the dashboard answers on 127.0.0.1 only, and the node runs in the
    foreground (`--block`), so whoever started it stops it by its pid."""
    ports = free_ports(9)
    argv = [ray_program(), "start", "--block", "--disable-usage-stats", "--temp-dir", temp_dir,
            "--node-ip-address", "127.0.0.1",
            "--node-manager-port", str(ports[0]), "--object-manager-port", str(ports[1]),
            "--metrics-export-port", str(ports[2]), "--dashboard-agent-listen-port", str(ports[3]),
            "--dashboard-agent-grpc-port", str(ports[4]), "--runtime-env-agent-port", str(ports[5]),
            "--min-worker-port", "0", "--max-worker-port", "0", "--object-store-memory", str(OBJECT_STORE_BYTES)]
    if address is None:
        argv += ["--head", "--port", str(head_port), "--ray-client-server-port", str(ports[6]),
                 "--dashboard-host", "127.0.0.1", "--dashboard-port", str(ports[7]), "--include-dashboard", "true"]
    else:
        argv += ["--address", address]
    if num_cpus is not None:
        argv += ["--num-cpus", "%d" % num_cpus]
    if num_gpus is not None:
        argv += ["--num-gpus", "%d" % num_gpus]
    if memory_bytes is not None:
        argv += ["--memory", "%d" % memory_bytes]
    if resources:
        argv += ["--resources", json.dumps(resources)]
    if labels:
        argv += ["--labels", ",".join("%s=%s" % item for item in sorted(labels.items()))]
    return argv


def embedded_head_argv(settings):
    """The head serve runs when RAY_ADDRESS is unset: on 127.0.0.1, in $SESSIONS_HOME/run/ray, its GCS on the
    port RAY_ADDRESS names (serve chose it), with room for MAX_CONCURRENT_SESSIONS sessions of the default
    limits and SESSIONS_MEMORY_MB of memory, as the supervisord backend would have."""
    port = int(settings.ray_address.rsplit(":", 1)[1])
    cpus = math.ceil(settings.max_concurrent * settings.session_cpus)
    return node_argv(os.path.join(settings.run_dir, "ray"), head_port=port, num_cpus=cpus,
                     memory_bytes=settings.total_memory_mb * 1024 * 1024)


def run_embedded_head(settings):
    """The program `ray-head`: the embedded head in a process group of its own, which is killed whole when
    supervisord stops the program (SIGTERM) or dies. It holds nothing that needs a graceful stop (records,
    logs and the journal are the API side's), and Ray's own graceful stop takes half a minute."""
    from ...procs import exit_with_parent
    node = subprocess.Popen(embedded_head_argv(settings), start_new_session=True)

    def end(*_):
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    signal.signal(signal.SIGTERM, end)
    exit_with_parent(then=lambda: (end(), os._exit(1)))
    code = node.wait()
    end()   # what the node left behind, when it ended by itself
    return code
