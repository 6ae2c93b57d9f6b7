"""The ray backend against a real local Ray cluster of two nodes on this machine (a head with the custom
resource nodeA and label zone=a, a node with nodeB and zone=b), a real supervisord and real HTTP. These run in
the ray stage: `python tests/own_network.py pytest -m ray` (see ray_cluster.in_own_network)."""
import hashlib
import json
import os
import subprocess

import pytest

from conftest import FINAL, System, pids_matching, scripted_claude_overlay, wait_for
from ray_cluster import Cluster, need_ray, node_ids_by_resource

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster():
    need_ray()
    made = Cluster()
    made.start_node(resources={"nodeA": 1}, labels={"zone": "a"}, is_head=True)
    made.start_node(resources={"nodeB": 1}, labels={"zone": "b"})
    yield made
    made.stop()


@pytest.fixture(scope="module")
def ray_system(cluster, tmp_path_factory):
    overlay = scripted_claude_overlay(tmp_path_factory.mktemp("templates"))
    env = dict(cluster.instance_env(), SESSIONS_TEMPLATES_DIR=overlay, GEMINI_API_KEY="gemini-secret-" + os.urandom(6).hex())
    system = System(env=env).start(timeout=90)
    system.nodes = node_ids_by_resource(system.rpc())
    assert set(system.nodes) >= {"nodeA", "nodeB"}, system.nodes
    yield system
    system.stop()


def post(system, body):
    spec = {"agent": "coder", "provider": "gemini", "runtime": "shell"}
    spec.update(body)
    return system.http("POST", "/v1/sessions", spec)


def spawned(system, **body):
    status, answer, _ = post(system, body)
    assert status == 202, answer
    return answer["sessionId"]


def test_a_session_that_asks_for_a_resource_only_node_b_has_runs_on_node_b(ray_system):
    sid = spawned(ray_system, task="echo on $(hostname) as $SESSION_ID", placement={"resources": {"nodeB": 0.5}})
    final = ray_system.wait_status(sid, FINAL, timeout=60)
    assert final["status"] == "completed" and final["node"]["id"] == ray_system.nodes["nodeB"], (ray_system.nodes, [(n["id"][:8], n["total"]) for n in ray_system.rpc().sessions.getCluster()["nodes"]], final["node"]["id"][:8])
    assert "on " in ray_system.log(sid) and sid in ray_system.log(sid)
    assert final["ray"]["resources"]["nodeB"] == 0.5


def test_a_node_label_chooses_the_node(ray_system):
    for zone, resource in (("a", "nodeA"), ("b", "nodeB")):
        sid = spawned(ray_system, task="true", placement={"labels": {"zone": zone}})
        assert ray_system.wait_status(sid, FINAL, timeout=60)["node"]["id"] == ray_system.nodes[resource]


def test_the_status_shows_each_node_its_free_resources_and_its_sessions(ray_system):
    sid = spawned(ray_system, task="sleep 30", placement={"resources": {"nodeB": 1}})
    ray_system.wait_status(sid, {"running"}, timeout=60)

    def node_b_shows_it():
        status, body, _ = ray_system.http("GET", "/v1/status")
        assert status == 200
        nodes = {n["id"]: n for n in body["cluster"]["nodes"]}
        b = nodes[ray_system.nodes["nodeB"]]
        return body["cluster"]["backend"] == "ray" and b["sessions"] == 1 and b["available"].get("nodeB", 0) == 0 \
            and b["total"]["nodeB"] == 1 and b["labels"] == {"zone": "b"} and nodes[ray_system.nodes["nodeA"]]["head"]
    wait_for(node_b_shows_it, timeout=10, message="node B with one session and no nodeB free")
    # what it uses is its tree on node B (keeper, launcher, the worker), as its node's agent sampled it
    used = wait_for(lambda: ray_system.http("GET", "/v1/sessions/%s" % sid)[1]["resources"], timeout=10,
                    message="the session's resources")
    assert used["rss"] > 1 << 20 and used["processes"] >= 2 and set(used) >= {"cpuPercent", "gpuMemory"}
    assert ray_system.http("DELETE", "/v1/sessions/%s" % sid)[0] in (200, 202)
    ray_system.wait_status(sid, FINAL)


