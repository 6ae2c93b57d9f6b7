"""Optional services: absent by default, present when enabled and installed, reported when not installed."""
import os
import socket

from conftest import FAKE_BIN, HERE, free_port, wait_for

FAKE_SERVICES = os.path.join(HERE, "fake_services")
OPTIONAL = {"xvnc", "xfce4", "novnc", "code-server"}


def ports():
    return {"VNC_PORT": str(free_port()), "NOVNC_PORT": str(free_port()), "CODE_SERVER_PORT": str(free_port())}


def is_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", int(port))) == 0


def services(system):
    return {row["name"]: row for row in system.http("GET", "/v1/status")[1]["services"]}


def programs(system):
    return {p["name"] for p in system.rpc().supervisor.getAllProcessInfo()}


def test_optional_services_are_absent_by_default(make_system):
    chosen = ports()
    system = make_system(env=chosen).start()
    assert not OPTIONAL & programs(system)
    rows = services(system)
    assert all(rows[name]["state"] == "disabled" and rows[name]["enabled"] is False for name in OPTIONAL)
    wait_for(lambda: {services(system)[n]["state"] for n in ("management-api", "session-cleanup")} == {"RUNNING"},
             message="our programs to run")
    assert not any(is_open(port) for port in chosen.values())


def test_enabled_services_run_on_their_ports_without_our_secrets(make_system):
    chosen = ports()
    path = FAKE_SERVICES + os.pathsep + FAKE_BIN + os.pathsep + os.environ["PATH"]
    system = make_system(env=dict(chosen, ENABLE_DESKTOP="true", ENABLE_CODE_SERVER="1", PATH=path)).start()
    wait_for(lambda: all(services(system)[name]["state"] == "RUNNING" for name in OPTIONAL), timeout=20,
             message="the optional services to run")
    wait_for(lambda: all(is_open(port) for port in chosen.values()), message="their ports to open")
    with open(os.path.join(system.home, "logs", "code-server.log")) as f:
        line = f.readline()
    assert "password=set" in line and "api_key=absent" in line
    with open(os.path.join(system.home, "logs", "xfce4.log")) as f:
        assert "display=:1" in f.readline()
    with open(os.path.join(system.home, ".vnc", "passwd"), "rb") as f:
        assert f.read().startswith(b"obfuscated:")
    for secret in (".vnc-password", ".code-server-password"):
        assert oct(os.stat(os.path.join(system.home, secret)).st_mode & 0o777) == "0o600"


def test_an_enabled_service_that_is_not_installed_is_reported_not_started(make_system):
    chosen = ports()
    system = make_system(env=dict(chosen, ENABLE_DESKTOP="true", ENABLE_CODE_SERVER="true")).start()
    rows = services(system)
    for name in OPTIONAL:
        assert rows[name]["enabled"] is True and rows[name]["state"] == "unavailable"
    assert "Xvnc" in rows["xvnc"]["reason"] and "code-server" in rows["code-server"]["reason"]
    assert not OPTIONAL & programs(system)
    assert "desktop is enabled but unavailable" in system.output()
