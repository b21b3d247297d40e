"""The hourly QuickBooks sync: incremental, page by page, exactly once per SyncToken.

Marker: QuickBooks' own `time` at the start of the newest committed window (quickbooks-api.md
§3.3, §3.6). A window pulls what changed since marker - OVERLAP (dedup by SyncToken absorbs the
overlap) and the marker moves only after every record of the window is committed, so a crash
mid-window repeats the window and neither loses nor doubles anything (reliability #5).
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from connectors import handoff
from connectors.http import AuthRevoked, ProviderError
from connectors.models import (
    Connection,
    ConnectionStatus,
    PayloadEncoder,
    SourceFile,
    SourceRecord,
    SyncRun,
    SyncStatus,
)
from connectors.payloads import storable
from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.quickbooks import client
from connectors.quickbooks.extract import EMPTY, Malformed, extract
from connectors.safe_fetch import MAX_BYTES, FileTooLarge, UnsafeURL, fetch_file
from connectors.services import (
    access_token_get,
    connection_error_record,
    connection_mark_needs_reconnect,
    sync_run_begin,
    sync_run_skip,
)
from well.audit import Actor, audit_event_record
from well.locks import advisory_lock, lock_key
from well.webhooks import sync_run_summary, webhooks_emit

logger = logging.getLogger("well.connectors.quickbooks.sync")

OVERLAP = timedelta(minutes=5)
# CDC looks back 30 days at most; a day of margin for clock skew and long runs (§3.6).
CDC_HORIZON = timedelta(days=29)
REFERENCE_EVERY = timedelta(hours=24)
TOKEN_CACHE = timedelta(minutes=5)
DOWNLOAD_THREADS = 8

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
KINDS_WITH_FILES = frozenset({"Bill", "Purchase", "VendorCredit"})
CDC_KINDS = [*LIST_KINDS, *TRANSACTION_KINDS, "Attachable"]
QUERY_ONLY_KINDS = ["TaxCode", "TaxRate"]  # not in CDC (§3.6)
OUTCOMES = ("new", "updated", "unchanged", "deleted", "errored")
SWEPT_BY_RESYNC = "QuickBooks no longer returns it: not in a full re-read, nor when asked by Id."
SWEPT_WHEN_CAPPED = (
    "QuickBooks no longer returns it: change data capture was capped at 1000 objects and the "
    "record was neither in the re-read of its changes nor found by Id."
)

SYSTEM = Actor.system("QuickBooks sync")


class SyncError(Exception):
    pass


# --- Small helpers ---------------------------------------------------------------------------


def payload_hash(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), cls=PayloadEncoder)
    return hashlib.sha256(text.encode()).hexdigest()


def _last_updated(payload: dict) -> datetime | None:
    meta = payload.get("MetaData")
    value = meta.get("LastUpdatedTime") if isinstance(meta, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return client.parse_qbo_time(value)
    except ValueError:
        return None


def _ids(raw_records: list) -> list[str]:
    """The QuickBooks Ids of a page, as `_items` keys them."""
    return [
        str(raw["Id"])[:64]
        for raw in raw_records
        if isinstance(raw, dict) and raw.get("Id") not in (None, "")
    ]


def _typed(record: SourceRecord) -> dict:
    return {name: getattr(record, name) for name in EMPTY}


def _advisory_lock(connection_id):
    """One sync per connection at a time, across every worker (session-level advisory lock)."""
    return advisory_lock(lock_key(connection_id))


class _Tokens:
    """The token provider for the client: cached in memory, refreshed through the service."""

    def __init__(self, connection_id, *, loaded: Connection | None = None) -> None:
        self.connection_id = connection_id
        # The row the sync just read under its lock: the first token comes from it, no re-read.
        self.loaded = loaded
        self.token: str | None = None
        self.until: datetime | None = None
        self.lock = threading.Lock()

    def __call__(self, rejected: str | None) -> str:
        with self.lock:
            now = timezone.now()
            if self.token and rejected is None and self.until and now < self.until:
                return self.token
            loaded, self.loaded = self.loaded, None
            self.token = access_token_get(
                connection_id=self.connection_id, rejected=rejected, loaded=loaded
            )
            self.until = now + TOKEN_CACHE
            return self.token


class _CallCounter:
    """Counts every attempt that reached QuickBooks (the http helper's on_attempt hook)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, attempt) -> None:
        with self.lock:
            self.count += 1


@dataclass
class _Item:
    qbo_id: str
    sync_token: str
    payload: dict
    deleted: bool


# --- The engine ------------------------------------------------------------------------------


class _Engine:
    def __init__(self, connection: Connection, run: SyncRun, api: client.QuickBooksApi) -> None:
        self.connection = connection
        self.run = run
        self.api = api
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
        self.calls_counter: _CallCounter | None = None
        self.records_done = 0
        self.errors: list[str] = []
        self._home: str | None = None  # read when a record is first extracted (not on a no-op)
        # Incremental windows ask for the Attachables of each changed transaction batch; a
        # query window reads every Attachable itself, which covers them at a fraction of the cost.
        self.attachments_per_batch = True
        # "cdc", "query" (first or full sync) or "query_resync" (a marker CDC cannot reach).
        self.mode = ""

    @property
    def calls(self) -> int:
        return self.calls_counter.count if self.calls_counter else 0

    # progress, visible while the run goes on
    def progress(self, phase: str, entity: str = "") -> None:
        SyncRun.objects.filter(pk=self.run.pk).update(
            progress={
                "phase": phase,
                "entity": entity,
                "records": self.records_done,
                "mode": self.mode,
            },
            counts=self.counts,
            api_calls=self.calls,
        )

    @property
    def home_currency(self) -> str:
        if self._home is None:
            self._home = self._home_currency()
        return self._home

    def _home_currency(self) -> str:
        prefs = (
            SourceRecord.objects.for_workspace(self.connection.workspace_id)
            .filter(entity_type="Preferences")
            .values_list("payload", flat=True)
            .first()
        )
        try:
            return str(prefs["CurrencyPrefs"]["HomeCurrency"]["value"]).upper()
        except (TypeError, KeyError):
            return ""

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
            self.mode = "query"
            horizon = now - timedelta(days=settings.SYNC_BACKFILL_DAYS)
            return self.query_window(list_since=None, txn_since=horizon)
        since = marker - OVERLAP
        if marker < now - CDC_HORIZON:
            # Too old for CDC: a query resync from the marker; dedup keeps it exact (rel. #14).
            self.mode = "query_resync"
            return self.query_window(list_since=since, txn_since=since)
        self.mode = "cdc"
        try:
            return self.cdc_window(since)
        except client.CdcWindowExpired as exc:
            # QuickBooks' clock put the marker past the look-back although ours did not: the
            # same query resync, now. What the CDC part already committed is deduped by SyncToken.
            logger.info("connection %s: %s; query resync instead", self.connection.pk, exc)
            self.mode = "query_resync"
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
                    seen[entity].update(_ids(page.records))
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
            seen = set(_ids(deletes))
            conditions = [f"MetaData.LastUpdatedTime >= '{client.qbo_time(since)}'"]
            for page in client.query_pages(self.api, entity, conditions=conditions):
                self.commit(entity, page.records)
                seen.update(_ids(page.records))
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
                found.update(_ids(page.records))
            gone = [
                {"domain": "QBO", "status": "Deleted", "Id": i} for i in chunk if i not in found
            ]
            self.commit(entity, gone, reason=reason)

    # --- upsert ----------------------------------------------------------------------------

    def _items(self, entity: str, raw_records: list) -> list[_Item]:
        items: dict[str, _Item] = {}
        for raw in raw_records:
            raw = storable(raw)  # no NUL or NaN reaches PostgreSQL
            if not isinstance(raw, dict) or raw.get("Id") in (None, ""):
                self.counts[entity]["errored"] += 1
                self.errors.append(f"{entity}: an object without an Id was skipped")
                continue
            qbo_id = str(raw["Id"])[:64]
            items[qbo_id] = _Item(
                qbo_id=qbo_id,
                sync_token=str(raw.get("SyncToken", ""))[:32],
                payload=raw,
                deleted=raw.get("status") == "Deleted",
            )
        return list(items.values())

    def _fields(self, entity: str, item: _Item) -> dict:
        try:
            typed = extract(entity, item.payload, home_currency=self.home_currency)
            errored, reason = False, ""
        except Malformed as exc:
            typed = dict(EMPTY)
            errored, reason = True, f"{entity} {item.qbo_id}: {exc}"
        return {
            **typed,
            "sync_token": item.sync_token,
            "payload": item.payload,
            "payload_hash": payload_hash(item.payload),
            "last_updated_at": _last_updated(item.payload),
            "errored": errored,
            "error_reason": reason,
            "deleted": False,
            "pulled_at": timezone.now(),
        }

    def _drop_unchanged(self, entity: str, items: list[_Item]) -> tuple[list[_Item], bool]:
        """Count and drop the items already stored at their SyncToken, reading 3 columns only.

        Most of a poll's overlap and of a resync is unchanged: loading full rows (payloads) and
        opening a transaction for them is what made a no-change poll slow. Attachables stay:
        an unchanged one may still have a file to fetch for a transaction that arrived later.
        Also says whether any remaining item is already stored (if none, all are new).
        """
        if entity == "Attachable":
            return items, True
        known = {
            qbo_id: (sync_token, deleted)
            for qbo_id, sync_token, deleted in SourceRecord.objects.for_workspace(
                self.connection.workspace_id
            )
            .filter(entity_type=entity, qbo_id__in=[i.qbo_id for i in items])
            .values_list("qbo_id", "sync_token", "deleted")
        }
        todo: list[_Item] = []
        for item in items:
            have = known.get(item.qbo_id)
            if have is not None and (
                have[1] if item.deleted else (have[0] == item.sync_token and not have[1])
            ):
                self.counts[entity]["unchanged"] += 1
                self.records_done += 1
                continue
            todo.append(item)
        return todo, any(item.qbo_id in known for item in todo)

    def commit(self, entity: str, raw_records: list, *, reason: str = "") -> None:
        """Upsert one batch in one transaction; hand every change over after the commit.

        `reason` goes on the audit events of the batch (why a sweep marked records deleted).
        """
        items = self._items(entity, raw_records)
        if not items:
            return
        workspace_id = self.connection.workspace_id
        items, any_stored = self._drop_unchanged(entity, items)
        if not items:
            return
        changed: list[SourceRecord] = []
        attachables: list[SourceRecord] = []
        with transaction.atomic():
            # A page of new records (a first sync) needs no second read; the sync's lock means
            # no other writer adds them meanwhile, and the unique constraint would refuse it.
            existing = (
                {
                    r.qbo_id: r
                    for r in SourceRecord.objects.for_workspace(workspace_id).filter(
                        entity_type=entity, qbo_id__in=[i.qbo_id for i in items]
                    )
                }
                if any_stored
                else {}
            )
            new_rows: list[SourceRecord] = []
            updated_rows: list[tuple[SourceRecord, dict, str]] = []
            for item in items:
                row = existing.get(item.qbo_id)
                if item.deleted:
                    if row is None:
                        row = SourceRecord(
                            workspace_id=workspace_id,
                            connection=self.connection,
                            entity_type=entity,
                            qbo_id=item.qbo_id,
                            payload=item.payload,
                            payload_hash=payload_hash(item.payload),
                            last_updated_at=_last_updated(item.payload),
                            deleted=True,
                        )
                        new_rows.append(row)
                        self.counts[entity]["deleted"] += 1
                    elif row.deleted:
                        self.counts[entity]["unchanged"] += 1
                    else:
                        row.deleted = True
                        row.last_updated_at = _last_updated(item.payload) or row.last_updated_at
                        row.pulled_at = timezone.now()
                        updated_rows.append((row, {"deleted": False}, "deleted"))
                        self.counts[entity]["deleted"] += 1
                    continue
                if row is not None and row.sync_token == item.sync_token and not row.deleted:
                    self.counts[entity]["unchanged"] += 1
                    if entity == "Attachable":
                        attachables.append(row)
                    continue
                fields = self._fields(entity, item)
                outcome = "errored" if fields["errored"] else ("new" if row is None else "updated")
                self.counts[entity][outcome] += 1
                if row is None:
                    row = SourceRecord(
                        workspace_id=workspace_id,
                        connection=self.connection,
                        entity_type=entity,
                        qbo_id=item.qbo_id,
                        **fields,
                    )
                    new_rows.append(row)
                else:
                    before = {
                        "sync_token": row.sync_token,
                        "deleted": row.deleted,
                        "errored": row.errored,
                        **_typed(row),
                    }
                    for name, value in fields.items():
                        setattr(row, name, value)
                    updated_rows.append((row, before, "updated"))
            if new_rows:
                SourceRecord.objects.bulk_create(new_rows, batch_size=500)
            if updated_rows:
                SourceRecord.objects.bulk_update(
                    [row for row, _, _ in updated_rows],
                    [
                        *EMPTY,
                        "sync_token",
                        "payload",
                        "payload_hash",
                        "last_updated_at",
                        "errored",
                        "error_reason",
                        "deleted",
                        "pulled_at",
                    ],
                    batch_size=500,
                )
            pulled = [row for row in new_rows if not row.deleted]
            if pulled:
                # One event per committed batch for first arrivals (thousands on a first sync);
                # every later change of a record is its own event below.
                audit_event_record(
                    workspace=workspace_id,
                    actor=SYSTEM,
                    verb="records.pulled",
                    object_type="quickbooks." + entity.lower(),
                    after={
                        "count": len(pulled),
                        "qbo_ids": [row.qbo_id for row in pulled],
                        "errored": [row.qbo_id for row in pulled if row.errored],
                    },
                    reason="; ".join(row.error_reason for row in pulled if row.errored)[:4000],
                )
            for row in new_rows:
                if row.deleted:
                    audit_event_record(
                        workspace=workspace_id,
                        actor=SYSTEM,
                        verb="record.deleted",
                        obj=row,
                        object_type="quickbooks." + entity.lower(),
                        after={"qbo_id": row.qbo_id, "deleted": True},
                        reason=reason,
                    )
            for row, before, verb in updated_rows:
                audit_event_record(
                    workspace=workspace_id,
                    actor=SYSTEM,
                    verb=f"record.{verb}",
                    obj=row,
                    object_type="quickbooks." + entity.lower(),
                    before=before,
                    after={
                        "sync_token": row.sync_token,
                        "deleted": row.deleted,
                        "errored": row.errored,
                        **_typed(row),
                    },
                    reason=reason or row.error_reason,
                )
            changed = new_rows + [row for row, _, _ in updated_rows]
            transaction.on_commit(lambda rows=changed: _hand_over(rows))
        self.records_done += len(items)
        if entity == "Attachable":
            attachables.extend(r for r in changed if not r.deleted)
            self.files_ensure(attachables)
        elif entity in KINDS_WITH_FILES and self.attachments_per_batch:
            ids = [r.qbo_id for r in changed if not r.deleted]
            if ids:
                self.progress("attachments", entity)
                for page in client.attachables_for(self.api, entity_type=entity, entity_ids=ids):
                    self.commit("Attachable", page.records)

    # --- attachments -----------------------------------------------------------------------

    def files_ensure(self, attachables: list[SourceRecord]) -> None:
        """Download each Attachable's file once per version and link it to its transactions."""
        if not attachables:
            return
        workspace_id = self.connection.workspace_id
        wanted: dict[tuple[str, str], list[SourceRecord]] = defaultdict(list)
        for attachable in attachables:
            refs = attachable.payload.get("AttachableRef")
            for ref in refs if isinstance(refs, list) else []:  # a fuzzed payload may hold anything
                entity_ref = ref.get("EntityRef") if isinstance(ref, dict) else None
                if isinstance(entity_ref, dict) and entity_ref.get("value"):
                    key = (str(entity_ref.get("type", "")), str(entity_ref["value"]))
                    if attachable not in wanted[key]:  # one bill named twice: one file
                        wanted[key].append(attachable)
        if not wanted:
            return
        by_type: dict[str, list[str]] = defaultdict(list)
        for entity, qbo_id in wanted:
            by_type[entity].append(qbo_id)
        condition = Q(pk__in=[])
        for entity, ids in by_type.items():
            condition |= Q(entity_type=entity, qbo_id__in=ids)
        records = {
            (r.entity_type, r.qbo_id): r
            for r in SourceRecord.objects.for_workspace(workspace_id)
            .filter(condition)
            .only("id", "entity_type", "qbo_id")
        }
        done = {
            (f.attachable_id, f.record_id): f
            for f in SourceFile.objects.for_workspace(workspace_id).filter(
                attachable__in=[a.pk for a in attachables]
            )
        }
        todo: dict[int, tuple[SourceRecord, list[SourceRecord]]] = {}
        for key, owners in wanted.items():
            record = records.get(key)
            if record is None:
                continue
            for attachable in owners:
                have = done.get((attachable.pk, record.pk))
                if (
                    have is not None
                    and have.attachable_sync_token == attachable.sync_token
                    and not have.retryable
                ):
                    continue
                todo.setdefault(attachable.pk, (attachable, []))[1].append(record)
        if not todo:
            return
        self.progress("files")
        jobs = list(todo.values())
        with ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool:
            results = list(pool.map(lambda job: self._download(job[0]), jobs))
        self._store_files(list(zip(jobs, results, strict=True)), done)

    def _download(self, attachable: SourceRecord) -> tuple[str, Any]:
        """('ok', FetchedFile) or ('error', message, retryable); never raises."""
        payload = attachable.payload
        size = payload.get("Size")
        if isinstance(size, (int, float)) and size > MAX_BYTES:
            return ("error", f"The attachment is {size} bytes, more than the 10 MB limit.", False)
        hosts = settings.QUICKBOOKS_DOWNLOAD_HOSTS
        url = payload.get("TempDownloadUri")
        try:
            for attempt in range(2):
                if not url:
                    url = client.download_url(self.api, attachable.qbo_id)
                try:
                    return ("ok", fetch_file(url, allowed_hosts=hosts, max_bytes=MAX_BYTES))
                except (UnsafeURL, FileTooLarge):
                    raise
                except ProviderError as exc:
                    # Pre-signed links expire after 15 minutes: ask once for a fresh one.
                    if attempt == 0 and exc.status and 400 <= exc.status < 500:
                        url = None
                        continue
                    raise
        except (UnsafeURL, FileTooLarge) as exc:
            return ("error", str(exc), False)
        except ProviderError as exc:
            return ("error", str(exc), not exc.permanent)
        return ("error", "The attachment could not be downloaded.", True)

    def _file_values(self, attachable: SourceRecord, result: tuple) -> dict[str, Any]:
        """The SourceFile columns for one download outcome (the bytes go to storage here)."""
        workspace_id = self.connection.workspace_id
        values: dict[str, Any] = {
            "attachable_sync_token": attachable.sync_token,
            "file_name": str(attachable.payload.get("FileName") or "")[:300],
            "fetched_at": timezone.now(),
        }
        if result[0] == "ok":
            fetched = result[1]
            content_type = (fetched.content_type or "").split(";")[0].strip()[:100]
            extension = mimetypes.guess_extension(content_type) or ""
            path = f"quickbooks/{workspace_id}/{fetched.sha256[:2]}/{fetched.sha256}{extension}"
            if not default_storage.exists(path):
                path = default_storage.save(path, ContentFile(fetched.content))
            values.update(
                content_type=content_type,
                size=len(fetched.content),
                sha256=fetched.sha256,
                file=path,
                error="",
                retryable=False,
            )
        else:
            self.counts["Attachable"]["errored"] += 1
            self.errors.append(f"Attachable {attachable.qbo_id}: {result[1]}")
            values.update(
                content_type="",
                size=0,
                sha256="",
                file="",
                error=str(result[1])[:2000],
                retryable=result[2],
            )
        return values

    def _store_files(self, outcomes: list, done: dict) -> None:
        """Create or update the SourceFile rows of one batch, with one audit event per batch."""
        workspace_id = self.connection.workspace_id
        fields = [
            "attachable_sync_token",
            "file_name",
            "fetched_at",
            "content_type",
            "size",
            "sha256",
            "file",
            "error",
            "retryable",
        ]
        creates: list[SourceFile] = []
        updates: list[SourceFile] = []
        stored: list[dict] = []
        refused: list[dict] = []
        for (attachable, owners), result in outcomes:
            values = self._file_values(attachable, result)
            for record in owners:
                row = done.get((attachable.pk, record.pk))
                if row is None:
                    creates.append(
                        SourceFile(
                            workspace_id=workspace_id,
                            record=record,
                            attachable=attachable,
                            **values,
                        )
                    )
                else:
                    for name, value in values.items():
                        setattr(row, name, value)
                    updates.append(row)
                entry = {
                    "record": record.pk,
                    "entity": record.entity_type,
                    "qbo_id": record.qbo_id,
                    "attachable": attachable.qbo_id,
                }
                if values["error"]:
                    refused.append({**entry, "reason": values["error"][:300]})
                else:
                    stored.append({**entry, "sha256": values["sha256"], "size": values["size"]})
        posted = self._posted_among({entry["record"] for entry in stored})
        with transaction.atomic():
            if creates:
                SourceFile.objects.bulk_create(creates, batch_size=500)
            if updates:
                SourceFile.objects.bulk_update(updates, fields, batch_size=500)
            if stored:
                audit_event_record(
                    workspace=workspace_id,
                    actor=SYSTEM,
                    verb="record.files_stored",
                    object_type="connectors.sourcefile",
                    after={"count": len(stored), "files": stored},
                )
            for entry in stored:
                if entry["record"] in posted:
                    # Qonto keeps the file it was sent: a person decides whether this one matters.
                    audit_event_record(
                        workspace=workspace_id,
                        actor=SYSTEM,
                        verb="record.attachment_after_posting",
                        object_type="quickbooks." + entry["entity"].lower(),
                        object_id=entry["record"],
                        after=entry,
                        reason="A new attachment arrived in QuickBooks after Well posted this "
                        "record to Qonto; Qonto keeps the file it was sent.",
                    )
            for entry in refused:
                audit_event_record(
                    workspace=workspace_id,
                    actor=SYSTEM,
                    verb="record.file_refused",
                    object_type="quickbooks." + entry["entity"].lower(),
                    object_id=entry["record"],
                    after=entry,
                    reason=entry["reason"],
                )

    def _posted_among(self, record_ids: set[int]) -> set[int]:
        """The records among these that Well has already uploaded or linked in Qonto."""
        if not record_ids:
            return set()
        return set(
            Posting.objects.for_workspace(self.connection.workspace_id)
            .filter(
                record_id__in=record_ids,
                state=PostingState.DONE,
                action__in=[PostingAction.UPLOAD, PostingAction.CREDIT_NOTE, PostingAction.LINK],
            )
            .values_list("record_id", flat=True)
        )

    def files_retry(self) -> None:
        """Downloads that failed for a passing reason are tried again on the next sync."""
        workspace_id = self.connection.workspace_id
        retryable = SourceFile.objects.for_workspace(workspace_id).filter(retryable=True)
        if not retryable.exists():  # the usual case: no join over every record
            return
        pending = list(
            SourceRecord.objects.for_workspace(workspace_id)
            .filter(pk__in=retryable.values("attachable_id"), deleted=False)
            .order_by("pk")[:500]
        )
        self.files_ensure(pending)


def _hand_over(rows: list[SourceRecord]) -> None:
    """Give a committed batch to matching; a failure there never undoes or stops the sync.

    A record whose hand-over failed stays `pulled`, where matching's own sweep finds it.
    """
    if rows:
        handoff.records_changed(rows)


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
        token=_Tokens(connection.pk, loaded=loaded),
        on_attempt=on_attempt,
        **options,
    )


