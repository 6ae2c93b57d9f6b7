"""`supervisor-sessions serve|ctl|api`: one command to run the whole system and to drive it."""
import argparse
import logging
import os
import shlex
import socket
import subprocess
import sys
import time

from .groups import quarantine_broken_configs
from .render import Renderer
from . import identity, procs, services
from .settings import Settings, ensure_api_key, ensure_secret, resource_dir, setting_names
from .store import atomic_write

# supervisord and our programs are the last the OOM killer picks (workers raise theirs, see launch.py)
SERVICE_OOM_SCORE_ADJ = -500

log = logging.getLogger("supervisor_sessions")


def _settings():
    try:
        return Settings.from_env()
    except ValueError as e:
        sys.exit("supervisor-sessions: %s" % e)


def write_supervisord_conf(settings, optional_confs, socket_owner=None, ray_confs=()):
    """Render the main supervisord config into $SESSIONS_HOME/run and return its path."""
    text = Renderer().render_file("supervisord.conf.j2", {
        "pid_file": settings.pid_file, "logs_dir": settings.logs_dir, "socket": settings.socket_path,
        "conf_d": resource_dir("conf.d"), "session_conf_dir": settings.session_conf_dir,
        "optional_confs": optional_confs, "socket_owner": socket_owner, "ray_confs": list(ray_confs)})
    with open(settings.supervisord_conf, "w") as f:
        f.write(text)
    return settings.supervisord_conf


def prepare_services(settings, env):
    """The optional services to include: enabled and installed ones get their passwords ready; an enabled
    one that is not installed is reported and left out (never a program that fails in a loop)."""
    confs, extra_env = [], {}
    for service in services.OPTIONAL:
        enabled, reason = services.availability(env)[service.name]
        if not enabled:
            continue
        if reason:
            log.error("%s is enabled but unavailable (%s); it is not started", service.name, reason)
            continue
        extra_env.update(services.prepare(service, settings.home, env, ensure_secret))
        confs.append(service.conf)
        log.info("%s enabled", service.name)
    return confs, extra_env


def prepare_ray(settings):
    """(the programs of the ray backend, the environment they and the stubs need): the bridge always; the
    embedded head, on a port chosen now, where RAY_ADDRESS names no cluster. ValueError where Ray is not
    installed."""
    try:
        import ray  # noqa: F401  (only to know it is there: the bridge is what uses it)
    except ImportError:
        raise ValueError("SESSIONS_BACKEND=ray needs Ray: pip install 'supervisor-sessions[ray]' "
                         "(or make install EXTRAS=ray)") from None
    from .backends.ray import head, sealed
    sealed.ensure_key(settings.ray_secrets_key_file)
    env = {sealed.KEY_FILE_ENV: settings.ray_secrets_key_file, "SESSIONS_BACKEND": "ray"}
    if settings.ray_address:
        return ("bridge.conf",), env
    token_path = os.path.join(settings.run_dir, "ray-auth-token")
    head.ensure_token(token_path)
    env.update(head.auth_env(token_path), RAY_ADDRESS="127.0.0.1:%d" % head.free_ports(1)[0], **head.LOOPBACK_ONLY)
    return ("head.conf", "bridge.conf"), env


def _lower_oom_score():
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(SERVICE_OOM_SCORE_ADJ))
    except OSError:  # lowering it needs root
        pass


PORT_PATIENCE_SECONDS = 5


def check_port_free(host, port, patience=PORT_PATIENCE_SECONDS):
    """ValueError when another program listens on the API's port (a second instance would start and its API
    crash-loop while the first one answers there). The API of an instance killed a moment ago may still be
    on its way out: the port gets `patience` seconds to come free."""
    if not port:
        return
    deadline = time.monotonic() + patience
    while True:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
                return
            except OSError as e:
                if time.monotonic() >= deadline:
                    raise ValueError("the API's port %s:%d is taken (%s): is another instance running? Set "
                                     "MANAGEMENT_API_PORT to use another" % (host, port, e.strerror)) from None
        time.sleep(0.1)


