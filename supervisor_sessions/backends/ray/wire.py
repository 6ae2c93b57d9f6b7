"""What a session's stub (stub.py) and the bridge (bridge.py) say to each other over the bridge's unix
socket: one JSON object a line. Stdlib only: the stub imports it and must start fast.

stub -> bridge:  run {sid, launch, secretEnv}   attach {sid, node, offset}   stop   input {data}   eof
bridge -> stub:  placed {node}   out {data}   exit {code, signal}   lost {reason}   failed {reason}
`data` is base64; `node` is {id, address, hostname}.
"""
import base64
import json

SOCKET_NAME = "ray-bridge.sock"
LINE_MAX = 4 * 1024 * 1024   # a line holds at most one read of output (1 MiB), base64 and JSON around it


def send(sock, op, **fields):
    """Send one message."""
    sock.sendall(json.dumps(dict(fields, op=op)).encode("utf-8") + b"\n")


def encode(data):
    return base64.b64encode(data).decode("ascii")


def decode(text):
    return base64.b64decode(text.encode("ascii"))


class Reader:
    """The messages that come on a socket, one at a time; None at its end."""

    def __init__(self, sock):
        self._file = sock.makefile("rb")

    def next(self):
        line = self._file.readline(LINE_MAX + 1)
        if not line:
            return None
        if len(line) > LINE_MAX or not line.endswith(b"\n"):
            raise ValueError("a message longer than %d bytes" % LINE_MAX)
        message = json.loads(line)
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            raise ValueError("a message without an op")
        return message
