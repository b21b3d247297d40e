"""Two django-q2 clusters (two machines) on one PostgreSQL never run a sync or send a posting twice.

Two `manage.py qcluster` processes share the test database (ORM broker) and work against the
sandboxes over HTTP. The queue holds every workspace's syncs several times over, the outbox
task several times, and the dispatch schedules twice each (as if each machine's scheduler fired
them). The proof: no two runs of one connection overlap, the dispatchers queued each connection
at most once, and Qonto received each posting's idempotency key exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db.models import Q
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task

from connectors.dispatch import sync_enqueue
from connectors.models import Connection, ConnectionStatus, SyncRun, SyncStatus
from connectors.qonto import services as qonto_services
from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.quickbooks import services as quickbooks_services
from sandbox.demo import DemoUrls
from sandbox.runner import sandbox_credentials, start_sandboxes
from tests.connectors.oauth_flows import qonto_consent
from well.schedules import SCHEDULES

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WORKSPACES = 3
BILLS = 12
# django-q2 runs its scheduler 30 s after a cluster starts; the rest takes about 15 s.
DEADLINE_SECONDS = 80


def provider_settings(urls: DemoUrls) -> dict[str, str]:
    """What an operator sets to point Well at the sandboxes (as the demo does, by environment)."""
    client_id, client_secret = sandbox_credentials()
    return {
        "SITE_URL": urls.site,
        "QUICKBOOKS_CLIENT_ID": client_id,
        "QUICKBOOKS_CLIENT_SECRET": client_secret,
        "QUICKBOOKS_AUTHORIZE_URL": f"{urls.quickbooks}/connect/oauth2",
        "QUICKBOOKS_TOKEN_URL": f"{urls.quickbooks}/oauth2/v1/tokens/bearer",
        "QUICKBOOKS_REVOKE_URL": f"{urls.quickbooks}/v2/oauth2/tokens/revoke",
        "QUICKBOOKS_API_URL": urls.quickbooks,
        "QUICKBOOKS_DOWNLOAD_HOSTS": "127.0.0.1",
        "WELL_ALLOW_LOOPBACK_DOWNLOADS": "true",
        "QONTO_CLIENT_ID": client_id,
        "QONTO_CLIENT_SECRET": client_secret,
        "QONTO_AUTHORIZE_URL": f"{urls.qonto}/oauth2/auth",
        "QONTO_TOKEN_URL": f"{urls.qonto}/oauth2/token",
        "QONTO_REVOKE_URL": f"{urls.qonto}/oauth2/revoke",
        "QONTO_API_URL": urls.qonto,
    }


@pytest.fixture
def sandboxes(settings, monkeypatch):
    """Both sandboxes on real sockets; the Qonto one counts every bulk item by idempotency key."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the sandboxes speak plain http
    qbo, qonto = start_sandboxes(qbo_port=0, qonto_port=0, bills=BILLS, data_dir=None)
    received: Counter = Counter()
    invoices = qonto.server.get_app().invoices
    original = invoices._bulk_item

    def counting_bulk_item(index, item, *args, **kwargs):
        key = item.get("idempotency_key")
        received[key.text().strip() if key else ""] += 1
        return original(index, item, *args, **kwargs)

    invoices._bulk_item = counting_bulk_item
    urls = DemoUrls(site="http://127.0.0.1:8000", quickbooks=qbo.base_url, qonto=qonto.base_url)
    for name, value in provider_settings(urls).items():
        if name in {"QUICKBOOKS_DOWNLOAD_HOSTS"}:
            value = [value]
        elif name == "WELL_ALLOW_LOOPBACK_DOWNLOADS":
            value = True
        setattr(settings, name, value)
    try:
        yield urls, received
    finally:
        qbo.stop()
        qonto.stop()


def connect_both(make_user, make_workspace, index: int) -> tuple[Connection, Connection]:
    """One workspace connected to QuickBooks and Qonto through the real OAuth flows.

    Every cluster workspace holds the one sandbox company and organization: the state that
    existed before a company could belong to one workspace only (issue 17), which the clusters'
    guarantees must survive too. The one-workspace guard is lifted for this setup only.
    """
    with (
        mock.patch("connectors.quickbooks.services.connection_claim_check"),
        mock.patch("connectors.qonto.services.connection_claim_check"),
    ):
        return _connect_both(make_user, make_workspace, index)


