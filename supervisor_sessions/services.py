"""The optional services of the design: a VNC desktop (xvnc, xfce4, noVNC) and code-server.

They exist only when ENABLE_DESKTOP / ENABLE_CODE_SERVER say so and their programs are installed:
`serve` then includes conf.d/optional/<service>.conf. Each program runs as `supervisor-sessions service
NAME`, which builds its command line here and starts it with an allow-listed environment (never the
API key or the providers' keys), bound to MANAGEMENT_API_HOST.
"""
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from .launch import BASE_ENV

TRUE = ("1", "true", "yes", "on")
DISPLAY = ":1"
PORT_DEFAULTS = {"VNC_PORT": 5901, "NOVNC_PORT": 6901, "CODE_SERVER_PORT": 8080}


@dataclass(frozen=True)
class Service:
    name: str
    flag: str
    programs: tuple
    binaries: tuple

    @property
    def conf(self):
        return self.name + ".conf"


OPTIONAL = (
    Service("desktop", "ENABLE_DESKTOP", ("xvnc", "xfce4", "novnc"),
            ("Xvnc", "vncpasswd", "startxfce4", "websockify")),
    Service("code-server", "ENABLE_CODE_SERVER", ("code-server",), ("code-server",)),
)
ALWAYS = ("management-api", "session-cleanup", "session-webhooks")


def is_enabled(service, env):
    return env.get(service.flag, "").strip().lower() in TRUE


def missing_binaries(service, path):
    return [b for b in service.binaries if shutil.which(b, path=path) is None]


def availability(env):
    """{service name: (enabled, reason it cannot run or "")} for every optional service."""
    result = {}
    for service in OPTIONAL:
        missing = missing_binaries(service, env.get("PATH", os.defpath)) if is_enabled(service, env) else []
        reason = "not installed: %s not found on PATH" % ", ".join(missing) if missing else ""
        result[service.name] = (is_enabled(service, env), reason)
    return result


def report(env, states):
    """Every program of ours with its state: supervisord's statename where it has the program, else
    "disabled" or "unavailable" with the reason. `states` maps program names to supervisord statenames."""
    rows = [{"name": name, "service": name, "enabled": True, "state": states.get(name, "ABSENT")}
            for name in ALWAYS]
    for service in OPTIONAL:
        enabled, reason = availability(env)[service.name]
        for program in service.programs:
            row = {"name": program, "service": service.name, "enabled": enabled}
            if program in states:
                row["state"] = states[program]
            elif not enabled:
                row["state"] = "disabled"
            else:
                row.update(state="unavailable", reason=reason or "enabled, but not in supervisord's config")
            rows.append(row)
    return rows


def _port(env, name):
    return str(int(env.get(name) or PORT_DEFAULTS[name]))


def command(program, env):
    """(argv, extra environment) of one program of an optional service."""
    home = env["SESSIONS_HOME"]
    host = env.get("MANAGEMENT_API_HOST") or "127.0.0.1"
    if program == "xvnc":
        return (["Xvnc", DISPLAY, "-rfbport", _port(env, "VNC_PORT"), "-interface", host, "-geometry",
                 "1920x1080", "-depth", "24", "-SecurityTypes", "VncAuth", "-PasswordFile",
                 os.path.join(home, ".vnc", "passwd")], {})
    if program == "xfce4":
        return ["startxfce4"], {"DISPLAY": DISPLAY}
    if program == "novnc":
        return (["websockify", "--web", "/usr/share/novnc", "%s:%s" % (host, _port(env, "NOVNC_PORT")),
                 "127.0.0.1:%s" % _port(env, "VNC_PORT")], {})
    if program == "code-server":
        return (["code-server", "--bind-addr", "%s:%s" % (host, _port(env, "CODE_SERVER_PORT")), "--auth",
                 "password", os.path.join(home, "workspace")], {"PASSWORD": env.get("CODE_SERVER_PASSWORD", "")})
    raise ValueError("unknown service program %r" % program)


def prepare(service, home, env, ensure_secret):
    """Before supervisord starts: the password a service needs, from its variable or generated once.
    Returns variables to add to supervisord's environment."""
    if service.name == "desktop":
        password, _ = ensure_secret(env.get("VNC_PASSWORD", ""), os.path.join(home, ".vnc-password"))
        os.makedirs(os.path.join(home, ".vnc"), mode=0o700, exist_ok=True)
        obfuscated = subprocess.run(["vncpasswd", "-f"], input=password.encode(), capture_output=True,
                                    check=True, timeout=30).stdout
        fd = os.open(os.path.join(home, ".vnc", "passwd"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(obfuscated)
        return {}
    password, _ = ensure_secret(env.get("CODE_SERVER_PASSWORD", ""), os.path.join(home, ".code-server-password"))
    return {"CODE_SERVER_PASSWORD": password}


def run(program, env=None):
    """Exec one service program with an allow-listed environment; when it is not installed, say so and
    exit 0 so that supervisord records it as ended instead of restarting it in a loop."""
    env = dict(os.environ) if env is None else env
    argv, extra = command(program, env)
    clean = {k: env[k] for k in BASE_ENV if k in env}
    clean.update(HOME=env["SESSIONS_HOME"], **extra)
    resolved = shutil.which(argv[0], path=clean.get("PATH", os.defpath))
    if resolved is None:
        sys.stderr.write("supervisor-sessions: %s is unavailable: %s is not installed\n" % (program, argv[0]))
        return 0
    os.execve(resolved, argv, clean)
