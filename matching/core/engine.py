"""The one entry point: a workspace's books and incoming records in, decisions out."""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass, field

from . import blocking, calibration
from .assign import greedy
from .compare import LEVELS, MISSING, STRONG_PARTY, Context, compare, weight_key
from .counterparty import Directory, Profile, build_directory
from .enrichment import enrich, usual_account
from .gates import failed_gates
from .reasons import money, signal_reasons
from .types import (
    CREATE,
    LINK,
    SUPPLIER_INVOICE,
    TRANSACTION,
    Account,
    Alternative,
    Decision,
    Entry,
    HistoryLink,
    Policy,
    Reason,
    Record,
    Target,
    Vendor,
)
from .weights import Model

MAX_ALTERNATIVES = 5
KEPT_VECTORS = 6
WEIGHT_CLIP = 60.0


@dataclass(slots=True)
class Book:
    """A workspace's state the engine reads: vendors, accounts, Qonto entries, history graph."""

    vendors: dict[str, Vendor]
    accounts: dict[str, Account]
    entries: list[Entry]
    positions: dict[tuple[str, str], int]
    directory: Directory
    index: blocking.Index
    paired: set[str]
    twins: dict[int, int] = field(default_factory=dict)  # invoice <-> the payment Qonto matched


def build_book(
    vendors: list[Vendor], accounts: list[Account], history: list[HistoryLink], entries: list[Entry]
) -> Book:
    """Index a workspace once; reuse the book for every batch until its data changes."""
    by_id = {v.id: v for v in vendors}
    positions = {(e.kind, e.id): i for i, e in enumerate(entries)}
    keyed = {key: entries[i] for key, i in positions.items()}
    paired = {t for e in entries if e.kind == SUPPLIER_INVOICE for t in e.linked_ids}
    twins: dict[int, int] = {}
    for i, entry in enumerate(entries):
        if entry.kind == SUPPLIER_INVOICE and len(entry.linked_ids) == 1:
            j = positions.get((TRANSACTION, entry.linked_ids[0]))
            if j is not None and j not in twins:
                twins[i], twins[j] = j, i
    return Book(
        vendors=by_id,
        accounts={a.id: a for a in accounts},
        entries=entries,
        positions=positions,
        directory=build_directory(by_id, history, keyed),
        index=blocking.build_index(entries),
        paired=paired,
        twins=twins,
    )


@dataclass(slots=True)
class Scored:
    """A record's candidates with their match weights and comparison vectors."""

    record: Record
    profile: Profile
    party: str
    prior: float
    recurring: bool = False
    positions: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    vectors: list[dict[str, str]] = field(default_factory=list)
    twin_of: dict[int, int] = field(default_factory=dict)

    def posterior(
        self, taken: set[int] | frozenset[int] = frozenset()
    ) -> list[tuple[float, int | None]]:
        """Probability of "create" and of each available candidate, best first."""
        n = max(len(self.positions), 1)
        base = math.log2(self.prior / n)
        scores: list[tuple[float, int | None]] = [(math.log2(1 - self.prior), None)]
        for pos, weight in zip(self.positions, self.weights, strict=True):
            if pos not in taken:
                scores.append((base + max(-WEIGHT_CLIP, min(WEIGHT_CLIP, weight)), pos))
        top = max(s for s, _ in scores)
        total = sum(2 ** (s - top) for s, _ in scores)
        ranked = [(2 ** (s - top) / total, pos) for s, pos in scores]
        ranked.sort(key=lambda pair: -pair[0])
        return ranked


def _party_name(record: Record, profile: Profile) -> str:
    vendor = profile.vendor
    return (vendor.display_name or vendor.company_name) if vendor else record.vendor_name or "?"


