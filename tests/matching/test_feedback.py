"""Reviewer feedback changes that vendor's later proposals, only that vendor's, within bounds."""

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
from matching.core.feedback import VENDOR_CAP
from matching.core.types import TRANSACTION
from matching.core.weights import MAX_OFFSET_DOWN, MAX_OFFSET_UP, MAX_SHIFT

from .builders import entry, record, vendor

ALGOLIA, STRIPE = "1", "2"


def _situation(vendor_id: str, name: str, suffix: str, cents: int):
    """Same amount twice: one payment on the day, one 8 days later carrying the bill number."""
    rec = record(
        id=f"b{suffix}",
        vendor_id=vendor_id,
        vendor_name=name,
        reference="inv42",
        raw_reference="INV-42",
        amount_cents=cents,
        home_amount_cents=cents,
    )
    same_day = entry(
        id=f"same-day-{suffix}", entry_date=date(2025, 1, 10), raw_name=name, amount_cents=cents
    )
    with_ref = entry(
        id=f"with-ref-{suffix}",
        entry_date=date(2025, 1, 18),
        raw_name=name,
        reference="inv42",
        amount_cents=cents,
    )
    return rec, [same_day, with_ref]


def _decide(model):
    """One Algolia bill and one Stripe bill, each facing the same two payments of its own."""
    algolia, algolia_entries = _situation(ALGOLIA, "Algolia", "a", 12000)
    stripe, stripe_entries = _situation(STRIPE, "Stripe", "s", 87654)
    vendors = [
        vendor(),
        vendor(
            id=STRIPE,
            display_name="Stripe",
            company_name="Stripe SAS",
            name="stripe",
            name_key="stripe",
        ),
    ]
    book = build_book(vendors, [], [], algolia_entries + stripe_entries)
    decisions = decide(book, [algolia, stripe], model, Policy())
    return {d.vendor_id: d for d in decisions}


def _pin_same_day(decision, times: int) -> list[LabelledDecision]:
    """Reviewers keep pinning the payment dated on the bill, never the one carrying the number."""
    same_day = f"same-day-{decision.id[1:]}"
    return [LabelledDecision(decision, "link", Target(TRANSACTION, same_day))] * times


def test_feedback_changes_that_vendors_later_proposals():
    model = load_default()
    before = _decide(model)[ALGOLIA]
    assert before.target.id == "with-ref-a"

    after_model = update_from_feedback(model, _pin_same_day(before, 400))
    after = _decide(after_model)[ALGOLIA]

    learnt = after_model.weights(ALGOLIA)
    assert learnt[("date", "same_day")] > model.weights(ALGOLIA)[("date", "same_day")]
    assert learnt[("reference", "exact")] < model.weights(ALGOLIA)[("reference", "exact")]
    assert after.target.id == "same-day-a"
    assert after_model.version.endswith("+fb400")


def test_one_vendors_corrections_do_not_move_another_vendors_decisions():
    model = load_default()
    before = _decide(model)

    after_model = update_from_feedback(model, _pin_same_day(before[ALGOLIA], 400))
    after = _decide(after_model)

    assert after[ALGOLIA].target.id != before[ALGOLIA].target.id
    assert (after[STRIPE].target, after[STRIPE].confidence) == (
        before[STRIPE].target,
        before[STRIPE].confidence,
    )
    assert after_model.weights(STRIPE) == model.weights(STRIPE) == model.weights()
    assert after_model.calibrator == model.calibrator


def test_learning_is_bounded_however_many_answers_agree():
    model = load_default()
    before = _decide(model)[ALGOLIA]

    after_model = update_from_feedback(model, _pin_same_day(before, 5000))

    shipped, learnt = model.weights(), after_model.weights(ALGOLIA)
    assert all(abs(learnt[key] - shipped[key]) <= MAX_SHIFT + 1e-9 for key in shipped)
    assert max(abs(learnt[key] - shipped[key]) for key in shipped) > 1.0  # it did learn
    table = after_model.vendor_counts[ALGOLIA]
    assert sum(m + u for m, u in table["kind"].values()) <= VENDOR_CAP + 1e-6
    assert -MAX_OFFSET_DOWN <= after_model.vendor_offset(ALGOLIA) <= MAX_OFFSET_UP


def test_a_vendors_confidence_follows_its_reviewed_accuracy_and_old_answers_fade():
    model = load_default()
    decision = _decide(model)[ALGOLIA]
    rejected = [LabelledDecision(decision, "create", None)] * 60
    accepted = [LabelledDecision(decision, decision.action, decision.target)] * 200

    doubted = update_from_feedback(model, rejected)
    forgiven = update_from_feedback(doubted, accepted)

    assert doubted.vendor_offset(ALGOLIA) < 0 < forgiven.vendor_offset(ALGOLIA)
    features = decision.features
    assert doubted.confidence(features, ALGOLIA) < model.confidence(features, ALGOLIA)
    assert forgiven.confidence(features, ALGOLIA) > model.confidence(features, ALGOLIA)
    assert doubted.confidence(features, STRIPE) == model.confidence(features, STRIPE)


def test_a_model_round_trips_through_json():
    model = update_from_feedback(load_default(), _pin_same_day(_decide(load_default())[ALGOLIA], 5))
    again = Model.from_json(model.to_json())
    assert again.weights(ALGOLIA) == model.weights(ALGOLIA)
    assert again.calibrator == model.calibrator
    assert again.vendor_outcomes == model.vendor_outcomes
    assert again.version == model.version


def test_a_workspace_stores_only_what_it_learnt_on_top_of_the_shipped_model():
    shipped = load_default()
    learnt = update_from_feedback(shipped, _pin_same_day(_decide(shipped)[ALGOLIA], 40))

    stored = learnt.learned_dict()
    rebuilt = shipped.with_learned(stored)

    assert set(stored) == {"version", "vendor_counts", "vendor_outcomes"}
    assert rebuilt.weights(ALGOLIA) == learnt.weights(ALGOLIA)
    assert rebuilt.version == learnt.version and rebuilt.version.endswith("+fb40")
