"""A monitored program for the durability tests: records into the real MetricsCollector while a
Flusher stores the points.

Usage: python recording_program.py URI MODE INTERVAL_S
  continuous  set gauge ``progress`` to 0, 1, 2, ... every millisecond until killed
  fixed       set it 5000 times, print READY, then idle until a signal arrives
  exit        set it 5000 times and return normally (atexit must flush them)
"""

from __future__ import annotations

import sys
import time

from allele.observability.collector import MetricsCollector
from allele.observability.store import open_store
from allele.observability.store.flusher import Flusher


def main() -> None:
    uri, mode, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
    collector = MetricsCollector()
    progress = collector.gauge("progress", {"program": "recording"})
    Flusher(open_store(uri), collector, interval_s=interval).start()
    if mode == "continuous":
        print("READY", flush=True)
        i = 0
        while True:
            progress.set(float(i))
            i += 1
            time.sleep(0.001)
    for i in range(5000):
        progress.set(float(i))
    if mode == "fixed":
        print("READY", flush=True)
        while True:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