def score(book: Book, record: Record, model: Model) -> Scored:
    """Block, compare and weigh every candidate of one record."""
    profile = book.directory.profile(record.vendor_id)
    names = profile.names()
    if record.name and record.name not in names:
        names.append(record.name)
    scored = Scored(record, profile, _party_name(record, profile), model.prior(record.type))
    if record.problems and record.amount_cents is None and not record.reference:
        return scored
    keys = [k for k in (record.name_key, profile.vendor.name_key if profile.vendor else "") if k]
    keys += [k for k, _ in profile.entry_keys.most_common(3)]
    recurring = profile.amounts.get(record.amount_cents or 0, 0) >= 2
    scored.recurring = recurring
    ctx = Context(profile, names, book.directory, book.paired, recurring)
    found = blocking.candidates(book.index, record, list(dict.fromkeys(keys)))
    evidence: dict[int, tuple[float, dict[str, str]]] = {}
    for pos in found + [book.twins[p] for p in found if p in book.twins]:
        if pos not in evidence:
            vector = compare(record, book.entries[pos], ctx)
            evidence[pos] = (model.vector_weight(record.vendor_id, vector), vector)
    twins = _implicit_twins(book, evidence)
    for pos, (weight, vector) in evidence.items():
        twin = book.twins.get(pos, twins.get(pos))
        if twin is not None:
            # An invoice and the payment Qonto matched to it are one event: keep the one this
            # kind of record is booked against, with the stronger evidence of the two.
            if _prefers(record, book.entries[twin].kind):
                continue
            weight = max(weight, evidence[twin][0])
            scored.twin_of[pos] = twin
        scored.positions.append(pos)
        scored.vectors.append(vector)
        scored.weights.append(weight)
    return scored


PARALLEL_MIN = 2000  # records: below it, forking a second process costs more than it saves
_SHARED: tuple | None = None  # what a forked helper inherits (never pickled)
_SIGNALS = tuple(LEVELS)


def _halves(count: int, workers: int, work: Callable[[int, int], list], shared: tuple) -> list:
    """work(0, count), with workers=2 the second half in a forked helper process.

    Scoring and explaining are independent per record and are most of the time, so a large
    batch (an initial sync, an evaluation) uses both cores. The helper inherits the book by
    fork (nothing is copied in) and sends back its half's results.
    """
    global _SHARED
    _SHARED = shared
    try:
        fork = "fork" in multiprocessing.get_all_start_methods()
        if workers < 2 or count < PARALLEL_MIN or not fork:
            return work(0, count)
        half = count // 2
        with multiprocessing.get_context("fork").Pool(1) as pool:
            pending = pool.apply_async(work, (half, count))
            first = work(0, half)
            return first + pending.get()
    finally:
        _SHARED = None


def score_all(book: Book, records: list[Record], model: Model, workers: int = 1) -> list[Scored]:
    """Score every record; with workers=2, half of them in a forked helper (large batches)."""
    packed = _halves(len(records), workers, _score_packed, (book, records, model))
    return [
        item if isinstance(item, Scored) else _unpack(book, record, model, item)
        for record, item in zip(records, packed, strict=True)
    ]


def _score_packed(start: int, stop: int) -> list:
    assert _SHARED is not None
    book, records, model = _SHARED
    if start == 0:  # this process: nothing to send anywhere
        return [score(book, record, model) for record in records[:stop]]
    packed: list = []
    for record in records[start:stop]:
        s = score(book, record, model)
        vectors = [tuple(v[name] for name in _SIGNALS) for v in s.vectors]
        packed.append((s.positions, s.weights, vectors, s.twin_of, s.recurring))
    return packed


def _unpack(book: Book, record: Record, model: Model, item: tuple) -> Scored:
    positions, weights, vectors, twin_of, recurring = item
    profile = book.directory.profile(record.vendor_id)
    scored = Scored(record, profile, _party_name(record, profile), model.prior(record.type))
    scored.positions, scored.weights, scored.twin_of = positions, weights, twin_of
    scored.vectors = [dict(zip(_SIGNALS, levels, strict=True)) for levels in vectors]
    scored.recurring = recurring
    return scored


