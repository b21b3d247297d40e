"""The matching engine's reasons in plain words, in the reader's language.

The engine (matching/core, free of Django) stores each reason's signal, level and parameters
beside its English `detail`; here they become sentences through gettext. Reasons the engine
words as free text (gates, policy) are recognised by pattern. No internal code reaches a
page: a level with no sentence falls back to the English detail with codes removed.
"""

from __future__ import annotations

import math
import re

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from connectors.qonto.models import PostingAction
from connectors.qonto.payments import CUSTOMER_PAYMENT, NO_POSTED_BILL
from connectors.qonto.triggers import NEVER_POSTED
from well import formats


def _money_param(text: str) -> str:
    """The engine's "1,284.00 EUR" in the reader's format."""
    match = re.fullmatch(r"(-?[\d,]+\.\d{2})\s*([A-Z]{3})?", (text or "").strip())
    if not match:
        return text or ""
    return formats.money(match.group(1).replace(",", ""), match.group(2) or "")


def _share(text) -> str:
    try:
        return formats.percent(float(text))
    except (TypeError, ValueError):
        return str(text)


def _share_below(text) -> str:
    """A confidence said to be below a threshold, never rounded up onto it (94.97 -> 94.9)."""
    try:
        return formats.percent(math.floor(float(text) * 1000) / 1000, digits=1)
    except (TypeError, ValueError):
        return str(text)


def _days(params: dict) -> int | None:
    try:
        return int(params.get("days", ""))
    except (TypeError, ValueError):
        return None


def _gap_words(days: int | None) -> str:
    if days is None:
        return _("no date to compare")
    if days == 0:
        return _("same day")
    if days > 0:
        return ngettext("%(n)d day later", "%(n)d days later", days) % {"n": days}
    return ngettext("%(n)d day earlier", "%(n)d days earlier", -days) % {"n": -days}


