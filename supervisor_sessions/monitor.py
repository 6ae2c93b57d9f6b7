"""Readings of the machine: CPU, memory, disk and load through psutil, GPUs through NVML.

NVML is optional: with no driver, no library or no GPU, gpu_status() answers available=False and the
reason, never an exception.
"""
import os
import threading

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
