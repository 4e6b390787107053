"""Which people count: zone membership by a configurable anchor of the person box."""

from __future__ import annotations

import numpy as np

from service.config import Anchor, Zone


def anchor_point(box: tuple[float, float, float, float], anchor: Anchor) -> tuple[float, float]:
    x1, y1, x2, y2 = box
    cx = (x1 + x2) / 2
    return {"bottom_center": (cx, y2), "center": (cx, (y1 + y2) / 2), "top_center": (cx, y1)}[anchor]


def point_in_polygon(x: float, y: float, polygon: list[tuple[float, float]]) -> bool:
    """Even-odd ray casting; points on an edge may fall either way."""
    inside = False
    n = len(polygon)
    for i in range(n):
        (xa, ya), (xb, yb) = polygon[i], polygon[(i + 1) % n]
        if (ya > y) != (yb > y) and x < xa + (y - ya) * (xb - xa) / (yb - ya):
            inside = not inside
    return inside


class ZoneFilter:
    """Decides whether a person's evidence counts: inside a no-smoking zone and outside every exempt zone."""

    def __init__(self, zones: list[Zone], exempt_zones: list[Zone], anchor: Anchor) -> None:
        self.zones, self.exempt_zones, self.anchor = zones, exempt_zones, anchor

    def counts(self, box: tuple[float, float, float, float], frame_size: tuple[int, int]) -> bool:
        width, height = frame_size
        x, y = anchor_point(box, self.anchor)
        x, y = float(np.clip(x / width, 0, 1)), float(np.clip(y / height, 0, 1))
        if any(point_in_polygon(x, y, zone.points) for zone in self.exempt_zones):
            return False
        return not self.zones or any(point_in_polygon(x, y, zone.points) for zone in self.zones)
