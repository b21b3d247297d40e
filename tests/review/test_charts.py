"""The confidence chart labels its axis where the values are, in the reader's language."""

from __future__ import annotations

import re

from django.utils import translation

from review.charts import PAD_LEFT, WIDTH, confidence_histogram_chart


def _texts(svg: str) -> dict[str, float]:
    """Each label of the chart and the x it is drawn at."""
    return {
        text: float(x)
        for x, text in re.findall(r'<text x="([\d.]+)"[^>]*>([^<]+)</text>', str(svg))
    }


def test_threshold_marks_sit_between_the_axis_values_around_them():
    with translation.override("en"):
        svg = confidence_histogram_chart([1] * 10, auto=0.85, review=0.55)
    texts = _texts(svg)
    plot_w = WIDTH - PAD_LEFT - 8
    # The axis is labelled at the bins' edges (every other one): "60%" is where 0.6 is, not
    # under a bar's middle.
    assert texts["40%"] == PAD_LEFT + plot_w * 0.4
    assert texts["60%"] == PAD_LEFT + plot_w * 0.6
    line_x = {
        float(x)
        for x in re.findall(
            r'<line x1="([\d.]+)" x2="\1" y1="\d+" y2="[\d.]+" stroke="#a3281c"', svg
        )
    }
    review_x = PAD_LEFT + plot_w * 0.55
    assert any(abs(x - review_x) < 0.1 for x in line_x)
    assert texts["40%"] < review_x < texts["60%"]
    assert "review 55%" in texts and "auto-post 85%" in texts


def test_the_chart_speaks_french():
    with translation.override("fr"):
        svg = str(confidence_histogram_chart([1] * 10, auto=0.85, review=0.55))
    assert "Confiance des propositions en cours" in svg
    assert "revue 55\xa0%" in svg and "envoi auto 85\xa0%" in svg
