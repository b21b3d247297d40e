"""The matching-eval folder format: read a dataset, write decisions.jsonl, compute the figures."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from itertools import starmap
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson

from . import engine, normalise
from .engine import (
    PARALLEL_MIN,
    Candidates,
    build_book,
    candidates_of,
    collector_paused,
    explained,
    in_pieces,
    proposals,
    score_batch,
)
from .fitting import fit
from .types import Account, Decision, Entry, HistoryLink, Policy, Record, Target, Vendor

REVIEW_BAND = (0.55, 0.85)


@dataclass(slots=True)
class Dataset:
    """A workspace's books read from a matching-eval folder, normalised once."""

    vendors: list[Vendor] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    history: list[HistoryLink] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    incoming: list[Record] = field(default_factory=list)
    skipped_lines: int = 0


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19  # 19 digits in a row may be an integer past 64 bits


def read_jsonl(path: Path) -> Iterator[Any]:
    """Each line's JSON value; an unreadable line yields None instead of failing the run."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            # orjson reads integers past 64 bits as floats and refuses some of what Python's
            # json reads (NaN, lone surrogates): such a line is read by json, as before.
            raw = line.encode("utf-8")
            if _LONG_NUMBER not in raw.translate(_DIGITS_AS_ZERO):
                try:
                    yield orjson.loads(raw)
                    continue
                except orjson.JSONDecodeError:
                    pass
            try:
                yield json.loads(line)
            except ValueError:
                yield None


def _unwrap(obj: Any, *names: str) -> Any:
    """Provider envelopes like {"Bill": {...}} or {"transaction": {...}} hold the object."""
    if isinstance(obj, dict) and len(obj) <= 2:
        for name in names:
            if isinstance(obj.get(name), dict):
                return obj[name]
    return obj


def _wrapped(line: Any) -> tuple[str, Any]:
    if not isinstance(line, dict):
        return "Unknown", None
    kind = line.get("type") if isinstance(line.get("type"), str) else "Unknown"
    return kind, _unwrap(line.get("object"), kind)


# An entry as the tuple of its fields, in the order Entry takes them: the helper sends these
# back, as pickling 45,000 slotted dataclasses and rebuilding them costs about three times as much.
_ENTRY_FIELDS = attrgetter(*(f.name for f in fields(Entry)))


def _read_transactions(path: Path, as_rows: bool = False) -> tuple[list[Any], int]:
    """The bank transactions of a file (as field tuples with as_rows) and the lines skipped."""
    entries, skipped = [], 0
    for obj in read_jsonl(path):
        entry = normalise.transaction(_unwrap(obj, "transaction"))
        if entry:
            entries.append(_ENTRY_FIELDS(entry) if as_rows else entry)
        else:
            skipped += 1
    return entries, skipped


def read_dataset(folder: Path | str, home_currency: str = "EUR", workers: int = 1) -> Dataset:
    """Read and normalise every file of a matching-eval folder.

    With workers=2 the bank transactions (most of the lines) are read in a forked process
    while this one reads the rest; the order of the entries is the same either way.
    """
    # Parsing makes hundreds of thousands of containers and no cycle.
    with collector_paused():
        return _read_dataset(Path(folder), home_currency, workers)


def _read_dataset(root: Path, home_currency: str, workers: int) -> Dataset:
    data = Dataset()
    transactions = root / "qonto" / "transactions.jsonl"
    pool = None
    if workers >= 2 and "fork" in multiprocessing.get_all_start_methods():
        pool = multiprocessing.get_context("fork").Pool(1)
        pending = pool.apply_async(_read_transactions, (transactions, True))
    for obj in read_jsonl(root / "quickbooks" / "vendors.jsonl"):
        vendor = normalise.vendor(_unwrap(obj, "Vendor"))
        data.vendors.append(vendor) if vendor else _skip(data)
    for obj in read_jsonl(root / "quickbooks" / "accounts.jsonl"):
        account = normalise.account(_unwrap(obj, "Account"))
        data.accounts.append(account) if account else _skip(data)
    for obj in read_jsonl(root / "qonto" / "supplier_invoices.jsonl"):
        entry = normalise.supplier_invoice(_unwrap(obj, "supplier_invoice"))
        data.entries.append(entry) if entry else _skip(data)
    for line in read_jsonl(root / "history.jsonl"):
        kind, obj = _wrapped(line)
        target = line.get("target") if isinstance(line, dict) else None
        if not isinstance(target, dict) or obj is None:
            _skip(data)
            continue
        record = normalise.record(kind, obj, home_currency)
        data.history.append(HistoryLink(record, str(target.get("type")), str(target.get("id"))))
    for line in read_jsonl(root / "incoming.jsonl"):
        kind, obj = _wrapped(line)
        data.incoming.append(normalise.record(kind, obj, home_currency))
    if pool is None:
        entries, skipped = _read_transactions(transactions)
        data.entries.extend(entries)
    else:
        with pool:
            rows, skipped = pending.get()
        data.entries.extend(starmap(Entry, rows))
    data.skipped_lines += skipped
    return data


def _skip(data: Dataset) -> None:
    data.skipped_lines += 1


# json.dumps(..., ensure_ascii=False) of a decision's dict, written directly: the same bytes
# (json's own string escaping, its default separators, a float's repr) in half its time.
_string = json.encoder.encode_basestring
_BOOLEAN = {True: "true", False: "false"}
# A line is a few kilobytes: with the default buffer every second or third line is a system call.
_WRITE_BUFFER = 1 << 20


def _number(value: float) -> str:
    # json writes infinities and NaN its own way; every other float is its repr.
    return repr(value) if value - value == 0 else json.dumps(value)


def _optional(text: str | None) -> str:
    return "null" if text is None else _string(text)


def _target(target: Target | None) -> str:
    if target is None:
        return "null"
    return f'{{"type": {_string(target.type)}, "id": {_string(target.id)}}}'


def decision_line(decision: Decision) -> str:
    """A decision as one line of decisions.jsonl (without its newline)."""
    party = decision.counterparty
    alternatives = ", ".join(
        [
            f'{{"action": {_string(alt.action)}, "target": {_target(alt.target)}, '
            f'"confidence": {_number(alt.confidence)}}}'
            for alt in decision.alternatives
        ]
    )
    provenance = ", ".join(
        [f"{_string(name)}: {_string(source)}" for name, source in party.provenance.items()]
    )
    reasons = ", ".join(
        [
            f'{{"signal": {_string(r.signal)}, "weight": {_number(r.weight)}, '
            f'"detail": {_string(r.detail)}}}'
            for r in decision.reasons
        ]
    )
    return (
        f'{{"type": {_string(decision.type)}, "id": {_string(decision.id)}, '
        f'"action": {_string(decision.action)}, "target": {_target(decision.target)}, '
        f'"confidence": {_number(decision.confidence)}, "alternatives": [{alternatives}], '
        f'"counterparty": {{"legal_entity": {_optional(party.legal_entity)}, '
        f'"tax_id": {_optional(party.tax_id)}, "domain": {_optional(party.domain)}, '
        f'"ledger_account": {_optional(party.ledger_account)}, "provenance": {{{provenance}}}}}, '
        f'"reasons": [{reasons}], "auto": {_BOOLEAN[decision.auto]}, '
        f'"ambiguous": {_BOOLEAN[decision.ambiguous]}, '
        f'"model_version": {_string(decision.model_version)}}}'
    )


def write_decisions(decisions: Iterable[Decision], path: Path | str) -> None:
    """Write decisions.jsonl, one decision per line."""
    with Path(path).open("w", encoding="utf-8", buffering=_WRITE_BUFFER) as handle:
        for decision in decisions:
            handle.write(decision_line(decision) + "\n")


def _action(action: Any, target: Any) -> tuple[str, str, str]:
    if action != "link" or not isinstance(target, dict):
        return ("create", "", "")
    return ("link", str(target.get("type")), str(target.get("id")))


def _same_account(truth: Any, guess: Any, aliases: dict[str, str]) -> bool:
    if guess is None:
        return False
    fold = str(truth).strip().lower()
    other = str(guess).strip().lower()
    return aliases.get(fold, fold) == aliases.get(other, other)


@dataclass(slots=True)
class _Judged:
    """What the figures read of one decision (not its explanation: a fraction of its memory)."""

    proposed: tuple[str, str, str]
    confidence: float
    top: list[tuple[str, str, str]]  # the proposal and the first three alternatives
    ledger_account: Any
    tax_id: Any


def _judged(decision: dict[str, Any]) -> _Judged:
    proposed = _action(decision.get("action"), decision.get("target"))
    alternatives = (decision.get("alternatives") or [])[:3]
    guess = decision.get("counterparty") or {}
    return _Judged(
        proposed,
        float(decision.get("confidence") or 0.0),
        [proposed] + [_action(a.get("action"), a.get("target")) for a in alternatives],
        guess.get("ledger_account"),
        guess.get("tax_id"),
    )


def figures(
    decisions: Iterable[dict[str, Any]],
    truth: list[dict[str, Any]],
    accounts: list[Account] | None = None,
    candidates: Candidates | None = None,
    vendors_with_history: dict[tuple[str, str], bool] | None = None,
    auto_threshold: float = 0.85,
) -> dict[str, Any]:
    """The matching-eval quality figures of decisions against the truth (decisions may be a
    stream: each is kept only as what the figures read of it)."""
    aliases: dict[str, str] = {}
    for account in accounts or []:
        for alias in (account.id, account.number, account.name):
            if alias:
                aliases[alias.strip().lower()] = account.id
    by_key = {
        (str(d.get("type")), str(d.get("id"))): _judged(d) for d in decisions if isinstance(d, dict)
    }
    total = len(truth)
    auto = auto_right = review = review_hit = 0
    bins = [[0, 0.0, 0] for _ in range(10)]  # count, sum of confidence, right
    ledger = [0, 0]
    ledger_hist = [0, 0]
    tax = [0, 0]
    blocked = [0, 0]
    for row in truth:
        key = (str(row.get("type")), str(row.get("id")))
        right = _action(row.get("action"), row.get("target"))
        decision = by_key.get(key)
        if decision is None:
            bins[0][0] += 1
            continue
        ok = decision.proposed == right
        confidence = decision.confidence
        b = min(int(confidence * 10), 9)
        bins[b][0] += 1
        bins[b][1] += confidence
        bins[b][2] += ok
        if confidence >= auto_threshold:
            auto += 1
            auto_right += ok
        elif confidence >= REVIEW_BAND[0]:
            review += 1
            review_hit += right in decision.top
        if right[0] == "link" and candidates is not None:
            blocked[0] += 1
            blocked[1] += (right[1], right[2]) in candidates.get(key, ())
        truth_party = row.get("counterparty") or {}
        if truth_party.get("ledger_account"):
            hit = _same_account(truth_party["ledger_account"], decision.ledger_account, aliases)
            ledger[0] += 1
            ledger[1] += hit
            if vendors_with_history and vendors_with_history.get(key):
                ledger_hist[0] += 1
                ledger_hist[1] += hit
        if truth_party.get("tax_id"):
            tax[0] += 1
            wanted = normalise.tax_id(truth_party["tax_id"]) or str(truth_party["tax_id"]).upper()
            tax[1] += (normalise.tax_id(decision.tax_id) or "") == wanted
    ece = sum(abs(c_sum / n - right / n) * n for n, c_sum, right in bins if n) / max(total, 1)

    def share(pair: list[int] | tuple[int, int]) -> float | None:
        return round(pair[1] / pair[0], 4) if pair[0] else None

    return {
        "records": total,
        "auto_precision": share((auto, auto_right)),
        "auto_coverage": round(auto / total, 4) if total else None,
        "review_count": review,
        "review_recall_top4": share((review, review_hit)),
        "ece": round(ece, 4),
        "accuracy": round(sum(b[2] for b in bins) / total, 4) if total else None,
        "ledger_account_accuracy": share(ledger),
        "ledger_account_accuracy_with_history": share(ledger_hist),
        "tax_id_accuracy": share(tax),
        "blocking_recall": share(blocked),
    }


def history_flags(data: Dataset) -> dict[tuple[str, str], bool]:
    """Which incoming records have a vendor with at least one linked record in history."""
    vendors = {link.record.vendor_id for link in data.history if link.record.vendor_id}
    return {(r.type, r.id): r.vendor_id in vendors for r in data.incoming}


def run(
    folder: Path | str,
    out: Path | str,
    truth_path: Path | str | None = None,
    model: Any = None,
    policy: Any = None,
) -> dict[str, Any]:
    """Read a dataset, fit the workspace's model on it, decide every incoming record, write
    decisions.jsonl; figures with truth. The truth is never read before the decisions are made.

    `seconds` is the engine's time, reading to the last decision written; the figures are
    computed after it.
    """
    with collector_paused():
        return _run(folder, out, truth_path, model, policy)


def _run(
    folder: Path | str,
    out: Path | str,
    truth_path: Path | str | None,
    model: Any,
    policy: Any,
) -> dict[str, Any]:
    started = time.perf_counter()
    policy = policy or Policy()
    data = read_dataset(folder, policy.home_currency, workers=2)
    fitting_started = time.perf_counter()
    batch = None
    if model is None:
        fitted = fit(
            data.vendors, data.accounts, data.history, data.entries, data.incoming, workers=2
        )
        model, book, batch = fitted.model, fitted.book, fitted.batch
    else:
        book = build_book(data.vendors, data.accounts, data.history, data.entries)
    fitted_seconds = time.perf_counter() - fitting_started
    if batch is None:
        batch = score_batch(book, data.incoming, workers=2)
    proposed = proposals(book, data.incoming, model, batch)
    _write_decisions((book, proposed, model, policy), len(data.incoming), Path(out))
    summary: dict[str, Any] = {
        "records": len(data.incoming),
        "entries": len(data.entries),
        "skipped_lines": data.skipped_lines,
        "model_version": model.version,
        "seconds": round(time.perf_counter() - started, 2),
        "fit_seconds": round(fitted_seconds, 2),
        "fitted": model.fitted,
    }
    if truth_path:
        truth = [row for row in read_jsonl(Path(truth_path)) if isinstance(row, dict)]
        candidates = candidates_of(book, batch, 0, len(data.incoming))
        # Read back from what was written: the figures judge the file, not the memory.
        summary["figures"] = figures(
            read_jsonl(Path(out)),
            truth,
            data.accounts,
            candidates,
            history_flags(data),
            policy.auto_threshold,
        )
    return summary


_SHARED: tuple | None = None  # what a forked helper inherits (never pickled)


def _write_decisions(shared: tuple, count: int, out: Path) -> None:
    """Explain and write every decision; a large batch in two processes, piece by piece.

    Explaining is per record once the batch is proposed, so a forked helper (it inherits the
    proposed batch, nothing is copied in) and this process each explain pieces of the records
    into files of their own, appended to `out` in the records' order afterwards.
    """
    global _SHARED
    _SHARED = (*shared, out)
    try:
        if count < PARALLEL_MIN or "fork" not in multiprocessing.get_all_start_methods():
            _write_range(0, count, out)
            return
        try:
            parts = in_pieces(count, _write_part)
            with out.open("wb") as handle:
                for part in parts:
                    with part.open("rb") as piece:
                        shutil.copyfileobj(piece, handle)
        finally:
            # Every piece's file, also when one piece failed and the others had been written.
            for start in range(0, count, engine.PIECE):
                _part_path(out, start).unlink(missing_ok=True)
    finally:
        _SHARED = None


def _write_part(start: int, stop: int) -> Path:
    """Write the decisions of records[start:stop] to a file beside the output; its path."""
    assert _SHARED is not None
    part = _part_path(_SHARED[-1], start)
    _write_range(start, stop, part)
    return part


def _part_path(out: Path, start: int) -> Path:
    return out.with_name(f"{out.name}.{start}")


def _write_range(start: int, stop: int, path: Path) -> None:
    """Write the decisions of records[start:stop], one line each."""
    assert _SHARED is not None
    book, proposed, model, policy, _ = _SHARED
    write_decisions(explained(book, proposed, model, policy, start, stop, feedback=False), path)
