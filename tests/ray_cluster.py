"""A real local Ray cluster for the tests: nodes started with `ray start --block` (the argv the embedded
head uses), each in a temp dir of its own, token authentication on, the key of sealed secrets in a file
every node and the instance read."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

from supervisor_sessions.backends.ray import head, sealed

from conftest import FAKE_BIN, wait_for


def in_own_network():
    """True where loopback is the only interface (tests/own_network.py made this namespace)."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def need_ray():
    """Skip, saying why, where a Ray cluster cannot run here."""
    pytest.importorskip("ray", reason="Ray is not installed (make install EXTRAS=ray)")
    if not in_own_network():
        pytest.skip("Ray clusters of more than one node dial the machine's outward address: the ray stage runs "
                    "in a network namespace of its own (python tests/own_network.py pytest -m ray)")


class Node:
    """One `ray start --block` of the cluster."""

    def __init__(self, proc):
        self.proc = proc

    def kill(self):
        """SIGKILL the node: `ray start` and every Ray process it started (its process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


class Cluster:
    """A head and more nodes on this machine, on 127.0.0.1 (see in_own_network)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.token_file = os.path.join(self.dir, "token")
        self.key_file = os.path.join(self.dir, "sessions-key")
        head.ensure_token(self.token_file)
        sealed.ensure_key(self.key_file)
        self.port = head.free_ports(1)[0]
        self.nodes = []
        self.env = dict(os.environ, PATH=FAKE_BIN + os.pathsep + os.environ.get("PATH", os.defpath),
                        **head.auth_env(self.token_file))
        self.env[sealed.KEY_FILE_ENV] = self.key_file

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def instance_env(self):
        """What an instance of ours needs to use this cluster."""
        env = {"SESSIONS_BACKEND": "ray", "RAY_ADDRESS": self.address, sealed.KEY_FILE_ENV: self.key_file}
        env.update(head.auth_env(self.token_file))
        return env

    def start_node(self, resources=None, labels=None, num_cpus=8, is_head=False, with_key=True):
        """Start a node (the head, or one that joins it); `with_key=False`: without SESSIONS_RAY_KEY_FILE."""
        temp_dir = os.path.join(self.dir, "node%d" % len(self.nodes))
        argv = head.node_argv(temp_dir, head_port=self.port if is_head else None,
                              address=None if is_head else self.address, num_cpus=num_cpus,
                              resources=resources, labels=labels, memory_bytes=8 * 2 ** 30)
        env = dict(self.env)
        if not with_key:
            del env[sealed.KEY_FILE_ENV]
        with open(temp_dir + ".log", "ab") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        node = Node(proc)
        self.nodes.append(node)
        return node

    def stop(self):
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def node_ids_by_resource(rpc, timeout=60):
    """{custom resource: node id} of the alive nodes, once the instance's view shows two nodes with one."""
    def found():
        nodes = rpc.sessions.getCluster()["nodes"]
        named = {name: node["id"] for node in nodes if node["alive"] for name in node["total"]
                 if name not in ("CPU", "GPU", "memory")}
        return named if len(named) >= 2 else None
    return wait_for(found, timeout, interval=0.2, message="two nodes with a custom resource in the view")
