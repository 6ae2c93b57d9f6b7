"""An XML-RPC proxy to supervisord over its unix socket, shared by the API, the CLI and the tests.

A proxy keeps one connection: use one per thread.
"""
import http.client
import socket
import xmlrpc.client


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    """xmlrpc.client transport that speaks HTTP over a unix socket, with a timeout."""

    def __init__(self, path, timeout=30.0):
        super().__init__()
        self.socket_path = path
        self.timeout = timeout

    def make_connection(self, host):
        if self._connection[1] is None or self._connection[0] != host:
            self._connection = host, _UnixConnection(self.socket_path, self.timeout)
        return self._connection[1]


def server_proxy(socket_path, timeout=30.0):
    """A ServerProxy on supervisord's unix socket: proxy.sessions.*, proxy.supervisor.*, proxy.system.*."""
    return xmlrpc.client.ServerProxy("http://localhost", transport=UnixTransport(socket_path, timeout))