def _implicit_twins(
    book: Book, evidence: dict[int, tuple[float, dict[str, str]]]
) -> dict[int, int]:
    """Invoice and payment candidates Qonto has not matched yet but that are plainly one event."""
    invoices = [
        p for p in evidence if book.entries[p].kind == SUPPLIER_INVOICE and p not in book.twins
    ]
    payments = [p for p in evidence if book.entries[p].kind == TRANSACTION and p not in book.twins]
    twins: dict[int, int] = {}
    for i in invoices:
        inv = book.entries[i]
        for j in payments:
            pay = book.entries[j]
            if j in twins:
                continue
            paid = {abs(a) for a in (pay.amount_cents, pay.local_amount_cents) if a is not None}
            # An invoice whose total the scanner could not read is paired on its number alone.
            if inv.amount_cents is not None and abs(inv.amount_cents) not in paid:
                continue
            same_ref = len(inv.reference) >= 4 and (
                inv.reference == pay.reference or inv.reference in pay.text
            )
            if same_ref:
                # A transfer quoting the invoice number and amount pays that invoice.
                twins[i], twins[j] = j, i
                break
            if inv.amount_cents is None:
                continue
            same_party = (
                evidence[i][1]["counterparty"] in STRONG_PARTY
                and evidence[j][1]["counterparty"] in STRONG_PARTY
            )
            close = (
                inv.entry_date
                and pay.entry_date
                and abs((pay.entry_date - inv.entry_date).days) <= 5
            )
            if same_party and close:
                twins[i], twins[j] = j, i
                break
    return twins


def _prefers(record: Record, kind: str) -> bool:
    """Whether this record type is booked against this kind of entry when Qonto has both."""
    wanted = TRANSACTION if record.type == "Purchase" else SUPPLIER_INVOICE
    return kind == wanted


def _completeness(record: Record, vector: dict[str, str] | None) -> float:
    present = [
        record.amount_cents is not None,
        record.txn_date is not None,
        bool(record.vendor_id or record.vendor_name),
        bool(record.reference),
        bool(record.currency),
    ]
    share = sum(present) / len(present)
    if vector:
        signals = ("amount", "date", "counterparty", "reference")
        share *= 0.5 + 0.5 * sum(vector[s] != MISSING for s in signals) / len(signals)
    return share


def _party_strength(profile: Profile) -> float:
    if profile.tax_id:
        return 1.0
    if profile.records >= 3:
        return 0.7
    if profile.vendor is not None:
        return 0.4
    return 0.0


QUALITY_AUTO = 0.6  # below it a "create" is reviewed, however sure the search
QUALITY_REVIEW = 0.35  # below it a "create" is refused (a person may still post it)


def record_quality(record: Record, profile: Profile, fit: float) -> tuple[float, list[str]]:
    """The record's own quality in [0, 1]: complete fields, a known counterparty, policy fit."""
    fields = {
        "no amount": record.amount_cents is not None,
        "no date": record.txn_date is not None,
        "no vendor": bool(record.vendor_id or record.vendor_name),
        "no currency": bool(record.currency),
    }
    if record.type in ("Bill", "VendorCredit"):
        fields["no invoice number"] = bool(record.reference)  # expenses rarely carry one
    missing = [name for name, present in fields.items() if not present]
    strength = _party_strength(profile)
    quality = (1 - len(missing) / len(fields)) * (0.5 + 0.5 * strength) + 0.1 * min(fit, 1.0)
    if strength < 0.7:
        missing.append("vendor unknown to history" if strength else "vendor unknown")
    return round(min(quality, 1.0), 4), missing


def _policy_fit(record: Record, profile: Profile, policy: Policy) -> tuple[float, list[str]]:
    """Whether the record is ordinary for its vendor: a PO, the usual ledger, a known amount."""
    fit, why = 0.0, []
    if record.linked_po or (record.vendor_id, record.amount_cents) in policy.purchase_orders:
        fit += 1.0
        why.append("a purchase order for this vendor and amount")
    account_id, count, total = usual_account(profile)
    if account_id and record.account_ids and record.account_ids[0] == account_id and count >= 2:
        fit += 0.5
        why.append(f"usual ledger account ({count} of {total} prior bills)")
    seen = profile.amounts.get(record.amount_cents or 0, 0)
    if seen >= 2:
        fit += 0.5
        why.append(f"same amount as {seen} prior bills from this vendor")
    return min(fit, 1.0), why


@dataclass(slots=True)
class _Choice:
    ranked: list[tuple[float, int | None]]
    chosen: int | None
    contested: bool
    claimed: frozenset[int] = frozenset()  # entries the batch's assignment gave to a record