def serve(settings):
    """Prepare SESSIONS_HOME, quarantine broken session configs and exec supervisord in the foreground.

    As root, the API, session-cleanup and session-webhooks run as the service user (created when missing),
    who alone may use the socket. The API key and the webhook secret reach them through 0600 files, never
    supervisord's environment.
    """
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", os.defpath)
    try:
        settings.check_socket_path()
        check_port_free(settings.api_host, settings.api_port)
        if any(c.isspace() for c in settings.home):
            raise ValueError("SESSIONS_HOME must not contain whitespace: %r" % settings.home)
        settings.make_dirs()
        socket_owner = None
        if identity.is_root():
            identity.ensure_user(settings.service_user)
            os.chmod(settings.home, os.stat(settings.home).st_mode | 0o011)  # the way to the socket
            user, reason = _service_user(settings)
            if user:
                socket_owner = "%d:%d" % user
                # Session logs (0640, see the umask below) take this group: the API reads them, no worker does.
                os.chown(settings.session_logs_dir, 0, user[1])
                os.chmod(settings.session_logs_dir, 0o2750)
            else:
                log.warning("%s", reason)
        optional_confs, service_env = prepare_services(settings, env)
        ray_confs, ray_env = prepare_ray(settings) if settings.backend == "ray" else ((), {})
        conf = write_supervisord_conf(settings, optional_confs, socket_owner, ray_confs)
        key, generated = ensure_api_key(settings, os.environ)
        atomic_write(settings.api_key_file, key.encode("utf-8"))
        from .webhooks import webhook_secret
        webhook_secret(settings, os.environ)  # the deliverer reads it from its file, never the environment
    except (ValueError, OSError, subprocess.SubprocessError) as e:
        sys.exit("supervisor-sessions: cannot start: %s" % e)
    if "MANAGEMENT_API_KEY" not in os.environ or not os.environ["MANAGEMENT_API_KEY"]:
        log.warning("%s the API key in %s (mode 0600); set MANAGEMENT_API_KEY to choose one",
                    "generated" if generated else "using", settings.key_file)
    quarantine_broken_configs(settings.session_conf_dir, settings.quarantine_dir, log.error)
    _lower_oom_score()
    os.umask(0o027)  # session logs 0640 and nothing else of ours world-readable (supervisord keeps it)
    env.pop("MANAGEMENT_API_KEY", None)
    env.pop("WEBHOOK_SECRET", None)
    env.update(service_env, **ray_env)
    env.update(SESSIONS_HOME=settings.home,
               MANAGEMENT_API_HOST=settings.api_host, MANAGEMENT_API_PORT=str(settings.api_port))
    log.info("supervisord with sessions in %s; API on http://%s:%d", settings.home, settings.api_host,
             settings.api_port)
    os.execve(sys.executable, [sys.executable, "-m", "supervisor.supervisord", "-c", conf], env)


def _service_user(settings):
    """((uid, gid), None) of the user our programs run as under root, or (None, why they stay root)."""
    return identity.service_user(settings.service_user, [sys.prefix, sys.base_prefix, os.path.dirname(__file__),
                                                         settings.socket_path])


def _api_key(settings):
    """The key serve left for the API (read while still root); inside a supervisord of one's own, where
    serve did not run, MANAGEMENT_API_KEY, else the key kept in the home (made once, 0600)."""
    try:
        with open(settings.api_key_file) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ensure_api_key(settings, os.environ)[0]


def become_service_user(settings):
    """As root: continue as the service user where supervisord's socket is theirs (serve hands it over; a
    supervisord of one's own does with `chown=` in [unix_http_server]). A no-op otherwise."""
    if identity.is_root():
        user, _ = _service_user(settings)
        try:
            socket_owner = os.stat(settings.socket_path).st_uid
        except OSError:
            socket_owner = None
        if user and socket_owner == user[0]:
            identity.drop_privileges(*user)
        elif user:
            logging.warning("running as root: supervisord's socket %s is not the service user's (%s); give it "
                            "to them with chown= in [unix_http_server] to run this unprivileged",
                            settings.socket_path, settings.service_user)


