"""The machine's NVIDIA GPUs as device files: which exist, and which files a session holding some needs.

Counting /dev/nvidia<N> costs one directory listing and needs no driver library, so supervisord's thread
can afford it; memory and utilisation come from NVML in monitor.py.
"""
import os
import re

_DEVICE = re.compile(r"\Anvidia(\d+)\Z")
SHARED_DEVICES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


def indices(dev="/dev"):
    """Sorted indices of the GPUs that have a device file."""
    try:
        names = os.listdir(dev)
    except OSError:
        return []
    return sorted(int(m.group(1)) for m in map(_DEVICE.match, names) if m)


def device_files(held, dev="/dev"):
    """The device files a sandbox binds for the GPUs `held`: theirs and the shared control devices."""
    if not held:
        return []
    names = ["nvidia%d" % i for i in held] + list(SHARED_DEVICES)
    return [os.path.join(dev, n) for n in names if os.path.exists(os.path.join(dev, n))]