_NEAR_AMOUNT = ("exact", "close", "within_3pct", "sign_flip")
_PLAUSIBLE_DATE = ("same_day", "1_3_days", "4_10_days", "11_45_days", "near_due_date")


def _rivals(s: Scored) -> list[int]:
    """The vendor's own entries near the record's amount and date, not linked to anything."""
    return [
        pos
        for pos, v in zip(s.positions, s.vectors, strict=True)
        if v["counterparty"] in STRONG_PARTY
        and v["amount"] in _NEAR_AMOUNT
        and v["date"] in _PLAUSIBLE_DATE
        and v["usage"] == "unused"
    ]


def _points(weights: dict[tuple[str, str], float], vector: dict[str, str], signal: str) -> float:
    """One signal's points in a vector, scaled and bounded for the calibrator."""
    value = weights.get(weight_key(signal, vector[signal], vector), 0.0)
    return max(-2.0, min(2.0, value / 5))


def _features(
    s: Scored,
    choice: _Choice,
    gates: list[str],
    fit: float,
    weights: dict[tuple[str, str], float],
) -> dict[str, float]:
    p_chosen = next(p for p, pos in choice.ranked if pos == choice.chosen)
    others = [p for p, pos in choice.ranked if pos != choice.chosen]
    runner = others[0] if others else 0.0
    by_pos = dict(zip(s.positions, s.weights, strict=True))
    if choice.chosen is not None:
        weight = by_pos[choice.chosen]
        vector = s.vectors[s.positions.index(choice.chosen)]
    else:
        weight = max(s.weights, default=-20.0)
        vector = None
    create = 1.0 if choice.chosen is None else 0.0
    chosen_logit = calibration.logit(p_chosen)
    levels = vector or {}
    # A "create" is doubtful when one of the vendor's own entries is near the amount: it may be
    # this record paid with bank charges, or booked late.
    expense = 1.0 if s.record.type == "Purchase" else 0.0
    credit = 1.0 if s.record.type == "VendorCredit" else 0.0
    rivals = _rivals(s)
    # ... and more so when no other record of the batch claimed that entry.
    free_rival = any(pos not in choice.claimed for pos in rivals)
    return {
        "bias": 1.0,
        "logit": max(-8.0, min(8.0, chosen_logit)),
        "p": p_chosen,
        "create": create,
        "create_logit": create * max(-8.0, min(8.0, chosen_logit)),
        "strong_party": 1.0 if levels.get("counterparty") in STRONG_PARTY else 0.0,
        "other_party": 1.0
        if levels.get("counterparty") in ("other_counterparty", "tax_id_conflict", "different")
        else 0.0,
        "reference_match": 1.0 if levels.get("reference") in ("exact", "in_label") else 0.0,
        "match_weight": max(-4.0, min(4.0, weight / 10)),
        "gap": max(0.0, min(3.0, (chosen_logit - calibration.logit(runner)) / 10)),
        "log_candidates": math.log1p(len(s.positions)),
        "completeness": _completeness(s.record, vector),
        "party_strength": _party_strength(s.profile),
        "policy_fit": fit,
        "contested": 1.0 if choice.contested else 0.0,
        "gate_failed": 1.0 if gates else 0.0,
        # Per-signal points of the chosen entry: the calibrator re-weighs what the naive sum
        # over-trusts (an exact amount a month away from a subscription's bill).
        "amount_points": _points(weights, levels, "amount") if vector else 0.0,
        "date_points": _points(weights, levels, "date") if vector else 0.0,
        "party_points": _points(weights, levels, "counterparty") if vector else 0.0,
        "link_recurring": (1.0 - create) * (1.0 if s.recurring else 0.0),
        "create_rival": create * (1.0 if rivals else 0.0),
        "create_free_rival": create * (1.0 if free_rival else 0.0),
        # The same evidence means different things per record type: an expense paid from the
        # Qonto card has its transaction, a bill may be paid weeks later or from elsewhere.
        "expense": expense,
        "credit": credit,
        "create_expense": create * expense,
        "create_credit": create * credit,
    }


def _target(book: Book, pos: int | None) -> Target | None:
    if pos is None:
        return None
    entry = book.entries[pos]
    return Target(entry.kind, entry.id)


