"""Charts drawn on the server as inline SVG: no script, readable by screen readers.

Each chart is one `<svg>` with a `viewBox`, so it scales to the page's width (375 px phones
included), a `<title>` naming it, and a text label on every bar. Labels are escaped here;
the result is safe to put into a page as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_BAR_HEIGHT = 22
_GAP = 8
_LABEL_WIDTH = 150
_WIDTH = 600


def bar_chart(title: str, bars: Sequence[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, one per (label, value), longest scaled to the chart's width."""
    if not bars:
        return ""
    top = max((value for _, value in bars), default=0.0) or 1.0
    span = _WIDTH - _LABEL_WIDTH - 70
    height = len(bars) * (_BAR_HEIGHT + _GAP) + _GAP
    parts = [_open(title, _WIDTH, height)]
    for index, (label, value) in enumerate(bars):
        y = _GAP + index * (_BAR_HEIGHT + _GAP)
        width = max(1.0, span * max(value, 0.0) / top)
        parts.append(
            f'<text x="{_LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end" class="chart-label" font-size="12" fill="currentColor">{escape(_clip(label))}</text>'
            f'<rect x="{_LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{_BAR_HEIGHT}" class="chart-bar" fill="#2563eb" rx="2"/>'
            f'<text x="{_LABEL_WIDTH + width + 4:.1f}" y="{y + 15}" class="chart-value" font-size="12" fill="currentColor">{_number(value)}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(title: str, columns: Sequence[tuple[str, float]], unit: str = "") -> str:
    """Vertical columns, one per (label, value): a trend over weeks."""
    if not columns:
        return ""
    top = max((value for _, value in columns), default=0.0) or 1.0
    height, base, plot = 220, 190, 160
    step = _WIDTH / len(columns)
    width = max(2.0, step * 0.6)
    parts = [_open(title, _WIDTH, height)]
    parts.append(f'<line x1="0" y1="{base}" x2="{_WIDTH}" y2="{base}" class="chart-axis" stroke="#999"/>')
    for index, (label, value) in enumerate(columns):
        x = index * step + (step - width) / 2
        bar = plot * max(value, 0.0) / top
        parts.append(
            f'<rect x="{x:.1f}" y="{base - bar:.1f}" width="{width:.1f}" height="{bar:.1f}" class="chart-bar" fill="#2563eb" rx="2">'
            f"<title>{escape(label)}: {_number(value)}{escape(unit)}</title></rect>"
            f'<text x="{x + width / 2:.1f}" y="{base - bar - 4:.1f}" text-anchor="middle" class="chart-value" font-size="12" fill="currentColor">{_number(value)}</text>'
            f'<text x="{x + width / 2:.1f}" y="{base + 16}" text-anchor="middle" class="chart-label" font-size="12" fill="currentColor">{escape(_clip(label, 6))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str, width: int, height: int) -> str:
    label = escape(title)
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{label}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet"><title>{label}</title>'
    )


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _clip(label: str, length: int = 12) -> str:
    return label if len(label) <= length else label[: length - 1] + "…"