def _signal_sentence(signal: str, level: str, p: dict) -> str | None:
    name, party = p.get("name", ""), p.get("party") or _("the vendor")
    ours, theirs = _money_param(p.get("ours", "")), _money_param(p.get("theirs", ""))
    texts = {
        ("amount", "exact"): _("same amount: %(ours)s"),
        ("amount", "close"): _("amount within 0.5%%: %(ours)s against %(theirs)s"),
        ("amount", "with_or_without_vat"): _(
            "the same amount with or without VAT: %(ours)s against %(theirs)s"
        ),
        ("amount", "within_3pct"): _(
            "amount within 3%% (fees or exchange rate): %(ours)s against %(theirs)s"
        ),
        ("amount", "within_6pct"): _("amount within 6%%: %(ours)s against %(theirs)s"),
        ("amount", "within_10pct"): _("amount within 10%%: %(ours)s against %(theirs)s"),
        ("amount", "within_15pct"): _("amount within 15%%: %(ours)s against %(theirs)s"),
        ("amount", "sign_flip"): _(
            "same amount, opposite sign (credit note): %(ours)s against %(theirs)s"
        ),
        ("amount", "different"): _("different amount: %(ours)s against %(theirs)s"),
        ("counterparty", "same_tax_id"): _("same VAT number %(tax)s"),
        ("counterparty", "same_counterparty"): _("“%(name)s” is %(party)s in past links"),
        ("counterparty", "name_same"): _("same name: “%(name)s”"),
        ("counterparty", "name_close"): _("name close to %(party)s: “%(name)s”"),
        ("counterparty", "name_similar"): _("name similar to %(party)s: “%(name)s”"),
        ("counterparty", "other_counterparty"): _("“%(name)s” belongs to another vendor"),
        ("counterparty", "tax_id_conflict"): _("VAT number %(tax)s is not that of %(party)s"),
        ("counterparty", "different"): _("different name: “%(name)s”"),
        ("text", "same"): _("same wording as the bank label: “%(label)s”"),
        ("text", "contained"): _("the note and the bank label “%(label)s” agree as far as both go"),
        ("text", "close"): _("note close to the bank label “%(label)s”"),
        ("text", "similar"): _("note similar to the bank label “%(label)s”"),
        ("text", "different"): _("note unlike the bank label “%(label)s”"),
        ("reference", "exact"): _("same invoice number %(ref)s"),
        ("reference", "in_label"): _("invoice number %(ref)s appears in the bank label"),
        ("reference", "close"): _("invoice number %(ref)s differs by one or two characters"),
        ("reference", "different"): _("different invoice number (%(ref)s)"),
        ("payment", "free"): _("this payment settles no other invoice in Qonto"),
        ("payment", "settles_an_invoice"): _(
            "this payment already settles a supplier invoice in Qonto"
        ),
        ("date", "day_month_swapped"): _("day and month swapped on the scanned invoice"),
        ("date", "one_year_apart"): _(
            "same day and month, the year misread on the scanned invoice"
        ),
        ("date", "one_period_apart"): _("a month apart: the previous or next subscription period"),
        ("currency", "same"): _("same currency %(currency)s"),
        ("currency", "converted"): _("Qonto converted it from %(converted)s"),
        ("currency", "different"): _("different currency: %(currency)s against %(entry_currency)s"),
        ("rarity", "rare"): _("the matched amount or label is rare among Qonto entries"),
        ("rarity", "common"): _("the matched amount or label is common among Qonto entries"),
        ("runner_up", "none"): _("no other action"),
        ("create", ""): _("upload as a new supplier invoice"),
    }
    values = {
        "name": name,
        "party": party,
        "tax": p.get("tax", ""),
        "ref": p.get("ref", ""),
        "label": p.get("label", ""),
        "ours": ours,
        "theirs": theirs,
        "converted": _money_param(p.get("converted", "")),
        "currency": p.get("currency", ""),
        "entry_currency": p.get("entry_currency", ""),
    }
    if level == "missing":
        return _("%(signal)s: not available on both sides") % {"signal": signal_words(signal)}
    if (signal, level) in texts:
        return texts[(signal, level)] % values
    if signal == "date":
        return _gap_words(_days(p))
    if signal == "runner_up" and level == "next_best":
        return _("next best action is %(share)s likely") % {"share": _share(p.get("probability"))}
    if signal == "ledger" and level == "usual":
        return _("usual ledger account %(account)s") % {"account": p.get("account", "")}
    if signal == "candidates" and level == "none_found":
        return _("no Qonto entry near %(amount)s around this date") % {
            "amount": _money_param(p.get("amount", ""))
        }
    if signal == "candidates" and level == "too_weak":
        count = int(p.get("count") or 0)
        return ngettext(
            "the only Qonto entry found (%(best)s) is too unlike this record",
            "the best of %(count)d Qonto entries (%(best)s) is too unlike this record",
            count,
        ) % {"count": count, "best": p.get("best", "")}
    if signal == "gate" and level == "below_threshold":
        return _("not auto-posted: confidence %(confidence)s is below %(threshold)s") % {
            "confidence": _share_below(p.get("confidence")),
            "threshold": _share(p.get("threshold")),
        }
    if signal == "gate" and level == "refused":
        return _(
            "refused: confidence %(confidence)s is below the review threshold %(threshold)s"
        ) % {
            "confidence": _share_below(p.get("confidence")),
            "threshold": _share(p.get("threshold")),
        }
    if signal == "gate" and level == "never_auto":
        return _("not auto-posted: a vendor rule says never auto-post")
    if signal == "gate" and level == "changed_after_posting":
        return _("not auto-posted: changed in QuickBooks after Well posted it")
    if signal == "changed" and level == "after_posting":
        return _(
            "QuickBooks changed this record after Well posted it; approving links it to what "
            "Qonto holds, it is never posted twice"
        )
    return None