def _create_reasons(s: Scored, book: Book) -> list[Reason]:
    if not s.positions:
        amount = money(s.record.amount_cents, s.record.currency)
        return [Reason("candidates", 0.0, f"no Qonto entry near {amount} around this date")]
    best = max(range(len(s.positions)), key=lambda i: s.weights[i])
    entry = book.entries[s.positions[best]]
    weak = [
        f"{sig} {lvl}"
        for sig, lvl in s.vectors[best].items()
        if lvl not in ("exact", "same_day", "same", "unused", MISSING) and sig != "kind"
    ]
    return [
        Reason(
            "candidates",
            round(s.weights[best], 2),
            f"best of {len(s.positions)} Qonto entries ({entry.raw_name or entry.id}) "
            f"is too weak: {', '.join(weak) or 'not enough evidence'}",
        )
    ]


def _decision(book: Book, s: Scored, choice: _Choice, model: Model, policy: Policy) -> Decision:
    record = s.record
    pos = choice.chosen
    vector = s.vectors[s.positions.index(pos)] if pos is not None else None
    entry = book.entries[pos] if pos is not None else None
    used_by = book.directory.used.get((entry.kind, entry.id), "") if entry else ""
    gates = failed_gates(record, LINK if pos is not None else CREATE, vector, used_by, policy)
    fit, fit_why = _policy_fit(record, s.profile, policy)
    features = _features(s, choice, gates, fit, model.weights(record.vendor_id))
    confidence = model.confidence(features, record.vendor_id)
    quality, thin = record_quality(record, s.profile, fit)
    if pos is None and quality < QUALITY_AUTO:
        # "No Qonto entry is this record" is only as sure as the search could be, and uploading
        # a thin record of an unknown vendor is a person's call: never an automatic create.
        gates.append(f"too thin to create alone (quality {quality:.2f}: {', '.join(thin)})")
    if gates:
        # A failed gate always means review, even when the evidence is strong.
        confidence = min(confidence, policy.auto_threshold - 0.001)
    if pos is None and quality < QUALITY_REVIEW:
        confidence = min(confidence, policy.review_threshold - 0.001)
    confidence = round(confidence, 4)
    reasons: list[Reason] = []
    if entry is not None and vector is not None:
        reasons += signal_reasons(record, entry, vector, model.weights(record.vendor_id), s.party)
        twin = s.twin_of.get(pos) if pos is not None else None
        if twin is not None:
            other = book.entries[twin]
            what = "supplier invoice" if other.kind == SUPPLIER_INVOICE else "payment"
            reasons.append(
                Reason(
                    "paired",
                    round(features["match_weight"] * 10, 2),
                    f"Qonto already matches it to the {what} "
                    f"{other.raw_name or other.id}; the pair scores "
                    f"{features['match_weight'] * 10:+.1f}",
                )
            )
    else:
        reasons += _create_reasons(s, book)
    runner = [p for p, p_pos in choice.ranked if p_pos != pos]
    reasons.append(
        Reason(
            "runner_up",
            round(features["gap"] * 10, 2),
            f"next best action is {runner[0]:.0%} likely before calibration"
            if runner
            else "no other action to consider",
        )
    )
    coef = model.calibrator.get("policy_fit", 0.0)
    reasons += [Reason("policy", round(coef * fit, 2), why) for why in fit_why]
    counterparty = enrich(record, s.profile, book.accounts, entry, book.directory)
    if counterparty.ledger_account:
        reasons.append(
            Reason(
                "ledger",
                0.0,
                f"ledger {counterparty.ledger_account}: "
                f"{counterparty.provenance['ledger_account']}",
            )
        )
    reasons += [Reason("gate", 0.0, f"not auto-posted: {gate}") for gate in gates]
    if not gates and confidence < policy.auto_threshold:
        reasons.append(
            Reason(
                "gate",
                0.0,
                f"not auto-posted: confidence {confidence:.2f} is "
                f"below {policy.auto_threshold:.2f}",
            )
        )
    alternatives = _alternatives(book, choice, confidence)
    kept = sorted(range(len(s.positions)), key=lambda i: -s.weights[i])[:KEPT_VECTORS]
    return Decision(
        type=record.type,
        id=record.id,
        action=LINK if pos is not None else CREATE,
        target=_target(book, pos),
        confidence=confidence,
        alternatives=alternatives,
        counterparty=counterparty,
        reasons=reasons,
        auto=not gates and confidence >= policy.auto_threshold,
        gates_failed=gates,
        features=features,
        comparisons={
            f"{book.entries[s.positions[i]].kind}:{book.entries[s.positions[i]].id}": s.vectors[i]
            for i in kept
        },
        vendor_id=record.vendor_id,
        model_version=model.version,
    )


