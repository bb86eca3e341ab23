"""The report's pictures, drawn with matplotlib and returned as inline SVG text."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: render to SVG only

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: without the XML declaration and DOCTYPE


def latency_histogram(samples_ms: Mapping[str, Sequence[float]], limit_ms: float) -> str:
    """A histogram of response times per route, with the limit drawn as a line."""
    figure, axes = plt.subplots(figsize=(8, 3.2))
    top = max([limit_ms * 1.1, *(max(v) for v in samples_ms.values() if v)])
    bins = [top * i / 60 for i in range(61)]
    for route, values in samples_ms.items():
        axes.hist(values, bins=bins, alpha=0.55, label=f"{route} (n={len(values)})")
    axes.axvline(limit_ms, color="#b91c1c", linestyle="--", label=f"{limit_ms:g} ms")
    axes.set_xlabel("response time (ms)")
    axes.set_ylabel("requests")
    axes.set_yscale("log")
    axes.legend(fontsize=8)
    return _svg(figure)


def timeline(
    series: Mapping[str, Sequence[tuple[float, float]]],
    ylabel: str,
    title: str = "",
    right: Sequence[str] = (),
    right_label: str = "",
) -> str:
    """Lines over time (seconds since the start): e.g. load, CPU, desired and running tasks; the
    series named in ``right`` (e.g. task counts, a few units against CPU % or requests/s) are drawn
    against a second axis on the right, so they are not flattened at the bottom."""
    figure, axes = plt.subplots(figsize=(8, 3.2))
    other = axes.twinx() if any(series.get(name) for name in right) else None
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    lines = []
    for name, points in series.items():
        color = next(colors)
        if not points:
            continue
        on = other if other is not None and name in right else axes
        style = "--" if on is other else "-"
        lines += on.plot([p[0] for p in points], [p[1] for p in points], style, label=name,
                         drawstyle="steps-post", color=color)
    axes.set_xlabel("seconds")
    axes.set_ylabel(ylabel)
    if other is not None:
        other.set_ylabel(right_label)
        other.yaxis.set_major_locator(MaxNLocator(integer=True))
        top = max(p[1] for name in right for p in series.get(name, ()))
        other.set_ylim(0, top + 1)
    if title:
        axes.set_title(title)
    axes.legend(lines, [str(line.get_label()) for line in lines], fontsize=8)
    return _svg(figure)
