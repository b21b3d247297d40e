# ruff: noqa: RUF001 - French typography uses the typographic apostrophe
"""Reasons and audit events in plain words, in English and French: no internal code
("name_same", "1_3_days_before", "record.approve", "BillPayment") reaches a person."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from matching.core.compare import LEVELS, MISSING
from review.reasons import detail_words, reason_words, signal_words
from review.words import VERB_WORDS, entity_words, verb_words

CODE = re.compile(r"\b[a-z]+_[a-z0-9_]+\b|\b\d+_\d+|[A-Z][a-z]+[A-Z][a-z]+")
PARAMS = {
    "name": "Algolia SAS",
    "party": "Algolia",
    "tax": "FR12345678901",
    "ref": "F-1072",
    "label": "ALGOLIA PARIS",
    "ours": "1,284.00 EUR",
    "theirs": "1,290.00 EUR",
    "converted": "1,400.00 USD",
    "days": "-2",
    "currency": "EUR",
    "entry_currency": "USD",
}
EVERY_LEVEL = [(signal, level) for signal, levels in LEVELS.items() for level in levels]


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize(("signal", "level"), EVERY_LEVEL)
def test_every_signal_level_is_a_sentence_without_codes(language, signal, level):
    with translation.override(language):
        words = reason_words({"signal": signal, "level": level, "params": PARAMS, "detail": ""})
        name = signal_words(signal)
    assert words and not CODE.search(words), words
    if level == MISSING:
        assert name in words


def test_french_reasons_are_french_with_french_money():
    reason = {"signal": "amount", "level": "close", "params": PARAMS, "detail": "x"}
    with translation.override("fr"):
        words = reason_words(reason)
    assert words == "montant à 0,5 % près : 1\u202f284,00\xa0€ contre 1\u202f290,00\xa0€"
    with translation.override("en"):
        assert reason_words(reason) == "amount within 0.5%: €1,284.00 against €1,290.00"


def test_a_weak_candidate_reason_names_no_level_code():
    """The engine's English detail lists codes ("counterparty name_same, date 1_3_days_before");
    the page words it from its level and parameters instead."""
    reason = {
        "signal": "candidates",
        "level": "too_weak",
        "params": {"count": "3", "best": "ALGOLIA"},
        "detail": "best of 3 Qonto entries (ALGOLIA) is only 40% likely: counterparty "
        "name_same, date 1_3_days_before",
    }
    for language in ("en", "fr"):
        with translation.override(language):
            assert not CODE.search(reason_words(reason))


@pytest.mark.parametrize(
    ("detail", "french"),
    [
        (
            "not auto-posted: confidence 0.70 is below 0.85",
            "pas d’envoi automatique : la confiance de 70\xa0% est sous le seuil de 85\xa0%",
        ),
        (
            "not auto-posted: period closed: books are closed until 2025-12-31",
            "pas d’envoi automatique : les comptes sont clôturés jusqu’au 31 déc. 2025",
        ),
        (
            "not auto-posted: 2 other entries of this vendor look the same (amount and dates): "
            "a person picks",
            "pas d’envoi automatique : 2 autres opérations Qonto de ce fournisseur se ressemblent "
            "(montant et dates) : une personne choisit",
        ),
        (
            "QuickBooks changed this record (version 3) after Well posted it; approving links it "
            "to what Qonto holds, it is never posted twice",
            "QuickBooks a modifié cette pièce après son envoi par Well ; la valider la rapproche "
            "de ce que Qonto détient, elle n’est jamais envoyée deux fois",
        ),
    ],
)
def test_free_text_gates_are_worded_in_french(detail, french):
    with translation.override("fr"):
        assert detail_words(detail) == french
    with translation.override("en"):
        assert "version" not in detail_words(detail)


def test_an_unknown_wording_loses_its_codes():
    assert detail_words("odd: name_same and 1_3_days_before") == (
        "odd: name same and 1 3 days before"
    )


@pytest.mark.parametrize("verb", sorted(VERB_WORDS))
def test_audit_verbs_are_words_in_both_languages(verb):
    for language in ("en", "fr"):
        with translation.override(language):
            words = verb_words(verb)
            assert "." not in words and "_" not in words
    assert verb_words("something.brand_new") == "Something brand new"


def test_quickbooks_kinds_are_named_as_accountants_say():
    with translation.override("fr"):
        assert entity_words("Bill") == "Facture"
        assert entity_words("BillPayment") == "Règlement de facture"
        assert entity_words("Attachable") == "Pièce jointe"
    with translation.override("en"):
        assert entity_words("VendorCredit") == "Vendor credit"
