"""The QuickBooks sync's attachments: each Attachable's file fetched once per version.

Files come from Intuit's pre-signed links through the safe fetch (well/safe_fetch.py: allowed
hosts, size limit, no internal address), are validated (connectors/pdf.py: a PDF parsed in the
sandboxed worker with no JavaScript or launch action, a JPEG or PNG read by Pillow), are stored
by content hash under the type the validation found (never the type the provider sent), and
linked to each record the Attachable names; a failure that may pass is retried on the next sync.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connectors.models import Connection
from connectors.pdf import JPEG, PDF, PNG, DocumentRejected, validate_document_once
from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.quickbooks import client
from connectors.quickbooks.models import SourceFile, SourceRecord
from connectors.quickbooks.records import SYSTEM
from connectors.sync_runs import SyncTally
from well.audit import audit_event_record
from well.http import ProviderError
from well.safe_fetch import MAX_BYTES, STANDARD_PORTS, FileTooLarge, UnsafeURL, fetch_file

DOWNLOAD_THREADS = 8
EXTENSIONS = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png"}


def files_ensure(
    *,
    connection: Connection,
    api: client.QuickBooksApi,
    attachables: list[SourceRecord],
    tally: SyncTally,
    progress: Callable[[str], None],
) -> None:
    """Download each Attachable's file once per version and link it to its transactions."""
    if not attachables:
        return
    workspace_id = connection.workspace_id
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
    progress("files")
    jobs = list(todo.values())
    with ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool:
        results = list(pool.map(lambda job: _download(api, job[0]), jobs))
    _store_files(connection, tally, list(zip(jobs, results, strict=True)), done)


def download_ports() -> tuple[int, ...]:
    """Ports attachment links may use: 80 and 443; where loopback is allowed (the demo, the
    tests) also the QuickBooks sandbox's own port, which serves its files, and no other."""
    if not settings.WELL_ALLOW_LOOPBACK_DOWNLOADS:
        return STANDARD_PORTS
    try:
        sandbox_port = urlsplit(settings.QUICKBOOKS_API_URL).port
    except ValueError:
        sandbox_port = None
    return (*STANDARD_PORTS, sandbox_port) if sandbox_port else STANDARD_PORTS


def _download(api: client.QuickBooksApi, attachable: SourceRecord) -> tuple[str, Any, Any]:
    """('ok', FetchedFile, validated type) or ('error', message, retryable); never raises."""
    outcome = _fetch(api, attachable)
    if outcome[0] != "ok":
        return outcome
    fetched = outcome[1]
    try:
        checked = validate_document_once(
            fetched.content, filename=str(attachable.payload.get("FileName") or "")
        )
    except DocumentRejected as exc:
        # The provider's Content-Type is never believed: what cannot be validated is not kept.
        return ("error", f"Refused: {exc.reason}", False)
    return ("ok", fetched, checked.content_type)


def _fetch(api: client.QuickBooksApi, attachable: SourceRecord) -> tuple[str, Any, Any]:
    """('ok', FetchedFile, None) or ('error', message, retryable); never raises."""
    payload = attachable.payload
    size = payload.get("Size")
    if isinstance(size, (int, float)) and size > MAX_BYTES:
        return ("error", f"The attachment is {size} bytes, more than the 10 MB limit.", False)
    hosts = settings.QUICKBOOKS_DOWNLOAD_HOSTS
    ports = download_ports()
    url = payload.get("TempDownloadUri")
    try:
        for attempt in range(2):
            if not url:
                url = client.download_url(api, attachable.qbo_id)
            try:
                fetched = fetch_file(
                    url, allowed_hosts=hosts, max_bytes=MAX_BYTES, allowed_ports=ports
                )
                return ("ok", fetched, None)
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


def _file_values(
    connection: Connection, tally: SyncTally, attachable: SourceRecord, result: tuple
) -> dict[str, Any]:
    """The SourceFile columns for one download outcome (the bytes go to storage here)."""
    workspace_id = connection.workspace_id
    values: dict[str, Any] = {
        "attachable_sync_token": attachable.sync_token,
        "file_name": str(attachable.payload.get("FileName") or "")[:300],
        "fetched_at": timezone.now(),
    }
    if result[0] == "ok":
        fetched, content_type = result[1], result[2]
        extension = EXTENSIONS[content_type]
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
        tally.counts["Attachable"]["errored"] += 1
        tally.errors.append(f"Attachable {attachable.qbo_id}: {result[1]}")
        values.update(
            content_type="",
            size=0,
            sha256="",
            file="",
            error=str(result[1])[:2000],
            retryable=result[2],
        )
    return values


def _store_files(connection: Connection, tally: SyncTally, outcomes: list, done: dict) -> None:
    """Create or update the SourceFile rows of one batch, with one audit event per batch."""
    workspace_id = connection.workspace_id
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
        values = _file_values(connection, tally, attachable, result)
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
    posted = _posted_among(connection, {entry["record"] for entry in stored})
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


def _posted_among(connection: Connection, record_ids: set[int]) -> set[int]:
    """The records among these that Well has already uploaded or linked in Qonto."""
    if not record_ids:
        return set()
    return set(
        Posting.objects.for_workspace(connection.workspace_id)
        .filter(
            record_id__in=record_ids,
            state=PostingState.DONE,
            action__in=[PostingAction.UPLOAD, PostingAction.CREDIT_NOTE, PostingAction.LINK],
        )
        .values_list("record_id", flat=True)
    )


def files_retry(
    *,
    connection: Connection,
    api: client.QuickBooksApi,
    tally: SyncTally,
    progress: Callable[[str], None],
) -> None:
    """Downloads that failed for a passing reason are tried again on the next sync."""
    workspace_id = connection.workspace_id
    retryable = SourceFile.objects.for_workspace(workspace_id).filter(retryable=True)
    if not retryable.exists():  # the usual case: no join over every record
        return
    pending = list(
        SourceRecord.objects.for_workspace(workspace_id)
        .filter(pk__in=retryable.values("attachable_id"), deleted=False)
        .order_by("pk")[:500]
    )
    files_ensure(
        connection=connection, api=api, attachables=pending, tally=tally, progress=progress
    )


@dataclass(frozen=True)
class ServedFile:
    """A stored attachment as Well serves it: bytes, the type validation found, how."""

    content: bytes
    content_type: str
    filename: str
    inline: bool


def source_file_served(*, source: SourceFile) -> ServedFile | None:
    """The stored file re-validated: a PDF may be shown inline as application/pdf; a JPEG or PNG
    is a download of its type; anything else (a file stored before validation, or one that
    fails it now) is a download of opaque bytes. None when the file is gone from storage."""
    try:
        with default_storage.open(source.file.name, "rb") as handle:
            content = handle.read(MAX_BYTES + 1)
    except (OSError, ValueError):
        return None
    filename = source.file_name or Path(source.file.name).name
    try:
        content_type = validate_document_once(content, filename=filename).content_type
    except DocumentRejected:
        return ServedFile(content, "application/octet-stream", filename, inline=False)
    return ServedFile(content, content_type, filename, inline=content_type == PDF)
