"""Linux Landlock, network side only: confine a sandboxed worker process of ours so that it may bind
only its own TCP port(s), cannot send signals to processes outside its Landlock domain and cannot
connect to abstract unix sockets created outside its domain.

Standard library only (ctypes and raw syscalls; the syscall numbers are those of x86_64 and aarch64).

What is enforced, by `restrict_self(bind_ports)` on the calling thread and everything it later execs
or forks:

- LANDLOCK_ACCESS_NET_BIND_TCP (kernel Landlock ABI >= 4): bind() of a TCP socket succeeds only for
  the ports given; any other port fails with EACCES. Outgoing connect() is NOT handled, so a worker
  still reaches its model providers. UDP, pathname unix sockets and the file system are not
  restricted (handled_access_fs = 0: no file-system rule at all).
- LANDLOCK_SCOPE_SIGNAL and LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (ABI >= 6): kill() and friends
  towards a process outside the domain fail with EPERM (processes in the domain, e.g. the worker's
  own children, stay signallable; the supervisor outside can still signal the worker), and
  connect()/sendto() to an abstract unix socket bound outside the domain fail with EPERM.
  Abstract sockets belong to the network namespace, so with bwrap --share-net this scope is what
  keeps the worker from the host's abstract sockets.

What an older kernel lacks is skipped, and the returned `reason` says so; without Landlock nothing is
enforced. Landlock domains only ever add restrictions and are inherited across fork and execve, so a
worker cannot undo this.

How it is used with bubblewrap, and why that works: the launcher (running as root or as an
unprivileged uid) calls `restrict_self` in the process that is about to exec bwrap (e.g. a
`preexec_fn`, or the launcher itself right before `os.execv`). bwrap then creates its user, mount,
pid, ipc and uts namespaces, mounts, pivots root and drops capabilities as usual. This works because:

- the domain handles no file-system access, and Landlock refuses mount, umount, remount,
  move_mount and pivot_root only to domains that handle some file-system access (so in every kernel
  that has network rules, ABI >= 4). A domain that handled even one file-system right would break
  bwrap ("bwrap: Failed to make / slave: Operation not permitted"): keep this module net-only;
- Landlock does not restrict unshare()/clone() of namespaces, and the restrictions follow the
  process into its new namespaces (a "root" inside bwrap's user namespace is still bound by them);
- every process bwrap creates descends from the restricted one and is in the same domain, so bwrap's
  own signalling (its pid-1 reaper, the --die-with-parent SIGKILL from bwrap to its child) stays
  inside the domain and is allowed; the --die-with-parent SIGKILL to bwrap when its own parent
  (outside the domain) dies goes from outside in, which no scope restricts (checked: killing
  bwrap's unrestricted parent ends the sandbox, as root and unprivileged); bwrap needs no abstract
  unix socket;
- PR_SET_NO_NEW_PRIVS (required by landlock_restrict_self for an unprivileged caller, and set here
  in every case) only stops set-uid/file-capability gains at exec: a root launcher needs none, and an
  unprivileged launcher needs bwrap to use unprivileged user namespaces, not a set-uid bwrap (a
  set-uid bwrap would run without its privileges). The bundled bwrap is not set-uid.

This was checked on Linux 6.18 (Landlock ABI 7) with bubblewrap 0.11, as root and as uid 61000:
`bwrap --unshare-all --share-net --die-with-parent --new-session --cap-drop ALL ...` starts, and
inside it the allowed port binds while any other port is refused; tests/test_landlock.py repeats it.

Call `restrict_self` from the thread that goes on to exec (Landlock restricts the calling thread
only); in a freshly forked child that is the only thread.
"""
import ctypes
import errno
import os

__all__ = ["abi_version", "restrict_self"]

# Syscall numbers (the generic table, shared by x86_64 and aarch64).
_SYSCALLS = {
    "x86_64": (444, 445, 446),
    "amd64": (444, 445, 446),
    "aarch64": (444, 445, 446),
    "arm64": (444, 445, 446),
}

# include/uapi/linux/landlock.h
_CREATE_RULESET_VERSION = 1 << 0
_RULE_NET_PORT = 2
_ACCESS_NET_BIND_TCP = 1 << 0
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
_SCOPE_SIGNAL = 1 << 1
_PR_SET_NO_NEW_PRIVS = 38

_NET_ABI = 4
_SCOPE_ABI = 6


class _RulesetAttr(ctypes.Structure):
    """struct landlock_ruleset_attr: a prefix of it is passed, as long as the kernel's ABI knows."""
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),   # ABI 1: offset 0, 8 bytes
        ("handled_access_net", ctypes.c_uint64),  # ABI 4: up to 16 bytes
        ("scoped", ctypes.c_uint64),              # ABI 6: up to 24 bytes
    ]


