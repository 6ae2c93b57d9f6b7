"""Benchmark of the worker sandbox, on and off side by side in one run; by hand:
    .venv/bin/python bench/bench_sandbox.py [--rounds 60]

For each mode (SESSIONS_SANDBOX=auto: bubblewrap, own user, cgroup and Landlock as far as this machine
allows; SESSIONS_SANDBOX=off): POST -> running over HTTP, POST -> the worker's first line of output (the
launcher and bubblewrap included), and the CPU each session costs (supervisord, its reaped children,
i.e. launchers, bubblewrap and workers, and the API), for sessions that run `echo`. Then bubblewrap
alone: `true` run directly vs inside the same sandbox.
"""
import argparse
import os
import platform
import shutil
import subprocess
import time

import psutil

from bench_api import Client, post_to_running, spawn
from benchlib import FINAL, System, pct, timed
from supervisor_sessions import sandbox


def cpu_seconds(system):
    """CPU used so far by supervisord (with its reaped children) and by the API."""
    supervisord = psutil.Process(system.supervisord_pid())
    times = supervisord.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    api = system.rpc().supervisor.getProcessInfo("management-api")["pid"]
    api_times = psutil.Process(api).cpu_times()
    return total + api_times.user + api_times.system


def first_output(system, rounds):
    """ms from POST to the worker's first line in its log, and CPU seconds per session."""
    client = Client(system)
    latencies, ids = [], []
    cpu_before = cpu_seconds(system)
    for _ in range(rounds):
        start = time.perf_counter()
        sid = spawn(client, "echo first-line")
        log = system.home + "/logs/sessions/%s.log" % sid
        while True:
            try:
                with open(log) as f:
                    if "first-line" in f.read():
                        break
            except FileNotFoundError:
                pass
        latencies.append((time.perf_counter() - start) * 1000)
        ids.append(sid)
    rpc = system.rpc()
    for sid in ids:
        while rpc.sessions.getSession(sid)["status"] not in FINAL:
            time.sleep(0.005)
    cpu = (cpu_seconds(system) - cpu_before) / rounds
    for sid in ids:
        client.call("DELETE", "/v1/sessions/%s?purge=true" % sid)
    return latencies, cpu


def measure(mode, rounds):
    system = System(env={"SESSIONS_SANDBOX": mode, "MAX_CONCURRENT_SESSIONS": "16"}).start()
    try:
        isolation = system.rpc().sessions.getIsolation()
        post_to_running(system, 10)  # warm up
        running = post_to_running(system, rounds)
        output, cpu = first_output(system, rounds)
        return {"isolation": isolation, "running": running, "output": output, "cpu": cpu}
    finally:
        system.stop()
        shutil.rmtree(system.home, ignore_errors=True)


def bwrap_alone(rounds):
    bwrap = sandbox.find_bwrap()
    if not bwrap:
        return None
    direct = timed(lambda: subprocess.run(["/bin/true"], check=True), rounds)
    wrapped = timed(lambda: subprocess.run(sandbox.bwrap_argv(bwrap, "/tmp") + ["/bin/true"], check=True), rounds)
    return direct, wrapped


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    print("machine: %s, %d cores, Python %s, %s" % (platform.machine(), os.cpu_count(), platform.python_version(),
                                                   "root" if os.geteuid() == 0 else "not root"))
    on, off = measure("auto", args.rounds), measure("off", args.rounds)
    enforced = ", ".join(k for k, v in on["isolation"]["enforced"].items() if v) or "nothing"
    print("sandbox on enforces: %s" % enforced)
    print("%-38s %12s %12s %8s" % ("", "sandbox on", "sandbox off", "on/off"))
    for label, key, p in (("POST -> running p50 (ms)", "running", 50), ("POST -> running p90 (ms)", "running", 90),
                          ("POST -> first output p50 (ms)", "output", 50),
                          ("POST -> first output p90 (ms)", "output", 90)):
        a, b = pct(on[key], p), pct(off[key], p)
        print("%-38s %12.1f %12.1f %7.2fx" % (label, a, b, a / b))
    print("%-38s %12.1f %12.1f %7.2fx" % ("CPU per session (ms)", on["cpu"] * 1000, off["cpu"] * 1000,
                                          on["cpu"] / off["cpu"]))
    alone = bwrap_alone(args.rounds)
    if alone:
        direct, wrapped = alone
        print("%-38s %12.1f %12.1f %7.2fx" % ("`true` in bwrap vs direct p50 (ms)", pct(wrapped, 50), pct(direct, 50),
                                              pct(wrapped, 50) / pct(direct, 50)))


if __name__ == "__main__":
    main()
