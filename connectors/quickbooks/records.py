"""The QuickBooks sync's upsert: one batch of records per transaction, each change audited.

Records are upserted by (workspace, entity type, QuickBooks ID); an unchanged `SyncToken` is a
no-op (architecture.md, "Sync"). Each record's mapped fields are extracted once, here
(connectors/quickbooks/extract.py), into typed columns. After the commit the batch is handed
over (connectors/handoff.py): matching proposes, payments are settled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from connectors import handoff
from connectors.models import Connection
from connectors.payloads import storable
from connectors.quickbooks import client, suppliers
from connectors.quickbooks.extract import EMPTY, Malformed, extract
from connectors.quickbooks.models import PayloadEncoder, SourceRecord
from connectors.sync_runs import SyncTally
from well.audit import Actor, audit_event_record

SYSTEM = Actor.system("QuickBooks sync")


@dataclass
class Committed:
    """What one batch changed, and the Attachables among it whose files may need fetching."""

    changed: list[SourceRecord] = field(default_factory=list)
    attachables: list[SourceRecord] = field(default_factory=list)


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


def record_ids(raw_records: list) -> list[str]:
    """The QuickBooks Ids of a page, as `_items` keys them."""
    return [
        str(raw["Id"])[:64]
        for raw in raw_records
        if isinstance(raw, dict) and raw.get("Id") not in (None, "")
    ]


def _typed(record: SourceRecord) -> dict:
    return {name: getattr(record, name) for name in EMPTY}


@dataclass
class _Item:
    qbo_id: str
    sync_token: str
    payload: dict
    deleted: bool


def _items(entity: str, raw_records: list, tally: SyncTally) -> list[_Item]:
    items: dict[str, _Item] = {}
    for raw in raw_records:
        raw = storable(raw)  # no NUL or NaN reaches PostgreSQL
        if not isinstance(raw, dict) or raw.get("Id") in (None, ""):
            tally.skip(entity, "an object without an Id was skipped")
            continue
        qbo_id = str(raw["Id"])[:64]
        items[qbo_id] = _Item(
            qbo_id=qbo_id,
            sync_token=str(raw.get("SyncToken", ""))[:32],
            payload=raw,
            deleted=raw.get("status") == "Deleted",
        )
    return list(items.values())


def _fields(entity: str, item: _Item, home_currency: Callable[[], str]) -> dict:
    try:
        typed = extract(entity, item.payload, home_currency=home_currency())
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


def _drop_unchanged(
    connection: Connection, entity: str, items: list[_Item], tally: SyncTally
) -> tuple[list[_Item], bool]:
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
            connection.workspace_id
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
            tally.counts[entity]["unchanged"] += 1
            tally.records_done += 1
            continue
        todo.append(item)
    return todo, any(item.qbo_id in known for item in todo)


def records_commit(
    *,
    connection: Connection,
    entity: str,
    raw_records: list,
    tally: SyncTally,
    home_currency: Callable[[], str],
    reason: str = "",
) -> Committed:
    """Upsert one batch in one transaction; hand every change over after the commit.

    `reason` goes on the audit events of the batch (why a sweep marked records deleted).
    `home_currency` is asked only when a record is extracted (never on a no-op).
    """
    items = _items(entity, raw_records, tally)
    if not items:
        return Committed()
    workspace_id = connection.workspace_id
    items, any_stored = _drop_unchanged(connection, entity, items, tally)
    if not items:
        return Committed()
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
        # A bill's supplier block comes from its Vendor (read before transactions).
        vendors = (
            suppliers.vendors_by_id(workspace_id, (suppliers.vendor_ref(i.payload) for i in items))
            if entity in suppliers.SUPPLIED_KINDS
            else {}
        )
        for item in items:
            row = existing.get(item.qbo_id)
            if item.deleted:
                if row is None:
                    row = SourceRecord(
                        workspace_id=workspace_id,
                        connection=connection,
                        entity_type=entity,
                        qbo_id=item.qbo_id,
                        payload=item.payload,
                        payload_hash=payload_hash(item.payload),
                        last_updated_at=_last_updated(item.payload),
                        deleted=True,
                    )
                    new_rows.append(row)
                    tally.counts[entity]["deleted"] += 1
                elif row.deleted:
                    tally.counts[entity]["unchanged"] += 1
                else:
                    row.deleted = True
                    row.last_updated_at = _last_updated(item.payload) or row.last_updated_at
                    row.pulled_at = timezone.now()
                    updated_rows.append((row, {"deleted": False}, "deleted"))
                    tally.counts[entity]["deleted"] += 1
                continue
            if row is not None and row.sync_token == item.sync_token and not row.deleted:
                tally.counts[entity]["unchanged"] += 1
                if entity == "Attachable":
                    attachables.append(row)
                continue
            fields = _fields(entity, item, home_currency)
            if vendors and not fields["errored"]:
                suppliers.supplier_fill(fields, vendors)
            outcome = "errored" if fields["errored"] else ("new" if row is None else "updated")
            tally.counts[entity][outcome] += 1
            if row is None:
                row = SourceRecord(
                    workspace_id=workspace_id,
                    connection=connection,
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
        if entity == "Vendor":
            # A vendor new or changed: its bills, credits and purchases print it from now on.
            suppliers.suppliers_propagate(changed)
        transaction.on_commit(lambda rows=changed: _hand_over(rows))
    tally.records_done += len(items)
    if entity == "Attachable":
        attachables.extend(r for r in changed if not r.deleted)
    return Committed(changed=changed, attachables=attachables)


def _hand_over(rows: list[SourceRecord]) -> None:
    """Give a committed batch to matching; a failure there never undoes or stops the sync.

    A record whose hand-over failed stays `pulled`, where matching's own sweep finds it.
    """
    if rows:
        handoff.records_changed(rows)