def test_output_exit_code_and_follow_come_through_from_the_node(ray_system):
    sid = spawned(ray_system, task="for i in 1 2 3; do echo line-$i; sleep 0.2; done; exit 7",
                  placement={"resources": {"nodeB": 0.1}})
    final = ray_system.wait_status(sid, FINAL, timeout=60)
    assert final["status"] == "failed" and final["exitCode"] == 7 and final["cause"] == "exit"
    status, text, _ = ray_system.http("GET", "/v1/sessions/%s/logs?follow=false" % sid)
    log = ray_system.log(sid)
    assert [line for line in log.splitlines() if line.startswith("line-")] == ["line-1", "line-2", "line-3"]


def test_stop_ends_the_whole_tree_on_its_node_even_what_left_its_group(ray_system):
    marker = "ray-stop-%s" % os.urandom(4).hex()
    sleeper = "bash -c 'exec -a %s sleep 1000'" % marker
    sid = spawned(ray_system, task="(setsid %s &); %s & echo up; wait" % (sleeper, sleeper),
                  placement={"resources": {"nodeB": 0.1}})
    ray_system.wait_status(sid, {"running"}, timeout=60)
    wait_for(lambda: len(pids_matching(marker)) == 2, timeout=20, message="both sleepers")
    assert ray_system.http("DELETE", "/v1/sessions/%s" % sid)[0] in (200, 202)
    final = ray_system.wait_status(sid, FINAL, timeout=30)
    assert final["status"] == "stopped" and final["cause"] == "request"
    wait_for(lambda: not pids_matching(marker), timeout=10, message="nothing of the session left on node B")


def test_a_session_waits_queued_until_the_cluster_has_room_and_a_queued_one_can_be_cancelled(ray_system):
    first = spawned(ray_system, task="sleep 30", placement={"resources": {"nodeB": 1}})
    ray_system.wait_status(first, {"running"}, timeout=60)
    wait_for(lambda: _node_b_free(ray_system) == 0, timeout=10, message="the view to show node B full")
    second = spawned(ray_system, task="echo second", placement={"resources": {"nodeB": 1}})
    third = spawned(ray_system, task="echo third", placement={"resources": {"nodeB": 1}})
    # admission runs inside each create: what it decided for them is already in their records
    assert [ray_system.rpc().sessions.getSession(sid)["status"] for sid in (second, third)] == ["queued", "queued"]
    assert ray_system.http("DELETE", "/v1/sessions/%s" % third)[0] in (200, 202)
    cancelled = ray_system.wait_status(third, FINAL)
    assert cancelled["status"] == "stopped" and not cancelled.get("node")   # it never ran anywhere
    ray_system.http("DELETE", "/v1/sessions/%s" % first)
    final = ray_system.wait_status(second, FINAL, timeout=60)
    assert final["status"] == "completed" and final["node"]["id"] == ray_system.nodes["nodeB"]


def _node_b_free(system):
    nodes = {n["id"]: n for n in system.rpc().sessions.getCluster()["nodes"]}
    return nodes[system.nodes["nodeB"]]["available"].get("nodeB", 0)


@pytest.mark.parametrize("placement, words", [
    ({"resources": {"nodeC": 1}}, "no node of the Ray cluster has"),
    ({"labels": {"zone": "c"}}, "with labels"),
])
def test_a_session_no_node_could_ever_hold_is_refused_saying_why(ray_system, placement, words):
    status, answer, _ = post(ray_system, {"task": "true", "placement": placement})
    assert status == 400 and words in answer["message"], answer


def test_what_the_ray_backend_does_not_offer_is_a_clear_error(ray_system, tmp_path):
    status, answer, _ = post(ray_system, {"task": "true", "workspace": {"repo": str(tmp_path)}})
    assert status == 400 and "ray backend does not offer workspaces" in answer["message"]
    sid = spawned(ray_system, task="echo x > f.txt")
    ray_system.wait_status(sid, FINAL, timeout=60)
    status, answer, _ = ray_system.http("GET", "/v1/sessions/%s/files/f.txt" % sid)
    assert status == 409 and "files" in answer["message"], answer