# Free-text reasons (gates and policy), recognised by their English wording.
def _patterns() -> list[tuple[re.Pattern, object]]:
    share = r"(?P<c>\d\.\d+)"
    return [
        (
            re.compile(rf"^not auto-posted: confidence {share} is below (?P<t>\d\.\d+)$"),
            lambda m: (
                _("not auto-posted: confidence %(confidence)s is below %(threshold)s")
                % {"confidence": _share(m["c"]), "threshold": _share(m["t"])}
            ),
        ),
        (
            re.compile(
                rf"^refused: confidence {share} is below the review threshold (?P<t>[\d.]+)$"
            ),
            lambda m: (
                _("refused: confidence %(confidence)s is below the review threshold %(threshold)s")
                % {"confidence": _share(m["c"]), "threshold": _share(m["t"])}
            ),
        ),
        (
            re.compile(r"^(not auto-posted: )?a vendor rule says never auto-post$"),
            lambda m: _("not auto-posted: a vendor rule says never auto-post"),
        ),
        (
            re.compile(r"^(not auto-posted: )?changed in QuickBooks after Well posted it$"),
            lambda m: _("not auto-posted: changed in QuickBooks after Well posted it"),
        ),
        (
            re.compile(r"^QuickBooks changed this record \(version [^)]*\) after Well posted it"),
            lambda m: _(
                "QuickBooks changed this record after Well posted it; approving links it to "
                "what Qonto holds, it is never posted twice"
            ),
        ),
        (
            re.compile(r"^(not auto-posted: )?(?P<n>\d+) other entr(y|ies) of this vendor look"),
            lambda m: (
                ngettext(
                    "not auto-posted: %(n)d other Qonto entry of this vendor looks the same "
                    "(amount and dates): a person picks",
                    "not auto-posted: %(n)d other Qonto entries of this vendor look the same "
                    "(amount and dates): a person picks",
                    int(m["n"]),
                )
                % {"n": int(m["n"])}
            ),
        ),
        (
            re.compile(
                r"^(not auto-posted: )?the invoice numbers differ: (?P<a>.*) in QuickBooks, "
                r"(?P<b>.*) in Qonto$"
            ),
            lambda m: (
                _(
                    "not auto-posted: the invoice numbers differ: "
                    "%(a)s in QuickBooks, %(b)s in Qonto"
                )
                % {"a": m["a"], "b": m["b"]}
            ),
        ),
        (
            re.compile(
                r"^(not auto-posted: )?the names differ: '(?P<a>.*)' in QuickBooks, "
                r"'(?P<b>.*)' in Qonto$"
            ),
            lambda m: (
                _("not auto-posted: the names differ: “%(a)s” in QuickBooks, “%(b)s” in Qonto")
                % {"a": m["a"], "b": m["b"]}
            ),
        ),
        (
            re.compile(r"^(not auto-posted: )?another record of this batch is as likely"),
            lambda m: _(
                "not auto-posted: another record of this batch is as likely to be this entry"
            ),
        ),
        (
            re.compile(
                r"^(not auto-posted: )?invoice number (?P<ref>.*) is already (?P<who>.*)'s: "
                r"a duplicate bill\?$"
            ),
            lambda m: (
                _(
                    "not auto-posted: invoice number %(ref)s is already used by %(who)s: "
                    "a duplicate bill?"
                )
                % {"ref": m["ref"], "who": m["who"]}
            ),
        ),
        (
            re.compile(r"^(not auto-posted: )?this transaction may be the payment of (?P<x>.*) "),
            lambda m: (
                _("not auto-posted: this transaction may be the payment of %(other)s instead")
                % {"other": m["x"]}
            ),
        ),
        (
            re.compile(r"^(not auto-posted: )?too thin to create alone"),
            lambda m: _(
                "not auto-posted: too little is known about this record to create it alone"
            ),
        ),
        (
            re.compile(r"^(not auto-posted: )?malformed record: (?P<x>.*)$"),
            lambda m: (
                _("not auto-posted: the QuickBooks record is incomplete (%(problem)s)")
                % {"problem": _problem_words(m["x"])}
            ),
        ),
        (
            re.compile(r"^(not auto-posted: )?period closed: books are closed until (?P<d>[\d-]+)"),
            lambda m: (
                _("not auto-posted: the books are closed until %(day)s")
                % {"day": formats.day(m["d"])}
            ),
        ),
        (
            re.compile(r"^(not auto-posted: )?currency differs and Qonto shows no converted"),
            lambda m: _(
                "not auto-posted: the currency differs and Qonto shows no converted amount"
            ),
        ),
        (
            re.compile(r"^(not auto-posted: )?the entry's tax ID conflicts"),
            lambda m: _("not auto-posted: the entry's VAT number is not the vendor's"),
        ),
        (
            re.compile(r"^a purchase order for this vendor and amount$"),
            lambda m: _("a purchase order for this vendor and amount"),
        ),
        (
            re.compile(r"^usual ledger account \((?P<a>\d+) of (?P<b>\d+) prior bills\)$"),
            lambda m: (
                _("usual ledger account (%(count)s of %(total)s prior bills)")
                % {"count": m["a"], "total": m["b"]}
            ),
        ),
        (
            re.compile(r"^same amount as (?P<n>\d+) prior bills from this vendor$"),
            lambda m: (
                _("same amount as %(count)s prior bills from this vendor") % {"count": m["n"]}
            ),
        ),
        (
            re.compile(r"^upload as a new supplier invoice$"),
            lambda m: _("upload as a new supplier invoice"),
        ),
        (
            re.compile(r"^ledger (?P<a>\S+): "),
            lambda m: _("usual ledger account %(account)s") % {"account": m["a"]},
        ),
    ]