def _alternatives(book: Book, choice: _Choice, confidence: float) -> list[Alternative]:
    """Next best actions; their raw shares rescaled to the probability left over."""
    p_chosen = next(p for p, pos in choice.ranked if pos == choice.chosen)
    left = (1 - confidence) / max(1 - p_chosen, 1e-9)
    found = []
    for p, pos in choice.ranked:
        if pos == choice.chosen:
            continue
        found.append(
            Alternative(
                LINK if pos is not None else CREATE,
                _target(book, pos),
                round(min(p * left, 1 - confidence), 4),
            )
        )
        if len(found) == MAX_ALTERNATIVES:
            break
    return found


def decide(
    book: Book,
    records: list[Record],
    model: Model,
    policy: Policy,
    candidates_out: dict[tuple[str, str], set[tuple[str, str]]] | None = None,
    workers: int = 1,
) -> list[Decision]:
    """Propose an action for every record: score, assign one-to-one, calibrate, explain."""
    scored = score_all(book, records, model, workers)
    ranked = [s.posterior() for s in scored]

    def best(i: int, taken: set[int]) -> tuple[float, int | None]:
        options = ranked[i] if not taken else scored[i].posterior(taken)
        for p, pos in options:
            if pos is None or pos not in taken:
                return p, pos
        return 1.0, None

    assigned = greedy(len(scored), best, book.twins)
    claimed = frozenset(
        p
        for s, (pos, _) in zip(scored, assigned, strict=True)
        if pos is not None
        for p in (pos, book.twins.get(pos), s.twin_of.get(pos))
        if p is not None
    )
    if candidates_out is not None:
        for s in scored:
            found = {(book.entries[p].kind, book.entries[p].id) for p in s.positions}
            candidates_out[(s.record.type, s.record.id)] = found
    # A record that lost its first choice keeps the full competition in its features: the
    # entry another record took still counts against it, so it lands in review, not in auto.
    choices = [
        _Choice(ranked[i], pos, contested, claimed) for i, (pos, contested) in enumerate(assigned)
    ]
    # Explaining stays in this process: a helper forked this late copies most of the heap
    # (reference counts) and pickling decisions back cost more than it saved (measured).
    decisions = [
        _decision(book, s, choice, model, policy) for s, choice in zip(scored, choices, strict=True)
    ]
    taken = set(claimed)
    for i, (s, choice) in enumerate(zip(scored, choices, strict=True)):
        if choice.chosen is None and decisions[i].confidence < policy.review_threshold:
            rival = _Choice(ranked[i], None, choice.contested, claimed)
            decisions[i] = _rival_instead(book, s, rival, model, policy, decisions[i], taken)
    return decisions


def _rival_instead(
    book: Book,
    s: Scored,
    choice: _Choice,
    model: Model,
    policy: Policy,
    create: Decision,
    taken: set[int],
) -> Decision:
    """A doubtful "create" gives way, for review, to the vendor's unclaimed entry near it."""
    free = [p for p in _rivals(s) if p not in taken]
    if not free:
        return create
    rival = max(free, key=lambda p: s.weights[s.positions.index(p)])
    choice.chosen = rival
    linked = _decision(book, s, choice, model, policy)
    if linked.confidence <= create.confidence:
        return create
    taken.update(p for p in (rival, book.twins.get(rival)) if p is not None)
    # Never auto-posted: the evidence ranked "create" first, a person decides.
    linked.confidence = min(linked.confidence, round(policy.auto_threshold - 0.001, 4))
    linked.auto = False
    linked.reasons.append(
        Reason(
            "gate",
            0.0,
            f"not auto-posted: creating it instead is only {create.confidence:.0%} likely, "
            "and this entry of the vendor is unclaimed",
        )
    )
    return linked
