"""A session's program on the ray backend: what supervisord runs in place of the launcher
(`python -I -m supervisor_sessions.backends.ray.stub LAUNCH_FILE`), so that everything supervisord and the
plugin do with a session (its log, its output read as agent events, its stdin, stop, timeouts, the queue)
stays as it is on the local backend.

It reads the launch spec and deletes it (as the launcher does), takes the secrets it names from its own
environment (supervisord's), and hands both to the bridge over its 0600 unix socket. Then it writes what
the session prints to its stdout (the session's log), passes its stdin and SIGTERM on, and exits as the
session did. Its own stderr is a channel to the plugin alone: the line that says the session was placed. When the
node is lost it says so in the log, notes it in the session's state directory (REMOTE_FILE, which the
plugin reads) and exits EXIT_LOST. If the bridge goes away (restarted), it attaches to the next one where
it was. Stdlib only, to start fast and stay small (one runs for every session).
"""
import json
import os
import signal
import socket
import sys
import threading
import time

from . import wire

REMOTE_FILE = "remote.json"
PLACED = "supervisor-sessions: placed on node"  # the line (on stderr) that tells the plugin the session runs
EXIT_LOST = 75
BRIDGE_PATIENCE_SECONDS = 60   # how long a new session's stub waits for the bridge (serve starting)
ATTACH_PATIENCE_SECONDS = 20   # how long a running session's stub waits for a bridge that went away to return


def say(text):
    sys.stdout.buffer.write(b"supervisor-sessions: " + text.encode("utf-8", "replace") + b"\n")
    sys.stdout.buffer.flush()


class Stub:
    def __init__(self, socket_path, state_dir, sid):
        self.socket_path = socket_path
        self.state_dir = state_dir
        self.sid = sid
        self.node = None
        self.offset = 0
        self.stopping = False
        self.sock = None
        self._lock = threading.Lock()

    def connect(self, first, patience, **fields):
        """Connect to the bridge (waiting for one up to `patience` seconds) and send `first`."""
        deadline = time.monotonic() + patience
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.socket_path)
                wire.send(sock, first, sid=self.sid, **fields)
                with self._lock:
                    self.sock = sock
                    if self.stopping:
                        wire.send(sock, "stop")
                return wire.Reader(sock)
            except OSError as e:
                sock.close()
                if time.monotonic() > deadline:
                    raise ConnectionError("no ray bridge answered at %s for %ds (%s; see logs/ray-bridge.log)"
                                          % (self.socket_path, patience, e.strerror))
                time.sleep(0.2)

    def send(self, op, **fields):
        with self._lock:
            if self.sock is not None:
                try:
                    wire.send(self.sock, op, **fields)
                except OSError:
                    pass

    def stop(self, *_):
        self.stopping = True
        self.send("stop")

    def forward_input(self):
        """stdin to the session, then its end."""
        fd = sys.stdin.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                self.send("eof")
                return
            self.send("input", data=wire.encode(data))

    def placed(self, node):
        """Note where the session runs, and tell the plugin on our own stderr (which no worker writes to)."""
        self.node = node
        self._note({"node": node})
        sys.stderr.write("%s %s\n" % (PLACED, node["id"]))
        sys.stderr.flush()

    def lost(self, reason):
        self._note({"node": self.node, "lost": reason})
        say("interrupted: %s" % reason)
        return EXIT_LOST

    def _note(self, value):
        path = os.path.join(self.state_dir, REMOTE_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(value, f)
        os.replace(tmp, path)

    def relay(self, reader):
        """Messages of the bridge until the session ends: its exit code, or None when the bridge went away."""
        out = sys.stdout.buffer
        while True:
            try:
                message = reader.next()
            except (OSError, ValueError):
                message = None
            if message is None:
                return None
            op = message["op"]
            if op == "placed":
                self.placed(message["node"])
            elif op == "out":
                out.write(wire.decode(message["data"]))
                out.flush()
                self.offset = message["offset"]
            elif op == "exit":
                if message.get("oom"):
                    self._note({"node": self.node, "oom": True})
                if message.get("signal"):
                    signal.signal(message["signal"], signal.SIG_DFL)
                    os.kill(os.getpid(), message["signal"])
                return message.get("code") or 0
            elif op == "lost":
                return self.lost(message["reason"])
            elif op == "failed":
                self._note({"node": self.node, "failed": message["reason"]})
                say(message["reason"])
                return 1


def main(argv):
    launch_file = argv[1]
    with open(launch_file, encoding="utf-8") as f:
        launch = json.load(f)
    os.unlink(launch_file)
    sid = launch["sessionEnv"]["SESSION_ID"]
    state_dir = os.path.dirname(launch_file)
    names = list(launch.get("secrets", ())) + list(launch.get("passEnv", ()))
    secret_env = {name: os.environ[name] for name in names if name in os.environ}
    stub = Stub(os.path.join(launch["ray"]["runDir"], wire.SOCKET_NAME), state_dir, sid)
    signal.signal(signal.SIGTERM, stub.stop)
    signal.signal(signal.SIGINT, stub.stop)
    try:
        reader = stub.connect("run", BRIDGE_PATIENCE_SECONDS, launch=launch, secretEnv=secret_env)
    except ConnectionError as e:
        say("cannot start: %s" % e)
        return 1
    threading.Thread(target=stub.forward_input, daemon=True).start()
    while True:
        code = stub.relay(reader)
        if code is not None:
            return code
        if stub.node is None:
            return stub.lost("the ray bridge went away before the session was placed")
        try:
            reader = stub.connect("attach", ATTACH_PATIENCE_SECONDS, node=stub.node, offset=stub.offset)
        except ConnectionError as e:
            return stub.lost("lost the Ray cluster: %s" % e)


def run(argv):
    """main, with what would break it said in the session's log (the stub's stderr goes to no log)."""
    try:
        return main(argv)
    except Exception as e:
        say("the ray stub failed: %s: %s" % (type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(run(sys.argv))