def _problem_words(text: str) -> str:
    return {
        "the total is zero": _("the total is zero"),
        "no readable total amount": _("no readable total amount"),
        "no readable date": _("no readable date"),
    }.get(text, text)


_CODE = re.compile(r"\b[a-z]+(_[a-z0-9]+)+\b|\b\d+_\d+_[a-z_]+\b")


def detail_words(detail: str) -> str:
    """A free-text reason the engine wrote in English, in the reader's language."""
    text = (detail or "").strip()
    for pattern, words in _patterns():
        match = pattern.search(text)
        if match:
            return str(words(match))
    # Unknown wording: never show a code such as name_same or 1_3_days_before.
    return _CODE.sub(lambda m: m.group(0).replace("_", " "), text)


def reason_words(reason: dict) -> str:
    """One stored reason ({"signal", "level", "params", "detail"}) as a sentence."""
    signal, level = reason.get("signal", ""), reason.get("level", "")
    params = reason.get("params") or {}
    if level:
        sentence = _signal_sentence(signal, level, params)
        if sentence:
            return sentence
    if signal == "create" and not level:
        return _("upload as a new supplier invoice")
    return detail_words(reason.get("detail", ""))


def gate_words(gate: str) -> str:
    """A gate from Proposal.gates_failed ("period closed: ...") as a sentence."""
    return detail_words(gate)


SIGNAL_WORDS = {
    "amount": lambda: _("Amount"),
    "date": lambda: _("Date"),
    "counterparty": lambda: _("Supplier name"),
    "reference": lambda: _("Invoice number"),
    "currency": lambda: _("Currency"),
    "text": lambda: _("Label"),
    "payment": lambda: _("Payment"),
    "kind": lambda: _("Kind of entry"),
    "usage": lambda: _("Not used elsewhere"),
    "runner_up": lambda: _("Runner-up"),
    "ledger": lambda: _("Ledger account"),
    "gate": lambda: _("Rule"),
    "create": lambda: _("Upload as new"),
    "tax_id": lambda: _("VAT number"),
    "vendor": lambda: _("Vendor history"),
    "rarity": lambda: _("Rarity"),
    "policy": lambda: _("Vendor habits"),
    "candidates": lambda: _("Qonto entries"),
    "changed": lambda: _("Changed"),
    "legal_entity": lambda: _("Legal entity"),
    "domain": lambda: _("Website"),
    "ledger_account": lambda: _("Ledger account"),
}


def signal_words(signal: str) -> str:
    words = SIGNAL_WORDS.get(signal)
    return words() if words else str(signal).replace("_", " ").capitalize()


# --- reasons Well itself wrote into the audit trail ------------------------------------------


