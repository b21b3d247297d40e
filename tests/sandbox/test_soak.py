"""The soak (docs/soak.md): a CI-sized day under faults and killed workers keeps the four
promises, and the checker does count a broken promise when there is one."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from sandbox import soak
from sandbox.soak import Simulation, soak_counts, soak_run

COUNTS = ("duplicates_in_qonto", "records_lost", "postings_stuck", "final_state_differs")

# Soak workers are forked processes with their own connections: they must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


def _last_json_line(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_a_few_hours_under_faults_and_killed_workers_keep_the_four_counts_at_zero():
    out = StringIO()

    call_command(
        "soak",
        hours=3,
        fault_rate=0.2,
        kill_workers=True,
        seed=3,
        bills=8,
        changes=(3, 6),
        stdout=out,
    )

    report = _last_json_line(out.getvalue())
    assert list(report)[:4] == list(COUNTS)
    assert {name: report[name] for name in COUNTS} == dict.fromkeys(COUNTS, 0), report
    assert sum(report["faults_injected"].values()) > 0, report
    killed = {k: v for k, v in report["kills"].items() if not k.endswith("_errors")}
    assert sum(killed.values()) > 0, report
    assert report["postings"].get("done", 0) > 0, report
    assert report["changes"]["add"] > 0


def _plant_duplicate(day) -> None:
    """Upload again, with a new idempotency key, the file of one invoice Well uploaded."""
    sandboxes = day.sandboxes
    uploads = sandboxes.control(sandboxes.qonto, "invoices")["invoices"]
    original = uploads[0]
    app = sandboxes.qonto_app
    content = app.store.get_file(original["attachment_id"])
    key = sandboxes.control(sandboxes.qonto, "api_key", {})
    answer = requests.post(
        f"{sandboxes.qonto}/v2/supplier_invoices/bulk",
        headers={"Authorization": f"{key['login']}:{key['secret_key']}"},
        files=[
            ("supplier_invoices[][file]", (original["file_name"], content, "application/pdf")),
            ("supplier_invoices[][idempotency_key]", (None, str(uuid.uuid4()))),
        ],
        timeout=10,
    )
    answer.raise_for_status()
    assert answer.json()["errors"] == []


def test_a_duplicate_planted_in_qonto_is_counted():
    report = soak_run(
        hours=1,
        fault_rate=0.0,
        kill_workers=False,
        seed=5,
        bills=6,
        changes_per_hour=(2, 3),
        tamper=_plant_duplicate,
    )

    assert report["duplicates_in_qonto"] == 1, report
    assert report["records_lost"] == 0 and report["postings_stuck"] == 0, report


def _simulation(**fields) -> Simulation:
    sim = Simulation(label="t", workspace_id=1)
    for name, value in fields.items():
        setattr(sim, name, value)
    return sim


def test_a_record_quickbooks_holds_that_well_lacks_or_holds_stale_is_lost():
    alive = {("Bill", "1"): "0", ("Bill", "2"): "3", ("Bill", "3"): "0"}
    held = {("Bill", "1"): ("posted", False, "0"), ("Bill", "2"): ("posted", False, "2")}
    faulted = _simulation(qbo_alive=alive, well_records=held)

    assert soak_counts(faulted, _simulation()).records_lost == 2


def test_a_record_approved_but_never_posted_is_lost():
    held = {("Bill", "1"): ("approved", False, "0")}
    faulted = _simulation(qbo_alive={("Bill", "1"): "0"}, well_records=held)

    assert soak_counts(faulted, _simulation()).records_lost == 1


def test_postings_neither_done_nor_failed_with_a_reason_are_stuck():
    postings = [
        {"id": 1, "record_id": 1, "state": "done", "message": "", "key": "a" * 36},
        {"id": 2, "record_id": 2, "state": "failed", "message": "Qonto refused it", "key": "b"},
        {"id": 3, "record_id": 3, "state": "failed", "message": " ", "key": "c"},
        {"id": 4, "record_id": 4, "state": "unknown", "message": "timeout", "key": "d"},
        {"id": 5, "record_id": 5, "state": "in_flight", "message": "", "key": "e"},
    ]

    assert soak_counts(_simulation(postings=postings), _simulation()).postings_stuck == 3


def test_records_whose_end_state_or_qonto_invoice_differs_from_the_replay_are_counted():
    invoice = ("invoice", ("to_review", "240.00", "AL-17"))
    faulted = _simulation(
        records={
            ("Bill", "1"): ("posted", False, "0", [invoice]),
            ("Bill", "2"): ("failed", False, "0", []),
            ("Bill", "3"): ("posted", False, "1", [("invoice", ("paid", "10.00", "X"))]),
        }
    )
    replay = _simulation(
        records={
            ("Bill", "1"): ("posted", False, "0", [invoice]),
            ("Bill", "2"): ("posted", False, "0", [invoice]),
            ("Bill", "3"): ("posted", False, "1", [("invoice", ("to_review", "10.00", "X"))]),
            ("Bill", "4"): ("in_review", False, "0", []),
        }
    )

    assert soak_counts(faulted, replay).final_state_differs == 3


def test_a_record_deleted_before_one_run_ever_saw_it_is_not_a_difference():
    replay = _simulation(records={("Bill", "9"): ("in_review", True, "0", [])})

    assert soak_counts(_simulation(), replay).final_state_differs == 0
    assert soak.unseen_deleted(_simulation(), replay) == {("Bill", "9")}


def test_uploads_are_attributed_by_key_then_by_the_well_tag_in_the_file_name():
    postings = [{"id": 1, "record_id": 7, "state": "done", "message": "", "key": "abcdef12-x"}]
    uploads = [
        {"idempotency_key": "abcdef12-x", "file_name": "Bill-1--well-abcdef12.pdf"},
        {"idempotency_key": "other", "file_name": "copy--well-abcdef12.pdf"},
        {"idempotency_key": "stranger", "file_name": "scan.pdf"},
    ]
    for upload in uploads:
        upload["posting"] = postings[0] if upload["idempotency_key"] == "abcdef12-x" else None

    counts = soak_counts(_simulation(postings=postings, uploads=uploads), _simulation())

    assert counts.duplicates_in_qonto == 1


def test_the_command_exits_non_zero_when_a_count_is_not_zero(monkeypatch):
    from sandbox.management.commands import soak as command

    report = dict.fromkeys(COUNTS, 0) | {"postings_stuck": 2}
    monkeypatch.setattr(command, "soak_run", lambda **options: report)
    out = StringIO()

    with pytest.raises(SystemExit) as exited:
        call_command("soak", hours=1, fault_rate=0.1, stdout=out)

    assert exited.value.code == 1
    assert _last_json_line(out.getvalue())["postings_stuck"] == 2


def test_bad_arguments_get_a_clear_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--fault-rate"):
        call_command("soak", hours=1, fault_rate=1.5)
    with pytest.raises(CommandError, match="--hours"):
        call_command("soak", hours=0)
