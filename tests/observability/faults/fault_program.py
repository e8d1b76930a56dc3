"""A monitored program for the fault suite: the real engine, started the sync or the async way.

Usage: python fault_program.py URI PATH MODE FLUSH_S COUNTER_FILE
  PATH      sync (``engine.start()``) or async (``await setup_observability_monitoring(engine)``)
  MODE      fixed: record 5000 points per series, print READY, idle until a signal;
            continuous: print READY, then record one point per series every millisecond,
            writing how many were recorded to COUNTER_FILE (a memory map) as it goes
  FLUSH_S   the engine's flush interval

Series: gauge ``fault_progress`` (set to 0, 1, 2, ...) and counter ``fault_ops`` (one
increment per point), both recorded through the engine's collector.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import numpy as np

from allele.observability.config import ObservabilitySettings
from allele.observability.engine import ObservabilityEngine

FIXED_POINTS = 5000


def _engine(uri: str, flush_s: float) -> ObservabilityEngine:
    settings = ObservabilitySettings(
        store_uri=uri,
        flush_interval=flush_s,
        collection_interval=3600.0,
        # An explicit writer identity (several writers); else the default host:pid.
        instance=os.environ.get("FAULT_INSTANCE") or None,
    )
    return ObservabilityEngine(settings)


def _record(engine: ObservabilityEngine, mode: str, counter_file: str) -> None:
    labels = {"program": "fault"}
    progress = engine.collector.gauge("fault_progress", labels)
    ops = engine.collector.counter("fault_ops", labels)
    if mode == "fixed":
        for i in range(FIXED_POINTS):
            progress.set(float(i))
            ops.inc()
        print("READY", flush=True)
        return
    recorded = np.memmap(counter_file, dtype=np.int64, mode="r+", shape=(1,))
    print("READY", flush=True)
    i = 0
    while True:
        progress.set(float(i))
        ops.inc()
        i += 1
        recorded[0] = i
        time.sleep(0.001)


def main() -> None:
    uri, path, mode, flush_s, counter_file = sys.argv[1:6]
    engine = _engine(uri, float(flush_s))
    if path == "sync":
        engine.start()
        _record(engine, mode, counter_file)
        while True:
            time.sleep(0.05)
    else:
        from allele.observability.integration import setup_observability_monitoring

        async def run() -> None:
            await setup_observability_monitoring(engine)
            await asyncio.to_thread(_record, engine, mode, counter_file)
            while True:
                await asyncio.sleep(0.05)

        asyncio.run(run())


if __name__ == "__main__":
    main()
