"""Pages of long lists read without counting them.

COUNT(*) over a 50,000-row queue costs more than the page itself. A page reads one row more
than it shows: that row says whether there is a next page. The dashboard has the totals.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PAGE = 10_000  # deeper than anyone pages by hand; bounds the OFFSET a URL can ask for


@dataclass(frozen=True)
class WindowPage:
    object_list: list
    number: int
    per_page: int
    has_next: bool

    def has_previous(self) -> bool:
        return self.number > 1

    def previous_page_number(self) -> int:
        return self.number - 1

    def next_page_number(self) -> int:
        return self.number + 1

    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.object_list else 0

    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.object_list)


def page_number_parse(raw) -> int:
    """The page asked for in the query string: 1 when missing or not a page number."""
    try:
        number = int(raw)
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), MAX_PAGE)


def window_page(query, *, number: int, per_page: int) -> WindowPage:
    """Rows of page `number` (from 1) and whether more follow.

    Page 1 is one query. A later page first reads only the IDs of its rows (the rows it skips
    are walked in the sort's index without joining what the page shows), then those rows.
    """
    start = (number - 1) * per_page
    if start == 0:
        rows = list(query[: per_page + 1])
    else:
        ids = list(query.values_list("pk", flat=True)[start : start + per_page + 1])
        found = {row.pk: row for row in query.filter(pk__in=ids)} if ids else {}
        rows = [found[pk] for pk in ids if pk in found]
    return WindowPage(rows[:per_page], number, per_page, has_next=len(rows) > per_page)
