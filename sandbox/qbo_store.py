"""Records of the QuickBooks sandbox: the seeded company plus the changes made since.

Records are never edited in place (an edit stores a new dict), so readers may keep a list of
them without holding the lock. With a data directory the seed is written once (`seed.json`)
and later changes go to a small `changes.json`, so a restart resumes where it stopped and
`reset()` returns to the seed.
"""

from __future__ import annotations

import copy
import json
import os
import random
import threading
from datetime import datetime, timedelta
from pathlib import Path

from sandbox.qbo_query import LIST_ENTITIES, PACIFIC, format_qbo_datetime


def write_json(path: Path, data: object) -> None:
    """Atomic write: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), "utf-8")
    os.replace(temporary, path)


def _sequence(record_id: str) -> bool:
    return record_id.isdigit() and len(record_id) < 10


def _paths(value: object, prefix: str, found: set[str]) -> None:
    """Collect every dotted property path (lowercase) under `value`."""
    if isinstance(value, list):
        for item in value:
            _paths(item, prefix, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key.lower()}" if prefix else key.lower()
            found.add(path)
            _paths(item, path, found)


class RecordStore:
    """Seed + changes, keyed by entity name then Id."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self.lock = threading.RLock()
        self.realm_id: str | None = None
        self.seed_part: dict | None = None
        self.live: dict[str, dict[str, dict]] = {}
        self.deleted: dict[str, dict[str, str]] = {}
        self.documents: dict[str, dict] = {}
        self.changes: dict = self._empty_changes()
        self.known_paths: dict[str, set[str]] = {}

    @staticmethod
    def _empty_changes() -> dict:
        return {"records": {}, "deleted": {}, "documents": {}, "next_id": None}

    # ---- lifecycle ----------------------------------------------------------------------
    def has_state(self) -> bool:
        return self.data_dir is not None and (self.data_dir / "seed.json").exists()

    def seed(self, part: dict) -> None:
        """Replace everything with a world's QuickBooks part (and persist it)."""
        with self.lock:
            self.seed_part = part
            self.changes = self._empty_changes()
            if self.data_dir is not None:
                write_json(self.data_dir / "seed.json", part)
                write_json(self.data_dir / "changes.json", self.changes)
            self._rebuild()

    def load(self) -> bool:
        """Resume from the data directory; False when there is nothing to resume."""
        if not self.has_state():
            return False
        assert self.data_dir is not None
        with self.lock:
            self.seed_part = json.loads((self.data_dir / "seed.json").read_text("utf-8"))
            changes_file = self.data_dir / "changes.json"
            if changes_file.exists():
                self.changes = json.loads(changes_file.read_text("utf-8"))
            self._rebuild()
        return True

    def reset(self) -> None:
        """Back to the seeded state."""
        with self.lock:
            self.changes = self._empty_changes()
            self._persist()
            self._rebuild()

    def _rebuild(self) -> None:
        part = self.seed_part or {"realm_id": None, "entities": {}, "documents": {}}
        self.realm_id = part.get("realm_id")
        self.live = {
            entity: {record["Id"]: record for record in records}
            for entity, records in part.get("entities", {}).items()
        }
        self.documents = dict(part.get("documents", {}))
        self.deleted = {}
        for entity, records in self.changes["records"].items():
            self.live.setdefault(entity, {}).update(records)
        for entity, ids in self.changes["deleted"].items():
            for record_id, stamp in ids.items():
                self.live.get(entity, {}).pop(record_id, None)
                self.deleted.setdefault(entity, {})[record_id] = stamp
        self.documents.update(self.changes["documents"])
        self.known_paths = {}

    def _persist(self) -> None:
        if self.data_dir is not None:
            write_json(self.data_dir / "changes.json", self.changes)

    # ---- reads --------------------------------------------------------------------------
    def entities(self) -> list[str]:
        return list(self.live)

    def records(self, entity: str) -> list[dict]:
        with self.lock:
            return list(self.live.get(entity, {}).values())

    def get(self, entity: str, record_id: str) -> dict | None:
        with self.lock:
            return self.live.get(entity, {}).get(record_id)

    def deleted_since(self, entity: str) -> dict[str, str]:
        with self.lock:
            return dict(self.deleted.get(entity, {}))

    def paths(self, entity: str) -> set[str]:
        """Property paths that exist on this entity (filterable in our sandbox)."""
        with self.lock:
            if entity not in self.known_paths:
                found: set[str] = set()
                for record in self.live.get(entity, {}).values():
                    _paths(record, "", found)
                self.known_paths[entity] = found
            return self.known_paths[entity]

    def counts(self) -> dict:
        with self.lock:
            return {
                "records": {entity: len(records) for entity, records in self.live.items()},
                "deleted": {entity: len(ids) for entity, ids in self.deleted.items()},
            }

    # ---- writes (control API only; the API itself is read-only) -------------------------
    def next_id(self) -> str:
        current = self.changes.get("next_id")
        if current is None:
            current = 1 + max(
                # The CompanyInfo Id is the realm id, not part of the entity sequence.
                (int(key) for records in self.live.values() for key in records if _sequence(key)),
                default=0,
            )
            deleted = [int(k) for ids in self.deleted.values() for k in ids if _sequence(k)]
            current = max([current, *(d + 1 for d in deleted)])
        self.changes["next_id"] = current + 1
        return str(current)

    def put(self, entity: str, record: dict) -> None:
        with self.lock:
            self.live.setdefault(entity, {})[record["Id"]] = record
            self.changes["records"].setdefault(entity, {})[record["Id"]] = record
            self.known_paths.pop(entity, None)
            self._persist()

    def edit(self, entity: str, record_id: str, changes: dict, moment: datetime) -> dict | None:
        """A bookkeeper's edit: new SyncToken and LastUpdatedTime (§3.4)."""
        with self.lock:
            current = self.get(entity, record_id)
            if current is None:
                return None
            record = copy.deepcopy(current)
            record.update(changes)
            record["SyncToken"] = str(int(current.get("SyncToken", "0")) + 1)
            record["MetaData"] = {
                **current.get("MetaData", {}),
                "LastUpdatedTime": format_qbo_datetime(moment),
            }
            self.put(entity, record)
            return record

    def delete(self, entity: str, record_id: str, moment: datetime) -> bool:
        """Transactions vanish (CDC reports them Deleted, §3.6); name lists go inactive (§3.5)."""
        with self.lock:
            current = self.get(entity, record_id)
            if current is None:
                return False
            if entity in LIST_ENTITIES:
                name_key = "DisplayName" if "DisplayName" in current else "Name"
                changes = {"Active": False}
                if name_key in current:
                    changes[name_key] = f"{current[name_key]} (deleted)"
                self.edit(entity, record_id, changes, moment)
                return True
            del self.live[entity][record_id]
            self.changes["records"].get(entity, {}).pop(record_id, None)
            stamp = format_qbo_datetime(moment)
            self.deleted.setdefault(entity, {})[record_id] = stamp
            self.changes["deleted"].setdefault(entity, {})[record_id] = stamp
            self._persist()
            return True

    def add_like(self, entity: str, count: int, moment: datetime, rng: random.Random) -> list[str]:
        """Add `count` new records modelled on existing ones (bills get fresh PDFs too)."""
        with self.lock:
            templates = list(self.live.get(entity, {}).values())
            if not templates:
                return []
            created = []
            for _ in range(count):
                template = rng.choice(templates)
                created.append(self._clone(entity, template, moment, rng))
            return created

    def _clone(self, entity: str, template: dict, moment: datetime, rng: random.Random) -> str:
        record = copy.deepcopy(template)
        record_id = self.next_id()
        stamp = format_qbo_datetime(moment)
        record.update(
            {
                "Id": record_id,
                "SyncToken": "0",
                "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
            }
        )
        today = moment.astimezone(PACIFIC).date()
        if "TxnDate" in record:
            record["TxnDate"] = today.isoformat()
        if "DueDate" in record:
            record["DueDate"] = (today + timedelta(days=30)).isoformat()
        record.pop("LinkedTxn", None)
        if "DocNumber" in record:
            record["DocNumber"] = f"{record['DocNumber'][:12]}-{record_id}"
        if "DisplayName" in record:
            record["DisplayName"] = f"{record['DisplayName']} {record_id}"
        factor = rng.uniform(0.6, 1.6)
        self._scale_amounts(record, factor)
        self.put(entity, record)
        self._clone_attachment(entity, template, record, moment)
        return record_id

    @staticmethod
    def _scale_amounts(record: dict, factor: float) -> None:
        if "TotalAmt" not in record or not record.get("Line"):
            return
        net = 0.0
        for line in record["Line"]:
            if "Amount" in line and line.get("DetailType") != "SubTotalLineDetail":
                line["Amount"] = round(line["Amount"] * factor, 2)
                net += line["Amount"]
        tax = record.get("TxnTaxDetail", {})
        if "TotalTax" in tax:
            tax["TotalTax"] = round(tax["TotalTax"] * factor, 2)
            for tax_line in tax.get("TaxLine", []):
                tax_line["Amount"] = tax["TotalTax"]
                tax_line.get("TaxLineDetail", {})["NetAmountTaxable"] = round(net, 2)
        record["TotalAmt"] = round(net + tax.get("TotalTax", 0.0), 2)
        if "Balance" in record:
            record["Balance"] = record["TotalAmt"]
        if "HomeBalance" in record:
            record["HomeBalance"] = round(record["TotalAmt"] * record.get("ExchangeRate", 1), 2)

    def _clone_attachment(
        self, entity: str, template: dict, record: dict, moment: datetime
    ) -> None:
        """Give a cloned transaction its own PDF when its model had one."""
        for attachable in list(self.live.get("Attachable", {}).values()):
            refs = attachable.get("AttachableRef", [])
            if not any(ref.get("EntityRef", {}).get("value") == template["Id"] for ref in refs):
                continue
            spec = self.documents.get(attachable["Id"])
            if spec is None:
                return
            new = copy.deepcopy(attachable)
            new_id = self.next_id()
            stamp = format_qbo_datetime(moment)
            new.update(
                {
                    "Id": new_id,
                    "SyncToken": "0",
                    "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
                }
            )
            new["FileAccessUri"] = f"/v3/company/{self.realm_id}/download/{new_id}"
            new["AttachableRef"] = [
                {"EntityRef": {"type": entity, "value": record["Id"]}, "IncludeOnSend": False}
            ]
            self.documents[new_id] = self._respec(spec, record)
            self.changes["documents"][new_id] = self.documents[new_id]
            new["FileName"] = self.documents[new_id]["file_name"]
            self.put("Attachable", new)
            return

    @staticmethod
    def _respec(spec: dict, record: dict) -> dict:
        new = copy.deepcopy(spec)
        lines = [
            line
            for line in record.get("Line", [])
            if line.get("DetailType") != "SubTotalLineDetail"
        ]
        new["lines"] = [
            {
                "description": line.get("Description", "Prestation"),
                "quantity": 1,
                "unit_price": line["Amount"],
                "vat_rate": spec["lines"][0]["vat_rate"] if spec.get("lines") else 20.0,
                "amount": line["Amount"],
            }
            for line in lines
        ]
        new["subtotal"] = round(sum(line["amount"] for line in new["lines"]), 2)
        new["vat_total"] = record.get("TxnTaxDetail", {}).get("TotalTax", 0.0)
        new["total"] = record["TotalAmt"]
        new["number"] = record.get("DocNumber") or f"R-{record['Id']}"
        new["issue_date"] = record.get("TxnDate", new["issue_date"])
        if new.get("due_date"):
            new["due_date"] = record.get("DueDate", new["due_date"])
        new["file_name"] = f"Facture_{new['number'].replace('/', '-')}.pdf"
        return new
