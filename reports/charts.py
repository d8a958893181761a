"""Charts as inline SVG (matplotlib), so every HTML report is a single self-contained file."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

_BLUE, _RED, _GREY = "#2563eb", "#dc2626", "#6b7280"


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


def time_to_heal_histogram(seconds: Sequence[float], *, slo_s: float | None = None, title: str = "") -> str:
    """Distribution of time-to-heal, with the SLO as a vertical line."""
    figure, axes = plt.subplots(figsize=(6.4, 3.2))
    if seconds:
        axes.hist(list(seconds), bins=min(40, max(5, len(seconds) // 10)), color=_BLUE, alpha=0.85)
    else:
        axes.text(0.5, 0.5, "no object healed", ha="center", va="center", transform=axes.transAxes, color=_GREY)
    if slo_s is not None:
        axes.axvline(slo_s, color=_RED, linestyle="--", label=f"SLO p99 {slo_s:g}s")
        axes.legend(loc="upper right")
    axes.set_xlabel("time to heal (s)")
    axes.set_ylabel("objects")
    axes.set_title(title or "Time-to-heal distribution")
    axes.grid(alpha=0.3)
    return _svg(figure)


def recovery_curve(faulted_at: Mapping[str, float], healed_after_s: Mapping[str, float], *, title: str = "") -> str:
    """Objects missing over time: +1 when a key's fault hit, -1 when it came back."""
    figure, axes = plt.subplots(figsize=(6.4, 3.2))
    if faulted_at:
        start = min(faulted_at.values())
        steps: list[tuple[float, int]] = []
        for key, when in faulted_at.items():
            steps.append((when - start, +1))
            if key in healed_after_s:
                steps.append((when - start + healed_after_s[key], -1))
        steps.sort()
        xs, ys, missing = [0.0], [0], 0
        for at, change in steps:
            xs.append(at)
            ys.append(missing)
            missing += change
            xs.append(at)
            ys.append(missing)
        axes.fill_between(xs, ys, step=None, color=_BLUE, alpha=0.25)
        axes.plot(xs, ys, color=_BLUE)
        if missing:
            axes.annotate(f"{missing} never came back", xy=(xs[-1], missing), color=_RED)
    else:
        axes.text(0.5, 0.5, "no fault recorded", ha="center", va="center", transform=axes.transAxes, color=_GREY)
    axes.set_xlabel("seconds since the first fault")
    axes.set_ylabel("objects missing")
    axes.set_title(title or "Recovery curve")
    axes.grid(alpha=0.3)
    return _svg(figure)
