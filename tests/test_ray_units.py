"""The ray backend's parts that need no cluster: what a session asks for and where it fits, sealed secrets,
the wire between stub and bridge, the placement part of a spec."""
import socket
import threading

import pytest

from supervisor_sessions.backends.ray import placement, wire
from supervisor_sessions.faults import InvalidSpec
from supervisor_sessions.spec import parse_spec

GiB = 2 ** 30


def node(name, free, total=None, labels=None, alive=True):
    return {"id": name, "alive": alive, "available": free, "total": total or free, "labels": labels or {}}


def queued(sid, cpus=1, memory_mb=1024, **custom):
    return {"sessionId": sid, "ray": {"resources": placement.request({"cpus": cpus, "memoryMB": memory_mb}, 0,
                                                                     {"resources": custom}), "labels": {}}}


def test_a_request_is_cpus_memory_gpus_and_the_custom_resources():
    assert placement.request({"cpus": 0.5, "memoryMB": 256}, 2, {"resources": {"nodeB": 1.0}}) == \
        {"CPU": 0.5, "memory": 256.0 * 2 ** 20, "GPU": 2.0, "nodeB": 1.0}
    assert "GPU" not in placement.request({"cpus": 1, "memoryMB": 16}, 0, {})


def test_queued_sessions_start_while_a_node_has_room_and_one_that_fits_nowhere_holds_back_none():
    view = {"nodes": [node("a", {"CPU": 2.0, "memory": 4.0 * GiB}), node("b", {"CPU": 1.0, "memory": 4.0 * GiB, "gpuBox": 1.0})]}
    waiting = [queued("1", cpus=2), queued("2", cpus=1, gpuBox=1), queued("3", cpus=1), queued("4", cpus=0.5)]
    chosen = placement.admissible(view, [], waiting)
    assert [r["sessionId"] for r in chosen] == ["1", "2"]   # a is full with 1, b with 2; 3 and 4 wait
    assert [r["sessionId"] for r in placement.admissible(view, [queued("p", cpus=2)], waiting)] == ["2"]


def test_no_view_admits_nothing_and_a_dead_node_holds_nothing():
    assert placement.admissible(None, [], [queued("1")]) == []
    view = {"nodes": [node("a", {"CPU": 8.0, "memory": 8.0 * GiB}, alive=False)]}
    assert placement.admissible(view, [], [queued("1")]) == []


def test_labels_must_all_match():
    nodes = [node("a", {"CPU": 1.0}, labels={"zone": "a"}), node("b", {"CPU": 1.0}, labels={"zone": "b", "gpu": "h200"})]
    assert placement.place(nodes, {"CPU": 1.0}, {"zone": "b"})["id"] == "b"
    assert placement.place(nodes, {"CPU": 1.0}, {"zone": "b", "gpu": "a100"}) is None


def test_a_stale_or_unreadable_view_is_none(tmp_path):
    path = tmp_path / placement.CLUSTER_FILE
    assert placement.load(str(path)) is None
    path.write_text("{not json")
    assert placement.load(str(path)) is None
    path.write_text('{"updatedAt": 1, "nodes": []}')
    assert placement.load(str(path)) is None


def test_sealed_secrets_open_only_with_the_same_key_and_unchanged(tmp_path):
    sealed = pytest.importorskip("supervisor_sessions.backends.ray.sealed")
    pytest.importorskip("cryptography", reason="the ray extra brings cryptography")
    key = sealed.ensure_key(str(tmp_path / "key"))
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    assert sealed.ensure_key(str(tmp_path / "key")) == key == sealed.load_key(str(tmp_path / "key"))
    token = sealed.seal(key, {"secretEnv": {"OPENAI_API_KEY": "sk-very-secret"}})
    assert "sk-very-secret" not in token
    assert sealed.unseal(key, token) == {"secretEnv": {"OPENAI_API_KEY": "sk-very-secret"}}
    other = sealed.ensure_key(str(tmp_path / "other"))
    with pytest.raises(ValueError, match="does not open"):
        sealed.unseal(other, token)
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(ValueError):
        sealed.unseal(key, tampered)
    (tmp_path / "short").write_text("too short")
    with pytest.raises(ValueError, match="shorter than 32"):
        sealed.load_key(str(tmp_path / "short"))
    with pytest.raises(ValueError, match="SESSIONS_RAY_KEY_FILE"):
        sealed.load_key(str(tmp_path / "missing"))


def test_the_wire_carries_bytes_and_refuses_what_is_not_a_message():
    left, right = socket.socketpair()

    def write():
        wire.send(left, "out", data=wire.encode(b"\x00\xffbytes\n"), offset=7)
        left.sendall(b"[1, 2]\n")
        left.sendall(b"x" * (wire.LINE_MAX + 10) + b"\n")
    writer = threading.Thread(target=write, daemon=True)   # more than a socket buffer holds
    writer.start()
    with left, right:
        reader = wire.Reader(right)
        message = reader.next()
        assert message["op"] == "out" and wire.decode(message["data"]) == b"\x00\xffbytes\n"
        with pytest.raises(ValueError, match="without an op"):
            reader.next()
        with pytest.raises(ValueError, match="longer than"):
            reader.next()


SPEC = {"agent": "coder", "task": "t", "provider": "gemini"}


def test_a_placement_is_parsed_into_floats_and_labels():
    spec = parse_spec(dict(SPEC, placement={"resources": {"nodeB": 1, "accelerator_type:H200": 0.5},
                                            "labels": {"zone": "b"}}), None)
    assert spec.placement == {"resources": {"nodeB": 1.0, "accelerator_type:H200": 0.5}, "labels": {"zone": "b"}}


@pytest.mark.parametrize("placement, words", [
    ("nodeB", "must be a struct"),
    ({"nodes": {}}, "must be a struct"),
    ({"resources": {"CPU": 1}}, "custom resource"),
    ({"resources": {"memory": 1}}, "custom resource"),
    ({"resources": {"1bad": 1}}, "custom resource"),
    ({"resources": {"nodeB": 0}}, "above 0"),
    ({"resources": {"nodeB": True}}, "above 0"),
    ({"resources": {"nodeB": "1"}}, "above 0"),
    ({"resources": {"r%d" % i: 1 for i in range(17)}}, "at most 16"),
    ({"labels": {"zone": "a b"}}, "label value"),
    ({"labels": {"zone": 1}}, "label value"),
    ({"labels": {"ray.io/node-id": "x"}}, "node label names"),
    ({"labels": ["zone=a"]}, "key: value"),
])
def test_a_bad_placement_is_refused_naming_what_is_wrong(placement, words):
    with pytest.raises(InvalidSpec, match=words):
        parse_spec(dict(SPEC, placement=placement), None)


def test_a_placement_on_the_supervisord_backend_is_a_400_saying_what_it_needs(system):
    status, body, _ = system.http("POST", "/v1/sessions", dict(SPEC, runtime="shell", placement={"resources": {"nodeB": 1}}))
    assert status == 400 and "SESSIONS_BACKEND=ray" in body["message"]
    status, body, _ = system.http("GET", "/v1/status")
    assert status == 200 and body["cluster"] == {"backend": "supervisord", "nodes": []}


def test_a_record_without_a_start_time_still_travels_over_xml_rpc():
    # a ray session stopped after its stub said where it runs but before supervisord said RUNNING has none
    from supervisor_sessions.rpcinterface import _wire
    record = _wire({"sessionId": "s", "createdAt": 1796389202963, "startTime": None, "node": {"id": "n"}})
    assert record["createdAt"] == 1796389202963.0 and record["startTime"] is None
