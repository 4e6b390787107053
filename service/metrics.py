"""Prometheus metrics of the monitor and the evidence store."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class Metrics:
    """One registry per process (tests build several apps side by side)."""

    def __init__(self, storage_bytes: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.frames_analyzed = Counter("smokewatch_frames_analyzed_total", "Frames analyzed", ["camera"], registry=self.registry)
        self.frames_dropped = Counter("smokewatch_frames_dropped_total", "Frames chosen for analysis but dropped because "
                                      "analysis was behind", ["camera"], registry=self.registry)
        self.frames_skipped = Counter("smokewatch_frames_motion_skipped_total", "Analyzed frames where the motion gate "
                                      "skipped the detector", ["camera"], registry=self.registry)
        self.detector_seconds = Histogram("smokewatch_detector_seconds", "Detector time per analyzed frame (its share of a batch)",
                                          buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28), registry=self.registry)
        self.events = Counter("smokewatch_events_total", "Smoking events confirmed", ["camera"], registry=self.registry)
        self.camera_up = Gauge("smokewatch_camera_up", "1 when the camera is connected", ["camera"], registry=self.registry)
        self.reconnects = Counter("smokewatch_camera_reconnects_total", "Connection attempts after a failure", ["camera"],
                                  registry=self.registry)
        storage = Gauge("smokewatch_storage_used_bytes", "Bytes used by the evidence folder", registry=self.registry)
        if storage_bytes is not None:
            storage.set_function(_cached(storage_bytes, 30.0))
        self._frames_read = _FramesRead()
        self.registry.register(self._frames_read)

    def count_frames_read(self, source: Callable[[], dict[str, int]]) -> None:
        """Report decoded frames per camera from the readers' own counters."""
        self._frames_read.source = source


class _FramesRead(Collector):
    def __init__(self) -> None:
        self.source: Callable[[], dict[str, int]] = dict

    def collect(self):  # type: ignore[no-untyped-def]
        family = CounterMetricFamily("smokewatch_frames_read", "Frames decoded from cameras", labels=["camera"])
        for camera, count in self.source().items():
            family.add_metric([camera], count)
        yield family


def _cached(function: Callable[[], int], seconds: float) -> Callable[[], float]:
    """Walking the evidence tree on every scrape would be wasteful; refresh at most every ``seconds``."""
    state = {"at": -1e9, "value": 0.0}

    def read() -> float:
        if time.monotonic() - state["at"] > seconds:
            state["value"], state["at"] = float(function()), time.monotonic()
        return state["value"]

    return read
