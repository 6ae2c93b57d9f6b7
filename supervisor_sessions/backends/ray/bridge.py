"""The bridge: the one Ray driver of an instance, run by supervisord as the program `ray-bridge`
(`supervisor-sessions ray-bridge`).

Each session's program on the ray backend is a stub (stub.py) that connects to the bridge's unix socket
and asks it to run the session. The bridge
  1. holds the session's resources in a placement group of one bundle (its CPUs, memory, GPUs and custom
     resources, its node labels): Ray chooses the node, and what the session holds is Ray's to account;
  2. seals the secrets of the launch (sealed.py) and asks that node's agent (agent.py, one actor a node,
     made here when a node appears) to start it;
  3. relays: the session's output to the stub (which writes it where supervisord keeps the session's log),
     the stub's input, stop and end of input to the agent, and how the session ended to the stub;
  4. says a session is lost when its node's agent died or answers nothing for NODE_LOST_SECONDS.
It also writes the cluster's view (placement.py) about once a second, and stops sessions on a node that no
stub has claimed for ORPHAN_SECONDS (their stub died while the bridge was away). A bridge that loses the
cluster exits; supervisord starts it again, and the stubs attach to the new one where they were.
"""
import logging
import os
import socket
import threading
import time

from . import placement, sealed, wire
from .agent import NodeAgent
from ...store import atomic_write

NAMESPACE = "supervisor-sessions"
AGENT_PREFIX = "sessions-agent-"
GROUP_PREFIX = "session-"
VIEW_SECONDS = 1.0
READ_WAIT_SECONDS = 0.5       # how long one read of an agent waits for output
NODE_LOST_SECONDS = 5.0       # an agent that answers no read this long is lost with its node
ORPHAN_SECONDS = 30.0
GCS_PATIENCE_SECONDS = 5
AGENT_MAX_CONCURRENCY = 1000  # reads wait in the agent: one per session, and room for the rest

log = logging.getLogger("supervisor_sessions.ray")


class Lost(Exception):
    """The session's node (or its agent) is gone."""