def ctl(settings, args):
    """Run supervisorctl against the instance of SESSIONS_HOME (or the supervisord of SUPERVISORD_CONFIG).

    supervisorctl joins its arguments with spaces, which loses the shell's quoting; passing them as one
    shell-quoted line keeps `sessions spawn coder gemini 'a task; with spaces'` intact.
    """
    if not os.path.exists(settings.ctl_config):
        sys.exit("supervisor-sessions: no instance in %s (run `supervisor-sessions serve` first, or name an "
                 "existing supervisord's config in SUPERVISORD_CONFIG)" % settings.home)
    line = [shlex.join(args)] if args else []
    os.execv(sys.executable, [sys.executable, "-m", "supervisor.supervisorctl", "-c",
                              settings.ctl_config] + line)


def main(argv=None):
    settings_help = ("settings, from the environment (README, Configuration, says what each does): "
                     + ", ".join(setting_names()))
    parser = argparse.ArgumentParser(prog="supervisor-sessions", description=__doc__, epilog=settings_help)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run supervisord with the sessions plugin and the API (foreground)",
                        description="Run supervisord with the sessions plugin, the Management API, session-cleanup "
                                    "and session-webhooks, in the foreground.", epilog=settings_help)
    ctl_parser = commands.add_parser("ctl", help="run supervisorctl against this instance",
                                     description="supervisorctl against this instance (SESSIONS_HOME, or the "
                                                 "supervisord of SUPERVISORD_CONFIG); `ctl sessions help` lists "
                                                 "the sessions commands.", epilog=settings_help)
    ctl_parser.add_argument("args", nargs=argparse.REMAINDER)
    commands.add_parser("client", help="the Management API from the command line (client --help)")
    commands.add_parser("api", help="run the Management API (supervisord runs it as a program)")
    commands.add_parser("cleanup", help="remove ended sessions past their retention (a supervisord program)")
    commands.add_parser("ray-head", help="run the embedded Ray head (a supervisord program; SESSIONS_BACKEND=ray)")
    commands.add_parser("ray-bridge", help="run the bridge to the Ray cluster (a supervisord program; "
                                           "SESSIONS_BACKEND=ray)")
    commands.add_parser("webhooks", help="deliver change-feed events to webhook receivers (a supervisord program)")
    service_parser = commands.add_parser("service", help="run a program of an optional service (supervisord runs it)")
    service_parser.add_argument("program", choices=[p for s in services.OPTIONAL for p in s.programs])
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["client"]:   # all that follows is the client's, --help included
        from . import clientcli
        sys.exit(clientcli.main(argv[1:]))
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="supervisor-sessions: %(message)s")
    settings = _settings()
    if options.command == "serve":
        serve(settings)
    elif options.command == "ctl":
        ctl(settings, options.args)
    elif options.command == "service":
        sys.exit(services.run(options.program))
    elif options.command == "cleanup":
        from . import cleanup, jsonlog
        jsonlog.use_json_lines()
        procs.exit_with_parent()
        become_service_user(settings)
        cleanup.run(settings)
    elif options.command == "ray-head":
        from .backends.ray import head
        sys.exit(head.run_embedded_head(settings))
    elif options.command == "ray-bridge":
        from .backends.ray import bridge
        procs.exit_with_parent()
        bridge.run(settings)
    elif options.command == "webhooks":
        from . import jsonlog, webhooks
        jsonlog.use_json_lines()
        secret = webhooks.webhook_secret(settings, os.environ)  # read as root, like the API key
        webhooks.prepare_dir(settings, _service_user(settings)[0] if identity.is_root() else None)
        become_service_user(settings)
        webhooks.run(settings, secret)
    else:
        from . import api
        api.serve(settings, _api_key(settings), after_bind=lambda: become_service_user(settings))


if __name__ == "__main__":
    main()
