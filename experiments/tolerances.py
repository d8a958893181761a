"""Tolerances where a number is not enough. Each logs why it failed."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["within_slo"]

logger = logging.getLogger("chaostoolkit")


def within_slo(
    value: dict[str, Any] | None = None,
    p99_s: float = 30.0,
    p50_s: float | None = None,
    max_lost: int = 0,
    min_healed: int = 1,
    recovery_s: float | None = None,
) -> bool:
    """True when p99 (and p50, if given) time-to-heal meet the SLO and at most ``max_lost`` were lost.

    ``value`` is what ``time_to_heal_stats`` returned. Before the method (no fault yet) the steady
    state holds trivially; after it, ``min_healed`` guards against a vacuous pass: a run whose fault
    hit nothing proves nothing. ``recovery_s`` bounds the time from a healer resume until the last
    key is back.
    """
    if not value:
        logger.error("SLO: no time-to-heal measurement")
        return False
    if not value.get("after_method", True):
        return True
    misses = []
    lost = int(value.get("lost", 0)) + int(value.get("corrupted", 0))
    if lost > max_lost:
        misses.append(f"{lost} object(s) lost or corrupted (allowed {max_lost}): {value.get('lost_keys', [])[:5]}")
    if int(value.get("healed", 0)) < min_healed:
        misses.append(f"only {value.get('healed', 0)} object(s) healed, expected at least {min_healed}")
    for name, limit in (("p99_s", p99_s), ("p50_s", p50_s)):
        measured = value.get(name)
        if limit is None:
            continue
        if measured is None or float(measured) > float(limit):
            over = (
                "no measurement"
                if measured is None
                else f"{measured:.2f}s, over by {float(measured) - float(limit):.2f}s"
            )
            misses.append(f"time-to-heal {name[:-2]} {over} (SLO {float(limit):g}s)")
    if recovery_s is not None:
        recovery = value.get("recovery_after_resume_s")
        if recovery is None or float(recovery) > float(recovery_s):
            shown = "no resume measured" if recovery is None else f"{float(recovery):.2f}s"
            misses.append(f"recovery after resume {shown} (SLO {float(recovery_s):g}s)")
    for miss in misses:
        logger.error(f"SLO missed: {miss}")
    return not misses