class _NetPortAttr(ctypes.Structure):
    """struct landlock_net_port_attr: not packed (unlike landlock_path_beneath_attr); 16 bytes."""
    _fields_ = [
        ("allowed_access", ctypes.c_uint64),
        ("port", ctypes.c_uint64),
    ]


_libc = None


def _syscall_numbers():
    return _SYSCALLS.get(os.uname().machine.lower())


def _call(name, restype, *args):
    """libc function `name` (returning `restype`) on `args`; its result, or OSError from errno on -1."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(_libc, name)
    function.restype = restype
    ctypes.set_errno(0)
    result = function(*args)
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def _probe():
    """(abi, why): the kernel's Landlock ABI, and when it is 0 a sentence saying why."""
    numbers = _syscall_numbers()
    if numbers is None:
        return 0, "Landlock support here covers x86_64 and aarch64, not %s" % os.uname().machine
    try:
        abi = _call("syscall", ctypes.c_long, ctypes.c_long(numbers[0]), None, ctypes.c_long(0),
                    ctypes.c_long(_CREATE_RULESET_VERSION))
    except OSError as error:
        if error.errno == errno.ENOSYS:
            return 0, "kernel has no Landlock (ENOSYS)"
        if error.errno == errno.EOPNOTSUPP:
            return 0, "Landlock is disabled in this kernel (EOPNOTSUPP)"
        return 0, "Landlock unavailable: %s" % error
    return int(abi), None


def abi_version():
    """The kernel's Landlock ABI version (1, 2, ...), or 0 when Landlock is unavailable here."""
    return _probe()[0]


def restrict_self(bind_ports):
    """Confine the calling thread and all it later forks or execs: TCP bind only to `bind_ports`,
    and (ABI >= 6) no signals to, nor abstract unix socket connections to, outside the domain.

    Sets PR_SET_NO_NEW_PRIVS whenever something is enforced. Returns what was enforced, e.g.
    {"abi": 7, "tcpBind": True, "scopes": ["signal", "abstract_unix_socket"], "reason": None};
    `reason` names what the kernel could not enforce (None when everything was). Raises ValueError
    for a port outside 0-65535, and OSError only when a Landlock or prctl call that this kernel
    supports fails.
    """
    ports = []
    for port in bind_ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError("not a TCP port: %r" % (port,))
        if port not in ports:
            ports.append(port)

    abi, why = _probe()
    result = {"abi": abi, "tcpBind": False, "scopes": [], "reason": None}
    if abi == 0:
        result["reason"] = why + "; nothing enforced"
        return result

    reasons = []
    attr = _RulesetAttr(handled_access_fs=0, handled_access_net=0, scoped=0)
    size = _RulesetAttr.handled_access_net.offset
    if abi >= _NET_ABI:
        attr.handled_access_net = _ACCESS_NET_BIND_TCP
        size = _RulesetAttr.scoped.offset
    else:
        reasons.append("kernel Landlock ABI %d has no TCP rules (needs %d)" % (abi, _NET_ABI))
    if abi >= _SCOPE_ABI:
        attr.scoped = _SCOPE_SIGNAL | _SCOPE_ABSTRACT_UNIX_SOCKET
        size = ctypes.sizeof(_RulesetAttr)
    else:
        reasons.append("kernel Landlock ABI %d has no signal or abstract unix socket scopes (needs %d)"
                       % (abi, _SCOPE_ABI))
    if not attr.handled_access_net and not attr.scoped:
        result["reason"] = "; ".join(reasons + ["nothing enforced"])
        return result

    create, add_rule, restrict = _syscall_numbers()
    fd = int(_call("syscall", ctypes.c_long, ctypes.c_long(create), ctypes.byref(attr),
                   ctypes.c_long(size), ctypes.c_long(0)))
    try:
        for port in ports:
            rule = _NetPortAttr(allowed_access=_ACCESS_NET_BIND_TCP, port=port)
            _call("syscall", ctypes.c_long, ctypes.c_long(add_rule), ctypes.c_long(fd),
                  ctypes.c_long(_RULE_NET_PORT), ctypes.byref(rule), ctypes.c_long(0))
        _call("prctl", ctypes.c_int, ctypes.c_int(_PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1),
              ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
        _call("syscall", ctypes.c_long, ctypes.c_long(restrict), ctypes.c_long(fd), ctypes.c_long(0))
    finally:
        os.close(fd)

    result["tcpBind"] = bool(attr.handled_access_net)
    if attr.scoped:
        result["scopes"] = ["signal", "abstract_unix_socket"]
    result["reason"] = "; ".join(reasons) or None
    return result
