"""Charts and the map as server-side SVG (no JavaScript, no online tiles). Labels are text elements drawn
by the browser in the page's CJK font stack."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape


def bars(labels: Sequence[str], values: Sequence[float], *, title: str, unit: str = "",
         highlight_last: bool = True, width: int = 320, height: int = 150) -> str:
    """A small bar chart (a trend: one bar per week), the last bar highlighted."""
    n = max(len(values), 1)
    top = max([*values, 1.0])
    plot_h = height - 44
    bw = (width - 20) / n
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = 0 if top == 0 else plot_h * v / top
        x = 10 + i * bw
        cls = "bar last" if highlight_last and i == n - 1 else "bar"
        parts.append(
            f'<rect class="{cls}" x="{x + 3:.1f}" y="{20 + plot_h - h:.1f}" width="{bw - 6:.1f}" height="{h:.1f}"/>'
            f'<text class="val" x="{x + bw / 2:.1f}" y="{16 + plot_h - h:.1f}" text-anchor="middle">'
            f"{escape(_num(v))}{escape(unit)}</text>"
            f'<text class="lbl" x="{x + bw / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.0f}"


def meters(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """(east, north) metres of a point from the origin (equirectangular: fine within a few km)."""
    r = 6371000.0
    return (math.radians(lon - lon0) * r * math.cos(math.radians(lat0)), math.radians(lat - lat0) * r)


def village_map(lat0: float, lon0: float, far_m: float, points: Sequence[tuple[float, float, bool, str]],
                *, title: str, size: int = 360) -> str:
    """The village point, the far-distance circle, and points (lat, lon, far, label); far ones in red.
    Points beyond the frame are drawn on its edge, so a check-in from town is still seen."""
    reach = far_m * 1.4
    for lat, lon, _, _ in points:
        x, y = meters(lat0, lon0, lat, lon)
        reach = max(reach, min(math.hypot(x, y) * 1.1, far_m * 6))
    scale = (size / 2 - 12) / reach
    c = size / 2
    parts = [
        f'<svg class="map" role="img" aria-label="{escape(title)}" viewBox="0 0 {size} {size}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<rect class="bg" x="0" y="0" width="{size}" height="{size}"/>'
        f'<circle class="far" cx="{c}" cy="{c}" r="{far_m * scale:.1f}"/>'
        f'<text class="lbl" x="{c}" y="{c - far_m * scale - 4:.1f}" text-anchor="middle">{int(far_m)} m</text>'
    ]
    for lat, lon, far, label in points:
        x, y = meters(lat0, lon0, lat, lon)
        px, py = c + x * scale, c - y * scale
        px, py = min(max(px, 6), size - 6), min(max(py, 6), size - 6)
        cls = "pt far" if far else "pt"
        parts.append(f'<circle class="{cls}" cx="{px:.1f}" cy="{py:.1f}" r="5"><title>{escape(label)}</title></circle>')
    parts.append(f'<rect class="village" x="{c - 6}" y="{c - 6}" width="12" height="12"/></svg>')
    return "".join(parts)
