"""The latency sketch kept in every rollup row: a fixed log-scale histogram of call durations.

Bins: `lat_00` counts durations under 1 ms; `lat_01`..`lat_60` split [1 ms, 1,000,000 ms)
into 60 bins of equal width on a log scale (ten per decade, each bin's upper edge is
10^(1/10) ~ 1.259 times its lower edge); `lat_61` counts 1,000,000 ms (16.7 min) and over.
Histograms add, so rollup rows merge exactly by summing their bin columns.

A quantile is the geometric midpoint of the bin holding the nearest-rank value, so for
durations between 1 ms and 1,000,000 ms the reported p50/p95 is within 10^(1/20) - 1 ~ 12.2%
of the exact nearest-rank percentile. Under 1 ms it reports 0.5 ms (off by under 0.5 ms);
at or above 1,000,000 ms it reports 1,000,000 ms (a lower bound).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import sqlalchemy as sa

PER_DECADE = 10
DECADES = 6
BINS = PER_DECADE * DECADES + 2
# EDGES[i] is the lower edge of bin i + 1 (ms): 1, 1.259, ..., 1e6.
EDGES: tuple[float, ...] = tuple(10 ** (i / PER_DECADE) for i in range(PER_DECADE * DECADES + 1))
COLUMNS: tuple[str, ...] = tuple(f"lat_{i:02d}" for i in range(BINS))
MAX_RELATIVE_ERROR = 10 ** (1 / (2 * PER_DECADE)) - 1


def bin_of(duration_ms: float) -> int:
    """The bin index of one duration (ms, non-negative)."""
    return bisect_right(EDGES, duration_ms)


def bin_expression(duration: sa.ColumnElement[float]) -> sa.ColumnElement[int]:
    """The same binning in SQL (a CASE over the edges), NULL where the duration is NULL."""
    # Literal SQL, not bound parameters: the same expression appears in SELECT and GROUP BY,
    # and PostgreSQL only matches them when they are textually identical.
    whens: list[tuple[Any, Any]] = [
        (duration < sa.literal_column(repr(edge)), sa.literal_column(str(i))) for i, edge in enumerate(EDGES)
    ]
    return sa.case((duration.is_(None), sa.null()), *whens, else_=sa.literal_column(str(BINS - 1)))


def representative(index: int) -> float:
    """The value reported for a quantile falling in bin `index`."""
    if index == 0:
        return 0.5
    if index >= BINS - 1:
        return EDGES[-1]
    return math.sqrt(EDGES[index - 1] * EDGES[index])


def quantiles(counts: Sequence[int], qs: Sequence[float]) -> list[float | None]:
    """Nearest-rank quantiles (each 0 < q <= 1) of a histogram, in one pass; None when empty."""
    total = sum(counts)
    if total == 0:
        return [None] * len(qs)
    ranks = [max(1, math.ceil(q * total)) for q in qs]
    out: list[float | None] = [None] * len(qs)
    pending = sorted(range(len(qs)), key=ranks.__getitem__)
    for index, seen in enumerate(accumulate(counts)):
        while pending and seen >= ranks[pending[0]]:
            out[pending.pop(0)] = round(representative(index), 3)
        if not pending:
            break
    return out


def quantile(counts: Sequence[int], q: float) -> float | None:
    """Nearest-rank quantile `q` (0 < q <= 1) of a histogram; None when it is empty."""
    return quantiles(counts, (q,))[0]


__all__ = [
    "BINS",
    "COLUMNS",
    "EDGES",
    "MAX_RELATIVE_ERROR",
    "bin_expression",
    "bin_of",
    "quantile",
    "quantiles",
    "representative",
]
