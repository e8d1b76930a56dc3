"""Sampling this process, the machine and its GPUs.

CPU, memory, disk and network come from psutil. GPUs come from NVML (the ``nvidia-ml-py``
package, imported as ``pynvml``) when it is installed and finds a device; otherwise from
``torch.cuda`` if -- and only if -- torch is already imported by the program (importing torch
ourselves would cost seconds and gigabytes). Without either, the GPU status says
"unavailable" and why; sampling never raises because a GPU is missing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from allele.observability.types import GPUDevice, GPUStatus, SystemMetrics

logger = logging.getLogger("allele.observability.system")

# CPU figures are busy time over elapsed time since the previous reading; over a few
# milliseconds the kernel's 10 ms tick makes them 0 or noise, so a sample taken sooner than
# this after the previous one (e.g. right after ``start()``) waits for the rest.
MIN_CPU_INTERVAL_S = 0.1


class SystemSampler:
    """Takes ``SystemMetrics`` samples; CPU percentages are over the time since the previous
    sample, which is at least ``MIN_CPU_INTERVAL_S`` (construction primes the counters, so the
    first sample is a real measurement, never psutil's priming 0.0).

    ``disk_path`` is the filesystem whose usage is reported (default: the current directory's).
    """

    def __init__(self, disk_path: str | None = None) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process(os.getpid())
        self._disk_path = disk_path or os.getcwd()
        self._lock = threading.Lock()
        self._nvml: _Nvml | None = None
        self._nvml_tried = False
        self._nvml_reason: str | None = None
        # Prime the CPU counters so the first sample measures an interval. The machine figure
        # keeps its own previous reading: psutil.cpu_percent(None) keeps one per process, which
        # any other caller in the program would reset under us.
        self._cpu_times = psutil.cpu_times()
        self._process.cpu_percent(interval=None)
        self._cpu_mark = time.monotonic()

    def sample(self) -> SystemMetrics:
        """Return a sample of the machine, this process and the GPUs (waiting, if needed, until
        ``MIN_CPU_INTERVAL_S`` has passed since the previous sample)."""
        psutil = self._psutil
        with self._lock:
            wait = MIN_CPU_INTERVAL_S - (time.monotonic() - self._cpu_mark)
            if wait > 0:
                time.sleep(wait)
            times = psutil.cpu_times()
            cpu = cpu_busy_percent(self._cpu_times, times)
            process_cpu = self._process.cpu_percent(interval=None)
            self._cpu_times = times
            self._cpu_mark = time.monotonic()
        memory = psutil.virtual_memory()
        with self._process.oneshot():
            rss = self._process.memory_info().rss
            threads = self._process.num_threads()
        disk_percent = _optional(lambda: psutil.disk_usage(self._disk_path).percent)
        disk_io = _optional(psutil.disk_io_counters)
        net_io = _optional(psutil.net_io_counters)
        load = _optional(lambda: os.getloadavg()[0])
        return SystemMetrics(
            timestamp=datetime.now(UTC),
            cpu_percent=float(cpu),
            cpu_count=psutil.cpu_count() or 1,
            memory_percent=float(memory.percent),
            memory_used_bytes=float(memory.used),
            memory_total_bytes=float(memory.total),
            disk_percent=None if disk_percent is None else float(disk_percent),
            disk_read_bytes=None if disk_io is None else float(disk_io.read_bytes),
            disk_write_bytes=None if disk_io is None else float(disk_io.write_bytes),
            net_sent_bytes=None if net_io is None else float(net_io.bytes_sent),
            net_recv_bytes=None if net_io is None else float(net_io.bytes_recv),
            process_cpu_percent=float(process_cpu),
            process_rss_bytes=float(rss),
            process_threads=int(threads),
            load_average_1m=None if load is None else float(load),
            gpu=self.sample_gpus(),
        )

    def sample_gpus(self) -> GPUStatus:
        """Return the GPU status: devices from NVML, else from an already-imported torch, else
        "unavailable" with the reason."""
        reasons = []
        nvml = self._nvml_handle()
        if nvml is not None:
            try:
                return GPUStatus(available=True, source="nvml", devices=nvml.devices())
            except Exception as exc:  # a driver hiccup must not stop sampling
                reasons.append(f"NVML query failed: {exc}")
        elif self._nvml_reason:
            reasons.append(self._nvml_reason)
        torch_status = _torch_gpus()
        if isinstance(torch_status, GPUStatus):
            return torch_status
        reasons.append(torch_status)
        return GPUStatus(available=False, reason="; ".join(reasons))

    def _nvml_handle(self) -> _Nvml | None:
        if not self._nvml_tried:
            self._nvml_tried = True
            try:
                self._nvml = _Nvml()
            except _NoGPU as exc:
                self._nvml_reason = str(exc)
        return self._nvml

    def close(self) -> None:
        """Release NVML if it was initialised."""
        if self._nvml is not None:
            self._nvml.close()
            self._nvml = None
        self._nvml_tried = False  # a later sample initialises NVML again


class _NoGPU(Exception):
    pass


class _Nvml:
    """NVML through nvidia-ml-py; raises _NoGPU when the library, driver or devices are absent."""

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError:
            raise _NoGPU("NVML unavailable: nvidia-ml-py is not installed") from None
        try:
            pynvml.nvmlInit()
        except Exception as exc:
            raise _NoGPU(f"NVML unavailable: {exc}") from None
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            pynvml.nvmlShutdown()
            raise _NoGPU("NVML found no GPU")
        self._nvml = pynvml
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]

    def devices(self) -> list[GPUDevice]:
        nvml = self._nvml
        out = []
        for index, handle in enumerate(self._handles):
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            name = nvml.nvmlDeviceGetName(handle)
            utilization = _optional(lambda h=handle: nvml.nvmlDeviceGetUtilizationRates(h).gpu)
            temperature = _optional(
                lambda h=handle: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)
            )
            out.append(
                GPUDevice(
                    index=index,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    memory_used_bytes=float(memory.used),
                    memory_total_bytes=float(memory.total),
                    utilization_percent=None if utilization is None else float(utilization),
                    temperature_c=None if temperature is None else float(temperature),
                )
            )
        return out

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:
            logger.debug("nvmlShutdown failed", exc_info=True)


def _torch_gpus() -> GPUStatus | str:
    """Return torch.cuda's devices if torch is already imported and sees a GPU, else why not."""
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return "torch is not imported"
    try:
        if not torch.cuda.is_available():
            return "torch.cuda sees no GPU"
        devices = []
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append(
                GPUDevice(
                    index=index,
                    name=str(props.name),
                    memory_used_bytes=float(torch.cuda.memory_allocated(index)),
                    memory_total_bytes=float(props.total_memory),
                )
            )
        return GPUStatus(available=True, source="torch.cuda", devices=devices)
    except Exception as exc:
        return f"torch.cuda query failed: {exc}"


def cpu_busy_percent(before: Any, after: Any) -> float:
    """Return the machine's busy CPU percent (0-100) between two ``psutil.cpu_times()``.

    As psutil computes it: busy is all time but idle and iowait; guest time is already counted
    in user and nice on Linux, so it is left out of the total.
    """

    def busy_and_total(times: Any) -> tuple[float, float]:
        total = sum(times)
        total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
        idle = times.idle + getattr(times, "iowait", 0.0)
        return total - idle, total

    busy_0, total_0 = busy_and_total(before)
    busy_1, total_1 = busy_and_total(after)
    elapsed = total_1 - total_0
    if elapsed <= 0:
        return 0.0
    return min(100.0, max(0.0, 100.0 * (busy_1 - busy_0) / elapsed))


def _optional(read: Any) -> Any:
    """Return ``read()``, or None when the platform does not provide it."""
    try:
        return read()
    except Exception:  # missing on this platform, or not permitted
        return None
