"""Charts of a report as inline SVG: pure functions from numbers (and already formatted texts)
to an SVG string.

Vector, so the PDF stays sharp at any zoom; inline, so the HTML file needs nothing from
anywhere else; no script and no font file (a generic font stack the mail client or Chromium
resolves locally). Each chart carries ``role="img"`` and an ``aria-label`` summary; the report
puts the same numbers in a table beside it, for mail clients that strip SVG and for screen
readers. The palette is the dashboard's colour-blind-safe pair (blue for the outcome the
shop wants, vermilion for the one it does not).
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

from dashboard.figures.style import BAD, GOOD   # the dashboard's outcome colours

FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"
NEUTRAL, TRACK, INK, MUTED = "#56B4E9", "#EEF1F4", "#1F2933", "#52606D"
WIDTH = 640
ROW = 30            # height of one bar row
LABEL_SHARE = 0.40  # of the width, for the labels left of the bars
VALUE_ROOM = 92     # right of the longest bar, for its value text
CHAR_WIDTH = 8.3    # average width of a 13px DejaVu Sans character (Cyrillic included), to cut labels that do not fit


@dataclass(frozen=True)
class BarItem:
    label: str
    value: float            # bar length in the chart's units (a share 0..1, a count)
    text: str               # the value as shown (already in the reader's locale)
    highlight: bool = False  # drawn in the "bad" colour (e.g. the worst group)


def _svg(height: int, summary: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(summary)}" '
            f'viewBox="0 0 {WIDTH} {height}" width="100%" style="max-width:{WIDTH}px;height:auto" '
            f'font-family="{FONT}" font-size="13">'
            f'<title>{escape(summary)}</title>{"".join(body)}</svg>')


def _fit(text: str, limit: int) -> str:
    """Text longer than ``limit`` characters cut with an ellipsis (the table keeps the full text)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _label(text: str, x: float, middle: float, fits: int) -> str:
    """A bar's label right-aligned at ``x``: one line when it fits, else two smaller lines
    broken at a space (the second cut with an ellipsis if still too long)."""
    if len(text) <= fits:
        return f'<text x="{x}" y="{middle + 4:.1f}" text-anchor="end" fill="{INK}">{escape(text)}</text>'
    wider = int(fits * 13 / 11)
    cut = text.rfind(" ", 0, wider + 1)
    first, rest = (text[:cut], text[cut + 1:]) if cut > 0 else (text[:wider], text[wider:])
    return (f'<text x="{x}" y="{middle - 2:.1f}" text-anchor="end" fill="{INK}" font-size="11">'
            f'<tspan x="{x}">{escape(first)}</tspan>'
            f'<tspan x="{x}" dy="12">{escape(_fit(rest, wider))}</tspan></text>')


def bar_chart(items: list[BarItem], *, summary: str, maximum: float | None = None,
              color: str = GOOD, label_share: float = LABEL_SHARE) -> str:
    """Horizontal bars, one per item, longest at ``maximum`` (default: the largest value)."""
    top = maximum if maximum and maximum > 0 else max((i.value for i in items), default=0) or 1.0
    label_w = int(WIDTH * label_share)
    fits = int((label_w - 10) / CHAR_WIDTH)
    room = WIDTH - label_w - VALUE_ROOM
    height = ROW * len(items) + 8
    body = []
    for n, item in enumerate(items):
        y = 4 + n * ROW
        length = max(0.0, min(item.value / top, 1.0)) * room
        fill = BAD if item.highlight else color
        body.append(_label(item.label, label_w - 8, y + ROW / 2, fits))
        body.append(f'<rect x="{label_w}" y="{y + 5}" width="{room}" height="{ROW - 10}" fill="{TRACK}" rx="3"/>')
        body.append(f'<rect x="{label_w}" y="{y + 5}" width="{length:.1f}" height="{ROW - 10}" fill="{fill}" rx="3"/>')
        body.append(f'<text x="{label_w + length + 6:.1f}" y="{y + ROW / 2 + 4:.1f}" fill="{INK}" '
                    f'font-weight="bold">{escape(item.text)}</text>')
    return _svg(height, summary, body)


def funnel_chart(items: list[BarItem], *, summary: str) -> str:
    """A checkout funnel: centred bars shrinking stage by stage, each with its count and share
    of the first stage; the label sits above its bar so long stage names are never cut."""
    top = max((i.value for i in items), default=0) or 1.0
    step = ROW + 16
    height = step * len(items) + 6
    inner = WIDTH - 2 * VALUE_ROOM
    body = []
    for n, item in enumerate(items):
        y = 4 + n * step
        length = max(item.value / top * inner, 2.0)
        x = (WIDTH - length) / 2
        fill = GOOD if n == 0 else (BAD if item.highlight else NEUTRAL)
        body.append(f'<text x="{WIDTH / 2:.1f}" y="{y + 12}" text-anchor="middle" fill="{MUTED}">'
                    f'{escape(item.label)}</text>')
        body.append(f'<rect x="{x:.1f}" y="{y + 17}" width="{length:.1f}" height="{ROW - 6}" fill="{fill}" rx="3"/>')
        inside = length > 140
        tx, anchor, ink = (WIDTH / 2, "middle", "#FFFFFF") if inside else (x + length + 6, "start", INK)
        if inside and fill == NEUTRAL:
            ink = INK
        body.append(f'<text x="{tx:.1f}" y="{y + 17 + (ROW - 6) / 2 + 4:.1f}" text-anchor="{anchor}" '
                    f'fill="{ink}" font-weight="bold">{escape(item.text)}</text>')
    return _svg(height, summary, body)


def psi_chart(items: list[BarItem], *, summary: str, threshold: float, threshold_text: str) -> str:
    """Population stability index per feature, with the flag threshold drawn as a dashed line
    (flagged features in the "bad" colour)."""
    top = max([threshold * 1.5, *(i.value for i in items)])
    share = 0.46      # feature names are long (Russian ones the longest)
    svg = bar_chart(items, summary=summary, maximum=top, color=NEUTRAL, label_share=share)
    label_w = int(WIDTH * share)
    x = label_w + threshold / top * (WIDTH - label_w - VALUE_ROOM)
    height = ROW * len(items) + 8
    line = (f'<line x1="{x:.1f}" y1="2" x2="{x:.1f}" y2="{height - 2}" stroke="{BAD}" stroke-width="1.5" '
            f'stroke-dasharray="4 3"/><text x="{x + 4:.1f}" y="{height - 4}" fill="{BAD}" font-size="11">'
            f'{escape(threshold_text)}</text>')
    return svg.replace("</svg>", line + "</svg>")
