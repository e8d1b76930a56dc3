"""A sample of the machine, this process and its GPUs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from allele.observability.types.persisted import Persisted


@dataclass(slots=True)
class GPUDevice(Persisted):
    """One GPU as seen by NVML or torch.cuda (bytes; utilisation in percent when NVML gives it)."""

    index: int
    name: str
    memory_used_bytes: float
    memory_total_bytes: float | None = None
    utilization_percent: float | None = None
    temperature_c: float | None = None


@dataclass(slots=True)
class GPUStatus(Persisted):
    """Whether GPU figures are available, from which source, and the devices."""

    available: bool
    source: str | None = None
    reason: str | None = None
    devices: list[GPUDevice] = field(default_factory=list)


@dataclass(slots=True)
class SystemMetrics(Persisted):
    """A sample of the machine and of this process.

    CPU percentages follow psutil: the system figure is 0-100; the process figure is 0-100 per
    core (so up to ``100 * cpu_count``). I/O figures are cumulative bytes since boot.
    """

    timestamp: datetime
    cpu_percent: float
    cpu_count: int
    memory_percent: float
    memory_used_bytes: float
    memory_total_bytes: float
    disk_percent: float | None
    disk_read_bytes: float | None
    disk_write_bytes: float | None
    net_sent_bytes: float | None
    net_recv_bytes: float | None
    process_cpu_percent: float
    process_rss_bytes: float
    process_threads: int
    load_average_1m: float | None = None
    gpu: GPUStatus = field(default_factory=lambda: GPUStatus(available=False, reason="not sampled"))
