"""Benchmark of agent events; run by hand: .venv/bin/python bench/bench_agents.py

Prints, side by side:
  - the adapter's cost per event: the claude reader and AgentOutput (line splitting, JSON, the record
    fields) over a recorded run, in microseconds per line, against json.loads of the same lines alone;
  - event latency: a worker (a claude-code session whose template runs the task as a script, so it prints
    what a CLI prints, with the time in each line) writes an assistant message every 50 ms; an SSE
    follower of /v1/sessions/{id}/events notes when each arrives: p50/p90 of the difference.
"""
import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import tempfile
import time

from benchlib import System, pct

from supervisor_sessions.agentevents import AgentOutput
from supervisor_sessions.agents import ADAPTERS

TEMPLATE = """{% extends "session.conf.j2" %}
{% set argv = ["bash", "--noprofile", "--norc", task_file] %}
{% set secrets = [] %}
{% set mcp_forms = [] %}
"""
RUN = [
    {"type": "system", "subtype": "init", "session_id": "s-1", "tools": ["Bash", "Read", "Edit"] * 8},
    {"type": "assistant", "message": {"content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                                   "input": {"command": "ls -la && cat README.md | head"}}]}},
    {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                              "content": "x" * 2000, "is_error": False}]}},
    {"type": "assistant", "message": {"content": [{"type": "text", "text": "All done. " * 40}]}},
    {"type": "result", "subtype": "success", "is_error": False, "num_turns": 2, "result": "All done.",
     "total_cost_usd": 0.2, "usage": {"input_tokens": 1000, "output_tokens": 200}},
]


def adapter_cost(rounds):
    """(µs per line through AgentOutput, µs per line of json.loads alone)."""
    lines = [json.dumps(obj) + "\n" for obj in RUN] * 200
    data = "".join(lines).encode()
    output = AgentOutput(lambda kind, sid, **fields: None, lambda sid, kind, event, changed: None)
    began = time.perf_counter()
    for i in range(rounds):
        output.start("s%d" % i, ADAPTERS["claude-code"])
        for start in range(0, len(data), 4096):   # supervisord hands output over in chunks
            output.feed("s%d" % i, data[start:start + 4096])
        output.end("s%d" % i)
    ours = (time.perf_counter() - began) / (rounds * len(lines)) * 1e6
    began = time.perf_counter()
    for _ in range(rounds):
        for line in lines:
            json.loads(line)
    plain = (time.perf_counter() - began) / (rounds * len(lines)) * 1e6
    return ours, plain


def event_latency(count):
    overlay = tempfile.mkdtemp(prefix="ssbench-templates")
    os.makedirs(os.path.join(overlay, "runtimes"))
    with open(os.path.join(overlay, "runtimes", "claude-code.conf.j2"), "w") as f:
        f.write(TEMPLATE)
    os.chmod(overlay, 0o755)
    system = System(env={"SESSIONS_TEMPLATES_DIR": overlay}).start()
    try:
        script = ("for i in $(seq %d); do printf '{\"type\": \"assistant\", \"message\": {\"content\": "
                  "[{\"type\": \"text\", \"text\": \"%%s\"}]}}\\n' \"$(date +%%s.%%N)\"; sleep 0.05; done\n" % count)
        sid = system.spawn(script, runtime="claude-code")["sessionId"]
        conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=60)
        conn.request("GET", "/v1/sessions/%s/events?type=message" % sid,
                     headers={"Authorization": "Bearer " + system.key, "Accept": "text/event-stream"})
        response = conn.getresponse()
        delays = []
        while len(delays) < count:
            line = response.readline().decode()
            if line.startswith("data: "):
                delays.append((time.time() - float(json.loads(line[6:])["text"])) * 1000)
        conn.close()
        return delays
    finally:
        system.stop()
        shutil.rmtree(system.home, ignore_errors=True)
        shutil.rmtree(overlay, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--events", type=int, default=100)
    options = parser.parse_args()
    print("machine: %s, %d cpus, Python %s" % (platform.machine(), os.cpu_count(), platform.python_version()))
    ours, plain = adapter_cost(options.rounds)
    print("%-52s %8.1f µs  (json.loads alone %.1f µs, %.1fx)" % ("adapter cost per line (claude, AgentOutput)",
                                                               ours, plain, ours / plain))
    delays = event_latency(options.events)
    print("%-52s p50 %.1f ms, p90 %.1f ms, max %.1f ms" % ("line printed -> SSE event (%d)" % options.events,
                                                          statistics.median(delays), pct(delays, 90), max(delays)))


if __name__ == "__main__":
    main()