def test_secrets_reach_the_worker_and_nothing_ray_keeps_or_logs(ray_system, cluster):
    user_secret = "user-secret-" + os.urandom(8).hex()
    provider_secret = ray_system.env["GEMINI_API_KEY"]
    sid = spawned(ray_system, task='printf "%s" "$MY_TOKEN" | sha256sum; printf "%s" "$GEMINI_API_KEY" | sha256sum',
                  env={"MY_TOKEN": user_secret}, placement={"resources": {"nodeB": 0.1}})
    final = ray_system.wait_status(sid, FINAL, timeout=60)
    assert final["status"] == "completed" and final["node"]["id"] == ray_system.nodes["nodeB"]
    for secret in (user_secret, provider_secret):   # the worker on node B has both
        assert hashlib.sha256(secret.encode()).hexdigest() in ray_system.log(sid)
    found = subprocess.run(["grep", "-rlaF", "-e", user_secret, "-e", provider_secret, cluster.dir,
                            os.path.join(ray_system.home, "logs"), os.path.join(ray_system.home, "run")],
                           capture_output=True, text=True).stdout.split()
    assert found == [], found    # nothing Ray wrote (its logs, its GCS's files), nor our bridge's log
    status, body, _ = ray_system.http("GET", "/v1/sessions/%s" % sid)
    assert user_secret not in json.dumps(body) and provider_secret not in json.dumps(body)


def test_an_interactive_agent_gets_its_task_and_messages_through_the_node(ray_system):
    script = ("while read -r line; do printf '%s\\n' \"$line\" >> got.jsonl; echo \"$line\"; "
              "printf '%s\\n' '{\"type\": \"result\", \"subtype\": \"success\", \"is_error\": false}'; done\n")
    status, answer, _ = post(ray_system, {"task": script, "runtime": "claude-code", "interactive": True,
                                          "idleTimeoutSeconds": 3, "placement": {"resources": {"nodeB": 0.1}}})
    assert status == 202, answer
    sid = answer["sessionId"]
    ray_system.wait_status(sid, {"running"}, timeout=60)
    assert ray_system.http("POST", "/v1/sessions/%s/messages" % sid, {"text": "second <msg>"})[0] == 202
    final = ray_system.wait_status(sid, FINAL, timeout=60)    # the idle timeout closes its input: read ends
    assert final["status"] == "completed", final
    assert "second <msg>" in ray_system.log(sid)
    results = [e for e in ray_system.http("GET", "/v1/sessions/%s/events?since=0" % sid)[1]["events"]
               if e["type"] == "result"]
    assert len(results) == 2


def test_a_timeout_stops_a_session_on_its_node(ray_system):
    sid = spawned(ray_system, task="sleep 60", timeoutSeconds=1, placement={"resources": {"nodeB": 0.1}})
    final = ray_system.wait_status(sid, FINAL, timeout=60)
    assert final["status"] == "failed" and final["cause"] == "timeout"


def test_killing_the_node_that_runs_a_session_interrupts_it_and_leaves_nothing_running(cluster, tmp_path):
    system = System(env=cluster.instance_env()).start(timeout=90)
    try:
        cluster.start_node(resources={"nodeK": 1})
        wait_for(lambda: any("nodeK" in n["total"] and n["alive"] for n in system.rpc().sessions.getCluster()["nodes"]),
                 timeout=60, message="node K in the view")
        marker = "ray-kill-%s" % os.urandom(4).hex()
        sid = system.spawn("bash -c 'exec -a %s sleep 1000'" % marker, placement={"resources": {"nodeK": 1}})["sessionId"]
        system.wait_status(sid, {"running"}, timeout=60)
        wait_for(lambda: pids_matching(marker), timeout=20, message="the worker on node K")
        cluster.nodes[-1].kill()
        final = system.wait_status(sid, FINAL, timeout=30)
        assert final["status"] == "interrupted" and final["cause"] == "node", final
        assert "is gone" in final["reason"] and "interrupted" in system.log(sid)
        wait_for(lambda: not pids_matching(marker), timeout=10, message="nothing of the session left")
    finally:
        system.stop()


def test_restarting_the_head_keeps_every_record_and_interrupts_what_ran(tmp_path):
    need_ray()
    alone = Cluster()
    try:
        head = alone.start_node(resources={"nodeH": 1}, is_head=True)
        system = System(env=alone.instance_env()).start(timeout=90)
        try:
            done = system.spawn("echo done-before")["sessionId"]
            assert system.wait_status(done, FINAL, timeout=60)["status"] == "completed"
            running = system.spawn("sleep 1000")["sessionId"]
            system.wait_status(running, {"running"}, timeout=60)
            head.kill()
            alone.nodes.remove(head)
            final = system.wait_status(running, FINAL, timeout=60)
            assert final["status"] == "interrupted" and final["cause"] == "node", final
            alone.start_node(resources={"nodeH": 1}, is_head=True)
            after = system.spawn("echo after-restart")["sessionId"]
            assert system.wait_status(after, FINAL, timeout=120)["status"] == "completed"
            assert system.rpc().sessions.getSession(done)["status"] == "completed"
            assert "done-before" in system.log(done) and "after-restart" in system.log(after)
        finally:
            system.stop()
    finally:
        alone.stop()


