"""What a session asks of the cluster and where it fits: read by the plugin (admission, inside supervisord:
stdlib only, a small file read) and by the bridge (the placement group it makes).

The bridge writes the cluster's view (its nodes, what each has and has free) to CLUSTER_FILE about once a
second; the plugin admits a queued session only where some node has room for it, after what the sessions
it admitted but Ray has not placed yet will take.
"""
import json
import os
import time

CLUSTER_FILE = "ray-cluster.json"
STALE_SECONDS = 15          # a view older than this says nothing about the cluster now
MIB = 1024 * 1024


def request(limits, gpus, placement):
    """The Ray resources a session asks for: its CPUs and memory (its limits), GPUs, and custom resources."""
    asked = {"CPU": float(limits["cpus"]), "memory": float(limits["memoryMB"] * MIB)}
    if gpus:
        asked["GPU"] = float(gpus)
    asked.update((placement or {}).get("resources") or {})
    return asked


def load(path):
    """The cluster view in `path`, or None when there is none or it is stale."""
    try:
        with open(path, encoding="utf-8") as f:
            view = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(view, dict) or time.time() * 1000 - view.get("updatedAt", 0) > STALE_SECONDS * 1000:
        return None
    return view


def _fits(free, asked):
    return all(free.get(name, 0.0) + 1e-9 >= amount for name, amount in asked.items())


def _matches(node, labels):
    return all(node.get("labels", {}).get(key) == value for key, value in (labels or {}).items())


def place(nodes, asked, labels, key="available"):
    """The first alive node of `nodes` whose `key` resources (available or total) hold `asked` and whose
    labels match, or None."""
    for node in nodes:
        if node.get("alive") and _matches(node, labels) and _fits(node.get(key, {}), asked):
            return node
    return None


def admissible(view, pending, waiting):
    """The records of `waiting` (queued, oldest first) that fit the cluster now, after the `pending` ones
    (admitted, not placed by Ray yet) take their share. A session that does not fit does not hold back those
    behind it."""
    if view is None:
        return []
    nodes = [dict(node, available=dict(node.get("available", {}))) for node in view.get("nodes", ())]
    chosen, pending = [], list(pending)
    for index, record in enumerate(pending + list(waiting)):
        want = record.get("ray") or {}
        node = place(nodes, want.get("resources", {}), want.get("labels"))
        if node is None:
            continue
        for name, amount in want.get("resources", {}).items():
            node["available"][name] = node["available"].get(name, 0.0) - amount
        if index >= len(pending):
            chosen.append(record)
    return chosen


def view_path(run_dir):
    return os.path.join(run_dir, CLUSTER_FILE)
