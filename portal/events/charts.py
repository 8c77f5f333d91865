"""Small server-rendered SVG bar charts (no script, no inline styles: presentation attributes).

Each chart is decorative for screen readers (`aria-hidden`): the page puts the same numbers
in a table beside it.
"""
from __future__ import annotations

from markupsafe import Markup, escape

BAR_HEIGHT = 22
GAP = 6
LABEL_WIDTH = 190
BAR_WIDTH = 300


def bar_chart(data: list[tuple[str, int]], *, title_id: str) -> Markup:
    """Horizontal bars, one per (label, value), scaled to the largest value."""
    largest = max((value for _label, value in data), default=0) or 1
    height = max(len(data), 1) * (BAR_HEIGHT + GAP) + GAP
    width = LABEL_WIDTH + BAR_WIDTH + 60
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-hidden="true" focusable="false" data-labelled-by="{escape(title_id)}">'
    ]
    for index, (label, value) in enumerate(data):
        y = GAP + index * (BAR_HEIGHT + GAP)
        length = round(BAR_WIDTH * value / largest)
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end" fill="#1f2933" font-size="13">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR_HEIGHT}" fill="#005a9c"></rect>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{y + 16}" fill="#1f2933" font-size="13">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
