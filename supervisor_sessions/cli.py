"""`supervisor-sessions serve|ctl|api`: one command to run the whole system and to drive it."""
import argparse
import logging
import os
import shlex
import subprocess
import sys

from .groups import quarantine_broken_configs
from .render import Renderer
from . import services
from .settings import Settings, ensure_api_key, ensure_secret, resource_dir

log = logging.getLogger("supervisor_sessions")


def _settings():
    try:
        return Settings.from_env()
    except ValueError as e:
        sys.exit("supervisor-sessions: %s" % e)


def write_supervisord_conf(settings, optional_confs):
    """Render the main supervisord config into $SESSIONS_HOME/run and return its path."""
    text = Renderer().render_file("supervisord.conf.j2", {
        "pid_file": settings.pid_file, "logs_dir": settings.logs_dir, "socket": settings.socket_path,
        "conf_d": resource_dir("conf.d"), "session_conf_dir": settings.session_conf_dir,
        "optional_confs": optional_confs})
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


def serve(settings):
    """Prepare SESSIONS_HOME, quarantine broken session configs and exec supervisord in the foreground."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", os.defpath)
    try:
        settings.check_socket_path()
        if any(c.isspace() for c in settings.home):
            raise ValueError("SESSIONS_HOME must not contain whitespace: %r" % settings.home)
        settings.make_dirs()
        optional_confs, service_env = prepare_services(settings, env)
        conf = write_supervisord_conf(settings, optional_confs)
    except (ValueError, OSError, subprocess.SubprocessError) as e:
        sys.exit("supervisor-sessions: cannot start: %s" % e)
    key, generated = ensure_api_key(settings, os.environ)
    if "MANAGEMENT_API_KEY" not in os.environ or not os.environ["MANAGEMENT_API_KEY"]:
        log.warning("%s the API key in %s (mode 0600); set MANAGEMENT_API_KEY to choose one",
                    "generated" if generated else "using", settings.key_file)
    quarantine_broken_configs(settings.session_conf_dir, settings.quarantine_dir, log.error)
    env.update(service_env, SESSIONS_HOME=settings.home, MANAGEMENT_API_KEY=key,
               MANAGEMENT_API_HOST=settings.api_host, MANAGEMENT_API_PORT=str(settings.api_port))
    log.info("supervisord with sessions in %s; API on http://%s:%d", settings.home, settings.api_host,
             settings.api_port)
    os.execve(sys.executable, [sys.executable, "-m", "supervisor.supervisord", "-c", conf], env)


def ctl(settings, args):
    """Run supervisorctl against the instance of SESSIONS_HOME.

    supervisorctl joins its arguments with spaces, which loses the shell's quoting; passing them as one
    shell-quoted line keeps `sessions spawn coder gemini 'a task; with spaces'` intact.
    """
    if not os.path.exists(settings.supervisord_conf):
        sys.exit("supervisor-sessions: no instance in %s (run `supervisor-sessions serve` first)" % settings.home)
    line = [shlex.join(args)] if args else []
    os.execv(sys.executable, [sys.executable, "-m", "supervisor.supervisorctl", "-c",
                              settings.supervisord_conf] + line)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="supervisor-sessions", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run supervisord with the sessions plugin and the API (foreground)")
    ctl_parser = commands.add_parser("ctl", help="run supervisorctl against this instance")
    ctl_parser.add_argument("args", nargs=argparse.REMAINDER)
    commands.add_parser("api", help="run the Management API (supervisord runs it as a program)")
    commands.add_parser("cleanup", help="remove ended sessions past their retention (a supervisord program)")
    service_parser = commands.add_parser("service", help="run a program of an optional service (supervisord runs it)")
    service_parser.add_argument("program", choices=[p for s in services.OPTIONAL for p in s.programs])
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
        from . import cleanup, jsonlog, procs
        jsonlog.use_json_lines()
        procs.exit_with_parent()
        cleanup.run(settings)
    else:
        from . import api
        api.serve(settings)


if __name__ == "__main__":
    main()
