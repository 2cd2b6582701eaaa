"""Summaries of load-generator runs: throughput, latency percentiles, ratios."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0..1) of an ascending list; None when empty."""
    if not ordered:
        return None
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))  # ceil(q * n), within 1..n
    return ordered[rank - 1]


def merge(runs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One summary of several runs of the same thing (e.g. alternating rounds).

    Returns:
        ``rps`` (all requests / all measured seconds), ``p50_ms``/``p95_ms``/``p99_ms``
        over every request, ``count``, ``errors``, ``cpu_pct`` (load generator, the highest
        of the runs), ``rounds_rps`` (each run's requests/s).
    """
    runs = list(runs)
    latencies = sorted(v for run in runs for v in run["latencies_ms"])
    elapsed = sum(run["elapsed_s"] for run in runs)
    count = sum(run["count"] for run in runs)
    return {
        "count": count,
        "errors": sum(run["errors"] for run in runs),
        "rps": round(count / elapsed, 1) if elapsed else 0.0,
        "p50_ms": _round(percentile(latencies, 0.50)),
        "p95_ms": _round(percentile(latencies, 0.95)),
        "p99_ms": _round(percentile(latencies, 0.99)),
        "cpu_pct": max((run["cpu_pct"] for run in runs), default=0.0),
        "rounds_rps": [run["rps"] for run in runs],
        "error_samples": [s for run in runs for s in run["error_samples"]][:5],
        "status_counts": _sum_counts(run["status_counts"] for run in runs),
    }


def ratio_summary(ours: list[float], ceiling: list[float]) -> dict[str, Any]:
    """Per-round ``ours / ceiling`` throughput ratios (rounds paired in order): median, min, max."""
    ratios = [o / c for o, c in zip(ours, ceiling, strict=False) if c]
    if not ratios:
        return {"median": None, "min": None, "max": None, "rounds": []}
    return {
        "median": round(statistics.median(ratios), 3),
        "min": round(min(ratios), 3),
        "max": round(max(ratios), 3),
        "rounds": [round(r, 3) for r in ratios],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _sum_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for one in counts:
        for status, n in one.items():
            total[status] = total.get(status, 0) + n
    return total
