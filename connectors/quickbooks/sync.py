"""The hourly QuickBooks sync: incremental, page by page, exactly once per SyncToken.

Marker: QuickBooks' own `time` at the start of the newest committed window (quickbooks-api.md
§3.3, §3.6). A window pulls what changed since marker - OVERLAP (dedup by SyncToken absorbs the
overlap) and the marker moves only after every record of the window is committed, so a crash
mid-window repeats the window and neither loses nor doubles anything (reliability #5).

This module holds the windows and the marker; each batch is upserted with its audit events by
connectors/quickbooks/records.py, its files fetched by connectors/quickbooks/attachments.py, and
the lock and the run's row are connectors/sync_runs.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from connectors.models import Connection, Provider, SyncRun
from connectors.quickbooks import client
from connectors.quickbooks.attachments import files_ensure, files_retry
from connectors.quickbooks.models import DOCUMENT_KINDS, SourceRecord
from connectors.quickbooks.records import SYSTEM, record_ids, records_commit
from connectors.quickbooks.services import access_token_get
from connectors.sync_runs import SyncKind, SyncTally, sync_run
from connectors.tokens import TokenProvider

logger = logging.getLogger("well.connectors.quickbooks.sync")

OVERLAP = timedelta(minutes=5)
# CDC looks back 30 days at most; a day of margin for clock skew and long runs (§3.6).
CDC_HORIZON = timedelta(days=29)
REFERENCE_EVERY = timedelta(hours=24)
TOKEN_CACHE = timedelta(minutes=5)

LIST_KINDS = ["Vendor", "Customer", "Account"]
TRANSACTION_KINDS = [
    "Bill",
    "VendorCredit",
    "Purchase",
    "PurchaseOrder",
    "BillPayment",
    "Invoice",
    "CreditMemo",
    "Payment",
]
# Transactions whose files Well posts to Qonto: their Attachables are fetched per changed batch.
KINDS_WITH_FILES = DOCUMENT_KINDS
CDC_KINDS = [*LIST_KINDS, *TRANSACTION_KINDS, "Attachable"]
QUERY_ONLY_KINDS = ["TaxCode", "TaxRate"]  # not in CDC (§3.6)
OUTCOMES = ("new", "updated", "unchanged", "deleted", "errored")
SYNC = SyncKind(provider=Provider.QUICKBOOKS, outcomes=OUTCOMES, marker_at_end=True, actor=SYSTEM)
SWEPT_BY_RESYNC = "QuickBooks no longer returns it: not in a full re-read, nor when asked by Id."
SWEPT_WHEN_CAPPED = (
    "QuickBooks no longer returns it: change data capture was capped at 1000 objects and the "
    "record was neither in the re-read of its changes nor found by Id."
)


class _Engine:
    """One run's windows over QuickBooks; every batch goes through records_commit."""

    def __init__(self, connection: Connection, tally: SyncTally, api: client.QuickBooksApi) -> None:
        self.connection = connection
        self.tally = tally
        self.api = api
        self._home: str | None = None  # read when a record is first extracted (not on a no-op)
        # Incremental windows ask for the Attachables of each changed transaction batch; a
        # query window reads every Attachable itself, which covers them at a fraction of the cost.
        self.attachments_per_batch = True
        # "cdc", "query" (first or full sync) or "query_resync" (a marker CDC cannot reach).
        self.tally.mode = ""
        self.tally.records_done = 0

    # progress, visible while the run goes on
    def progress(self, phase: str, entity: str = "") -> None:
        SyncRun.objects.filter(pk=self.tally.run.pk).update(
            progress={
                "phase": phase,
                "entity": entity,
                "records": self.tally.records_done,
                "mode": self.tally.mode,
            },
            counts=self.tally.counts,
            api_calls=self.tally.calls.count,
        )

    def home_currency(self) -> str:
        if self._home is None:
            prefs = (
                SourceRecord.objects.for_workspace(self.connection.workspace_id)
                .filter(entity_type="Preferences")
                .values_list("payload", flat=True)
                .first()
            )
            try:
                self._home = str(prefs["CurrencyPrefs"]["HomeCurrency"]["value"]).upper()
            except (TypeError, KeyError):
                self._home = ""
        return self._home

    # --- windows ---------------------------------------------------------------------------

    def sync(self, *, full: bool) -> str:
        """Run every window; returns the new marker."""
        marker_text = self.connection.sync_marker
        marker = client.parse_qbo_time(marker_text) if marker_text else None
        now = timezone.now()
        reference_due = (
            full
            or marker is None
            or self.connection.reference_synced_at is None
            or self.connection.reference_synced_at < now - REFERENCE_EVERY
        )
        if reference_due:
            self.reference()
        if full or marker is None:
            self.tally.mode = "query"
            horizon = now - timedelta(days=settings.SYNC_BACKFILL_DAYS)
            return self.query_window(list_since=None, txn_since=horizon)
        since = marker - OVERLAP
        if marker < now - CDC_HORIZON:
            # Too old for CDC: a query resync from the marker; dedup keeps it exact (rel. #14).
            self.tally.mode = "query_resync"
            return self.query_window(list_since=since, txn_since=since)
        self.tally.mode = "cdc"
        try:
            return self.cdc_window(since)
        except client.CdcWindowExpired as exc:
            # QuickBooks' clock put the marker past the look-back although ours did not: the
            # same query resync, now. What the CDC part already committed is deduped by SyncToken.
            logger.info("connection %s: %s; query resync instead", self.connection.pk, exc)
            self.tally.mode = "query_resync"
            return self.query_window(list_since=since, txn_since=since)

    def reference(self) -> None:
        """Company info, preferences (home currency), tax codes and rates: query, not CDC."""
        self.progress("reference")
        prefs, _ = client.preferences(self.api)
        self.commit("Preferences", [{**prefs, "Id": str(prefs.get("Id") or "1")}])
        self._home = None  # preferences were just stored: read them again when needed
        info, _ = client.company_info(self.api)
        self.commit("CompanyInfo", [{**info, "Id": str(info.get("Id") or self.api.realm_id)}])
        for entity in QUERY_ONLY_KINDS:
            for page in client.query_pages(self.api, entity, order_by="Id"):
                self.commit(entity, page.records)
        name = info.get("CompanyName")
        updates: dict[str, Any] = {"reference_synced_at": timezone.now()}
        if isinstance(name, str) and name:
            updates["external_name"] = name[:200]
        Connection.objects.filter(pk=self.connection.pk).update(**updates)

    def query_window(self, *, list_since: datetime | None, txn_since: datetime | None) -> str:
        """Every kind by paged query (first sync, --full, or a marker older than CDC allows).

        A query never returns a deleted object (CDC alone reports deletes), so once every kind
        has been re-read to its end, the list and transaction records it did not return are
        checked by Id and the ones QuickBooks no longer has are marked deleted. A run that
        fails before that point marks nothing.
        """
        started = timezone.now()
        window_time = ""
        self.attachments_per_batch = False
        seen: dict[str, set[str]] = {entity: set() for entity in [*LIST_KINDS, *TRANSACTION_KINDS]}
        for entity in [*LIST_KINDS, *TRANSACTION_KINDS, "Attachable"]:
            # Attachables follow the lists: an old file may belong to a recent bill.
            since = list_since if entity in (*LIST_KINDS, "Attachable") else txn_since
            conditions = (
                [f"MetaData.LastUpdatedTime >= '{client.qbo_time(since)}'"] if since else []
            )
            self.progress("query", entity)
            for page in client.query_pages(self.api, entity, conditions=conditions):
                window_time = window_time or page.time
                self.commit(entity, page.records)
                if entity in seen:
                    seen[entity].update(record_ids(page.records))
                self.progress("query", entity)
        for entity, ids in seen.items():
            self.sweep(entity, ids, reason=SWEPT_BY_RESYNC)
        return window_time or client.qbo_time(started)

    def cdc_window(self, since: datetime) -> str:
        """One CDC call; when capped at 1000, per kind, and a kind still capped by paged query."""
        # No progress write before the single call: the run row already says it is running,
        # and an hourly poll with nothing new should cost one CDC call and few commits.
        result = client.cdc(self.api, entities=CDC_KINDS, changed_since=since)
        if result.total < client.CDC_MAX_OBJECTS:
            for entity in CDC_KINDS:
                if result.by_entity.get(entity):
                    self.commit(entity, result.by_entity[entity])
            return result.time or client.qbo_time(since + OVERLAP)
        for entity in CDC_KINDS:
            self.progress("cdc", entity)
            part = client.cdc(self.api, entities=[entity], changed_since=since)
            records = part.by_entity.get(entity, [])
            if len(records) < client.CDC_MAX_OBJECTS:
                # Deletes are only in CDC, so they are taken from the per-kind answer.
                self.commit(entity, records)
                continue
            # The capped answer may leave out deletes that no query can show: the records of
            # this kind the query did not return are checked by Id, as after a full resync.
            deletes = [r for r in records if r.get("status") == "Deleted"]
            self.commit(entity, deletes)
            seen = set(record_ids(deletes))
            conditions = [f"MetaData.LastUpdatedTime >= '{client.qbo_time(since)}'"]
            for page in client.query_pages(self.api, entity, conditions=conditions):
                self.commit(entity, page.records)
                seen.update(record_ids(page.records))
            self.sweep(entity, seen, reason=SWEPT_WHEN_CAPPED)
        return result.time or client.qbo_time(since + OVERLAP)

    def sweep(self, entity: str, seen: set[str], *, reason: str) -> None:
        """Mark deleted the live records of `entity` not in `seen` that QuickBooks no longer has.

        Each one is asked for by Id first: a record an offset page skipped (another record moved
        while paging) is found and kept; only a record QuickBooks does not return goes through
        the same path as a CDC delete (audit event, hand-over to matching).
        """
        unseen = sorted(
            qbo_id
            for qbo_id in SourceRecord.objects.for_workspace(self.connection.workspace_id)
            .filter(entity_type=entity, deleted=False)
            .values_list("qbo_id", flat=True)
            .iterator()
            if qbo_id not in seen
        )
        if not unseen:
            return
        self.progress("sweep", entity)
        for start in range(0, len(unseen), client.PAGE_SIZE):
            chunk = unseen[start : start + client.PAGE_SIZE]
            found: set[str] = set()
            for page in client.records_by_id(self.api, entity, chunk):
                self.commit(entity, page.records)
                found.update(record_ids(page.records))
            gone = [
                {"domain": "QBO", "status": "Deleted", "Id": i} for i in chunk if i not in found
            ]
            self.commit(entity, gone, reason=reason)

    # --- one batch ------------------------------------------------------------------------

    def commit(self, entity: str, raw_records: list, *, reason: str = "") -> None:
        """Upsert one batch, then fetch the files it needs (connectors/quickbooks/attachments)."""
        committed = records_commit(
            connection=self.connection,
            entity=entity,
            raw_records=raw_records,
            tally=self.tally,
            home_currency=self.home_currency,
            reason=reason,
        )
        if entity == "Attachable":
            self.files_ensure(committed.attachables)
        elif entity in KINDS_WITH_FILES and self.attachments_per_batch:
            ids = [r.qbo_id for r in committed.changed if not r.deleted]
            if ids:
                self.progress("attachments", entity)
                for page in client.attachables_for(self.api, entity_type=entity, entity_ids=ids):
                    self.commit("Attachable", page.records)

    def files_ensure(self, attachables: list[SourceRecord]) -> None:
        files_ensure(
            connection=self.connection,
            api=self.api,
            attachables=attachables,
            tally=self.tally,
            progress=self.progress,
        )

    def files_retry(self) -> None:
        """Downloads that failed for a passing reason are tried again on the next sync."""
        files_retry(
            connection=self.connection, api=self.api, tally=self.tally, progress=self.progress
        )


