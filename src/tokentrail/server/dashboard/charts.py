"""Server-rendered SVG charts: no JavaScript and nothing fetched.

Horizontal positions are percentages and vertical ones pixels, so a chart fills any width
while its text keeps its size (a scaled viewBox would shrink labels to nothing on a phone).
The y labels are in a narrow SVG of their own beside the plot. Every bar carries a `<title>` with
its exact value, and each chart comes with the same numbers as a table for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

from tokentrail.server.dashboard.format import count, plain_decimal, usd

HEIGHT = 220
TOP = 18
BOTTOM = 24  # room for the x labels
MAX_X_LABELS = 8
AXIS_WIDTH = 58  # px, left of the plot: the y labels never sit on a bar


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str  # the API's bucket label, e.g. 2025-10-15 or 2025-10-15T13:00:00Z
    label: str  # short axis label
    values: tuple[Decimal, ...]  # one per series
    note: str = ""  # extra text for the tooltip (e.g. the call count)


def nice_scale(maximum: Decimal) -> tuple[Decimal, list[Decimal]]:
    """A round top for the axis and its grid values (0 included)."""
    if maximum <= 0:
        return Decimal(1), [Decimal(0)]
    raw = maximum / 4
    magnitude = Decimal(10) ** math.floor(raw.log10())
    step = magnitude * 10
    for factor in (1, 2, Decimal("2.5"), 5, 10):
        if magnitude * factor >= raw:
            step = magnitude * factor
            break
    top = step * math.ceil(maximum / step)
    ticks = [step * i for i in range(int(top / step) + 1)]
    return top, ticks


def _pct(value: float) -> str:
    return f"{value:.3f}%"


def _usd_tick(value: Decimal) -> str:
    return usd(value)


def _count_tick(value: Decimal) -> str:
    number = int(value)
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if number >= size:
            return f"{plain_decimal(Decimal(number) / size)}{unit}"
    return plain_decimal(value)


TICK_FORMATS: dict[str, Callable[[Decimal], str]] = {"usd": _usd_tick, "count": _count_tick}
VALUE_FORMATS: dict[str, Callable[[Decimal], str]] = {"usd": usd, "count": count}


def stacked_bars(
    buckets: Sequence[Bucket],
    series: Sequence[str],
    *,
    title: str,
    kind: str = "usd",
    chart_id: str = "chart",
) -> Markup:
    """Vertical (stacked) bars over time; `series` names each value of a bucket, bottom up."""
    tick_text = TICK_FORMATS[kind]
    value_text = VALUE_FORMATS[kind]
    totals = [sum(b.values, Decimal(0)) for b in buckets]
    top, ticks = nice_scale(max(totals, default=Decimal(0)))
    plot = HEIGHT - TOP - BOTTOM
    n = max(len(buckets), 1)
    slot = 100 / n
    gap = min(slot * 0.3, 1.2)
    out: list[str] = [
        '<div class="chartrow">',
        f'<svg class="axis" width="{AXIS_WIDTH}" height="{HEIGHT}" aria-hidden="true" focusable="false">',
    ]
    for tick in ticks:
        y = TOP + plot * float(1 - tick / top)
        label = escape(tick_text(tick))
        out.append(f'<text class="ylabel" x="{AXIS_WIDTH - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    out += [
        "</svg>",
        f'<svg class="chart" id="{escape(chart_id)}" width="100%" height="{HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title" data-kind="{escape(kind)}">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
    ]
    for tick in ticks:
        y = TOP + plot * float(1 - tick / top)
        out.append(f'<line class="grid" x1="0" x2="100%" y1="{y:.1f}" y2="{y:.1f}"/>')
    step = max(1, math.ceil(n / MAX_X_LABELS))
    for i, (bucket, total) in enumerate(zip(buckets, totals, strict=True)):
        x = i * slot + gap / 2
        width = slot - gap
        base: float = TOP + plot
        details = " · ".join(
            f"{name} {value_text(v)}" for name, v in zip(series, bucket.values, strict=True) if len(series) > 1
        )
        tip = f"{bucket.key}: {value_text(total)}" + (f" ({details})" if details else "")
        if bucket.note:
            tip += f" · {bucket.note}"
        out.append(
            f'<g class="bar" data-bucket="{escape(bucket.key)}" data-value="{escape(plain_decimal(total))}">'
            f"<title>{escape(tip)}</title>"
        )
        # an invisible full-height target, so thin bars still show their tooltip
        out.append(f'<rect class="hit" x="{_pct(i * slot)}" y="{TOP}" width="{_pct(slot)}" height="{plot}"/>')
        for j, part in enumerate(bucket.values):
            if part <= 0:
                continue
            height = max(plot * float(part / top), 1.0)
            base -= height
            out.append(f'<rect class="s{j}" x="{_pct(x)}" y="{base:.1f}" width="{_pct(width)}" height="{height:.1f}"/>')
        out.append("</g>")
        if i % step == 0:
            minor = " minor" if (i // step) % 2 else ""
            center = x + width / 2
            anchor = "middle"
            if center < 4:
                anchor, center = "start", i * slot
            elif center > 96:
                anchor, center = "end", (i + 1) * slot
            out.append(
                f'<text class="xlabel{minor}" x="{_pct(center)}" y="{HEIGHT - 6}" '
                f'text-anchor="{anchor}">{escape(bucket.label)}</text>'
            )
    out.append("</svg></div>")
    return Markup("".join(out))


def meter(fraction: float, *, label: str = "") -> Markup:
    """A small horizontal bar (share of the largest row)."""
    fraction = min(max(fraction, 0.0), 1.0)
    width = f"{fraction * 100:.2f}%" if fraction > 0 else "0"
    aria = f' aria-label="{escape(label)}"' if label else ' aria-hidden="true"'
    return Markup(
        f'<svg class="meter" width="100%" height="8"{aria} focusable="false">'
        f'<rect class="track" width="100%" height="8" rx="4"/>'
        f'<rect class="fill" width="{width}" height="8" rx="4"/></svg>'
    )


def swatch(index: int) -> Markup:
    return Markup(
        f'<svg class="swatch" width="12" height="12" aria-hidden="true">'
        f'<rect class="s{index}" width="12" height="12" rx="2"/></svg>'
    )


__all__ = ["Bucket", "meter", "nice_scale", "stacked_bars", "swatch"]