class Bridge:
    """See the module's docstring."""

    def __init__(self, settings, key):
        self.settings = settings
        self._key = key
        self._agents = {}        # node id -> agent handle
        self._attached = {}      # session id -> (the node it runs on, its stub's connection), for every stub now
        self._unclaimed = {}     # session id -> when it was first seen running with no stub
        self._lock = threading.Lock()
        self._stop_grace = settings.stop_wait_secs

    # ---- the cluster --------------------------------------------------------------------------------

    def connect(self):
        # A driver whose GCS is gone waits this long (Ray's default: 60 s) before it gives up and exits; the
        # sessions of a cluster that went away are then told so within seconds (and the bridge starts anew).
        os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(GCS_PATIENCE_SECONDS))
        import ray
        ray.init(address=self.settings.ray_address or "auto", namespace=NAMESPACE, logging_level=logging.ERROR,
                 log_to_driver=False, configure_logging=False)
        log.info("connected to the Ray cluster at %s", self.settings.ray_address or "auto")

    def agent(self, node_id):
        """The agent of node `node_id`, made (pinned to that node) when it has none yet."""
        with self._lock:
            handle = self._agents.get(node_id)
        if handle is not None:
            return handle
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        handle = ray.remote(NodeAgent).options(
            name=AGENT_PREFIX + node_id, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            num_cpus=0, max_concurrency=AGENT_MAX_CONCURRENCY, max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(os.path.join(self.settings.state_dir, "ray-node"))
        with self._lock:
            self._agents[node_id] = handle
        return handle

    def view(self):
        """The cluster's nodes: id, address, alive, total and available resources, labels."""
        import ray
        from ray._private.state import available_resources_per_node
        free = available_resources_per_node()
        nodes = []
        for node in ray.nodes():
            node_id = node["NodeID"]
            nodes.append({"id": node_id, "address": node.get("NodeManagerAddress", ""),
                          "hostname": node.get("NodeManagerHostname", ""), "alive": bool(node.get("Alive")),
                          "total": _resources(node.get("Resources", {})),
                          "available": _resources(free.get(node_id, {})),
                          "labels": {k: v for k, v in (node.get("Labels") or {}).items()
                                     if not k.startswith("ray.io/")},
                          "head": "node:__internal_head__" in node.get("Resources", {})})
        return nodes

    def watch(self):
        """Every VIEW_SECONDS: give each new node its agent, write the view (the nodes, and what each running
        session uses on its node), stop unclaimed sessions. Returns (and so ends the bridge) when the cluster
        cannot be reached."""
        path = placement.view_path(self.settings.run_dir)
        failures = 0
        while True:
            try:
                nodes = self.view()
                failures = 0
            except Exception as e:   # what Ray raises when its GCS is gone varies by version
                failures += 1
                log.warning("cannot read the cluster's state: %s", e)
                if failures >= 2:
                    return
                time.sleep(VIEW_SECONDS)
                continue
            alive = [node["id"] for node in nodes if node["alive"]]
            with self._lock:
                for node_id in list(self._agents):
                    if node_id not in alive:
                        del self._agents[node_id]
            usage = self._running(alive)
            # Readable by the API (it shows what a session uses); it holds no secret.
            atomic_write(path, _json({"updatedAt": int(time.time() * 1000), "nodes": nodes, "usage": usage}), 0o644)
            self._stop_unclaimed(usage)
            time.sleep(VIEW_SECONDS)

    def _running(self, alive):
        """{session id: what it uses} of every session running on the `alive` nodes (their agents made here
        where they have none yet)."""
        import ray
        running = {}
        for node_id in alive:
            try:
                used = ray.get(self.agent(node_id).running.remote(), timeout=2)
                running.update((sid, dict(use or {}, node=node_id)) for sid, use in used.items())
            except Exception as e:
                log.warning("cannot list the sessions of node %s: %s", node_id, e)
        return running

    def lose_all(self, reason):
        """Tell every stub connected now that its session is lost, for `reason`."""
        with self._lock:
            attached = list(self._attached.values())
        for _, conn in attached:
            _say(conn, "lost", reason=reason)

    def _stop_unclaimed(self, running):
        """Stop the sessions of `running` that no stub has claimed for ORPHAN_SECONDS."""
        now = time.monotonic()
        for sid in running:
            with self._lock:
                claimed = self._attached.get(sid)
            if claimed:
                self._unclaimed.pop(sid, None)
            elif now - self._unclaimed.setdefault(sid, now) > ORPHAN_SECONDS:
                log.warning("stopping session %s: no stub has claimed it for %ds", sid, ORPHAN_SECONDS)
                self.agent(running[sid]["node"]).stop.remote(sid)
        for sid in [sid for sid in self._unclaimed if sid not in running]:
            del self._unclaimed[sid]

    # ---- the stubs ----------------------------------------------------------------------------------

    def serve(self, path):
        """Accept stubs on the unix socket at `path` (0600: ours alone), a thread each."""
        if os.path.exists(path):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            server.bind(path)
        finally:
            os.umask(old)
        server.listen(128)
        while True:
            conn, _ = server.accept()
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        reader = wire.Reader(conn)
        sid = None
        try:
            first = reader.next()
            if first is None:
                return
            sid = first.get("sid")
            messages = _StubMessages(reader, sid)
            if first["op"] == "run":
                node, group = self._start(conn, messages, first)
                if node is None:
                    return
                offset = 0
            elif first["op"] == "attach":
                node, group, offset = first["node"], _group_named(sid), int(first.get("offset", 0))
            else:
                raise ValueError("a stub's first message must be run or attach, not %r" % first["op"])
            with self._lock:
                self._attached[sid] = (node["id"], conn)
            self._relay(conn, messages, sid, node, group, offset)
        except Lost as e:
            _say(conn, "lost", reason=str(e))
        except Exception as e:
            log.exception("session %s", sid)
            cause = getattr(e, "cause", None) or e   # what the agent raised, not Ray's wrapper and traceback
            _say(conn, "failed", reason="cannot run it on the Ray cluster: %s" % cause)
        finally:
            if sid:
                with self._lock:
                    self._attached.pop(sid, None)
            conn.close()

    def _start(self, conn, messages, message):
        """Place a new session and start it on its node: (node, placement group), or (None, None) when its
        stub asked to stop it before Ray placed it."""
        import ray
        from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group
        sid, launch = message["sid"], message["launch"]
        want = launch.pop("ray")
        labels = want.get("labels") or None
        group = placement_group([want["resources"]], strategy="STRICT_PACK", name=GROUP_PREFIX + sid,
                                lifetime="detached", bundle_label_selector=[labels] if labels else None)
        try:
            while not ray.wait([group.ready()], timeout=0.2)[0]:
                if messages.stopped.is_set():
                    remove_placement_group(group)
                    _say(conn, "exit", code=None, signal=15)
                    return None, None
            node_id = placement_group_table(group)["bundles_to_node_id"][0]
            node = self._node(node_id)
            sealed_env = sealed.seal(self._key, {"env": launch.pop("env", {}), "secretEnv": message.get("secretEnv", {})})
            agent = self.agent(node_id)
            ray.get(agent.launch.remote(sid, launch, sealed_env, self._stop_grace), timeout=60)
        except BaseException:
            remove_placement_group(group)
            raise
        _say(conn, "placed", node=node)
        return node, group

    def _node(self, node_id):
        import ray
        for node in ray.nodes():
            if node["NodeID"] == node_id:
                return {"id": node_id, "address": node.get("NodeManagerAddress", ""),
                        "hostname": node.get("NodeManagerHostname", "")}
        raise Lost("node %s left the cluster as the session was placed on it" % node_id)

    def _relay(self, conn, messages, sid, node, group, offset):
        """Output to the stub, the stub's input and stop to the agent, until the session ends."""
        import ray
        from ray.exceptions import ActorDiedError, GetTimeoutError, RayActorError
        from ray.util.placement_group import remove_placement_group
        agent = self._agent_named(node["id"])
        messages.to(agent)
        silent_since = None
        try:
            while True:
                try:
                    got = ray.get(agent.read.remote(sid, offset, READ_WAIT_SECONDS), timeout=READ_WAIT_SECONDS + 2)
                    silent_since = None
                except ActorDiedError as e:
                    raise Lost("node %s (%s) is gone: its agent died (%s)" % (node["id"][:12], node["address"],
                                                                            type(e).__name__)) from None
                except (GetTimeoutError, RayActorError) as e:
                    silent_since = silent_since or time.monotonic()
                    if time.monotonic() - silent_since > NODE_LOST_SECONDS:
                        raise Lost("node %s (%s) is gone: its agent answered nothing for %gs (%s)" % (
                            node["id"][:12], node["address"], NODE_LOST_SECONDS, type(e).__name__)) from None
                    time.sleep(0.2)
                    continue
                if got is None:
                    raise Lost("node %s (%s) no longer knows the session: its agent was restarted"
                               % (node["id"][:12], node["address"]))
                data, offset, ended = got
                if data:
                    wire.send(conn, "out", data=wire.encode(data), offset=offset)
                if ended is not None:
                    wire.send(conn, "exit", code=ended["code"], signal=ended["signal"], oom=ended.get("oom", False))
                    agent.forget.remote(sid)
                    return
        finally:
            if group is not None:
                try:
                    remove_placement_group(group)
                except Exception:
                    pass

    def _agent_named(self, node_id):
        import ray
        try:
            return ray.get_actor(AGENT_PREFIX + node_id, namespace=NAMESPACE)
        except ValueError:
            raise Lost("node %s has no agent any more (the cluster was restarted or the node left)"
                       % node_id[:12]) from None


class _StubMessages:
    """A stub's messages after its first, read on a thread of their own: held until the session has an
    agent (input that came while Ray placed it), then passed on. A stub gone without a word stops it."""

    def __init__(self, reader, sid):
        self.stopped = threading.Event()
        self._sid = sid
        self._agent = None
        self._held = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(reader,), daemon=True).start()

    def _read(self, reader):
        while True:
            try:
                message = reader.next()
            except (OSError, ValueError):
                message = None
            if message is None or message["op"] == "stop":
                self.stopped.set()
                self._pass({"op": "stop"})
                return
            if message["op"] in ("input", "eof"):
                self._pass(message)

    def _pass(self, message):
        with self._lock:
            if self._agent is None:
                self._held.append(message)
                return
        self._send(message)

    def _send(self, message):
        if message["op"] == "stop":
            self._agent.stop.remote(self._sid)
        elif message["op"] == "input":
            self._agent.write.remote(self._sid, wire.decode(message["data"]))
        else:
            self._agent.close_input.remote(self._sid)

    def to(self, agent):
        """From now on, pass the messages to `agent` (those held first, in order)."""
        with self._lock:
            self._agent, held, self._held = agent, self._held, []
        for message in held:
            self._send(message)


