"""Worker sessions inside supervisord: an RPC plugin, a management API and a supervisorctl plugin."""

__version__ = "0.1.0"
API_VERSION = "1.0"
