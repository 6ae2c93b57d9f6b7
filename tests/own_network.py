"""Run a command in a network namespace of its own, where only the loopback interface exists:
`python tests/own_network.py CMD ...` (the Makefile's ray stage).

Ray advertises and dials the address the machine reaches the world with, not 127.0.0.1, as soon as a
cluster has more than one node; in a namespace with nothing but loopback that address is 127.0.0.1, so the
test clusters' traffic never leaves this machine's loopback. As root the namespace is a network namespace
alone; otherwise a user namespace that maps our own uid and gid comes with it (so the tests still run as
us, unprivileged). Where the kernel allows neither, the command runs as it is, and the Ray tests skip.
"""
import ctypes
import fcntl
import os
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def enter_own_network():
    """Move this (single-threaded) process into a new network namespace with loopback up."""
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET if uid == 0 else CLONE_NEWNET | CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare: %s" % os.strerror(ctypes.get_errno()))
    if uid != 0:
        for name, text in (("setgroups", "deny"), ("uid_map", "%d %d 1" % (uid, uid)), ("gid_map", "%d %d 1" % (gid, gid))):
            with open("/proc/self/" + name, "w") as f:
                f.write(text)
    with socket.socket() as s:
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh", b"lo", 0)))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


if __name__ == "__main__":
    try:
        enter_own_network()
    except OSError as e:
        print("own_network: cannot make a network namespace (%s); running without one" % e, file=sys.stderr)
    os.execvp(sys.argv[1], sys.argv[1:])