def connection_sync(
    *, connection_id, full: bool = False, trigger: str = "schedule", **api_options: Any
) -> SyncRun:
    """Run one sync of a QuickBooks connection now; the loser of a race is recorded as skipped."""
    # The lock first, then one read of the row: what it says is what this run works from.
    with _advisory_lock(uuid.UUID(str(connection_id))) as got:
        connection = Connection.objects.get(pk=connection_id)
        if connection.status != ConnectionStatus.CONNECTED:
            return sync_run_skip(
                connection=connection,
                trigger=trigger,
                full=full,
                reason=f"QuickBooks is {connection.get_status_display().lower()}; "
                "no call was made.",
            )
        if not got:
            return sync_run_skip(
                connection=connection,
                trigger=trigger,
                full=full,
                reason="Another sync of this connection was running; this one did nothing.",
            )
        run = sync_run_begin(connection=connection, trigger=trigger, full=full)
        calls = _CallCounter()
        api = api_for(connection, on_attempt=calls, loaded=connection, **api_options)
        engine = _Engine(connection, run, api)
        engine.calls_counter = calls
        try:
            marker = engine.sync(full=full)
            engine.files_retry()
        except AuthRevoked as exc:
            connection_mark_needs_reconnect(connection=connection, reason=str(exc), actor=SYSTEM)
            return _finish(engine, SyncStatus.FAILED, error=str(exc))
        except ProviderError as exc:
            connection_error_record(connection=connection, error=str(exc))
            return _finish(engine, SyncStatus.FAILED, error=str(exc))
        except Exception as exc:
            logger.exception("sync of connection %s failed", connection.pk)
            _finish(engine, SyncStatus.FAILED, error=f"Unexpected error ({type(exc).__name__}).")
            raise
        return _finish(engine, SyncStatus.SUCCEEDED, marker=marker)


