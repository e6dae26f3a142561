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


def stacked(labels: Sequence[str], totals: Sequence[float], late: Sequence[float], *, title: str,
            width: int = 320, height: int = 160) -> str:
    """One bar per label (e.g. monitoring cases per step), its overdue part drawn in red at the bottom."""
    n = max(len(totals), 1)
    top = max([*totals, 1.0])
    plot_h = height - 48
    bw = (width - 20) / n
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (label, v, k) in enumerate(zip(labels, totals, late, strict=True)):
        h, hk = plot_h * v / top, plot_h * min(k, v) / top
        x, base = 10 + i * bw, 20 + plot_h
        parts.append(
            f'<rect class="bar" x="{x + 2:.1f}" y="{base - h:.1f}" width="{bw - 4:.1f}" height="{h:.1f}"/>'
            + (f'<rect class="bar late" x="{x + 2:.1f}" y="{base - hk:.1f}" width="{bw - 4:.1f}" height="{hk:.1f}">'
               f"<title>{escape(_num(k))}</title></rect>" if k else "")
            + f'<text class="val" x="{x + bw / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle">{escape(_num(v))}</text>'
            f'<text class="lbl" x="{x + bw / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def timeline(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]], *, title: str,
             width: int = 480, height: int = 170) -> str:
    """Grouped bars over time (weeks on x): one bar per series (name, css class, values) and a legend."""
    n = max(len(labels), 1)
    k = max(len(series), 1)
    top = max([1.0, *(v for _, _, vals in series for v in vals)])
    plot_h = height - 62
    gw = (width - 20) / n
    bw = (gw - 6) / k
    parts = [
        f'<svg class="chart timeline" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for j, (name, cls, _) in enumerate(series):
        parts.append(f'<rect class="bar {cls}" x="{10 + j * 110}" y="4" width="10" height="10"/>'
                     f'<text class="lbl legend" x="{24 + j * 110}" y="13">{escape(name)}</text>')
    base = 30 + plot_h
    for i, label in enumerate(labels):
        x = 10 + i * gw
        for j, (name, cls, vals) in enumerate(series):
            v = vals[i]
            h = plot_h * v / top
            bx = x + 3 + j * bw
            parts.append(f'<rect class="bar {cls}" x="{bx:.1f}" y="{base - h:.1f}" width="{bw - 1:.1f}" '
                         f'height="{h:.1f}"><title>{escape(name)} {escape(_num(v))}</title></rect>')
            if v:
                parts.append(f'<text class="val" x="{bx + bw / 2:.1f}" y="{base - h - 3:.1f}" '
                             f'text-anchor="middle">{escape(_num(v))}</text>')
        parts.append(f'<text class="lbl" x="{x + gw / 2:.1f}" y="{height - 8}" text-anchor="middle">'
                     f"{escape(label)}</text>")
    parts.append("</svg>")
    return "".join(parts)
