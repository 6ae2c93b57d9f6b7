"""The Management API: a Bottle app that reaches supervisord only through XML-RPC on its unix socket."""
import json
import os
import threading
import time

import bottle

from .client import server_proxy


def create_app(settings):
    """A new Bottle app for `settings` (no module-level state)."""
    app = bottle.Bottle()
    local = threading.local()

    def rpc():
        if getattr(local, "proxy", None) is None:
            local.proxy = server_proxy(settings.socket_path, timeout=5.0)
        return local.proxy

    def json_response(status, body):
        bottle.response.status = status
        bottle.response.content_type = "application/json"
        return json.dumps(body)

    @app.get("/health")
    def health():
        """The process is alive."""
        return json_response(200, {"status": "ok"})

    @app.get("/ready")
    def ready():
        """200 only when supervisord answers over XML-RPC."""
        try:
            state = rpc().supervisor.getState()
        except Exception as e:  # socket gone, refused, timeout, protocol error: all mean not ready
            local.proxy = None
            return json_response(503, {"error": "not_ready", "message": "supervisord does not answer: %s"
                                       % type(e).__name__})
        return json_response(200, {"status": "ready", "supervisord": state.get("statename", "")})

    return app


def exit_with_parent(interval=0.5):
    """End this process when its parent (supervisord) dies, so a killed supervisord leaves no API holding
    the port; a thread polls because supervisord's children cannot be told any other portable way."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def serve(settings):
    """Run the API with waitress on settings.api_host:settings.api_port (blocks)."""
    import waitress
    exit_with_parent()
    waitress.serve(create_app(settings), host=settings.api_host, port=settings.api_port, threads=8,
                   ident="supervisor-sessions")