def test_supervisorctl_sessions_cluster_lists_each_node_with_its_labels_and_sessions(ray_system):
    out = ray_system.ctl("sessions", "cluster")
    assert out.returncode == 0 and out.stdout.startswith("backend: ray"), out
    lines = {line[:12]: line for line in out.stdout.splitlines()[2:]}
    assert "zone=b" in lines[ray_system.nodes["nodeB"][:12]] and "(head)" in lines[ray_system.nodes["nodeA"][:12]]


def test_a_node_without_the_secrets_key_fails_the_session_saying_so(cluster, ray_system):
    keyless = cluster.start_node(resources={"keyless": 1}, num_cpus=2, with_key=False)
    try:
        wait_for(lambda: any("keyless" in n["total"] and n["alive"]
                             for n in ray_system.rpc().sessions.getCluster()["nodes"]),
                 timeout=60, message="the keyless node in the view")
        sid = spawned(ray_system, task="echo never", placement={"resources": {"keyless": 1}})
        final = ray_system.wait_status(sid, FINAL, timeout=60)
        assert final["status"] == "failed" and final["cause"] == "spawn", final
        assert "SESSIONS_RAY_KEY_FILE" in final["reason"] and "never" not in ray_system.log(sid)
    finally:
        keyless.kill()


def test_a_session_over_its_memory_limit_on_its_node_fails_for_oom(ray_system):
    isolation = ray_system.rpc().sessions.getIsolation()
    if not isolation["enforced"]["limits"]:
        pytest.skip("limits are not enforced here: %s" % isolation["notEnforced"].get("limits"))
    sid = spawned(ray_system, task="python3 -c \"b = bytearray(400 * 1024 * 1024); print('got-it')\"",
                  limits={"memoryMB": 100}, placement={"resources": {"nodeB": 0.1}})
    final = ray_system.wait_status(sid, FINAL, timeout=60)
    assert final["status"] == "failed" and final["cause"] == "oom" and "100 MB" in final["reason"], final
    assert "got-it" not in ray_system.log(sid).splitlines()


def test_a_restarted_bridge_takes_up_running_sessions_where_they_were(ray_system):
    sid = spawned(ray_system, task="for i in $(seq 1 40); do echo line-$i; sleep 0.1; done",
                  placement={"resources": {"nodeB": 0.1}})
    ray_system.wait_status(sid, {"running"}, timeout=60)
    wait_for(lambda: "line-3\n" in ray_system.log(sid), timeout=10, message="the first lines")
    bridge = ray_system.rpc().supervisor.getProcessInfo("ray-bridge")
    os.kill(bridge["pid"], 9)
    wait_for(lambda: ray_system.rpc().supervisor.getProcessInfo("ray-bridge")["pid"] not in (0, bridge["pid"]),
             timeout=20, message="supervisord to start the bridge again")
    final = ray_system.wait_status(sid, FINAL, timeout=60)
    assert final["status"] == "completed", final
    lines = [line for line in ray_system.log(sid).splitlines() if line.startswith("line-")]
    assert lines == ["line-%d" % i for i in range(1, 41)]   # every line once, in order, across two bridges


def test_a_supervisord_killed_with_its_embedded_head_leaves_nothing_of_ray_or_its_sessions(make_system):
    pytest.importorskip("ray", reason="Ray is not installed (make install EXTRAS=ray)")
    system = make_system(env={"SESSIONS_BACKEND": "ray"}).start(timeout=90)
    marker = "ray-orphan-%s" % os.urandom(4).hex()
    sid = system.spawn("bash -c 'exec -a %s sleep 1000'" % marker)["sessionId"]
    assert system.wait_status(sid, {"running"}, timeout=60)["node"]["address"] == "127.0.0.1"
    wait_for(lambda: pids_matching(marker), timeout=20, message="the worker")
    system.kill9()
    ours = os.path.join(system.home, "run", "ray")
    wait_for(lambda: not pids_matching(ours) and not pids_matching(marker), timeout=30,
             message="the embedded head's processes and the session's worker to end")
    wait_for(lambda: not pids_matching("backends.ray.stub %s" % system.home), timeout=40,
             message="the session's stub to give up (the next supervisord kills it anyway)")
