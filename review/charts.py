"""Small server-side SVG charts (no JavaScript, no CDN): bars, volume with rate, what-if.

Each function takes plain numbers and returns safe markup; the templates only place it.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from well import formats

WIDTH = 560
HEIGHT = 200
PAD_LEFT = 40
PAD_BOTTOM = 28
PAD_TOP = 12
# The palette of well.css: every text colour reaches 4.5:1 on white.
ACCENT = "#1f4fc4"
OK = "#17693a"
BAD = "#a3281c"
MUTED = "#535c68"
LINE = "#e3e6ea"


def _svg(body: str, title: str, width: int = WIDTH, height: int = HEIGHT) -> SafeString:
    return mark_safe(  # noqa: S308 - every text in body went through escape()
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _axis(top: int, plot_h: int, maximum: int, width: int = WIDTH) -> str:
    parts = []
    for fraction in (0, 0.5, 1):
        y = top + plot_h - fraction * plot_h
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="{LINE}"/>'
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="{MUTED}">{round(maximum * fraction)}</text>'
        )
    return "".join(parts)


def bar_chart(
    values: Sequence[int],
    labels: Sequence[str],
    *,
    title: str,
    colours: Sequence[str] | None = None,
    marks: Sequence[tuple[float, str]] = (),
    edges: Sequence[str] = (),
) -> SafeString:
    """Vertical bars with a label under each; `marks` draws vertical lines at fractions of
    the x axis (thresholds on a 0..1 histogram). With `edges` (one more than the bars), the
    axis is labelled at the bars' edges instead, where those values are."""
    maximum = max([*values, 1])
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(len(values), 1)
    parts = [_axis(PAD_TOP, plot_h, maximum)]
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = plot_h * value / maximum
        x = PAD_LEFT + i * step + step * 0.12
        colour = colours[i] if colours else ACCENT
        parts.append(
            f'<rect x="{x:.1f}" y="{PAD_TOP + plot_h - h:.1f}" width="{step * 0.76:.1f}" '
            f'height="{h:.1f}" fill="{colour}" rx="2">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        if not edges:
            parts.append(
                f'<text x="{x + step * 0.38:.1f}" y="{HEIGHT - 10}" text-anchor="middle" '
                f'font-size="10" fill="{MUTED}">{escape(label)}</text>'
            )
    for i, edge in enumerate(edges):
        if i % 2:  # every other edge: 0 %, 20 %, ... stay legible on a phone
            continue
        x = PAD_LEFT + i * step
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_TOP + plot_h}" y2="{PAD_TOP + plot_h + 4}" '
            f'stroke="{MUTED}"/>'
            f'<text x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="middle" font-size="10" '
            f'fill="{MUTED}">{escape(edge)}</text>'
        )
    for row, (fraction, name) in enumerate(marks):
        x = PAD_LEFT + plot_w * fraction
        # Labels on two rows so that two close thresholds do not overwrite each other.
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_TOP - 4}" y2="{PAD_TOP + plot_h}" '
            f'stroke="{BAD}" stroke-dasharray="4 3"/>'
            f'<text x="{x - 3:.1f}" y="{PAD_TOP + 6 + 12 * row}" font-size="10" fill="{BAD}" '
            f'text-anchor="end">{escape(name)}</text>'
        )
    return _svg("".join(parts), title)


def confidence_histogram_chart(counts: Sequence[int], *, auto: float, review: float) -> SafeString:
    """Proposals per confidence bin, coloured by the band the workspace's thresholds give."""
    bins = len(counts)
    labels = [
        f"{formats.percent(i / bins)}\u2013{formats.percent((i + 1) / bins)}" for i in range(bins)
    ]
    edges = [formats.percent(i / bins) for i in range(bins + 1)]
    colours = []
    for i in range(bins):
        middle = (i + 0.5) / bins
        colours.append(OK if middle >= auto else ACCENT if middle >= review else BAD)
    return bar_chart(
        counts,
        labels,
        title=_("Confidence of current proposals"),
        colours=colours,
        marks=[
            (review, _("review %(share)s") % {"share": formats.percent(review)}),
            (auto, _("auto-post %(share)s") % {"share": formats.percent(auto)}),
        ],
        edges=edges,
    )


