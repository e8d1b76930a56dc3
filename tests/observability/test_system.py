"""System sampling: plausible values, and GPUs reported as unavailable rather than crashing."""

from __future__ import annotations

import sys
import time
import types

import psutil
import pytest

from allele.observability.system import SystemSampler


def test_sample_has_plausible_values() -> None:
    sampler = SystemSampler()
    sum(i * i for i in range(200_000))  # some CPU for the process figure
    time.sleep(0.05)
    sample = sampler.sample()
    ncpu = psutil.cpu_count() or 1
    assert 0.0 <= sample.cpu_percent <= 100.0
    assert 0.0 <= sample.process_cpu_percent <= 100.0 * ncpu
    assert sample.cpu_count == ncpu
    assert sample.process_rss_bytes > 0 and sample.process_threads >= 1
    assert 0.0 < sample.memory_percent <= 100.0
    assert 0 < sample.memory_used_bytes <= sample.memory_total_bytes
    assert sample.disk_percent is None or 0.0 <= sample.disk_percent <= 100.0
    assert sample.net_recv_bytes is None or sample.net_recv_bytes >= 0
    assert sample.timestamp.tzinfo is not None
    assert type(sample).from_dict(sample.to_dict()) == sample


def test_no_gpu_is_reported_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # as if nvidia-ml-py were absent
    status = SystemSampler().sample_gpus()
    assert status.available is False and status.devices == []
    assert status.reason is not None
    assert "nvidia-ml-py is not installed" in status.reason
    assert "torch is not imported" in status.reason
    assert "torch" not in sys.modules  # sampling never imports torch itself


class FakeNvml(types.ModuleType):
    """A fake pynvml whose init fails the way it does on a machine without a driver."""

    def __init__(self) -> None:
        super().__init__("pynvml")

    def nvmlInit(self) -> None:
        raise RuntimeError("NVML Shared Library Not Found")


def test_nvml_without_driver_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    status = SystemSampler().sample_gpus()
    assert not status.available
    assert status.reason is not None and "NVML Shared Library Not Found" in status.reason


def fake_torch(cuda_available: bool) -> types.ModuleType:
    """A fake, already-imported torch with a fake CUDA device (no real GPU exists here)."""
    torch = types.ModuleType("torch")
    props = types.SimpleNamespace(name="FakeGPU 9000", total_memory=8 * 2**30)
    torch.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: cuda_available,
        device_count=lambda: 1,
        get_device_properties=lambda index: props,
        memory_allocated=lambda index: 2**30,
    )
    return torch


def test_already_imported_torch_is_used_for_gpu_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda_available=True))
    status = SystemSampler().sample_gpus()
    assert status.available and status.source == "torch.cuda"
    [device] = status.devices
    assert (device.name, device.memory_used_bytes, device.memory_total_bytes) == (
        "FakeGPU 9000",
        2.0**30,
        8.0 * 2**30,
    )


def test_torch_without_cuda_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda_available=False))
    status = SystemSampler().sample_gpus()
    assert not status.available
    assert status.reason is not None and "torch.cuda sees no GPU" in status.reason