def _group_named(sid):
    from ray.util import get_placement_group
    try:
        return get_placement_group(GROUP_PREFIX + sid)
    except ValueError:
        return None


def _resources(resources):
    """What a node has, without Ray's own bookkeeping (its node: markers, the placement groups' shares)."""
    return {k: v for k, v in resources.items()
            if not k.startswith("node:") and k != "object_store_memory" and "_group_" not in k}


def _say(conn, op, **fields):
    try:
        wire.send(conn, op, **fields)
    except OSError:
        pass


def _json(value):
    import json
    return json.dumps(value, sort_keys=True).encode("utf-8")


def run(settings):
    """The program: connect, keep the view, serve the stubs; exit when the cluster is lost."""
    key = sealed.ensure_key(settings.ray_secrets_key_file)
    os.umask(0o022)   # the cluster's view is for the API too, which runs as the service user (serve's is 027)
    bridge = Bridge(settings, key)
    bridge.connect()
    threading.Thread(target=bridge.serve, args=(os.path.join(settings.run_dir, wire.SOCKET_NAME),),
                     daemon=True).start()
    bridge.watch()
    log.error("lost the Ray cluster; exiting (supervisord starts the bridge again)")
    bridge.lose_all("the Ray cluster at %s cannot be reached (its head is gone)" % (settings.ray_address or "auto"))
    os._exit(1)