def _connect_both(make_user, make_workspace, index: int) -> tuple[Connection, Connection]:
    owner = make_user(f"owner{index}@clusters.example")
    workspace = make_workspace(f"Cluster Co {index}", owner=owner)

    url, pending = quickbooks_services.quickbooks_authorization_begin(
        workspace=workspace, user=owner
    )
    authorize = urlsplit(url)
    answer = requests.post(
        f"{authorize.scheme}://{authorize.netloc}{authorize.path}",
        data={**{k: v[0] for k, v in parse_qs(authorize.query).items()}, "decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )
    callback = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    quickbooks = quickbooks_services.quickbooks_authorization_complete(
        pending=pending,
        user=owner,
        state=callback["state"],
        code=callback["code"],
        realm_id=callback["realmId"],
    ).connection

    url, pending = qonto_services.qonto_authorization_begin(workspace=workspace, user=owner)
    callback = qonto_consent(url)
    qonto = qonto_services.qonto_authorization_complete(
        pending=pending, user=owner, state=callback["state"], code=callback["code"]
    ).connection
    return quickbooks, qonto


def start_cluster(env: dict[str, str], log: Path) -> subprocess.Popen:
    # Its own session, so the cluster and its worker processes are stopped as one group.
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_clusters(processes: list[subprocess.Popen]) -> None:
    """Ask every cluster to stop, then kill what is still there 3 s later (the work is done)."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def all_work_done(connection_ids: list) -> bool:
    """Queue empty, no run in progress, no posting on its way, every connection synced."""
    if OrmQ.objects.exists() or SyncRun.objects.filter(status=SyncStatus.RUNNING).exists():
        return False
    if Posting.objects.exclude(state__in=[PostingState.DONE, PostingState.FAILED]).exists():
        return False
    synced = SyncRun.objects.filter(connection_id__in=connection_ids, status=SyncStatus.SUCCEEDED)
    return synced.values("connection_id").distinct().count() == len(connection_ids)


def overlapping_runs() -> list[tuple]:
    """Pairs of runs of one connection that were running at the same time."""
    clashes = []
    runs = SyncRun.objects.exclude(status=SyncStatus.SKIPPED).order_by("connection", "started_at")
    previous = None
    for run in runs:
        same = previous is not None and previous.connection_id == run.connection_id
        if same and (previous.finished_at is None or previous.finished_at > run.started_at):
            clashes.append((previous.pk, run.pk))
        previous = run
    return clashes


def test_two_clusters_on_one_database_never_run_a_sync_or_send_a_posting_twice(
    sandboxes, make_user, make_workspace, tmp_path
):
    urls, received = sandboxes
    pairs = [connect_both(make_user, make_workspace, i) for i in range(WORKSPACES)]
    connections = [c for pair in pairs for c in pair]
    # Every connection's minute is now and its last scheduled sync long done: both dispatchers
    # find all of them due at their first tick.
    now = timezone.now()
    Connection.objects.filter(pk__in=[c.pk for c in connections]).update(
        sync_minute=now.minute, sync_enqueued_at=now - timedelta(hours=3)
    )
    # Connecting queued one sync per connection; queue each again, twice for QuickBooks.
    for quickbooks, qonto in pairs:
        for _ in range(2):
            sync_enqueue(connection=quickbooks, trigger="manual")
        sync_enqueue(connection=qonto, trigger="manual")
    for _ in range(3):
        async_task("connectors.qonto.tasks.postings_send_task", group="post")
    # The declared schedules, and a second copy of each dispatcher as if each machine fired it.
    call_command("setup_schedules")
    for spec in SCHEDULES:
        if spec.func.endswith("_dispatch"):
            Schedule.objects.create(
                name=f"{spec.name} (second machine)",
                func=spec.func,
                schedule_type=Schedule.MINUTES,
                minutes=spec.minutes,
                next_run=now,
            )
    assert Schedule.objects.filter(func__endswith="_dispatch").count() == 4

    database = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        **provider_settings(urls),
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "OAUTHLIB_INSECURE_TRANSPORT": "1",
        "WELL_WORKERS": "2",
        "DJANGO_SETTINGS_MODULE": "well.settings",
    }
    logs = [tmp_path / "cluster-a.log", tmp_path / "cluster-b.log"]
    clusters = [start_cluster(env, log) for log in logs]
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        ids = [c.pk for c in connections]
        fired = Schedule.objects.filter(func__endswith="_dispatch", task__isnull=False)
        while not (all_work_done(ids) and fired.count() == 4):
            assert all(c.poll() is None for c in clusters), "a cluster exited early"
            tails = "\n".join(log.read_text()[-2000:] for log in logs)
            assert time.monotonic() < deadline, f"the clusters did not finish in time:\n{tails}"
            time.sleep(0.5)
    finally:
        stop_clusters(clusters)

    # Both machines took work from the shared queue.
    for log in logs:
        assert " processing " in log.read_text(), log.name

    # Syncs: never two runs of one connection at once; the four dispatcher firings queued each
    # connection once at most; the losers of the lock were recorded as skipped, not run.
    assert overlapping_runs() == []
    scheduled = Counter(
        SyncRun.objects.filter(trigger="schedule").values_list("connection_id", flat=True)
    )
    assert scheduled and max(scheduled.values()) == 1
    runs = SyncRun.objects.filter(connection_id__in=ids)
    assert runs.count() >= 2 * len(ids)  # connect + manual copies at least, all recorded
    assert not runs.filter(status=SyncStatus.FAILED).exists()
    assert (
        not Connection.objects.filter(pk__in=ids)
        .exclude(status=ConnectionStatus.CONNECTED)
        .exists()
    )

    # Postings: each idempotency key reached Qonto exactly once, and each upload is one invoice.
    postings = Posting.objects.all()
    assert postings.exists(), "the syncs should have approved and posted some bills"
    assert set(postings.values_list("state", flat=True)) == {PostingState.DONE}
    # An invoice Qonto already held is linked at send time, never uploaded.
    uploads = postings.filter(action__in=[PostingAction.UPLOAD, PostingAction.CREDIT_NOTE]).exclude(
        outcome="linked"
    )
    upload_keys = Counter(uploads.values_list("idempotency_key", flat=True))
    assert upload_keys
    assert received == upload_keys  # every bulk item Qonto received, by key: each once
    assert not postings.filter(Q(attempts__gt=1)).exists()
    qonto_state = requests.get(f"{urls.qonto}/_sandbox/invoices", timeout=10).json()["invoices"]
    assert Counter(i["idempotency_key"] for i in qonto_state) == Counter(
        uploads.values_list("idempotency_key", flat=True)
    )
