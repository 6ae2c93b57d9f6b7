"""GPUs per session: a session holds the GPUs it asks for, exclusively, and sees no other; without GPUs,
asking for one is a clear 400. The tests that need a GPU skip on machines without one, saying so."""
import glob
import xmlrpc.client

import pytest

from supervisor_sessions.faults import Faults

from conftest import FINAL, wait_for

GPUS = sorted(glob.glob("/dev/nvidia[0-9]*"))
needs_gpu = pytest.mark.skipif(not GPUS, reason="this machine has no NVIDIA GPU (/dev/nvidia<N>)")
# Allocates 256 MiB on the session's first visible GPU through the driver API (no CUDA toolkit needed),
# says so, and holds it until killed.
CUDA_ALLOC = r"""python3 -c "
import ctypes, signal
cuda = ctypes.CDLL('libcuda.so.1')
assert cuda.cuInit(0) == 0
device, context, memory = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_void_p()
assert cuda.cuDeviceGet(ctypes.byref(device), 0) == 0
assert cuda.cuCtxCreate_v2(ctypes.byref(context), 0, device) == 0
assert cuda.cuMemAlloc_v2(ctypes.byref(memory), 256 << 20) == 0
print('allocated', flush=True)
signal.pause()
"
"""


def test_a_machine_without_enough_gpus_refuses_a_session_that_asks_for_more(system):
    asked = len(GPUS) + 1
    status, body, _ = system.http("POST", "/v1/sessions", {"agent": "a", "provider": "p", "runtime": "shell",
                                                           "task": "true", "gpus": asked})
    assert status == 400 and body["error"] == "invalid_request"
    assert "gpus: %d asked" % asked in body["message"] and ("no GPU" in body["message"] or "GPUs" in body["message"])
    with pytest.raises(xmlrpc.client.Fault) as info:
        system.spawn("true", gpus=asked)
    assert info.value.faultCode == Faults.INVALID_SPEC


@pytest.mark.parametrize("gpus", [-1, 65, "1", 1.5, True])
def test_gpus_must_be_a_small_whole_number(system, gpus):
    status, body, _ = system.http("POST", "/v1/sessions", {"agent": "a", "provider": "p", "runtime": "shell",
                                                           "task": "true", "gpus": gpus})
    assert status == 400 and "'gpus' must be an integer from 0 to 64" in body["message"]


def test_a_session_without_gpus_sees_no_gpu_device(system):
    record = system.run("ls /dev; echo visible=${CUDA_VISIBLE_DEVICES-unset} gpus=$SESSION_GPUS")
    log = system.log(record["sessionId"])
    assert record["status"] == "completed" and record["gpus"] == 0
    sandboxed = system.rpc().sessions.getIsolation()["enforced"]["namespaces"]
    if sandboxed:
        assert "nvidia" not in log
    assert "gpus=0" in log and ("visible= " in log or not GPUS)


@needs_gpu
def test_a_session_given_one_gpu_sees_exactly_it_allocates_memory_and_the_api_reports_it(system):
    record = system.spawn(CUDA_ALLOC + "\nexit 0", gpus=1)
    sid = record["sessionId"]
    wait_for(lambda: "allocated" in system.log(sid) or system.rpc().sessions.getSession(sid)["status"] in FINAL,
             timeout=60, message="the allocation")
    assert "allocated" in system.log(sid), system.log(sid)
    shown = system.http("GET", "/v1/sessions/" + sid)[1]
    assert len(shown["gpuDevices"]) == 1 and shown["gpus"] == 1
    wait_for(lambda: (system.http("GET", "/v1/sessions/" + sid)[1]["resources"] or {}).get("gpuMemory"),
             timeout=20, message="the API to report the session's GPU memory")
    print("GPU session:", shown["gpuDevices"], system.http("GET", "/v1/sessions/" + sid)[1]["resources"])
    system.http("DELETE", "/v1/sessions/" + sid)


@needs_gpu
def test_a_session_that_needs_a_held_gpu_waits_in_the_queue(system):
    holders = [system.spawn("sleep 60", gpus=1)["sessionId"] for _ in GPUS]
    waiting = system.spawn("ls /dev/nvidia*; echo visible=$CUDA_VISIBLE_DEVICES", gpus=1)["sessionId"]
    assert system.rpc().sessions.getSession(waiting)["status"] == "queued"
    system.http("DELETE", "/v1/sessions/" + holders[0])
    done = system.wait_status(waiting, FINAL, timeout=30)
    assert done["status"] == "completed" and len(done["gpuDevices"]) == 1
    assert "visible=%d" % done["gpuDevices"][0] in system.log(waiting)
    for sid in holders[1:]:
        system.http("DELETE", "/v1/sessions/" + sid)
