"""Process trees: ending a worker's whole tree (its group and the descendants that left it), and our own
programs ending with their supervisord."""
import os
import signal
import threading
import time

import psutil


def snapshot_descendants(pid):
    """[(pid, create_time)] of every descendant of `pid` now, to find those that leave its group later."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    snapshot = []
    for child in children:
        try:
            snapshot.append((child.pid, child.create_time()))
        except psutil.Error:
            pass
    return snapshot


def kill_group(pgid):
    """SIGKILL what is left of a process group; True when something was there."""
    try:
        os.killpg(pgid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_snapshot(snapshot):
    """SIGKILL the processes of a snapshot that are still the same processes (pid reuse is checked)."""
    for pid, created in snapshot:
        try:
            process = psutil.Process(pid)
            if process.create_time() == created:
                process.kill()
        except psutil.Error:
            pass


def kill_orphaned_worker(pid, start_ms):
    """After supervisord died: kill the worker `pid` and its tree if it is still that worker.

    It must lead its own process group (supervisor makes every child do so) and have started within two
    seconds of `start_ms`; anything else is a different process that reused the pid, and is left alone.
    """
    try:
        process = psutil.Process(pid)
        if os.getpgid(pid) != pid or abs(process.create_time() * 1000 - start_ms) > 2000:
            return False
        snapshot = snapshot_descendants(pid)
        kill_group(pid)
        kill_snapshot(snapshot)
        return True
    except (psutil.Error, ProcessLookupError):
        return False


def exit_with_parent(interval=0.5, then=None):
    """End this process when its parent (supervisord) dies, so a killed supervisord leaves no API holding
    the port; a thread polls because supervisord's children cannot be told any other portable way.
    `then`, when given, is called instead of exiting at once (to end the process in good order)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        (then or (lambda: os._exit(0)))()
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
