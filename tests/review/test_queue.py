"""The review queue at scale: pages without COUNT(*), every sort over the whole queue, search
through both tables, the indexes that answer them, and retrying a failed posting."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from connectors.qonto.models import Posting, PostingState
from connectors.quickbooks.models import RecordState
from review.paging import MAX_PAGE, page_number_parse
from review.selectors import queue as queue_selectors
from tests.review.pages import queued, texts, url
from well.models import AuditEvent

pytestmark = pytest.mark.django_db


def rows(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-record="(\d+)"', response.content.decode())]


def whole_queue(client, books, query: str = "") -> list[int]:
    """Every record of the queue, page after page, following the Next links."""
    seen, page = [], 1
    while True:
        response = client.get(url(books, "queue") + f"?{query}&page={page}")
        assert response.status_code == 200
        seen += rows(response)
        if 'rel="next"' not in response.content.decode():
            return seen
        page += 1


def test_the_queue_pages_without_counting_the_queue(books, people):
    queued(books, 30)
    client = people["owner"]
    with CaptureQueriesContext(connection) as queries:
        first = client.get(url(books, "queue"))
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    page = first.content.decode()
    assert len(rows(first)) == 25 and 'rel="next"' in page and 'rel="prev"' not in page
    assert "Page 1 · 1\u201325" in page
    second = client.get(url(books, "queue") + "?page=2")
    assert len(rows(second)) == 5 and 'rel="next"' not in second.content.decode()
    assert "Page 2 · 26\u201330" in second.content.decode()
    assert set(rows(first)).isdisjoint(rows(second))


def test_a_page_past_the_end_or_not_a_number_is_answered_plainly(books, people):
    queued(books, 3)
    client = people["owner"]
    past = client.get(url(books, "queue") + "?page=9")
    assert past.status_code == 200 and rows(past) == []
    assert "nothing on this page" in past.content.decode()
    assert 'rel="prev"' in past.content.decode()
    assert len(rows(client.get(url(books, "queue") + "?page=abc"))) == 3
    assert page_number_parse("-4") == 1 and page_number_parse(str(10**9)) == MAX_PAGE


@pytest.mark.parametrize(
    "sort, key, reverse",
    [
        ("amount", lambda r: (r.total_amount, r.pk), False),
        ("-amount", lambda r: (r.total_amount, r.pk), True),
        ("date", lambda r: (r.issue_date, r.pk), False),
        ("-date", lambda r: (r.issue_date, r.pk), True),
        ("vendor", lambda r: (r.supplier_name, r.pk), False),
        ("-vendor", lambda r: (r.supplier_name, r.pk), True),
    ],
)
def test_each_record_sort_orders_the_whole_queue_across_pages(books, people, sort, key, reverse):
    from connectors.quickbooks.models import SourceRecord

    queued(books, 30)
    records = SourceRecord.objects.filter(workspace=books.workspace, state=RecordState.IN_REVIEW)
    # Ties on purpose: equal amounts, dates and names are ordered by the record's ID.
    records.filter(pk__in=[r.pk for r in records[:10]]).update(
        total_amount="150.00", supplier_name="Same SARL"
    )
    expected = [r.pk for r in sorted(records, key=key, reverse=reverse)]
    assert whole_queue(people["owner"], books, f"sort={sort}") == expected


def _named(books, *, supplier: str, invoice: str, entry_name: str, amount: str):
    """One record in review whose proposal links a Qonto entry of another name."""
    from matching.models import Proposal

    entry = books.invoice(amount_text=amount, name=entry_name)
    record = books.bill(
        amount=amount, vendor_name=supplier, doc=invoice, state=RecordState.IN_REVIEW
    )
    Proposal.objects.create(
        workspace=books.workspace,
        record=record,
        action="link",
        target=entry,
        confidence=0.7,
        band="review",
        auto_threshold=0.85,
        review_threshold=0.55,
    )
    return record


def test_search_finds_a_record_by_its_names_numbers_or_its_proposed_qonto_entry(books, people):
    queued(books, 5)
    mine = _named(
        books,
        supplier="Boulangerie Lenoir",
        invoice="FA-2025-0042",
        entry_name="LENOIR PAIN",
        amount="42.00",
    )
    client = people["owner"]
    for words in ("lenoir", "FA-2025-00", mine.qbo_id, "pain"):
        assert rows(client.get(url(books, "queue"), {"q": words})) == [mine.pk], words
    assert rows(client.get(url(books, "queue"), {"q": "nobody by this name"})) == []


def test_search_never_finds_another_workspaces_records(books, other_books, people):
    _named(other_books, supplier="Lenoir", invoice="X", entry_name="Lenoir", amount="1.00")
    assert rows(people["owner"].get(url(books, "queue"), {"q": "lenoir"})) == []


def test_a_broad_search_beyond_the_id_lists_still_finds_every_match(books, people, monkeypatch):
    queued(books, 6)
    narrow = rows(people["owner"].get(url(books, "queue"), {"q": "Algolia"}))
    monkeypatch.setattr(queue_selectors, "SEARCH_IDS_MAX", 2)  # every match now goes as a subquery
    broad = rows(people["owner"].get(url(books, "queue"), {"q": "Algolia"}))
    assert len(narrow) == 6 and broad == narrow


def test_search_takes_the_same_queries_for_3_or_30_matches(
    books, people, django_assert_num_queries
):
    client = people["owner"]
    queued(books, 3)
    client.get(url(books, "queue"))  # the first visit saves the workspace in the session
    with CaptureQueriesContext(connection) as few:
        client.get(url(books, "queue"), {"q": "Algolia", "sort": "-amount"})
    queued(books, 27)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url(books, "queue"), {"q": "Algolia", "sort": "-amount"})


def test_the_queue_s_sorts_and_search_have_their_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        names = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchone() is not None
    assert {
        "source_record_amount_idx",
        "source_record_date_idx",
        "source_record_supplier_idx",
        "source_record_keyset_idx",
        "proposal_current_conf_idx",
        "proposal_current_created_idx",
        "proposal_current_gated_idx",
        "source_record_supplier_trgm",
        "source_record_invoice_trgm",
        "source_record_label_trgm",
        "qonto_entry_counterparty_trgm",
        "qonto_entry_invoice_trgm",
    } <= names


# --- retrying a failed posting ---------------------------------------------------------------


def failed_posting(books) -> Posting:
    record = books.bill(state=RecordState.FAILED)
    return Posting.objects.create(
        workspace=books.workspace,
        record=record,
        source_version="0",
        action="upload",
        idempotency_key=f"retry-{record.pk}",
        state=PostingState.FAILED,
        message="Qonto refused it: supplier name missing",
    )


def test_an_accountant_retries_a_failed_posting_under_the_same_key(books, people):
    from django_q.models import OrmQ

    posting = failed_posting(books)
    record_url = url(books, "record", record_id=posting.record_id)
    assert 'data-action="retry"' in people["accountant"].get(record_url).content.decode()
    queued_tasks = OrmQ.objects.count()
    response = people["accountant"].post(url(books, "retry", record_id=posting.record_id))
    assert response.status_code == 302 and response.url == record_url
    assert "1 failed posting sent to Qonto again" in texts(response)[0]
    posting.refresh_from_db()
    assert posting.state == PostingState.READY
    assert posting.idempotency_key == f"retry-{posting.record_id}"
    event = AuditEvent.objects.get(verb="posting.retried", object_id=str(posting.pk))
    assert event.actor_label == "acc@atelier.example"
    assert OrmQ.objects.count() == queued_tasks + 1  # the outbox is sent now, not in a minute
    assert 'data-action="retry"' not in people["accountant"].get(record_url).content.decode()


def test_a_viewer_cannot_retry_and_sees_no_retry_button(books, people):
    posting = failed_posting(books)
    page = people["viewer"].get(url(books, "record", record_id=posting.record_id))
    assert 'data-action="retry"' not in page.content.decode()
    response = people["viewer"].post(url(books, "retry", record_id=posting.record_id))
    assert response.status_code == 403
    posting.refresh_from_db()
    assert posting.state == PostingState.FAILED
    assert not AuditEvent.objects.filter(verb="posting.retried").exists()


def test_retrying_a_record_with_nothing_failed_says_so_and_changes_nothing(books, people):
    record = books.bill(state=RecordState.IN_REVIEW)
    events = AuditEvent.objects.count()
    response = people["accountant"].post(url(books, "retry", record_id=record.pk))
    assert response.status_code == 302
    assert texts(response) == ["Nothing to retry: no posting of this record has failed."]
    assert AuditEvent.objects.count() == events
    assert people["accountant"].get(url(books, "retry", record_id=record.pk)).status_code == 405


def test_a_page_writes_the_session_only_when_the_workspace_changes(books, people):
    client = people["owner"]

    def session_writes(target) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(target).status_code == 200
        return sum('UPDATE "django_session"' in q["sql"] for q in queries.captured_queries)

    assert session_writes(url(books, "queue")) == 1  # first visit: remembered for the API
    assert session_writes(url(books, "queue")) == 0
    assert session_writes(url(books, "dashboard")) == 0
    assert client.session["workspace_slug"] == books.workspace.slug
