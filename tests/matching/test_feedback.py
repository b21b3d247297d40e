"""Reviewer feedback measurably changes later proposals; the model survives JSON."""

from __future__ import annotations

from datetime import date

from matching.core import (
    LabelledDecision,
    Model,
    Policy,
    Target,
    build_book,
    decide,
    load_default,
    update_from_feedback,
)
from matching.core.types import TRANSACTION

from .builders import entry, record, vendor


def _situation():
    """Same amount twice: one payment on the day, one 8 days later carrying the bill number."""
    rec = record(reference="inv42", raw_reference="INV-42")
    same_day = entry(id="same-day", entry_date=date(2025, 1, 10), raw_name="Algolia")
    with_ref = entry(
        id="with-ref", entry_date=date(2025, 1, 18), raw_name="Algolia", reference="inv42"
    )
    return rec, [same_day, with_ref]


def _decide(model):
    rec, entries = _situation()
    book = build_book([vendor()], [], [], entries)
    return decide(book, [rec], model, Policy())[0]


def test_feedback_changes_later_proposals():
    model = load_default()
    before = _decide(model)
    # Reviewers keep pinning the payment dated on the bill, never the one carrying the number.
    labels = [LabelledDecision(before, "link", Target(TRANSACTION, "same-day")) for _ in range(400)]
    after_model = update_from_feedback(model, labels)
    after = _decide(after_model)
    weight = after_model.weights()
    assert weight[("date", "same_day")] > model.weights()[("date", "same_day")]
    assert weight[("reference", "exact")] < model.weights()[("reference", "exact")]
    assert (after.target.id, after.confidence) != (before.target.id, before.confidence)
    assert after.target.id == "same-day"
    assert after_model.version.endswith("+fb400")


def test_a_model_round_trips_through_json():
    model = load_default()
    again = Model.from_json(model.to_json())
    assert again.weights() == model.weights()
    assert again.calibrator == model.calibrator
    assert again.version == model.version
