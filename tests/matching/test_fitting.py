"""A workspace's model is estimated on its own books: u, m by EM, answers, calibration."""

from __future__ import annotations

from datetime import date, timedelta
from random import Random

import pytest

from matching.core import HistoryLink, Label, Model, Policy, decide, fit, load_prior
from matching.core.fitting import SPLIT_MIN
from matching.core.types import SUPPLIER_INVOICE, TRANSACTION

from .builders import entry, invoice, record, vendor


def _book(count: int, seed: int, delay: int, decoy_days: int | None, purchases: bool = False):
    """Records each with its true entry `delay` days later and, optionally, a same-vendor decoy
    of the same amount `decoy_days` away."""
    rng = Random(seed)
    records, entries, truth = [], [], {}
    kind = TRANSACTION if purchases else SUPPLIER_INVOICE
    make = entry if purchases else invoice
    for i in range(count):
        day = date(2024, 1, 1) + timedelta(days=rng.randint(0, 500))
        amount = rng.randint(2000, 90000)
        records.append(
            record(
                id=f"r{i}",
                type="Purchase" if purchases else "Bill",
                reference="",
                txn_date=day,
                amount_cents=amount,
                home_amount_cents=amount,
            )
        )
        own = make(
            **({} if purchases else {"reference": ""}),
            id=f"t{i}",
            entry_date=day + timedelta(days=delay),
            amount_cents=amount,
        )
        entries.append(own)
        truth[f"r{i}"] = (kind, own.id)
        if decoy_days is not None:
            entries.append(
                make(
                    **({} if purchases else {"reference": ""}),
                    id=f"d{i}",
                    entry_date=day + timedelta(days=decoy_days),
                    amount_cents=amount,
                )
            )
    return records, entries, truth


def _score(records, entries, truth, labels=()):
    fitted = fit([vendor()], [], [], entries, records, list(labels))
    decisions = decide(fitted.book, records, fitted.model, Policy(), fitted.batch)
    right = [
        d.target is not None and (d.target.type, d.target.id) == truth[d.id] for d in decisions
    ]
    auto = [ok for d, ok in zip(decisions, right, strict=True) if d.auto]
    return fitted.model, sum(right) / len(right), auto


def test_u_is_measured_on_random_pairs_of_the_workspace():
    records, entries, _ = _book(300, seed=1, delay=0, decoy_days=None)
    model, _, _ = _score(records, entries, {r.id: None for r in records})
    u = model.groups[SUPPLIER_INVOICE].u
    # Random pairs almost never share an amount or a day; most fall months apart.
    assert u["amount"]["exact"] < 0.01 and u["date"]["same_day"] < 0.01
    assert u["date"]["far"] > 0.3
    assert model.groups[SUPPLIER_INVOICE].entries == 300


def test_em_learns_a_workspaces_own_payment_delay_without_any_label():
    """Card payments that settle 8 to 14 days late, against the prior's "within 3 days"."""
    records, entries, truth = _noisy_book()
    model, accuracy, auto = _score(records, entries, truth)
    m = model.groups[TRANSACTION].m["date"]
    assert m["8_14_days_after"] > 0.8
    assert accuracy >= 0.95
    assert auto and sum(auto) / len(auto) >= 0.99


def _noisy_book():
    records, entries, truth = _book(400, seed=2, delay=10, decoy_days=None, purchases=True)
    rng = Random(5)
    # Other payments of other amounts around the same days.
    entries += [
        entry(
            id=f"n{i}",
            raw_name="CB MONOPRIX",
            amount_cents=rng.randint(2000, 90000),
            entry_date=date(2024, 1, 1) + timedelta(days=rng.randint(0, 520)),
        )
        for i in range(400)
    ]
    return records, entries, truth


def test_reviewer_answers_teach_what_the_books_alone_cannot():
    """Each bill has two invoices of its vendor for its amount: the right one dated at month
    end (20 days later), and a same-day one the books alone make look right. Replaying the
    reviewers' answers on earlier bills makes the later proposals right and stops the wrong
    auto-posts."""
    records, entries, truth = _book(800, seed=3, delay=20, decoy_days=0)
    earlier, later = records[:600], records[600:]
    _, accuracy_before, auto_before = _score(later, entries, truth)
    assert accuracy_before < 0.1 and auto_before and not any(auto_before)

    answers = [Label(r, truth[r.id]) for r in earlier]
    model, accuracy_after, auto_after = _score(later, entries, truth, answers)
    assert accuracy_after >= 0.95
    assert all(auto_after)  # whatever it posts alone now is right
    assert model.fitted["labels"] == 600


def test_a_young_workspace_keeps_the_cautious_prior_calibrator():
    records, entries, truth = _book(60, seed=4, delay=0, decoy_days=None)
    few = [Label(r, truth[r.id]) for r in records[: SPLIT_MIN - 1]]
    model, _, _ = _score(records[SPLIT_MIN:], entries, truth, few)
    assert model.calibrator == load_prior().calibrator
    assert "split" not in model.fitted


def test_the_calibrator_is_fitted_on_the_newest_history_by_time_split():
    records, entries, truth = _book(400, seed=6, delay=0, decoy_days=None)
    history = [HistoryLink(r, *truth[r.id]) for r in records[:300]]
    fitted = fit([vendor()], [], history, entries, records[300:])
    split = fitted.model.fitted["split"]
    assert split == {"first": 100, "middle": 100, "newest": 100}
    assert fitted.model.calibrator != load_prior().calibrator


@pytest.mark.parametrize("labels", [0, 120])
def test_a_fitted_model_round_trips_through_json(labels):
    records, entries, truth = _book(200, seed=7, delay=1, decoy_days=None)
    answers = [Label(r, truth[r.id]) for r in records[:labels]]
    model = fit([vendor()], [], [], entries, records[labels:], answers).model
    again = Model.from_json(model.to_json())
    assert again.to_dict() == model.to_dict()
    rest = records[labels:]
    book = fit([vendor()], [], [], entries, rest).book
    first, second = decide(book, rest, model, Policy()), decide(book, rest, again, Policy())
    assert [(d.action, d.target, d.confidence) for d in first] == [
        (d.action, d.target, d.confidence) for d in second
    ]
