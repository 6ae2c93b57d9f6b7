"""Readings of the machine: CPU, memory, disk and load through psutil, GPUs through NVML.

NVML is optional: with no driver, no library or no GPU, gpu_status() answers available=False and the
reason, never an exception.
"""
import os
import threading
import time

import psutil

_nvml_lock = threading.Lock()
_nvml_state = {"ready": False, "error": None}


def _nvml():
    """The pynvml module, initialised once; raises RuntimeError with the reason when unusable."""
    with _nvml_lock:
        if _nvml_state["ready"]:
            import pynvml
            return pynvml
        if _nvml_state["error"] is None:
            try:
                import pynvml
                pynvml.nvmlInit()
                _nvml_state["ready"] = True
                return pynvml
            except ImportError:
                _nvml_state["error"] = "nvidia-ml-py is not installed"
            except Exception as e:  # pynvml.NVMLError: library or driver missing, no permission
                _nvml_state["error"] = "NVML unavailable: %s" % (str(e) or type(e).__name__)
        raise RuntimeError(_nvml_state["error"])


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _gpu(pynvml, index):
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    gpu = {"index": index, "name": _text(pynvml.nvmlDeviceGetName(handle)),
           "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
           "memoryTotal": int(memory.total), "memoryUsed": int(memory.used),
           "utilization": None, "temperature": None}
    try:
        gpu["utilization"] = int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except pynvml.NVMLError:
        pass
    try:
        gpu["temperature"] = int(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
    except pynvml.NVMLError:
        pass
    return gpu


def gpu_status():
    """{available, gpus: [{index, name, uuid, memoryTotal, memoryUsed, utilization, temperature}], reason?}"""
    try:
        pynvml = _nvml()
        count = pynvml.nvmlDeviceGetCount()
        gpus = [_gpu(pynvml, i) for i in range(count)]
    except Exception as e:  # RuntimeError from _nvml, NVMLError from a device query
        return {"available": False, "gpus": [], "reason": str(e) or type(e).__name__}
    if not gpus:
        return {"available": False, "gpus": [], "reason": "NVML found no GPU"}
    return {"available": True, "gpus": gpus}


def system_status(path):
    """CPU, memory, disk (of `path`) and load average."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(path)
    return {
        "cpu": {"count": psutil.cpu_count() or 0, "percent": psutil.cpu_percent(interval=None)},
        "memory": {"total": memory.total, "available": memory.available, "used": memory.used,
                   "percent": memory.percent},
        "disk": {"path": path, "total": disk.total, "used": disk.used, "free": disk.free,
                 "percent": disk.percent},
        "load": list(os.getloadavg()),
    }


def _gpu_memory_of(pids):
    """Bytes of GPU memory used by `pids` on every GPU, or None where NVML cannot tell."""
    try:
        pynvml = _nvml()
        used = 0
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid in pids and proc.usedGpuMemory:
                    used += int(proc.usedGpuMemory)
        return used
    except Exception:  # RuntimeError: no NVML; NVMLError: a query this GPU or driver does not support
        return None


MAX_TRACKED_TREES = 1024


class TreeSampler:
    """CPU percent, RSS, process count and GPU memory of a worker's whole process tree.

    CPU percent is measured between two readings of the same tree (the first reading: since the worker
    started), as `top` does, so a reading never has to sleep.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._last = {}  # (pid, create_time) -> (wall time, cpu seconds of the tree)

    def sample(self, pid):
        """The readings of the tree rooted at `pid`, or None when it is gone."""
        try:
            root = psutil.Process(pid)
            key = (pid, root.create_time())
            tree = [root] + root.children(recursive=True)
        except psutil.Error:
            return None
        cpu, rss, alive = 0.0, 0, []
        for process in tree:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    cpu += times.user + times.system
                    rss += process.memory_info().rss
                alive.append(process.pid)
            except psutil.Error:
                pass
        now = time.time()
        with self._lock:
            since, cpu_before = self._last.get(key, (key[1], 0.0))
            self._last[key] = (now, cpu)
            if len(self._last) > MAX_TRACKED_TREES:
                self._last = {k: v for k, v in self._last.items() if psutil.pid_exists(k[0])}
        percent = 100.0 * max(0.0, cpu - cpu_before) / max(now - since, 1e-3)
        return {"cpuPercent": round(percent, 1), "rss": rss, "processes": len(alive),
                "gpuMemory": _gpu_memory_of(set(alive))}
