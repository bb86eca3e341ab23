"""The report's pictures, drawn with matplotlib and returned as inline SVG text."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: render to SVG only

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
from matplotlib.figure import Figure  # noqa: E402


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
    series: Mapping[str, Sequence[tuple[float, float]]], ylabel: str, title: str = ""
) -> str:
    """Lines over time (seconds since the start): e.g. load, CPU, desired and running tasks."""
    figure, axes = plt.subplots(figsize=(8, 3.2))
    for name, points in series.items():
        if points:
            axes.plot([p[0] for p in points], [p[1] for p in points], label=name, drawstyle="steps-post")
    axes.set_xlabel("seconds")
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title)
    axes.legend(fontsize=8)
    return _svg(figure)