def _system_patterns() -> list[tuple[re.Pattern, object]]:
    exact = {
        CUSTOMER_PAYMENT: _(
            "A customer payment settles sales invoices, which are context for reconciliation "
            "only and never uploaded to Qonto; nothing to mark paid."
        ),
        NO_POSTED_BILL: _(
            "This payment is not against a bill Well has posted; nothing to mark paid."
        ),
        NEVER_POSTED["Invoice"]: _(
            "A sales invoice is context for reconciliation only; it is never uploaded to Qonto "
            "as a supplier invoice."
        ),
        NEVER_POSTED["PurchaseOrder"]: _(
            "A purchase order is not posted; it is the policy fit for the bill that arrives "
            "against it (vendor and amount within the order)."
        ),
        NEVER_POSTED["Account"]: _(
            "A bank account is mapped to a Qonto bank account by IBAN or number, not posted."
        ),
        NEVER_POSTED["Vendor"]: _(
            "Vendors feed the counterparty graph used by enrichment; nothing is posted."
        ),
        NEVER_POSTED["Customer"]: _(
            "Customers feed the counterparty graph used by enrichment; nothing is posted."
        ),
        NEVER_POSTED["Attachable"]: _(
            "An attachment is posted as the PDF of its bill or purchase."
        ),
        "A malformed QuickBooks payment marks nothing paid.": _(
            "A malformed QuickBooks payment marks nothing paid."
        ),
        "marks withdrawn": _("marks withdrawn"),
        "resumes from the last sync marker": _("resumes from the last sync"),
        "fitted on the workspace's own books": _("fitted on the workspace's own books"),
        "a worker stopped during a sync": _("a worker stopped during a sync"),
        "grant revoked; postings and review queue kept": _(
            "access revoked; postings and the review queue are kept"
        ),
        "The user chose to start over with another QuickBooks company.": _(
            "The user chose to start over with another QuickBooks company."
        ),
        "re-import requested: records already posted are recognised by QuickBooks ID": _(
            "re-import asked for: records already posted are recognised by their QuickBooks ID"
        ),
        "The worker stopped before recording Qonto's answer.": _(
            "The worker stopped before recording Qonto's answer."
        ),
    }
    patterns = [
        (re.compile("^" + re.escape(english) + "$"), lambda m, words=words: words)
        for english, words in exact.items()
    ]
    return [
        *patterns,
        (
            re.compile(r"^auto-approved at (?P<c>\d\.\d+)$"),
            lambda m: (
                _("approved automatically at %(confidence)s") % {"confidence": _share(m["c"])}
            ),
        ),
        (
            re.compile(r"^(?P<a>[a-z_]+) queued$"),
            lambda m: _("%(action)s queued") % {"action": _action_words(m["a"])},
        ),
        (
            re.compile(r"^pays QuickBooks bill (?P<b>.+)$"),
            lambda m: _("pays QuickBooks bill %(bill)s") % {"bill": m["b"]},
        ),
        (
            re.compile(r"^Qonto already holds this invoice \((?P<n>.*)\); linked\.$"),
            lambda m: (
                _("Qonto already holds this invoice (%(number)s); linked.") % {"number": m["n"]}
            ),
        ),
        (
            re.compile(r"^(?P<a>[a-z_]+): Qonto (?P<id>\S+) \((?P<o>[a-z_]+)\)$"),
            lambda m: (
                _("%(action)s: Qonto %(id)s (%(outcome)s)")
                % {
                    "action": _action_words(m["a"]),
                    "id": m["id"],
                    "outcome": _outcome_words(m["o"]),
                }
            ),
        ),
        (
            re.compile(r"^QuickBooks payment (?P<id>\S+) was deleted$"),
            lambda m: _("QuickBooks payment %(id)s was deleted") % {"id": m["id"]},
        ),
        (
            re.compile(r"^QuickBooks payment (?P<id>\S+) no longer pays this invoice's bill$"),
            lambda m: (
                _("QuickBooks payment %(id)s no longer pays this invoice's bill") % {"id": m["id"]}
            ),
        ),
        (
            re.compile(r"^QuickBooks payment (?P<id>\S+) is now dated (?P<d>[\d-]+)$"),
            lambda m: (
                _("QuickBooks payment %(id)s is now dated %(day)s")
                % {"id": m["id"], "day": formats.day(m["d"])}
            ),
        ),
        (
            re.compile(r"^daily cap reached; next slot in (?P<s>\d+) s$"),
            lambda m: (
                _("daily limit reached; next sync possible in %(minutes)s min")
                % {"minutes": max(1, round(int(m["s"]) / 60))}
            ),
        ),
    ]


def _action_words(action: str) -> str:
    try:
        return str(PostingAction(action).label)
    except ValueError:
        return action.replace("_", " ")


def _outcome_words(outcome: str) -> str:
    words = {
        "created": _("created"),
        "replayed": _("already there"),
        "linked": _("linked"),
        "reconciled": _("reconciled"),
        "paid": _("marked paid"),
        "matched": _("matched"),
    }
    return str(words.get(outcome, outcome.replace("_", " ")))


def event_reason_words(reason: str, *, actor_type: str = "") -> str:
    """An audit event's reason: a person's note as written; what Well wrote, in words."""
    if not reason or actor_type == "user":
        return reason or ""
    patterns = _system_patterns()
    for pattern, words in patterns:  # a whole sentence first: some hold a "; " themselves
        match = pattern.search(reason)
        if match:
            return str(words(match))
    parts = []
    for part in reason.split("; "):
        for pattern, words in patterns:
            match = pattern.search(part)
            if match:
                parts.append(str(words(match)))
                break
        else:
            parts.append(detail_words(part))
    return " ; ".join(parts) if _french() else "; ".join(parts)


def _french() -> bool:
    return (translation.get_language() or "").startswith("fr")
