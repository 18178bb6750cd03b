"""Charts of the report as static SVG, drawn with matplotlib.

Why matplotlib SVG (and not Vega-Lite through altair, or plotly): the page must open with no
network and stay small. A static SVG needs no script at all (plotly's embedded bundle alone is
~3.5 MB, Vega + Vega-Lite + vega-embed ~0.8 MB before any data, and either needs JavaScript to draw
anything), prints and screenshots exactly as it looks, and is read by screen readers through its
``<title>``/``role="img"``. matplotlib is the most widely maintained plotting library of the Python
world and draws from aggregates we pass it (a chart never embeds result rows): a chart is 10-40 kB
whatever the number of results. Text stays text (``svg.fonttype = none``): Marathi is shaped by the
browser with the page's Devanagari font, and labels stay selectable and searchable.

Readable without colour: every bar carries its value as a label, stacked segments carry a hatch
pattern and their name, lines have distinct markers and dash styles, named in a legend that shows both.
"""

from __future__ import annotations

import html
import io
import logging
import re
from collections.abc import Sequence

#: Devanagari-capable families first in line after the Latin one (Debian: fonts-lohit-deva-marathi).
FONT_FAMILY = ["DejaVu Sans", "Lohit Marathi", "Lohit Devanagari", "Noto Sans Devanagari", "sans-serif"]
INK = "#1f3b57"
BAR = "#3a78b5"
PREV = "#b9c6d3"
HATCHES = ("", "///", "...", "xx", "\\\\\\", "++", "oo")
SEGMENT_COLOURS = ("#3a78b5", "#d9822b", "#c9cfd6", "#8fb4d9", "#f2c48d", "#e0e0e0")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p", "8")
DASHES = ("-", "--", "-.", ":")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    fig = Figure(figsize=(width, height), dpi=96)
    return fig


def _svg(fig, name: str, title: str, description: str) -> str:
    """The figure as an inline ``<svg>`` with a title, a description and ``role="img"``."""
    import warnings

    import matplotlib

    buf = io.StringIO()
    with (
        matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name, "font.family": FONT_FAMILY}),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # "Glyph missing" while measuring Devanagari without the font
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    ids = f"{name}-title {name}-desc"
    head_end = text.index(">") + 1
    return (
        text[: head_end - 1]
        + f' role="img" aria-labelledby="{ids}" class="chart" id="{name}">'
        + f'<title id="{name}-title">{html.escape(title)}</title>'
        + f'<desc id="{name}-desc">{html.escape(description)}</desc>'
        + text[head_end:]
    )


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=INK, labelsize=9)
    ax.xaxis.label.set_color(INK)


def hbar(
    name: str,
    labels: Sequence[str],
    values: Sequence[float],
    annotations: Sequence[str],
    *,
    title: str,
    description: str,
    xlabel: str,
    percent: bool = True,
    previous: Sequence[float | None] | None = None,
    previous_label: str = "",
) -> str:
    """Horizontal bars (top row first), each labelled with ``annotations``; optional previous-date ticks."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    n = max(1, len(labels))
    fig = _figure(8.2, 0.9 + 0.34 * n)
    ax = fig.add_subplot()
    ys = list(range(n))[::-1]
    ax.barh(ys, values, color=BAR, height=0.62, label=None)
    if previous is not None and any(p is not None for p in previous):
        px = [p if p is not None else 0.0 for p in previous]
        ax.scatter(px, ys, marker="|", s=260, linewidths=2.2, color="#222222", label=previous_label, zorder=3)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    top = max([*values, *(p or 0 for p in (previous or []))], default=0) or 1.0
    ax.set_xlim(0, top * 1.32)
    for y, v, a in zip(ys, values, annotations):
        ax.text(v + top * 0.015, y, a, va="center", ha="left", fontsize=8.5, color=INK)
    ax.set_yticks(ys, labels=list(labels))
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(xlabel, fontsize=9)
    if percent:
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _style(ax)
    return _svg(fig, name, title, description)


def stacked(name: str, segments: Sequence[tuple[str, int]], *, title: str, description: str, total_label: str) -> str:
    """One horizontal bar split into named, hatched segments (coverage: screened, failed, gap)."""
    fig = _figure(8.2, 1.3)
    ax = fig.add_subplot()
    total = sum(v for _, v in segments) or 1
    left = 0
    for i, (label, value) in enumerate(segments):
        ax.barh(
            [0],
            [value],
            left=left,
            height=0.8,
            color=SEGMENT_COLOURS[i % len(SEGMENT_COLOURS)],
            hatch=HATCHES[i % len(HATCHES)],
            edgecolor="#333333",
            linewidth=0.8,
            label=f"{label}: {value}",
        )
        if value / total > 0.08:
            ax.text(
                left + value / 2,
                0,
                f"{value}",
                ha="center",
                va="center",
                fontsize=9,
                color="#111111",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
            )
        left += value
    ax.set_xlim(0, total)
    ax.set_yticks([])
    ax.set_xlabel(total_label, fontsize=9)
    ax.legend(
        loc="lower center",
        bbox_to_anchor=(0.5, 1.02),
        ncol=min(4, len(segments)),
        fontsize=8.5,
        frameon=False,
        handlelength=2.4,
        handleheight=1.4,
    )
    _style(ax)
    ax.spines["left"].set_visible(False)
    return _svg(fig, name, title, description)


def lines(
    name: str,
    dates: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    description: str,
    ylabel: str,
) -> str:
    """Rate per date, one line per reason: distinct marker and dash, labelled at its last point."""
    from matplotlib.ticker import PercentFormatter

    fig = _figure(8.2, 3.4 + 0.2 * ((len(series) + 1) // 2))
    ax = fig.add_subplot()
    xs = list(range(len(dates)))
    for i, (label, ys) in enumerate(series):
        ax.plot(
            xs,
            ys,
            marker=MARKERS[i % len(MARKERS)],
            linestyle=DASHES[i % len(DASHES)],
            linewidth=1.6,
            markersize=6,
            label=label,
        )
    # a legend of marker + dash (not colour) below the plot: end labels of lines that meet would overlap
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False, handlelength=3.2)
    ax.set_xticks(xs, labels=list(dates))
    ax.set_xlim(-0.3, len(xs) - 0.7)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    _style(ax)
    return _svg(fig, name, title, description)
