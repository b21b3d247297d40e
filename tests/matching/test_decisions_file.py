"""decisions.jsonl is written without building each decision's dict: the same bytes all the same."""

from __future__ import annotations

import json
import math

from matching.core import engine, io
from matching.core.fitting import fit
from matching.core.types import (
    Alternative,
    Counterparty,
    Decision,
    Policy,
    Reason,
    Target,
)
from matching.datasets.generate import generate


def _as_dict(decision: Decision) -> dict:
    """The line's layout, as the file has always been written: a dict through json.dumps."""

    def target(found: Target | None) -> dict | None:
        return {"type": found.type, "id": found.id} if found else None

    party = decision.counterparty
    return {
        "type": decision.type,
        "id": decision.id,
        "action": decision.action,
        "target": target(decision.target),
        "confidence": decision.confidence,
        "alternatives": [
            {"action": a.action, "target": target(a.target), "confidence": a.confidence}
            for a in decision.alternatives
        ],
        "counterparty": {
            "legal_entity": party.legal_entity,
            "tax_id": party.tax_id,
            "domain": party.domain,
            "ledger_account": party.ledger_account,
            "provenance": party.provenance,
        },
        "reasons": [
            {"signal": r.signal, "weight": r.weight, "detail": r.detail} for r in decision.reasons
        ],
        "auto": decision.auto,
        "ambiguous": decision.ambiguous,
        "model_version": decision.model_version,
    }


def test_a_line_is_json_dumps_of_the_decision_byte_for_byte_whatever_its_texts_and_numbers():
    odd = 'Café "Ünïcødé" \\ back\nslash\t\x00 \u200f\u05e9\u05dc\u05d5\u05dd 🎉 \u2028'
    decision = Decision(
        type="Bill",
        id=odd,
        action="link",
        target=Target("supplier_invoice", odd),
        confidence=-0.0,
        alternatives=[
            Alternative("create", None, 0.0),
            Alternative("link", Target("transaction", "t-1"), 1e-05),
            Alternative("link", Target("transaction", "t-2"), math.nan),
            Alternative("link", Target("transaction", "t-3"), math.inf),
        ],
        counterparty=Counterparty(
            legal_entity=odd, tax_id=None, domain="", provenance={"legal_entity": odd, odd: "x"}
        ),
        reasons=[
            Reason("amount", 18.06, odd),
            Reason("rarity", -math.inf, ""),
            Reason("runner_up", 0.1 + 0.2, "next"),
            Reason("policy", 0, "an int weight"),
        ],
        auto=True,
        ambiguous=False,
        model_version=odd,
    )
    assert io.decision_line(decision) == json.dumps(_as_dict(decision), ensure_ascii=False)
    assert io.decision_line(Decision("Purchase", "1", "create", None, 1.0)) == json.dumps(
        _as_dict(Decision("Purchase", "1", "create", None, 1.0)), ensure_ascii=False
    )


def test_decisions_explained_for_the_file_are_those_decide_makes_but_for_feedback(tmp_path):
    """The file's path skips the calibrator features and every candidate's vector only."""
    folder = generate(tmp_path / "book", 13, 300, 3000)
    data = io.read_dataset(folder)
    fitted = fit(data.vendors, data.accounts, data.history, data.entries, data.incoming)
    proposed = engine.proposals(fitted.book, data.incoming, fitted.model, fitted.batch)
    count, policy = len(data.incoming), Policy()
    full = list(engine.explained(fitted.book, proposed, fitted.model, policy, 0, count))
    lean = engine.explained(fitted.book, proposed, fitted.model, policy, 0, count, feedback=False)
    for kept, written in zip(full, lean, strict=True):
        assert kept.features and kept.comparisons is not None
        assert not written.features and not written.comparisons
        written.features, written.comparisons = kept.features, kept.comparisons
        assert written == kept
        assert io.decision_line(written) == json.dumps(_as_dict(kept), ensure_ascii=False)