# --- Entry point -----------------------------------------------------------------------------


def api_for(
    connection: Connection,
    *,
    on_attempt: Callable | None = None,
    loaded: Connection | None = None,
    **options: Any,
) -> client.QuickBooksApi:
    """The client configuration of one connection (tests pass `sleep`, `policy`, ...).

    `loaded`: the row just read under the sync's lock, whose token is used without a re-read.
    """
    return client.QuickBooksApi(
        base_url=settings.QUICKBOOKS_API_URL,
        realm_id=connection.external_id,
        token=TokenProvider(connection.pk, fetch=access_token_get, loaded=loaded, ttl=TOKEN_CACHE),
        on_attempt=on_attempt,
        **options,
    )


def quickbooks_sync(
    *, connection_id, full: bool = False, trigger: str = "schedule", **api_options: Any
) -> SyncRun:
    """Run one sync of a QuickBooks connection now; the loser of a race is recorded as skipped."""

    def work(connection: Connection, tally: SyncTally) -> str:
        api = api_for(connection, on_attempt=tally.calls, loaded=connection, **api_options)
        engine = _Engine(connection, tally, api)
        marker = engine.sync(full=full)
        engine.files_retry()
        return marker

    return sync_run(connection_id=connection_id, kind=SYNC, trigger=trigger, work=work, full=full)