def volume_chart(days: Sequence, *, title: str = ""):
    """Bars: proposals per day (auto-approved part in green); line: the auto-post rate."""
    title = title or _("Proposals per day and auto-post rate")
    maximum = max([d.proposed for d in days] + [1])
    plot_w = WIDTH - PAD_LEFT - 36
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(len(days), 1)
    parts = [_axis(PAD_TOP, plot_h, maximum, WIDTH - 28)]
    points = []
    for i, day in enumerate(days):
        x = PAD_LEFT + i * step + step * 0.1
        total_h = plot_h * day.proposed / maximum
        auto_h = plot_h * day.auto / maximum
        label = _("%(day)s: %(proposed)s proposed, %(auto)s auto-approved") % {
            "day": formats.short_day(day.day),
            "proposed": day.proposed,
            "auto": day.auto,
        }
        parts.append(
            f"<g><title>{escape(label)}</title>"
            f'<rect x="{x:.1f}" y="{PAD_TOP + plot_h - total_h:.1f}" width="{step * 0.8:.1f}" '
            f'height="{total_h:.1f}" fill="#c9d7fb"/>'
            f'<rect x="{x:.1f}" y="{PAD_TOP + plot_h - auto_h:.1f}" width="{step * 0.8:.1f}" '
            f'height="{auto_h:.1f}" fill="{OK}"/></g>'
        )
        if day.proposed:
            points.append(f"{x + step * 0.4:.1f},{PAD_TOP + plot_h - plot_h * day.auto_rate:.1f}")
        if i % max(1, len(days) // 6) == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 10}" font-size="10" fill="{MUTED}">'
                f"{escape(formats.short_day(day.day))}</text>"
            )
    if points:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{BAD}" stroke-width="2"/>'
        )
    for fraction in (0, 0.5, 1):
        y = PAD_TOP + plot_h - fraction * plot_h
        parts.append(
            f'<text x="{WIDTH - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="{BAD}">{escape(formats.percent(fraction))}</text>'
        )
    return _svg("".join(parts), title)


def horizontal_bars(rows: Sequence[tuple[str, int]], *, title: str) -> SafeString:
    """One labelled horizontal bar per row (decisions per reviewer)."""
    height = max(60, 26 * len(rows) + 16)
    maximum = max([n for _, n in rows] + [1])
    label_w = 170
    plot_w = WIDTH - label_w - 50
    parts = []
    for i, (label, n) in enumerate(rows):
        y = 8 + i * 26
        w = plot_w * n / maximum
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" font-size="12" '
            f'fill="#1d2430">{escape(label[:26])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="18" fill="{ACCENT}" rx="2"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="12" fill="{MUTED}">{n}</text>'
        )
    if not rows:
        parts.append(
            f'<text x="{WIDTH / 2}" y="34" text-anchor="middle" font-size="13" fill="{MUTED}">'
            f"{escape(_('No decisions yet'))}</text>"
        )
    return _svg("".join(parts), title, height=height)


def whatif_chart(points: Sequence, *, current: float, chosen: float | None) -> SafeString:
    """Per threshold: records that would have auto-posted (blue) and, of those, the ones a
    reviewer later changed (red); the current and the tried thresholds are marked."""
    maximum = max([p.auto_posted for p in points] + [1])
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(len(points), 1)
    parts = [_axis(PAD_TOP, plot_h, maximum)]
    for i, point in enumerate(points):
        x = PAD_LEFT + i * step + step * 0.12
        h = plot_h * point.auto_posted / maximum
        ch = plot_h * point.changed / maximum
        here = abs(point.threshold - current) < 1e-9
        tried = chosen is not None and abs(point.threshold - chosen) < 1e-9
        label = ngettext(
            "at %(threshold)s: %(n)s auto-posted, %(changed)s of them later changed by a reviewer",
            "at %(threshold)s: %(n)s auto-posted, %(changed)s of them later changed by a reviewer",
            point.auto_posted,
        ) % {
            "threshold": formats.percent(point.threshold),
            "n": point.auto_posted,
            "changed": point.changed,
        }
        stroke = f' stroke="{"#1d2430" if here else BAD}" stroke-width="2"' if here or tried else ""
        parts.append(
            f"<g><title>{escape(label)}</title>"
            f'<rect x="{x:.1f}" y="{PAD_TOP + plot_h - h:.1f}" width="{step * 0.76:.1f}" '
            f'height="{h:.1f}" fill="#c9d7fb"{stroke}/>'
            f'<rect x="{x:.1f}" y="{PAD_TOP + plot_h - ch:.1f}" width="{step * 0.76:.1f}" '
            f'height="{ch:.1f}" fill="{BAD}"/></g>'
            f'<text x="{x + step * 0.38:.1f}" y="{HEIGHT - 10}" text-anchor="middle" '
            f'font-size="10" fill="{"#1d2430" if here or tried else MUTED}">'
            f"{escape(formats.percent(point.threshold))}</text>"
        )
    return _svg("".join(parts), _("What-if: auto-posted and later changed, per threshold"))


def signal_bar(weight: float, *, scale: float = 3.0) -> dict:
    """Width (percent of half the bar) and direction of one signal's contribution."""
    share = min(abs(weight) / scale, 1.0) * 50
    return {"width": round(share, 1), "positive": weight >= 0}