def _finish(engine: _Engine, status: str, *, marker: str = "", error: str = "") -> SyncRun:
    """Close the run; on success move the marker in the same transaction."""
    run = engine.run
    with transaction.atomic():
        now = timezone.now()
        run.status = status
        run.finished_at = now
        run.counts = {k: dict(v) for k, v in engine.counts.items()}
        run.api_calls = engine.calls
        run.progress = {"phase": "done", "records": engine.records_done, "mode": engine.mode}
        notes = "; ".join(engine.errors[:20])
        run.error = "\n".join(part for part in (error, notes) if part)[:10000]
        if status == SyncStatus.SUCCEEDED:
            run.marker_after = marker
            # A re-import may have moved the marker back while this run went on: keep that.
            Connection.objects.filter(pk=run.connection_id).update(
                sync_marker=Case(
                    When(sync_marker=run.marker_before, then=Value(marker)),
                    default=F("sync_marker"),
                ),
                last_good_sync_at=now,
                last_error="",
                last_error_at=None,
            )
        else:
            run.marker_after = run.marker_before
            webhooks_emit(
                workspace=run.workspace_id, event="sync.failed", payload=sync_run_summary(run)
            )
        run.save(
            update_fields=[
                "status",
                "finished_at",
                "counts",
                "api_calls",
                "progress",
                "error",
                "marker_after",
            ]
        )
    return run
