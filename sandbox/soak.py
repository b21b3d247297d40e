"""The soak: a simulated day of QuickBooks changes, syncs and postings under faults (docs/soak.md).

`soak_run(hours=, fault_rate=, kill_workers=, seed=)` runs the day twice on fresh sandboxes and
fresh workspaces: once with faults (timeouts, 429s, 5xx, partial bulk failures, expired access
tokens that force a refresh with rotation, and, with `kill_workers`, worker processes killed
with SIGKILL), once with none, the same seed driving the same QuickBooks changes. It returns the
four counts the release promises are zero (see `soak_counts`) and the figures behind them.

The syncs and the posting worker run the real services in forked child processes, as
django-q2 workers would; a child is killed at a chosen point (after its k-th HTTP answer, or
between the Qonto bulk POST and the commit of its result) and started again, as a supervisor
would. Only one worker runs at a time, so once a killed child has been reaped its in-flight
claims are known to be dead: they are recovered at once (`postings_recover` with no lease)
instead of after the 15-minute lease a live cluster waits for.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import requests
from django.contrib.auth import get_user_model
from django.db import connections
from django.test.utils import override_settings
from django.utils import timezone
from requests.adapters import HTTPAdapter

from connectors.models import Connection, ConnectionStatus
from connectors.oauth import ConnectError
from connectors.qonto import services as qonto_services
from connectors.qonto.models import Posting, PostingState
from connectors.qonto.outbox import NotPostable
from connectors.qonto.posting import postings_recover, postings_send
from connectors.qonto.sync import qonto_sync
from connectors.quickbooks.models import RecordState, SourceRecord
from connectors.quickbooks.services import (
    quickbooks_authorization_begin,
    quickbooks_authorization_complete,
    quickbooks_disconnect,
)
from connectors.quickbooks.sync import quickbooks_sync
from matching.models import Proposal
from matching.tasks import proposals_refresh_task, records_propose_pending_task
from review.services import DecisionError, record_approve
from sandbox.qonto import QontoSandbox
from sandbox.quickbooks import QuickBooksSandbox
from sandbox.runner import sandbox_credentials
from sandbox.server import RunningServer, serve_in_thread
from sandbox.world import build_world
from well.audit import Actor
from well.http import ProviderError
from well.models import Role, Workspace
from well.services import membership_add, workspace_create

# QuickBooks kinds the soak changes: the ones Well posts to Qonto.
CHANGED_KINDS = ("Bill", "Purchase", "VendorCredit")
# A record in one of these states at the end was decided for Qonto but never got there.
UNFINISHED_STATES = (RecordState.AUTO_APPROVED, RecordState.APPROVED, RecordState.POSTING)
OPEN_POSTINGS = (PostingState.READY, PostingState.UNKNOWN, PostingState.IN_FLIGHT)
HTTP_TIMEOUT = 2.0  # Well's client timeout during the soak; injected stalls last longer
STALL_SECONDS = 2.5
KILL_CHANCE = 0.5  # per worker step, with --kill-workers
DRAIN_ROUNDS = 6
SITE = "http://127.0.0.1:8000"


@dataclass
class SoakCounts:
    duplicates_in_qonto: int
    records_lost: int
    postings_stuck: int
    final_state_differs: int


@dataclass
class Simulation:
    """What one run of the day left behind, read before its sandboxes stop."""

    label: str
    workspace_id: int
    records: dict[tuple[str, str], tuple] = field(default_factory=dict)
    qbo_alive: dict[tuple[str, str], str] = field(default_factory=dict)
    well_records: dict[tuple[str, str], tuple[str, bool, str]] = field(default_factory=dict)
    postings: list[dict] = field(default_factory=list)
    uploads: list[dict] = field(default_factory=list)
    faults: Counter = field(default_factory=Counter)
    kills: Counter = field(default_factory=Counter)
    changes: Counter = field(default_factory=Counter)
    approvals: int = 0
    step_seconds: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)
    reconnects: Counter = field(default_factory=Counter)


# --- The sandboxes ---------------------------------------------------------------------------


class _Sandboxes:
    """Both sandboxes in this process on free ports, from one seeded world."""

    def __init__(self, *, seed: int, bills: int, world_now: datetime) -> None:
        client_id, client_secret = sandbox_credentials()
        world = build_world(seed=seed, bills=bills, now=world_now)
        self.qbo_app = QuickBooksSandbox(client_id=client_id, client_secret=client_secret)
        self.qbo_app.seed(world.quickbooks)
        self.qonto_app = QontoSandbox(
            client_id=client_id, client_secret=client_secret, analysis_delay_seconds=0
        )
        self.qonto_app.seed(**world.qonto)
        self.servers: list[RunningServer] = [serve_in_thread(self.qbo_app)]
        self.servers.append(serve_in_thread(self.qonto_app))
        self.qbo, self.qonto = (server.base_url for server in self.servers)
        self.http = requests.Session()
        self.http.trust_env = False

    def control(self, base: str, name: str, body: dict | None = None) -> dict:
        url = f"{base}/_sandbox/{name}"
        response = self.http.post(url, json=body) if body is not None else self.http.get(url)
        response.raise_for_status()
        return response.json()

    def settings(self, media_root: str) -> dict:
        client_id, client_secret = sandbox_credentials()
        return {
            "SITE_URL": SITE,
            "MEDIA_ROOT": media_root,
            "HTTP_TIMEOUT_SECONDS": HTTP_TIMEOUT,
            "QUICKBOOKS_CLIENT_ID": client_id,
            "QUICKBOOKS_CLIENT_SECRET": client_secret,
            "QUICKBOOKS_AUTHORIZE_URL": f"{self.qbo}/connect/oauth2",
            "QUICKBOOKS_TOKEN_URL": f"{self.qbo}/oauth2/v1/tokens/bearer",
            "QUICKBOOKS_REVOKE_URL": f"{self.qbo}/v2/oauth2/tokens/revoke",
            "QUICKBOOKS_API_URL": self.qbo,
            "QUICKBOOKS_DOWNLOAD_HOSTS": ["127.0.0.1"],
            "WELL_ALLOW_LOOPBACK_DOWNLOADS": True,
            "QONTO_CLIENT_ID": client_id,
            "QONTO_CLIENT_SECRET": client_secret,
            "QONTO_AUTHORIZE_URL": f"{self.qonto}/oauth2/auth",
            "QONTO_TOKEN_URL": f"{self.qonto}/oauth2/token",
            "QONTO_REVOKE_URL": f"{self.qonto}/oauth2/revoke",
            "QONTO_API_URL": self.qonto,
            "QONTO_STAGING_TOKEN": "",
        }

    def live_ids(self, entity: str) -> list[str]:
        with self.qbo_app.store.lock:
            return sorted(self.qbo_app.store.live.get(entity, {}), key=int)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


# --- Connecting through the real OAuth flows -------------------------------------------------


def _answer(response: requests.Response) -> dict:
    """The parameters of the consent page's redirect back to Well."""
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def _connect_quickbooks(sandboxes: _Sandboxes, *, workspace: Workspace, user) -> Connection:
    """The owner presses Connect and Allow: the services the OAuth views call."""
    url, pending = quickbooks_authorization_begin(workspace=workspace, user=user)
    split = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(split.query).items()}
    consent = sandboxes.http.post(
        f"{split.scheme}://{split.netloc}{split.path}",
        data={**params, "decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )
    answer = _answer(consent)
    return quickbooks_authorization_complete(
        pending=pending,
        user=user,
        state=answer["state"],
        code=answer["code"],
        realm_id=answer["realmId"],
    ).connection


def _connect_qonto(sandboxes: _Sandboxes, *, workspace: Workspace, user) -> Connection:
    url, pending = qonto_services.qonto_authorization_begin(workspace=workspace, user=user)
    page = sandboxes.http.get(url, timeout=10)
    challenge = page.text.split('name="challenge" value="', 1)[1].split('"', 1)[0]
    consent = sandboxes.http.post(
        url.split("/oauth2/auth")[0] + "/oauth2/auth",
        data={"challenge": challenge, "decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )
    answer = _answer(consent)
    return qonto_services.qonto_authorization_complete(
        pending=pending, user=user, state=answer["state"], code=answer["code"]
    ).connection


# --- Workers in child processes --------------------------------------------------------------


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _worker_main(step: Callable[[bool], None], kill_at_answer: int, kill_after_send: bool):
    """The child: arm the kill point, run the step, leave without running the parent's exits."""
    code = 0
    try:
        if kill_at_answer:
            original = HTTPAdapter.send
            seen = {"answers": 0}

            def send(self, request, **kwargs):
                response = original(self, request, **kwargs)
                seen["answers"] += 1
                if seen["answers"] >= kill_at_answer:
                    _die()  # the answer arrived; whatever it means is never committed
                return response

            HTTPAdapter.send = send
        step(kill_after_send)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        connections.close_all()
    os._exit(code)


def _run_worker(step: Callable[[bool], None], *, kill_at_answer: int, kill_after_send: bool):
    """Fork a worker for one step; "ok", "killed" or "error" (the step raised)."""
    connections.close_all()  # the child opens its own database connection
    process = multiprocessing.get_context("fork").Process(
        target=_worker_main, args=(step, kill_at_answer, kill_after_send), daemon=True
    )
    process.start()
    process.join()
    if process.exitcode == -signal.SIGKILL:
        return "killed"
    return "ok" if process.exitcode == 0 else "error"


def _qonto_sync_step(connection_id) -> Callable[[bool], None]:
    def step(_kill_after_send: bool) -> None:
        qonto_sync(connection_id=connection_id, trigger="soak")

    return step


def _quickbooks_sync_step(connection_id) -> Callable[[bool], None]:
    def step(_kill_after_send: bool) -> None:
        quickbooks_sync(connection_id=connection_id, trigger="soak")

    return step


def _posting_step(kill_after_send: bool) -> None:
    # Killed after Qonto answered a bulk upload and before any result is committed.
    postings_send(after_send=(lambda postings: _die()) if kill_after_send else None)


# --- One simulated day -----------------------------------------------------------------------


class _Day:
    def __init__(self, *, label: str, config: dict, faulty: bool, world_now: datetime) -> None:
        self.label = label
        self.config = config
        self.faulty = faulty
        self.changes_rng = random.Random(config["seed"])  # same changes in both runs
        self.fault_rng = random.Random(config["seed"] * 7919 + 1)
        self.sandboxes = _Sandboxes(seed=config["seed"], bills=config["bills"], world_now=world_now)
        self.slug = f"soak-{config['seed']}-{label}-{uuid.uuid4().hex[:8]}"

    def run(self) -> Simulation:
        media = tempfile.TemporaryDirectory(prefix="well-soak-")
        try:
            with override_settings(**self.sandboxes.settings(media.name)):
                return self._run()
        finally:
            self.sandboxes.stop()
            media.cleanup()

    def _run(self) -> Simulation:
        system = Actor.system("soak")
        workspace = workspace_create(name=f"Soak {self.label}", slug=self.slug, actor=system)
        user = get_user_model().objects.create_user(
            username=f"{self.slug}@soak.invalid", email=f"{self.slug}@soak.invalid"
        )
        self.membership = membership_add(
            workspace=workspace, user=user, role=Role.OWNER, actor=system
        )
        self.user = user
        self.sim = Simulation(label=self.label, workspace_id=workspace.pk)
        self.workspace = workspace
        self.qbo_id = _connect_quickbooks(self.sandboxes, workspace=workspace, user=user).pk
        self.qonto_id = _connect_qonto(self.sandboxes, workspace=workspace, user=user).pk
        for hour in range(self.config["hours"]):
            self._faults_arm()
            self._change_quickbooks(hour)
            self._round()
        self._faults_disarm()
        self._drain()
        self._read_back()
        self._disconnect()
        return self.sim

    # --- faults --------------------------------------------------------------------------

    def _faults_arm(self) -> None:
        if not self.faulty or self.config["fault_rate"] <= 0:
            return
        rate = self.config["fault_rate"]
        common = {
            "rate_timeout": rate / 3,
            "rate_429": rate / 3,
            "rate_5xx": rate / 3,
            "retry_after_seconds": 1,
            "timeout_seconds": STALL_SECONDS,
            "seed": self.fault_rng.randrange(1 << 30),
        }
        control = self.sandboxes.control
        control(self.sandboxes.qbo, "faults", common)
        control(self.sandboxes.qonto, "faults", {**common, "rate_partial_bulk": rate})
        # A token rotation: the access tokens die early, the next call refreshes and rotates.
        for name, base in (("quickbooks", self.sandboxes.qbo), ("qonto", self.sandboxes.qonto)):
            if self.fault_rng.random() < rate:
                control(base, "faults", {"expire_access": True})
                self.sim.faults[f"token_rotation_{name}"] += 1

    def _faults_disarm(self) -> None:
        for name, base in (("quickbooks", self.sandboxes.qbo), ("qonto", self.sandboxes.qonto)):
            injected = self.sandboxes.control(base, "faults")
            injected = injected.get("faults", injected).get("injected", {})
            for kind, count in injected.items():
                self.sim.faults[f"{kind}_{name}"] += count
            self.sandboxes.control(base, "faults", {"clear": True})

    # --- QuickBooks changes --------------------------------------------------------------

    def _change_quickbooks(self, hour: int) -> None:
        """New, edited and deleted records, the same in both runs (the changes' own RNG)."""
        rng = self.changes_rng
        low, high = self.config["changes_per_hour"]
        base = self.sandboxes.qbo
        for index in range(rng.randint(low, high)):
            roll = rng.random()
            entity = "Bill" if rng.random() < 0.7 else rng.choice(CHANGED_KINDS[1:])
            ids = self.sandboxes.live_ids(entity)
            if roll < 0.5 or not ids:
                body = {"action": "add", "entity": entity, "count": 1}
            elif roll < 0.85:
                note = f"soak hour {hour} change {index}"
                body = {"action": "edit", "entity": entity, "id": rng.choice(ids)}
                body["set"] = {"PrivateNote": note}
            else:
                body = {"action": "delete", "entity": entity, "id": rng.choice(ids)}
            self.sandboxes.control(base, "mutate", body)
            self.sim.changes[body["action"]] += 1
        # An hour passes in QuickBooks: its access tokens expire, the next sync refreshes.
        self.sandboxes.control(base, "clock", {"advance": 3600})

    # --- the worker steps ----------------------------------------------------------------

    def _step(self, name: str, step: Callable[[bool], None], *, posting: bool = False) -> None:
        """Run one step in a worker; with kills, maybe kill it once, then restart it."""
        kill_at, after_send = 0, False
        if self.faulty and self.config["kill_workers"] and self.fault_rng.random() < KILL_CHANCE:
            if posting and self.fault_rng.random() < 0.5:
                after_send = True
            else:
                kill_at = self.fault_rng.randint(1, 12)
        started = time.monotonic()
        outcome = _run_worker(step, kill_at_answer=kill_at, kill_after_send=after_send)
        if outcome == "killed":
            self.sim.kills["after_send" if after_send else name] += 1
            self._recover_dead_claims()
            outcome = _run_worker(step, kill_at_answer=0, kill_after_send=False)
        if outcome == "error":
            self.sim.kills[f"{name}_errors"] += 1
        self.sim.step_seconds[name] += time.monotonic() - started

    def _recover_dead_claims(self) -> None:

        # The only worker was killed and reaped: its claims are dead now, not in 15 minutes.
        postings_recover(lease=timedelta(0))

    def _round(self) -> None:
        """One hour's work: syncs, matching, the accountant, the posting worker."""

        self._reconnect_if_asked()
        qonto_read_from = timezone.now()
        self._step("qonto_sync", _qonto_sync_step(self.qonto_id))
        # The task the Qonto sync queues for the cluster: open records meet the new entries.
        proposals_refresh_task(self.sim.workspace_id, qonto_read_from.isoformat())
        self._step("quickbooks_sync", _quickbooks_sync_step(self.qbo_id))
        self._propose_and_review()
        self._step("posting", _posting_step, posting=True)

    def _reconnect_if_asked(self) -> None:
        """The owner reconnects a connection Well marked "needs reconnect" (a lost refresh
        token); counted, since it is a person stepping in."""
        for connection_id, connect in (
            (self.qbo_id, _connect_quickbooks),
            (self.qonto_id, _connect_qonto),
        ):
            connection = Connection.objects.get(pk=connection_id)
            if connection.status != ConnectionStatus.NEEDS_RECONNECT:
                continue
            reason = f"{connection.provider}: {connection.last_error[:80]}"
            try:
                connect(self.sandboxes, workspace=self.workspace, user=self.user)
            except (ProviderError, ConnectError):
                reason = f"{connection.provider}: the reconnection failed, tried again later"
            self.sim.reconnects[reason] += 1

    def _propose_and_review(self) -> None:
        """Matching's sweep, then the accountant approves what waits in review."""

        records_propose_pending_task(self.sim.workspace_id)
        waiting = (
            SourceRecord.objects.for_workspace(self.sim.workspace_id)
            .filter(state=RecordState.IN_REVIEW, deleted=False)
            .order_by("entity_type", "qbo_id")
        )
        for record in waiting:
            try:
                record_approve(
                    record=record,
                    actor=Actor.user(self.user),
                    membership=self.membership,
                    note="soak: the accountant approves the review queue",
                )
                self.sim.approvals += 1
            except (DecisionError, NotPostable) as exc:
                self.sim.refusals[str(exc)[:100]] += 1

    def _drain(self) -> None:
        """No more faults or kills: rounds until the outbox is empty and nothing moves."""
        for round_number in range(DRAIN_ROUNDS):
            self._round()
            still_open = (
                Posting.objects.for_workspace(self.sim.workspace_id)
                .filter(state__in=OPEN_POSTINGS)
                .exists()
            )
            if round_number >= 1 and not still_open:
                break

    # --- the end state -------------------------------------------------------------------

    def _read_back(self) -> None:
        sim = self.sim
        invoices = self._qonto_invoices()
        for entity in CHANGED_KINDS:
            with self.sandboxes.qbo_app.store.lock:
                live = dict(self.sandboxes.qbo_app.store.live.get(entity, {}))
            for qbo_id, payload in live.items():
                sim.qbo_alive[(entity, qbo_id)] = str(payload.get("SyncToken", "0"))
        postings_by_record: dict[int, list[Posting]] = {}
        for posting in Posting.objects.for_workspace(sim.workspace_id).order_by("id"):
            postings_by_record.setdefault(posting.record_id, []).append(posting)
            sim.postings.append(
                {
                    "id": posting.pk,
                    "record_id": posting.record_id,
                    "state": posting.state,
                    "message": posting.message,
                    "key": posting.idempotency_key,
                }
            )
        records = SourceRecord.objects.for_workspace(sim.workspace_id).filter(
            entity_type__in=CHANGED_KINDS
        )

        proposed = set(
            Proposal.objects.for_workspace(sim.workspace_id).values_list("record_id", flat=True)
        )
        for record in records.order_by("id"):
            key = (record.entity_type, record.qbo_id)
            if record.deleted and record.pk not in proposed:
                continue  # first seen already deleted: never alive for Well, like never seen
            sim.well_records[key] = (record.state, record.deleted, record.sync_token)
            # What the record points at in Qonto, however many postings it took to get there.
            in_qonto = set()
            for posting in postings_by_record.get(record.pk, []):
                if posting.state != PostingState.DONE:
                    continue
                kind = posting.target_kind or "invoice"
                target = (
                    invoices.get(posting.qonto_id, ("missing",))
                    if kind == "invoice"
                    else (posting.qonto_id,)
                )
                in_qonto.add((kind, target))
            # A deleted record's last version depends on which syncs saw it: not compared.
            version = "" if record.deleted else record.sync_token
            sim.records[key] = (record.state, record.deleted, version, sorted(in_qonto))
        sim.uploads = self.sandboxes.control(self.sandboxes.qonto, "invoices")["invoices"]
        for upload in sim.uploads:
            upload["posting"] = next(
                (p for p in sim.postings if p["key"] == upload["idempotency_key"]), None
            )

    def _qonto_invoices(self) -> dict[str, tuple]:
        """What Qonto shows of each supplier invoice: status, amount, number (ids differ by run)."""
        app = self.sandboxes.qonto_app
        app.invoices.apply_due_analyses()
        with app.store.lock:
            invoices = dict(app.store.state["supplier_invoices"])
        shown = {}
        for invoice_id, invoice in invoices.items():
            amount = invoice.get("total_amount") or {}
            value = amount.get("value") if isinstance(amount, dict) else amount
            shown[invoice_id] = (
                str(invoice.get("status") or ""),
                str(Decimal(str(value))) if value not in (None, "") else "",
                str(invoice.get("invoice_number") or ""),
            )
        return shown

    def _disconnect(self) -> None:
        """Leave nothing connected to sandboxes that are about to stop."""

        actor = Actor.system("soak")
        quickbooks_disconnect(connection=Connection.objects.get(pk=self.qbo_id), actor=actor)
        qonto_services.qonto_disconnect(
            connection=Connection.objects.get(pk=self.qonto_id), actor=actor
        )


# --- The four counts -------------------------------------------------------------------------


def unseen_deleted(faulted: Simulation, replay: Simulation) -> set[tuple[str, str]]:
    """Records QuickBooks created and deleted between two syncs of one run that did succeed:
    that run never saw them alive (no row, or a row first pulled as deleted and never proposed),
    which loses nothing (they no longer exist), so they are not compared. A sync failing for an
    hour under faults makes this happen."""
    unseen = set()
    for key in faulted.records.keys() ^ replay.records.keys():
        seen = faulted.records.get(key) or replay.records.get(key)
        if seen[1] and key not in faulted.qbo_alive:
            unseen.add(key)
    return unseen


def differing_records(faulted: Simulation, replay: Simulation) -> list[tuple[str, str]]:
    """Records whose end state differs between the runs (see `soak_counts`)."""
    skip = unseen_deleted(faulted, replay)
    return sorted(
        key
        for key in faulted.records.keys() | replay.records.keys()
        if key not in skip and faulted.records.get(key) != replay.records.get(key)
    )


def soak_counts(faulted: Simulation, replay: Simulation) -> SoakCounts:
    """The promises, counted on the faulted run (and against the replay for the last one).

    - duplicates_in_qonto: for each QuickBooks record, the Qonto supplier invoices created by
      upload for it beyond the first. An upload belongs to a record through its idempotency
      key (Well's posting) or, failing that, through the `--well-<key prefix>` tag Well puts
      in every file name; uploads sharing one idempotency key count the same way.
    - records_lost: QuickBooks records alive at the end (Bill, Purchase, VendorCredit) that Well
      does not hold, holds as deleted, or holds at an older SyncToken; plus records Well decided
      to post (auto-approved, approved, posting) that are not posted at the end.
    - postings_stuck: postings neither done nor failed with a reason after the final drain.
    - final_state_differs: records whose (state, deleted, SyncToken unless deleted, what their done
      postings point at in Qonto: the kind, and an invoice's status, amount and number, or a
      transaction's ID) differ from the fault-free replay, over the records of either run,
      except a record deleted in QuickBooks that one run never pulled (`unseen_deleted`).
    """
    by_prefix = {p["key"][:8]: p for p in faulted.postings}
    per_record: Counter = Counter()
    for upload in faulted.uploads:
        posting = upload.get("posting")
        if posting is None:
            name = str(upload.get("file_name") or "")
            tag = name.rsplit("--well-", 1)[1][:8] if "--well-" in name else ""
            posting = by_prefix.get(tag)
        owner = posting["record_id"] if posting else f"unknown:{upload.get('idempotency_key')}"
        per_record[owner] += 1
    duplicates = sum(n - 1 for n in per_record.values() if n > 1)

    lost = 0
    for key, token in faulted.qbo_alive.items():
        held = faulted.well_records.get(key)
        if held is None or held[1] or held[2] != token:
            lost += 1
    lost += sum(1 for state, *_ in faulted.well_records.values() if state in UNFINISHED_STATES)

    stuck = sum(
        1
        for p in faulted.postings
        if p["state"] != PostingState.DONE
        and not (p["state"] == PostingState.FAILED and p["message"].strip())
    )
    differs = len(differing_records(faulted, replay))
    return SoakCounts(
        duplicates_in_qonto=duplicates,
        records_lost=lost,
        postings_stuck=stuck,
        final_state_differs=differs,
    )


def soak_run(
    *,
    hours: int,
    fault_rate: float,
    kill_workers: bool,
    seed: int,
    bills: int = 30,
    changes_per_hour: tuple[int, int] = (10, 30),
    tamper: Callable[[_Day], None] | None = None,
) -> dict:
    """Run the day with faults, replay it without, and return the report (counts first).

    `tamper` runs against the faulted day's sandboxes before its end state is read (the test
    that proves the checker can fail plants a duplicate there).
    """
    if hours < 1:
        raise ValueError("hours must be at least 1")
    if not 0 <= fault_rate <= 1:
        raise ValueError("fault rate must be between 0 and 1")
    started = time.monotonic()
    config = {
        "hours": hours,
        "fault_rate": fault_rate,
        "kill_workers": kill_workers,
        "seed": seed,
        "bills": bills,
        "changes_per_hour": changes_per_hour,
    }
    world_now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    faulted_day = _Day(label="faults", config=config, faulty=True, world_now=world_now)
    if tamper is not None:
        original = faulted_day._read_back

        def read_back() -> None:
            tamper(faulted_day)
            original()

        faulted_day._read_back = read_back  # type: ignore[method-assign]
    faulted = faulted_day.run()
    replay = _Day(label="replay", config=config, faulty=False, world_now=world_now).run()
    counts = soak_counts(faulted, replay)
    posting_states = Counter(p["state"] for p in faulted.postings)
    failures = Counter(
        p["message"][:120] for p in faulted.postings if p["state"] == PostingState.FAILED
    )
    differing = differing_records(faulted, replay)
    return {
        "duplicates_in_qonto": counts.duplicates_in_qonto,
        "records_lost": counts.records_lost,
        "postings_stuck": counts.postings_stuck,
        "final_state_differs": counts.final_state_differs,
        "hours": hours,
        "fault_rate": fault_rate,
        "seed": seed,
        "kill_workers": kill_workers,
        "faults_injected": dict(sorted(faulted.faults.items())),
        "kills": dict(sorted(faulted.kills.items())),
        "changes": dict(sorted(faulted.changes.items())),
        "approvals": faulted.approvals,
        "approvals_refused": dict(faulted.refusals.most_common(5)),
        "reconnects": dict(faulted.reconnects),
        "records": len(faulted.records),
        "postings": dict(sorted(posting_states.items())),
        "qonto_uploads": len(faulted.uploads),
        "failed_postings": dict(failures.most_common(5)),
        "deleted_before_seen": len(unseen_deleted(faulted, replay)),
        # A few differing records, as (faults, replay), to start an investigation from.
        "differing_examples": {
            f"{entity} {qbo_id}": [
                repr(faulted.records.get((entity, qbo_id))),
                repr(replay.records.get((entity, qbo_id))),
            ]
            for entity, qbo_id in differing[:3]
        },
        "seconds": round(time.monotonic() - started, 1),
    }
