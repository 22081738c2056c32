"""Rounds merged into one set of figures per shape and target, the issue's goals judged on them,
and the final table."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.targets import BARE, RATIFY, SIGNET

TARGETS = (SIGNET, RATIFY, BARE)
Figures = dict[str, Any]


def merge(passes: Sequence[Figures]) -> Figures:
    """Numbers averaged (each round's value kept in `<name>_rounds`), lists concatenated, dicts
    merged the same way; cold and burst percentiles recomputed over every round's samples."""
    merged: Figures = {}
    for name in passes[0]:
        values = [p[name] for p in passes if name in p]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            merged[name] = round(statistics.mean(values), 2)
            if len(values) > 1:
                merged[f"{name}_rounds"] = values
        elif all(isinstance(v, list) for v in values):
            merged[name] = [x for v in values for x in v]
        elif all(isinstance(v, dict) for v in values):
            merged[name] = merge(values)
        else:
            merged[name] = values[0] if len(set(map(repr, values))) == 1 else values
    latencies = merged.get("latencies_ms")
    if isinstance(latencies, list) and latencies:
        merged["p50_ms"] = round(statistics.median(latencies), 2)
        merged["max_ms"] = max(latencies)
    return merged


def merge_rounds(rounds: Sequence[dict[str, dict[str, Figures]]]) -> dict[str, dict[str, Figures]]:
    shapes: dict[str, dict[str, list[Figures]]] = {}
    for one in rounds:
        for shape, by_target in one.items():
            for target, figures in by_target.items():
                shapes.setdefault(shape, {}).setdefault(target, []).append(figures)
    return {
        shape: {target: merge(passes) for target, passes in by_target.items()}
        for shape, by_target in shapes.items()
    }


@dataclass(frozen=True)
class Goal:
    shape: str
    text: str  # the goal
    measure: Callable[[dict[str, dict[str, Figures]]], float | None]
    meets: Callable[[float], bool]
    unit: str = "x"


def _get(merged: dict[str, dict[str, Figures]], shape: str, target: str, name: str) -> Any:
    value = merged.get(shape, {}).get(target, {}).get(name)
    return value


def _ratio(shape: str, name: str, top: str = SIGNET, bottom: str = RATIFY) -> Any:
    def measure(merged: dict[str, dict[str, Figures]]) -> float | None:
        a, b = _get(merged, shape, top, name), _get(merged, shape, bottom, name)
        return None if a is None or not b else a / b

    return measure


def _value(shape: str, name: str, target: str = SIGNET) -> Any:
    return lambda merged: _get(merged, shape, target, name)


def _first_over_median(merged: dict[str, dict[str, Figures]]) -> float | None:
    cold = merged.get("start", {}).get(SIGNET)
    if not cold:
        return None
    firsts = cold.get("first_ms_rounds") or [cold["first_ms"]]
    medians = cold.get("p50_ms_rounds") or [cold["p50_ms"]]
    return float(max(first / median for first, median in zip(firsts, medians, strict=True)))


def _max_of(shape: str, name: str) -> Any:
    def measure(merged: dict[str, dict[str, Figures]]) -> float | None:
        figures = merged.get(shape, {}).get(SIGNET)
        if not figures or name not in figures:
            return None
        return float(max(figures.get(f"{name}_rounds") or [figures[name]]))

    return measure


def _median_calls(merged: dict[str, dict[str, Figures]]) -> float | None:
    calls = _get(merged, "cold", SIGNET, "registry_requests_per_image")
    return None if not calls else float(statistics.median(calls))


GOALS = (
    Goal(
        "warm16", "Signet keys/s >= 4x Ratify's", _ratio("warm16", "keys_per_s"), lambda r: r >= 4
    ),
    Goal(
        "warm16",
        "Signet req/s >= 0.85x the bare server's",
        _ratio("warm16", "rps", SIGNET, BARE),
        lambda r: r >= 0.85,
    ),
    Goal(
        "warm16", "Signet p99 <= 1/4 of Ratify's", _ratio("warm16", "p99_ms"), lambda r: r <= 0.25
    ),
    Goal("warm2", "Signet req/s >= 1.5x Ratify's", _ratio("warm2", "rps"), lambda r: r >= 1.5),
    Goal("handshake", "Signet req/s >= Ratify's", _ratio("handshake", "rps"), lambda r: r >= 1),
    Goal("cold", "Signet p50 <= 1/2 of Ratify's", _ratio("cold", "p50_ms"), lambda r: r <= 0.5),
    Goal(
        "cold",
        "<= 3 registry requests per classic-signed image (Signet, median image)",
        _median_calls,
        lambda v: v <= 3,
        " requests",
    ),
    Goal(
        "start",
        "first request after start <= 2x the median (Signet, worst round)",
        _first_over_median,
        lambda r: r <= 2,
    ),
    Goal("burst", "Signet p50 <= Ratify's", _ratio("burst", "p50_ms"), lambda r: r <= 1),
    Goal("burst", "Signet max <= Ratify's", _ratio("burst", "max_ms"), lambda r: r <= 1),
    Goal(
        "burst",
        "1 verification for 100 requests (Signet, worst round)",
        _max_of("burst", "verifications"),
        lambda v: v == 1,
        " verifications",
    ),
    Goal("rest", "Signet RSS at rest <= Ratify's", _ratio("rest", "rss_mib"), lambda r: r <= 1),
    Goal(
        "audit10k",
        "Signet RSS after the audit <= Ratify's",
        _ratio("audit10k", "rss_after_mib"),
        lambda r: r <= 1,
    ),
    Goal(
        "audit10k",
        "every audit request inside the Provider timeout (Signet)",
        _max_of("audit10k", "over_deadline"),
        lambda v: v == 0,
        " late",
    ),
    Goal(
        "audit10k",
        "<= 1 verification per distinct digest (Signet, worst round)",
        _max_of("audit10k", "verifications_per_digest"),
        lambda v: v <= 1,
        "",
    ),
    Goal(
        "audit10k",
        "RSS after the audit <= 150 MiB (Signet, worst round)",
        _max_of("audit10k", "rss_after_mib"),
        lambda v: v <= 150,
        " MiB",
    ),
)


def judge(merged: dict[str, dict[str, Figures]]) -> list[dict[str, Any]]:
    judged = []
    for goal in GOALS:
        value = goal.measure(merged)
        judged.append(
            {
                "shape": goal.shape,
                "goal": goal.text,
                "value": None if value is None else round(value, 3),
                "unit": goal.unit,
                "met": None if value is None else goal.meets(value),
            }
        )
    return judged


# --- the table -------------------------------------------------------------------------------

ROWS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "rest": (
        "RSS at rest (just started, idle; VmRSS of the process and its workers)",
        [
            ("rss_mib", "RSS MiB"),
            ("pss_mib", "PSS MiB"),
            ("processes", "processes"),
            ("idle_after_s", "idle after start s"),
            ("rss_after_run_mib", "RSS at the end of the run MiB"),
        ],
    ),
    "warm16": (
        "warm, 16 keys/request, 16 keep-alive connections, closed loop",
        [
            ("rps", "req/s"),
            ("keys_per_s", "keys/s"),
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("errors", "errors"),
        ],
    ),
    "warm2": (
        "warm, 2 keys/request (a typical Pod), 16 keep-alive connections, closed loop",
        [("rps", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("errors", "errors")],
    ),
    "handshake": (
        "new TLS handshake per request (keep-alive off), 2 keys, 16 workers, closed loop",
        [("rps", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("errors", "errors")],
    ),
    "cold": (
        "cold, by tag, new classic-signed images in sequence on one connection",
        [
            ("first_ms", "first request ms"),
            ("p50_ms", "p50 ms"),
            ("max_ms", "max ms"),
            ("registry_requests_per_image", "registry requests/image"),
            ("verified", "verified answers"),
        ],
    ),
    "start": (
        "the same on a just-started server (once idle after its start)",
        [
            ("first_ms", "first request after start ms"),
            ("p50_ms", "p50 ms"),
            ("max_ms", "max ms"),
            ("registry_requests_per_image", "registry requests/image"),
            ("verified", "verified answers"),
        ],
    ),
    "burst": (
        "burst: 100 requests released at once on 100 open connections, one new image",
        [
            ("p50_ms", "p50 ms"),
            ("max_ms", "max ms"),
            ("verifications", "verifications"),
            ("registry_requests", "registry requests"),
            ("verified_answers", "verified answers"),
        ],
    ),
}
for _scale, _label in (
    ("audit1k", "1,000 Pods / 100 images"),
    ("audit10k", "10,000 Pods / 1,000 images"),
):
    ROWS[_scale] = (
        f"Gatekeeper audit, {_label}: one Pod at a time, its uncached keys (just started)",
        [
            ("total_s", "total s"),
            ("requests", "requests"),
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("max_ms", "max ms"),
            ("deadline_ms", "Provider timeout ms (its chart)"),
            ("over_deadline", "over the Provider timeout"),
            ("wrong_answers", "wrong answers"),
            ("registry_requests_per_image", "registry requests/image"),
            ("distinct_digests", "distinct digests"),
            ("verifications", "verifications"),
            ("verifications_per_digest", "verifications/digest"),
            ("rss_rest_mib", "RSS at rest MiB"),
            ("rss_after_mib", "RSS after MiB"),
        ],
    )


ROWS["audit10k_ttl0"] = (
    "Gatekeeper audit, 10,000 Pods, the next cycle with the response cache off (TTL 0s): "
    "every Pod asks again (warm)",
    [
        ("total_s", "total s"),
        ("requests", "requests"),
        ("keys_sent", "keys sent"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("max_ms", "max ms"),
        ("over_deadline", "over the Provider timeout"),
        ("wrong_answers", "wrong answers"),
        ("registry_requests", "registry requests"),
        ("verifications", "verifications"),
    ],
)


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer() or abs(value) >= 1000:
        return f"{round(value):,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.3f}".rstrip("0").rstrip(".")


def cell(figures: Figures | None, name: str) -> str:
    if not figures or figures.get(name) is None:
        return "-"
    value = figures[name]
    if isinstance(value, list):  # per-image counts: the median and the range
        if not value:
            return "-"
        low, high = min(value), max(value)
        middle = statistics.median(value)
        return (
            f"{_number(middle)} ({_number(low)}-{_number(high)})" if low != high else _number(low)
        )
    rounds = figures.get(f"{name}_rounds")
    if isinstance(value, (int, float)) and rounds and min(rounds) != max(rounds):
        return f"{_number(value)} ({_number(min(rounds))}-{_number(max(rounds))})"
    return _number(value) if isinstance(value, (int, float)) else str(value)


def render(merged: dict[str, dict[str, Figures]], goals: list[dict[str, Any]]) -> str:
    present = [t for t in TARGETS if any(t in by_target for by_target in merged.values())]
    lines = []
    width = 30
    column = 28
    for shape, (title, rows) in ROWS.items():
        by_target = merged.get(shape)
        if not by_target:
            continue
        lines.append("")
        lines.append(title)
        lines.append(" " * width + "".join(f"{t:>{column}}" for t in present))
        for name, label in rows:
            cells = [cell(by_target.get(t), name) for t in present]
            if all(c == "-" for c in cells):
                continue
            lines.append(f"  {label:<{width - 2}}" + "".join(f"{c:>{column}}" for c in cells))
    growth = _growth(merged)
    if growth:
        lines.append("")
        lines.append("audit growth, 1k -> 10k Pods (10x the Pods and the images):")
        lines.extend(f"  {line}" for line in growth)
    lines.append("")
    lines.append("goals (ratios from this run):")
    for goal in goals:
        mark = {True: "met", False: "NOT met", None: "n/a"}[goal["met"]]
        shown = "-" if goal["value"] is None else f"{goal['value']:,.3f}".rstrip("0").rstrip(".")
        value = shown if goal["value"] is None else f"{shown}{goal['unit']}"
        lines.append(f"  [{mark:>7}] {goal['shape']:<9} {goal['goal']}: {value}")
    return "\n".join(lines)


def _growth(merged: dict[str, dict[str, Figures]]) -> list[str]:
    small, large = merged.get("audit1k", {}), merged.get("audit10k", {})
    lines = []
    for target in TARGETS:
        a, b = small.get(target), large.get(target)
        if not a or not b:
            continue
        lines.append(
            f"{target}: time {a['total_s']:.1f} -> {b['total_s']:.1f} s "
            f"({b['total_s'] / a['total_s']:.1f}x); RSS above rest "
            f"{a['rss_after_mib'] - a['rss_rest_mib']:.1f} -> "
            f"{b['rss_after_mib'] - b['rss_rest_mib']:.1f} MiB"
        )
    return lines
